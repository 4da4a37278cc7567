//! A private MariaDB for one test: its own datadir, socket and loopback
//! port in a temp dir, started as `mysql` and stopped on drop. No systemd
//! and nothing of Debian's `/etc/mysql` is used (`--no-defaults`).

use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::common;

pub struct MariaDb {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
}

/// How long the server may take to accept connections on 2 busy cores.
const READY: Duration = Duration::from_secs(60);

impl MariaDb {
    /// Installs the system tables and starts `mariadbd`; Err says why.
    pub fn start() -> Result<MariaDb, String> {
        let dir = common::temp_dir("mariadb");
        let data = dir.path().join("data");
        fs::create_dir(&data).map_err(|e| e.to_string())?;
        let uid = common::uid_of("mysql").ok_or("no mysql user (mariadb-server)")?;
        let gid = common::gid_of_group("mysql").ok_or("no mysql group")?;
        chown(&data, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
        chown(dir.path(), Some(uid), Some(gid)).map_err(|e| e.to_string())?;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let install = Command::new("timeout")
            .args(["120", "mariadb-install-db", "--no-defaults", "--user=mysql"])
            .arg(format!("--datadir={}", data.display()))
            .args(["--auth-root-authentication-method=socket", "--skip-test-db"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("mariadb-install-db: {e}"))?;
        if !install.status.success() {
            return Err(format!(
                "mariadb-install-db: {}{}",
                String::from_utf8_lossy(&install.stdout),
                String::from_utf8_lossy(&install.stderr)
            ));
        }
        let port = common::free_port();
        let d = dir.path().display();
        let child = Command::new("mariadbd")
            .args(["--no-defaults", "--user=mysql"])
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={d}/mysqld.sock"))
            .arg(format!("--pid-file={d}/mysqld.pid"))
            .arg(format!("--log-error={d}/error.log"))
            .arg(format!("--port={port}"))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=32M",
                "--innodb-log-file-size=16M",
                "--max-connections=40",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("mariadbd: {e}"))?;
        let mut db = MariaDb {
            child: Some(child),
            dir,
            port,
        };
        let deadline = Instant::now() + READY;
        while db.sql("SELECT 1").is_err() {
            if let Some(Ok(Some(st))) = db.child.as_mut().map(|c| c.try_wait()) {
                return Err(format!("mariadbd exited ({st}): {}", db.error_log()));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "mariadbd not ready in {READY:?}: {}",
                    db.error_log()
                ));
            }
            thread::sleep(Duration::from_millis(200));
        }
        Ok(db)
    }

    /// Runs SQL as root over the socket (root authenticates by socket).
    pub fn sql(&self, sql: &str) -> Result<String, String> {
        let out = Command::new("timeout")
            .args(["30", "mariadb", "--no-defaults", "-uroot", "-N", "-B"])
            .arg(format!(
                "--socket={}/mysqld.sock",
                self.dir.path().display()
            ))
            .args(["-e", sql])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("mariadb: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// A database and a user that may use it from 127.0.0.1 (PHP connects
    /// over TCP: the pool's private /tmp and Landlock keep it away from
    /// sockets in the test's temp dir).
    pub fn create_db(&self, db: &str, user: &str, password: &str) -> Result<(), String> {
        self.sql(&format!(
            "CREATE DATABASE `{db}`; CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}'; \
             GRANT ALL ON `{db}`.* TO '{user}'@'127.0.0.1';"
        ))
        .map(|_| ())
    }

    pub fn error_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for MariaDb {
    /// SIGTERM is a clean shutdown; KILL after 30 s so nothing stays.
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while matches!(c.try_wait(), Ok(None)) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
