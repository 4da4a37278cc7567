//! What native code in a tenant's worker could do to the descriptors it
//! shares with the master, done here from outside with pidfd_getfd(2) as
//! root (the same access a worker has to its own descriptors): the pool
//! must come back by itself, and the master must stay up.

mod common;

use common::*;
use std::time::{Duration, Instant};

/// A duplicate of descriptor `fd` of process `pid`, as that process holds
/// it (same open file description).
fn grab_fd(pid: i32, fd: i32) -> i32 {
    // SAFETY: plain syscalls with integer arguments; results are checked.
    unsafe {
        let pidfd = libc::syscall(libc::SYS_pidfd_open, pid, 0) as i32;
        assert!(
            pidfd >= 0,
            "pidfd_open({pid}): {}",
            std::io::Error::last_os_error()
        );
        let got = libc::syscall(libc::SYS_pidfd_getfd, pidfd, fd, 0) as i32;
        let err = std::io::Error::last_os_error();
        libc::close(pidfd);
        assert!(got >= 0, "pidfd_getfd({pid}, {fd}): {err}");
        got
    }
}

/// Shut down the pool's listening socket through a worker's descriptor 3
/// (corral) or whatever descriptor the worker listens on (php-fpm: found
/// by its socket path in /proc).
fn shut_down_listener(worker: i32, listen_fd: i32) {
    let fd = grab_fd(worker, listen_fd);
    // SAFETY: `fd` is ours, from pidfd_getfd.
    unsafe {
        assert_eq!(libc::shutdown(fd, libc::SHUT_RDWR), 0);
        libc::close(fd);
    }
}

/// The descriptor number a php-fpm worker holds its listening socket at:
/// the one whose socket inode /proc/net/unix lists as listening
/// (`__SO_ACCEPTCON`) on the pool's path. An idle worker may still hold the
/// connection it just answered, so "the lowest socket" is not enough.
fn listening_fd_of(pid: i32, path: &std::path::Path) -> i32 {
    let table = std::fs::read_to_string("/proc/net/unix").unwrap();
    let inode = table
        .lines()
        .skip(1)
        .find_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let listening = cols.get(3).is_some_and(|f| f.ends_with("10000"));
            (listening && cols.get(7) == Some(&path.to_str().unwrap())).then(|| cols[6].to_string())
        })
        .expect("the pool's socket is listening");
    let want = format!("socket:[{inode}]");
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .find(|e| std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy() == want))
        .and_then(|e| e.file_name().to_string_lossy().parse().ok())
        .expect("the worker holds the listening socket")
}

/// Seconds until a request succeeds again, or None within `limit`.
fn recovery(s: &Server, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if s.try_request(&Request::php(&s.script("info.php")))
            .is_ok_and(|r| r.status == 200)
        {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn a_listening_socket_shut_down_by_a_worker_comes_back() {
    if !require_root() {
        return;
    }
    let conf = pool_conf("pm.max_children = 2");
    let mut s = Corral::start(&conf);
    assert_eq!(s.get("info.php", "").status, 200);
    let worker = s.worker_pids()[0];
    shut_down_listener(worker, 3);
    let took = recovery(&s, Duration::from_secs(3));
    assert!(
        took.is_some(),
        "the pool did not serve again within 3 s after its socket was shut down\nlog:\n{}",
        s.log.text()
    );
    assert!(s.is_running(), "the master must stay up");
    assert!(
        s.log_contains("was shut down by a process holding it"),
        "{}",
        s.log.text()
    );

    // The reference, for the record: php-fpm has no way back but a reload.
    let fpm_took = require_php_fpm().map(|_| {
        let f = PhpFpm::start(&conf);
        assert_eq!(f.get("info.php", "").status, 200);
        let w = f.worker_pids()[0];
        shut_down_listener(w, listening_fd_of(w, &f.dir().join("www.sock")));
        recovery(&f, Duration::from_secs(3))
    });
    eprintln!(
        "socket shut down by a worker: corral serves again after {:?}; php-fpm 8.2: {}",
        took.unwrap(),
        match fpm_took {
            Some(Some(t)) => format!("after {t:?}"),
            Some(None) => "not within 3 s".into(),
            None => "not installed".into(),
        }
    );
}

#[test]
fn the_scoreboard_cannot_be_truncated_by_anyone() {
    if !require_root() {
        return;
    }
    let mut s = Corral::start(&pool_conf("pm.max_children = 2"));
    assert_eq!(s.get("info.php", "").status, 200);
    // The workers hold no descriptor for it at all.
    for w in s.worker_pids() {
        for e in std::fs::read_dir(format!("/proc/{w}/fd"))
            .unwrap()
            .flatten()
        {
            let target = std::fs::read_link(e.path()).unwrap_or_default();
            assert!(
                !target.to_string_lossy().contains("memfd:corral"),
                "worker {w} holds {} -> {}",
                e.path().display(),
                target.display()
            );
        }
    }
    // Even root, holding the master's own descriptor, cannot resize it.
    let board = std::fs::read_dir(format!("/proc/{}/fd", s.pid()))
        .unwrap()
        .flatten()
        .find(|e| {
            std::fs::read_link(e.path())
                .is_ok_and(|t| t.to_string_lossy().contains("memfd:corral-www"))
        })
        .expect("the master holds the pool's scoreboard");
    let n: i32 = board.file_name().to_string_lossy().parse().unwrap();
    let fd = grab_fd(s.pid(), n);
    // SAFETY: `fd` is ours, from pidfd_getfd.
    let (shrink, grow) = unsafe {
        let a = libc::ftruncate(fd, 0);
        let b = libc::ftruncate(fd, 1 << 30);
        libc::close(fd);
        (a, b)
    };
    assert_eq!(
        (shrink, grow),
        (-1, -1),
        "a sealed scoreboard cannot be resized"
    );
    // The master reads it on every status request and every second.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(s.is_running(), "master died\n{}", s.log.text());
    let r = s.get("fpm_status.php", "");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.body.contains("www"),
        "fpm_get_status() reads the board: {}",
        r.body
    );
}
