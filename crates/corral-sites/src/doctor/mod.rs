//! `corral doctor [--json]`: what isolation this host can give its pools,
//! one finding per line, each weak one saying what to do. Exit 0 when
//! nothing is weak, 1 (corral's `failure`) otherwise.
//!
//! Every check reads the kernel's own answer (sysctl files, mountinfo,
//! the cgroup tree, the Landlock syscall, an actual unshare, quotactl) and
//! the pool files corral would load; nothing is changed.

mod cgroups;
mod kernel;
mod pools;

use serde::Serialize;

use crate::paths::Paths;

/// How a finding bears on isolation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    /// Something a tenant can use against another tenant or the host.
    Weak,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What was checked (`fs.protected_symlinks`, `cgroup`, `pool x`).
    pub check: String,
    pub level: Level,
    /// What this host has.
    pub value: String,
    /// What it protects against, or what to do when weak.
    pub advice: String,
}

impl Finding {
    pub fn ok(
        check: impl Into<String>,
        value: impl Into<String>,
        advice: impl Into<String>,
    ) -> Self {
        Finding {
            check: check.into(),
            level: Level::Ok,
            value: value.into(),
            advice: advice.into(),
        }
    }
    pub fn weak(
        check: impl Into<String>,
        value: impl Into<String>,
        advice: impl Into<String>,
    ) -> Self {
        Finding {
            level: Level::Weak,
            ..Finding::ok(check, value, advice)
        }
    }
}

/// Every check, in report order.
pub fn findings(paths: &Paths, php_version: &str) -> Vec<Finding> {
    let mut out = kernel::sysctls();
    out.extend(cgroups::check());
    out.push(kernel::landlock());
    out.push(kernel::namespaces());
    out.push(kernel::quota(&paths.home_base));
    out.extend(pools::check(&paths.fpm_config_for(php_version)));
    out
}

/// `corral doctor`: what isolation this host can give its pools.
#[derive(clap::Args, Debug)]
pub struct DoctorArgs {
    /// The PHP version whose pool files are checked
    #[arg(long, value_name = "VERSION", default_value = crate::spec::DEFAULT_PHP_VERSION)]
    pub php_version: String,
    #[command(flatten)]
    pub host: crate::paths::HostArgs,
    #[command(flatten)]
    pub out: corral_cli::JsonArg,
}

impl DoctorArgs {
    /// Runs the checks and prints the report: exit 0 when nothing is weak,
    /// [`ExitCode::Failure`](corral_cli::ExitCode::Failure) otherwise.
    pub fn run(self) -> corral_cli::ExitCode {
        corral_cli::finish("corral doctor", self.out.json, self.report())
    }

    fn report(&self) -> Result<corral_cli::Reply, corral_cli::CliError> {
        let paths = Paths::from_host(&self.host)?;
        let all = findings(&paths, &self.php_version);
        let weak = all.iter().filter(|f| f.level == Level::Weak).count();
        let mut text: String = all.iter().map(|f| line(f) + "\n").collect();
        text.push_str(&format!(
            "{weak} weak finding(s){}",
            if weak == 0 {
                ""
            } else {
                ": fix the WEAK lines above"
            }
        ));
        let json = serde_json::json!({ "weak": weak, "findings": all });
        let code = if weak == 0 {
            corral_cli::ExitCode::Ok
        } else {
            corral_cli::ExitCode::Failure
        };
        Ok(corral_cli::Reply::new(text, json).with_code(code))
    }
}

/// `ok   CHECK = VALUE: ADVICE` or `WEAK …`.
pub fn line(f: &Finding) -> String {
    let tag = match f.level {
        Level::Ok => "ok  ",
        Level::Weak => "WEAK",
    };
    format!("{tag} {} = {}: {}", f.check, f.value, f.advice)
}
