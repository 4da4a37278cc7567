//! Listening sockets created by the master (before privileges drop) and the
//! fd passing between master, prototype and workers.

use std::io::IoSlice;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::sys::socket::{
    self, bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, ControlMessage,
    ControlMessageOwned, MsgFlags, SockFlag, SockType, SockaddrStorage, UnixAddr,
};

use crate::{Result, SysError};

fn backlog(n: i32) -> Backlog {
    // php-fpm passes -1 on Linux: the kernel caps it at somaxconn.
    Backlog::new(if n < 0 { i32::MAX } else { n }).unwrap_or(Backlog::MAXCONN)
}

/// Is something already answering on this unix socket path?
pub fn unix_in_use(path: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(path).is_ok()
}

/// Bind and listen on a unix socket with `mode`, created under a umask so
/// it is never briefly wider than asked.
pub fn listen_unix(path: &Path, mode: u32, backlog_n: i32) -> Result<OwnedFd> {
    let what = || {
        format!(
            "unable to bind listening socket for address '{}'",
            path.display()
        )
    };
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| SysError::errno(what(), e))?;
    let _ = std::fs::remove_file(path);
    let addr = UnixAddr::new(path).map_err(|e| SysError::errno(what(), e))?;
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o777 & !mode));
    let res = bind(fd.as_raw_fd(), &addr);
    nix::sys::stat::umask(old);
    res.map_err(|e| SysError::errno(what(), e))?;
    listen(&fd, backlog(backlog_n)).map_err(|e| SysError::errno(what(), e))?;
    Ok(fd)
}

/// Bind and listen on one TCP address. `dual_stack` turns IPV6_V6ONLY off
/// on an IPv6 socket, so `[::]` takes IPv4 clients too (as mapped
/// addresses) whatever net.ipv6.bindv6only says.
pub fn listen_tcp(addr: SocketAddr, dual_stack: bool, backlog_n: i32) -> std::io::Result<OwnedFd> {
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    let _ = setsockopt(&fd, sockopt::ReuseAddr, &true);
    if addr.is_ipv6() && dual_stack {
        let _ = setsockopt(&fd, sockopt::Ipv6V6Only, &false);
    }
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    listen(&fd, backlog(backlog_n))?;
    Ok(fd)
}

/// Whether a listening socket still takes connections. Any process that
/// holds it can `shutdown(2)` it, which kills it for every holder at once
/// (a TCP listener goes to CLOSE, a unix one refuses connects); poll then
/// reports a hang-up on it.
pub fn listener_alive(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN | libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout; poll only reads `fd`.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    let dead = libc::POLLHUP | libc::POLLRDHUP | libc::POLLERR | libc::POLLNVAL;
    n <= 0 || p.revents & dead == 0
}

/// Wait up to `timeout` for `fd` to be readable, through interruptions
/// by signals; false once the time is up.
pub fn wait_readable_for(fd: RawFd, timeout: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // Rounded up: a wait is never shorter than asked.
        let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd; poll only reads `fd`.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        if n > 0 {
            return true;
        }
        let interrupted =
            n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted;
        if !interrupted || left.is_zero() {
            return false;
        }
    }
}

/// Wait up to `timeout_ms` for `fd` to be readable (EINTR ends the wait).
pub fn wait_readable(fd: RawFd, timeout_ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd; poll only reads `fd`.
    unsafe { libc::poll(&mut p, 1, timeout_ms) > 0 }
}

/// Close a served connection without losing the end of its response.
/// Our side is shut for writing first and whatever the web server sent
/// that was not read is drained: a TCP socket closed with unread bytes in
/// it sends RST, which can cost the client the response it has not read
/// yet (php-fpm's `fcgi_close` does the same, waiting without limit).
///
/// With `await_peer`, the worker then also waits, up to that long, for the
/// web server to close its end. That wait is a sleep at a request
/// boundary, handing the CPU to the web server that is about to read the
/// response; see `corral_worker::pacing` for when a worker wants it.
/// Returns whether the wait slept.
pub fn close_served(fd: OwnedFd, await_peer: Option<std::time::Duration>) -> bool {
    let raw = fd.as_raw_fd();
    let _ = socket::shutdown(raw, socket::Shutdown::Write);
    if !drain(raw) {
        return false;
    }
    let Some(limit) = await_peer else {
        return false;
    };
    if wait_readable_for(raw, limit) {
        drain(raw);
    }
    true
}

