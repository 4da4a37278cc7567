//! corral's exit codes: one table for every command and for php-fpm's own
//! flags, so a script or a unit file reads the same number for the same
//! kind of failure whatever it ran. The numbers are php-fpm's where php-fpm
//! has one (64, 70 and 78, from sysexits) and sysexits' otherwise.
//! docs/cli.md lists the same table; a test keeps the two equal.

/// How a corral process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitCode {
    /// It did what was asked.
    Ok,
    /// It ran, and the answer is no: `corral doctor` found weak spots,
    /// `corral bench` got no answer at all, a site change failed (and was
    /// rolled back), no pool or site has that name.
    Failure,
    /// The command line is wrong: an unknown flag, a missing or bad value
    /// (php-fpm's and sysexits' EX_USAGE).
    Usage,
    /// No master answers on the control socket (EX_UNAVAILABLE).
    Unavailable,
    /// Something broke inside: PHP would not start, a daemonized master
    /// failed to come up (php-fpm's EX_SOFTWARE).
    Software,
    /// The command needs root, or root's control socket (EX_NOPERM).
    NoPerm,
    /// The configuration is not valid; what was running keeps running
    /// (php-fpm's EX_CONFIG).
    Config,
}

impl ExitCode {
    /// Every code, in the order of the documented table.
    pub const ALL: [ExitCode; 7] = [
        ExitCode::Ok,
        ExitCode::Failure,
        ExitCode::Usage,
        ExitCode::Unavailable,
        ExitCode::Software,
        ExitCode::NoPerm,
        ExitCode::Config,
    ];

    /// The process exit status.
    pub const fn code(self) -> i32 {
        match self {
            ExitCode::Ok => 0,
            ExitCode::Failure => 1,
            ExitCode::Usage => 64,
            ExitCode::Unavailable => 69,
            ExitCode::Software => 70,
            ExitCode::NoPerm => 77,
            ExitCode::Config => 78,
        }
    }

    /// The name used in docs/cli.md and in `--json` errors' `"kind"`.
    pub const fn name(self) -> &'static str {
        match self {
            ExitCode::Ok => "ok",
            ExitCode::Failure => "failure",
            ExitCode::Usage => "usage",
            ExitCode::Unavailable => "unavailable",
            ExitCode::Software => "software",
            ExitCode::NoPerm => "noperm",
            ExitCode::Config => "config",
        }
    }

    /// The code a number stands for, if it is one of ours.
    pub fn from_code(code: i32) -> Option<ExitCode> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }
}

impl From<ExitCode> for i32 {
    fn from(c: ExitCode) -> i32 {
        c.code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_round_trip() {
        for c in ExitCode::ALL {
            assert_eq!(ExitCode::from_code(c.code()), Some(c));
            let same = ExitCode::ALL.iter().filter(|o| o.code() == c.code());
            assert_eq!(same.count(), 1, "{c:?}");
        }
        assert_eq!(ExitCode::from_code(2), None);
    }

    #[test]
    fn php_fpm_numbers_are_kept() {
        // php-fpm's fpm_main.c: FPM_EXIT_USAGE 64, _SOFTWARE 70, _CONFIG 78.
        assert_eq!(ExitCode::Usage.code(), 64);
        assert_eq!(ExitCode::Software.code(), 70);
        assert_eq!(ExitCode::Config.code(), 78);
    }

    /// docs/cli.md's table has one row per code, with its number and name.
    #[test]
    fn the_documented_table_is_this_one() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/cli.md"))
                .expect("docs/cli.md");
        let rows: Vec<(i32, String)> = doc
            .lines()
            .skip_while(|l| !l.starts_with("## Exit codes"))
            .filter_map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                let n = cells.get(1)?.trim_matches('`').parse().ok()?;
                Some((n, cells.get(2)?.trim_matches('`').to_string()))
            })
            .collect();
        let ours: Vec<(i32, String)> = ExitCode::ALL
            .iter()
            .map(|c| (c.code(), c.name().to_string()))
            .collect();
        assert_eq!(rows, ours, "docs/cli.md's exit code table");
    }
}
