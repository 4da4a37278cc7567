//! The master's log in php-fpm's format:
//! `[23-Nov-2026 10:00:00] NOTICE: message`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

use corral_config::LogLevel;

pub struct Logger {
    file: Option<(PathBuf, File)>,
    /// `error_log = syslog`: the priority php-fpm uses for every line (the
    /// configured log_level's, not the message's; php-fpm's zlog does that).
    syslog: Option<i32>,
    pub level: LogLevel,
    pub limit: usize,
    /// Until the master is up, NOTICE and above also go to stderr (php-fpm
    /// does this so start-up problems are seen on the terminal).
    pub echo_stderr: bool,
}

fn stamp() -> String {
    chrono::Local::now().format("%d-%b-%Y %H:%M:%S").to_string()
}

impl Logger {
    pub fn stderr() -> Logger {
        Logger {
            file: None,
            syslog: None,
            level: LogLevel::Notice,
            limit: 1024,
            echo_stderr: false,
        }
    }

    /// Log to `path` (append, created 0600 like php-fpm does).
    pub fn open(&mut self, path: PathBuf) -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)?;
        self.file = Some((path, f));
        Ok(())
    }

    /// Send lines to syslog, php-fpm style: `[LEVEL] message` with the ident
    /// and facility from `[global]`.
    pub fn use_syslog(&mut self, ident: &str, facility: i32) {
        corral_sys::process::open_syslog(ident, facility);
        let prio = match self.level {
            LogLevel::Debug => libc::LOG_DEBUG,
            LogLevel::Notice => libc::LOG_NOTICE,
            LogLevel::Warning => libc::LOG_WARNING,
            LogLevel::Error => libc::LOG_ERR,
            LogLevel::Alert => libc::LOG_ALERT,
        };
        self.syslog = Some(prio);
    }

    /// SIGUSR1: reopen the file (log rotation).
    pub fn reopen(&mut self) -> std::io::Result<()> {
        if let Some((path, _)) = self.file.take() {
            self.open(path)?;
        }
        Ok(())
    }

    /// How a line at `level` starts: `[time] LEVEL: `, or `[LEVEL] ` for
    /// syslog, which stamps the time itself.
    pub fn prefix(&self, level: LogLevel) -> String {
        if self.syslog.is_some() {
            format!("[{}] ", level.name())
        } else {
            format!("[{}] {}: ", stamp(), level.name())
        }
    }

    pub fn log(&mut self, level: LogLevel, msg: &str) {
        if level < self.level {
            return;
        }
        let mut line = self.prefix(level) + msg;
        if let Some(prio) = self.syslog {
            corral_sys::process::syslog(prio, &line);
            return;
        }
        if line.len() > self.limit {
            let mut cut = self.limit.saturating_sub(3);
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push_str("...");
        }
        line.push('\n');
        self.raw(level, line.as_bytes());
    }

    /// A pre-formatted line (worker output), still subject to the level.
    pub fn raw(&mut self, level: LogLevel, line: &[u8]) {
        if let Some(prio) = self.syslog {
            let text = String::from_utf8_lossy(line);
            corral_sys::process::syslog(prio, text.trim_end_matches('\n'));
            return;
        }
        match &mut self.file {
            Some((_, f)) => {
                let _ = f.write_all(line);
                if self.echo_stderr && level >= LogLevel::Notice {
                    let _ = std::io::stderr().write_all(line);
                }
            }
            None => {
                let _ = std::io::stderr().write_all(line);
            }
        }
    }

    pub fn notice(&mut self, msg: &str) {
        self.log(LogLevel::Notice, msg)
    }
    pub fn warning(&mut self, msg: &str) {
        self.log(LogLevel::Warning, msg)
    }
    pub fn error(&mut self, msg: &str) {
        self.log(LogLevel::Error, msg)
    }
    pub fn debug(&mut self, msg: &str) {
        self.log(LogLevel::Debug, msg)
    }
}
