//! A worker's own log lines, written to its stderr the way php-fpm's
//! children write them (`NOTICE: PHP message: ...`, no timestamp): the
//! master adds time and `[pool x] child N said into stderr` when
//! catch_workers_output is on; otherwise stderr is /dev/null, as in php-fpm.

use std::io::Write;

use corral_php::LogLevel;

pub struct WorkerLog {
    pub min_level: LogLevel,
}

impl WorkerLog {
    pub fn line(&self, level: LogLevel, msg: &[u8]) {
        if level < self.min_level {
            return;
        }
        let label = match level {
            LogLevel::Debug => "DEBUG",
            LogLevel::Notice => "NOTICE",
            LogLevel::Warning => "WARNING",
            LogLevel::Error => "ERROR",
        };
        let mut line = Vec::with_capacity(msg.len() + 16);
        line.extend_from_slice(label.as_bytes());
        line.extend_from_slice(b": ");
        line.extend_from_slice(msg);
        line.push(b'\n');
        // One write per line so lines from concurrent workers do not mix.
        let _ = std::io::stderr().lock().write_all(&line);
    }
}
