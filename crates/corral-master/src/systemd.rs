//! sd_notify without libsystemd: READY/RELOADING/STOPPING, a STATUS line in
//! php-fpm's words, and WATCHDOG pings, sent as datagrams to
//! $NOTIFY_SOCKET. Without that variable (no systemd, as in CI) every call
//! is a no-op.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

pub struct Notifier {
    socket: Option<(UnixDatagram, std::os::unix::net::SocketAddr)>,
    /// From WATCHDOG_USEC: ping at half of it.
    pub watchdog: Option<Duration>,
}

impl Notifier {
    pub fn from_env() -> Notifier {
        let socket = std::env::var_os("NOTIFY_SOCKET").and_then(|path| {
            let path = path.to_string_lossy().into_owned();
            let addr = if let Some(name) = path.strip_prefix('@') {
                use std::os::linux::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).ok()?
            } else {
                std::os::unix::net::SocketAddr::from_pathname(&path).ok()?
            };
            let sock = UnixDatagram::unbound().ok()?;
            Some((sock, addr))
        });
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|&us| us > 0)
            .map(|us| Duration::from_micros(us / 2));
        // Children must not talk to systemd in our name.
        std::env::remove_var("NOTIFY_SOCKET");
        std::env::remove_var("WATCHDOG_USEC");
        std::env::remove_var("WATCHDOG_PID");
        Notifier { socket, watchdog }
    }

    pub fn enabled(&self) -> bool {
        self.socket.is_some()
    }

    pub fn send(&self, msg: &str) {
        if let Some((sock, addr)) = &self.socket {
            let _ = sock.send_to_addr(msg.as_bytes(), addr);
        }
    }
}

/// php-fpm's STATUS= text.
pub fn status_line(active: u64, idle: u64, requests: u64, slow: u64, per_sec: f64) -> String {
    format!("STATUS=Processes active: {active}, idle: {idle}, Requests: {requests}, slow: {slow}, Traffic: {per_sec:.2}req/sec")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifies_a_listening_socket() {
        let dir = std::env::temp_dir().join(format!("corral-notify-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        let addr = std::os::unix::net::SocketAddr::from_pathname(&path).unwrap();
        let n = Notifier {
            socket: Some((UnixDatagram::unbound().unwrap(), addr)),
            watchdog: None,
        };
        n.send("READY=1");
        let mut buf = [0u8; 64];
        let len = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");
        assert_eq!(
            status_line(1, 2, 3, 0, 5.0),
            "STATUS=Processes active: 1, idle: 2, Requests: 3, slow: 0, Traffic: 5.00req/sec"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
