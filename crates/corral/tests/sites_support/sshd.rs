//! A real OpenSSH server for the SFTP tests: Debian's `/usr/sbin/sshd` on
//! 127.0.0.1 and a free port, with its own host key and a config laid out
//! like Debian 12's (`Include` of the drop-in dir first, then `UsePAM yes`,
//! `X11Forwarding yes`, the sftp subsystem), so the drop-in `corral site`
//! writes is exactly what decides what the owner may do. It is killed
//! (with its process group) on drop.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{self, free_port, Output};

pub struct SitesSshd {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
}

pub const SSHD: &str = "/usr/sbin/sshd";

impl SitesSshd {
    /// `None` (and a SKIPPED line) without openssh-server/-client.
    pub fn start(dropin_dir: &Path) -> Option<SitesSshd> {
        if !Path::new(SSHD).exists() {
            common::skip("openssh-server is not installed (run scripts/setup.sh)");
            return None;
        }
        for b in ["sftp", "ssh", "ssh-keygen"] {
            common::require_bin(b)?;
        }
        // sshd refuses to start (or test) without its privilege separation
        // dir; Debian's init script makes it the same way.
        fs::create_dir_all("/run/sshd").unwrap();
        let dir = common::temp_dir("sites-sshd");
        let d = dir.path().display().to_string();
        keygen(&dir.path().join("host_key"), "host");
        let port = free_port();
        let conf = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             Include {}/*.conf\n\
             KbdInteractiveAuthentication no\nUsePAM yes\nX11Forwarding yes\nPrintMotd no\n\
             AcceptEnv LANG LC_*\nSubsystem sftp /usr/lib/openssh/sftp-server\nLogLevel VERBOSE\n",
            dropin_dir.display()
        );
        fs::write(dir.path().join("sshd_config"), conf).unwrap();
        let log = fs::File::create(dir.path().join("sshd.log")).unwrap();
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f", &format!("{d}/sshd_config")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start sshd");
        let s = SitesSshd {
            child: Some(child),
            dir,
            port,
        };
        super::wait_listen(port, || s.log());
        Some(s)
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("sshd_config")
    }

    /// `--sshd-test`: the whole config, drop-ins included.
    pub fn test_cmd(&self) -> String {
        format!("{SSHD} -t -f {}", self.config().display())
    }

    /// `--sshd-reload`: SIGHUP, as the default does to the system's sshd.
    pub fn reload_cmd(&self) -> String {
        let pid = self.child.as_ref().map_or(0, Child::id);
        format!("kill -HUP {pid}")
    }

    /// The extra environment that points `corral site` at this sshd.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("CORRAL_SITES_SSHD_TEST".into(), self.test_cmd()),
            ("CORRAL_SITES_SSHD_RELOAD".into(), self.reload_cmd()),
        ]
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// The real `sftp` client in batch mode as `user` with `key`. A batch
    /// line starting with `-` may fail without ending the batch. Retried
    /// while sshd re-executes itself after a SIGHUP (connection refused).
    pub fn sftp(&self, user: &str, key: &Path, batch: &str) -> Output {
        let file = self.dir.path().join(format!("batch-{user}"));
        fs::write(&file, batch).unwrap();
        let port = self.port.to_string();
        let file = file.display().to_string();
        let mut args = client_opts(key);
        args.extend(["-b".into(), file, "-P".into(), port]);
        args.push(format!("{user}@127.0.0.1"));
        self.client("sftp", &args)
    }

    /// `ssh user@127.0.0.1 COMMAND` (no terminal, stdin closed).
    pub fn ssh(&self, user: &str, key: &Path, extra: &[&str]) -> Output {
        let mut args = client_opts(key);
        args.extend(["-p".into(), self.port.to_string()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(format!("{user}@127.0.0.1"));
        args.push("id".into());
        self.client("ssh", &args)
    }

    fn client(&self, program: &str, args: &[String]) -> Output {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let out = Command::new("timeout")
                .arg("30")
                .arg(program)
                .args(args)
                .stdin(Stdio::null())
                .output()
                .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
            let o = Output {
                status: out.status,
                code: out.status.code(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            };
            if o.stderr.contains("Connection refused") && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            eprintln!("$ {program} {}\n{}", args.join(" "), o.all());
            return o;
        }
    }
}

/// Options for a non-interactive client that trusts this test's host key
/// and offers only `key`.
fn client_opts(key: &Path) -> Vec<String> {
    [
        "-i",
        &key.display().to_string(),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "ConnectTimeout=10",
        "-o",
        "LogLevel=ERROR",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// An ed25519 key pair at `path` and `path.pub`, without a passphrase.
pub fn keygen(path: &Path, comment: &str) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .status()
        .expect("run ssh-keygen");
    assert!(st.success(), "ssh-keygen failed");
}

impl Drop for SitesSshd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            super::kill_group(c.id() as i32);
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
