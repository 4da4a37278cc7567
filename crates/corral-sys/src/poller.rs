//! An epoll set with tokens: what a worker waits on between requests (the
//! pool's socket, shared by every worker of the pool, and its own kept
//! connections).

use std::os::fd::BorrowedFd;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

use crate::{Result, SysError};

/// An epoll instance; each file in it carries a caller-chosen token.
pub struct Poller(Epoll);

impl Poller {
    pub fn new() -> Result<Poller> {
        Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map(Poller)
            .map_err(|e| SysError::errno("epoll_create1", e))
    }

    /// Add a socket that several processes wait on (a pool's listening
    /// socket) with EPOLLEXCLUSIVE: a connection wakes one of them, not
    /// all.
    pub fn add_shared(&self, fd: BorrowedFd<'_>, token: u64) -> Result<()> {
        let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLEXCLUSIVE;
        self.0
            .add(fd, EpollEvent::new(flags, token))
            .map_err(|e| SysError::errno("epoll_ctl(ADD, EPOLLEXCLUSIVE)", e))
    }

    /// Add a socket that several processes wait on for one wake-up only:
    /// after it is reported once, it is not reported again before
    /// [`Poller::rearm`].
    pub fn add_once(&self, fd: BorrowedFd<'_>, token: u64) -> Result<()> {
        let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLONESHOT;
        self.0
            .add(fd, EpollEvent::new(flags, token))
            .map_err(|e| SysError::errno("epoll_ctl(ADD, EPOLLONESHOT)", e))
    }

    /// Report an `add_once` socket again.
    pub fn rearm(&self, fd: BorrowedFd<'_>, token: u64) -> Result<()> {
        let mut event = EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLONESHOT, token);
        self.0
            .modify(fd, &mut event)
            .map_err(|e| SysError::errno("epoll_ctl(MOD)", e))
    }

    /// Add a file to wait on for reading.
    pub fn add(&self, fd: BorrowedFd<'_>, token: u64) -> Result<()> {
        self.0
            .add(fd, EpollEvent::new(EpollFlags::EPOLLIN, token))
            .map_err(|e| SysError::errno("epoll_ctl(ADD)", e))
    }

    /// Remove a file, however it was added.
    pub fn remove(&self, fd: BorrowedFd<'_>) {
        let _ = self.0.delete(fd);
    }

    /// Wait up to `timeout_ms` for files to be readable; their tokens go
    /// to `tokens`, and how many is returned (0 on timeout or a signal).
    pub fn wait(&self, tokens: &mut [u64], timeout_ms: u16) -> usize {
        const MAX: usize = 16;
        let mut events = [EpollEvent::empty(); MAX];
        let room = tokens.len().min(MAX);
        let n = self
            .0
            .wait(&mut events[..room], EpollTimeout::from(timeout_ms))
            .unwrap_or(0);
        for (t, e) in tokens.iter_mut().zip(&events[..n]) {
            *t = e.data();
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn tokens_name_the_readable_files() {
        let p = Poller::new().unwrap();
        let (a, mut a_peer) = UnixStream::pair().unwrap();
        let (b, _b_peer) = UnixStream::pair().unwrap();
        p.add(a.as_fd(), 7).unwrap();
        p.add(b.as_fd(), 9).unwrap();
        let mut tokens = [0u64; 4];
        assert_eq!(p.wait(&mut tokens, 0), 0, "nothing to read yet");
        a_peer.write_all(b"x").unwrap();
        assert_eq!(p.wait(&mut tokens, 1000), 1);
        assert_eq!(tokens[0], 7);
        p.remove(a.as_fd());
        assert_eq!(p.wait(&mut tokens, 0), 0, "a removed file is not reported");
    }

    #[test]
    fn a_once_socket_is_reported_once_until_rearmed() {
        let p = Poller::new().unwrap();
        let (a, mut a_peer) = UnixStream::pair().unwrap();
        p.add_once(a.as_fd(), 3).unwrap();
        a_peer.write_all(b"x").unwrap();
        let mut tokens = [0u64; 4];
        assert_eq!(p.wait(&mut tokens, 1000), 1);
        assert_eq!(
            p.wait(&mut tokens, 0),
            0,
            "still readable, but reported once"
        );
        p.rearm(a.as_fd(), 3).unwrap();
        assert_eq!(p.wait(&mut tokens, 0), 1);
        p.remove(a.as_fd());
        assert_eq!(p.wait(&mut tokens, 0), 0);
        drop(a);
    }
}