/// Read and discard what `raw` holds, without waiting. True when the peer
/// still has its end open (the read would block); false at end of file or
/// on an error.
fn drain(raw: RawFd) -> bool {
    let mut sink = [0u8; 256];
    loop {
        // SAFETY: `sink` is a valid buffer of its length; the caller keeps
        // `raw` open for the call.
        let n = unsafe {
            libc::recv(
                raw,
                sink.as_mut_ptr().cast(),
                sink.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n > 0 {
            continue;
        }
        return n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock;
    }
}

/// The peer of an accepted connection: `None` for unix sockets.
pub fn peer_ip(fd: RawFd) -> Option<IpAddr> {
    let ss: SockaddrStorage = socket::getpeername(fd).ok()?;
    if let Some(v4) = ss.as_sockaddr_in() {
        return Some(IpAddr::V4(v4.ip()));
    }
    ss.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
}

/// accept(2) on a blocking listener. EINTR is returned to the caller, who
/// may have a quit flag to look at.
pub fn accept(listener: RawFd) -> std::io::Result<OwnedFd> {
    let fd = socket::accept4(listener, SockFlag::SOCK_CLOEXEC).map_err(std::io::Error::from)?;
    // SAFETY: accept4 just returned this fd to us; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Set the listening socket's blocking mode.
pub fn set_nonblocking(fd: RawFd, on: bool) -> Result<()> {
    let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL)
        .map_err(|e| SysError::errno("fcntl", e))?;
    let mut flags = nix::fcntl::OFlag::from_bits_truncate(flags);
    flags.set(nix::fcntl::OFlag::O_NONBLOCK, on);
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(flags))
        .map_err(|e| SysError::errno("fcntl", e))?;
    Ok(())
}

/// A SOCK_SEQPACKET pair: message boundaries for free on the control channel.
pub fn seqpacket_pair() -> Result<(OwnedFd, OwnedFd)> {
    socket::socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| SysError::errno("socketpair", e))
}

/// Send one message with file descriptors attached.
pub fn send_with_fds(sock: RawFd, msg: &[u8], fds: &[RawFd]) -> Result<()> {
    let iov = [IoSlice::new(msg)];
    let cmsg = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsg };
    socket::sendmsg::<()>(sock, &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None)
        .map_err(|e| SysError::errno("sendmsg", e))?;
    Ok(())
}

/// Receive one message (up to `buf.len()` bytes) and up to 4 fds. Returns
/// the byte count (0 = peer closed) and the fds, which we now own.
/// At most 8 descriptors are taken (the zygote's launch carries 7); the
/// kernel closes any beyond that, and the caller refuses the message.
pub fn recv_with_fds(sock: RawFd, buf: &mut [u8]) -> std::io::Result<(usize, Vec<OwnedFd>)> {
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([RawFd; 8]);
    let msg = socket::recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(std::io::Error::from)?;
    let mut fds = Vec::new();
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::ScmRights(list) = c {
                for fd in list {
                    // SAFETY: the kernel installed these fds for us just now.
                    fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
    }
    Ok((msg.bytes, fds))
}

/// Give a unix socket POSIX ACL entries granting read/write to the listed
/// users and groups (listen.acl_users / listen.acl_groups), by writing the
/// `system.posix_acl_access` attribute in the kernel's format.
pub fn set_socket_acl(path: &Path, mode: u32, uids: &[u32], gids: &[u32]) -> Result<()> {
    const VERSION: u32 = 2;
    const USER_OBJ: u16 = 0x01;
    const USER: u16 = 0x02;
    const GROUP_OBJ: u16 = 0x04;
    const GROUP: u16 = 0x08;
    const MASK: u16 = 0x10;
    const OTHER: u16 = 0x20;
    const UNDEFINED: u32 = u32::MAX;
    let mut entries: Vec<(u16, u16, u32)> = vec![(USER_OBJ, ((mode >> 6) & 7) as u16, UNDEFINED)];
    let mut u = uids.to_vec();
    u.sort_unstable();
    u.dedup();
    entries.extend(u.iter().map(|&id| (USER, 6, id)));
    entries.push((GROUP_OBJ, ((mode >> 3) & 7) as u16, UNDEFINED));
    let mut g = gids.to_vec();
    g.sort_unstable();
    g.dedup();
    entries.extend(g.iter().map(|&id| (GROUP, 6, id)));
    entries.push((MASK, 6 | ((mode >> 3) & 7) as u16, UNDEFINED));
    entries.push((OTHER, (mode & 7) as u16, UNDEFINED));
    let mut blob = VERSION.to_le_bytes().to_vec();
    for (tag, perm, id) in entries {
        blob.extend_from_slice(&tag.to_le_bytes());
        blob.extend_from_slice(&perm.to_le_bytes());
        blob.extend_from_slice(&id.to_le_bytes());
    }
    let cpath = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| SysError::new("acl path", std::io::ErrorKind::InvalidInput))?;
    // SAFETY: valid NUL-terminated path and attribute name; blob outlives the call.
    let rc = unsafe {
        libc::setxattr(
            cpath.as_ptr(),
            c"system.posix_acl_access".as_ptr(),
            blob.as_ptr() as *const libc::c_void,
            blob.len(),
            0,
        )
    };
    if rc != 0 {
        return Err(SysError::new(
            format!("failed to set ACL on '{}'", path.display()),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// A TCP listener's accept queue: (current length, limit), from TCP_INFO as
/// php-fpm reads it. `None` for unix sockets.
pub fn tcp_listen_queue(fd: RawFd) -> Option<(u64, u64)> {
    // SAFETY: tcp_info is plain old data; zero is a valid value for it.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the buffer and its length describe `info`, which outlives the call.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            &mut info as *mut libc::tcp_info as *mut libc::c_void,
            &mut len,
        )
    };
    if rc != 0 {
        return None;
    }
    Some((info.tcpi_unacked as u64, info.tcpi_sacked as u64))
}

/// Is this (listening) socket TCP? Decided once per worker so that unix
/// socket connections skip getpeername() on every accept.
pub fn is_inet(fd: RawFd) -> bool {
    match socket::getsockname::<SockaddrStorage>(fd) {
        Ok(ss) => ss.as_sockaddr_in().is_some() || ss.as_sockaddr_in6().is_some(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::time::{Duration, Instant};

    #[test]
    fn the_peer_sees_end_of_file_and_unread_bytes_are_drained() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        theirs.write_all(b"unread request bytes").unwrap();
        let waited = close_served(OwnedFd::from(ours), None);
        assert!(!waited, "no wait was asked for");
        let mut rest = Vec::new();
        theirs.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    }

    #[test]
    fn a_pause_ends_when_the_peer_closes() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let closer = std::thread::spawn(move || {
            let mut theirs = theirs;
            let mut eof = Vec::new();
            // Our shutdown reaches the peer as end of file before we close.
            theirs.read_to_end(&mut eof).unwrap();
            std::thread::sleep(Duration::from_millis(50));
        });
        let began = Instant::now();
        assert!(close_served(
            OwnedFd::from(ours),
            Some(Duration::from_secs(10))
        ));
        let took = began.elapsed();
        closer.join().unwrap();
        assert!(
            took >= Duration::from_millis(50),
            "returned before the peer closed: {took:?}"
        );
        assert!(
            took < Duration::from_secs(10),
            "waited out the limit: {took:?}"
        );
    }

    #[test]
    fn a_pause_is_bounded_when_the_peer_never_closes() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let began = Instant::now();
        assert!(close_served(
            OwnedFd::from(ours),
            Some(Duration::from_millis(100))
        ));
        assert!(began.elapsed() >= Duration::from_millis(100));
        drop(theirs);
    }

    #[test]
    fn no_pause_when_the_peer_is_already_gone() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        drop(theirs);
        assert!(!close_served(
            OwnedFd::from(ours),
            Some(Duration::from_secs(10))
        ));
    }
}
