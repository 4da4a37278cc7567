//! A worker: a fork of the prototype that accepts on the pool's socket and
//! serves requests until max_requests, SIGQUIT, or its parent's death.

use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use corral_php::{Engine, LogLevel};
use corral_status::SlotWriter;
use corral_sys::shm::SharedWords;

use crate::connection::{self, ConnEnd};
use crate::log::WorkerLog;
use crate::pacing::Pacer;
use crate::waiter::{Next, Waiter};
use crate::PoolRuntime;

/// php-fpm's listen.allowed_clients: the list is split on ',' without
/// trimming, and an entry that is not an address admits nobody. Addresses
/// compare as [`client_ip`] names them, so `127.0.0.1` admits an IPv4
/// client of a dual-stack `[::]` socket.
pub struct AllowedClients(Option<Vec<IpAddr>>);

impl AllowedClients {
    pub fn parse(list: Option<&[String]>, log: &WorkerLog) -> AllowedClients {
        let Some(list) = list else {
            return AllowedClients(None);
        };
        let mut ips = Vec::new();
        for item in list {
            match item.parse::<IpAddr>() {
                Ok(ip) => ips.push(ip.to_canonical()),
                Err(_) => log.line(
                    LogLevel::Error,
                    format!("Wrong IP address '{item}' in listen.allowed_clients").as_bytes(),
                ),
            }
        }
        if ips.is_empty() {
            log.line(LogLevel::Error, b"There are no allowed addresses");
        }
        AllowedClients(Some(ips))
    }

    /// Unix-socket peers (None) are always admitted, as in php-fpm.
    pub fn admits(&self, peer: Option<IpAddr>) -> bool {
        match (&self.0, peer) {
            (None, _) | (_, None) => true,
            (Some(list), Some(ip)) => list.contains(&ip),
        }
    }
}

/// The client as php-fpm names it (`fcgi_get_last_client_ip`): an IPv4
/// client of a dual-stack `[::]` socket arrives as `::ffff:a.b.c.d` and is
/// `a.b.c.d` for listen.allowed_clients, the access log and the error log.
fn client_ip(sock: RawFd) -> Option<IpAddr> {
    corral_sys::socket::peer_ip(sock).map(|ip| ip.to_canonical())
}

/// The scoreboards a worker sees: its pool's (where it writes its slot)
/// and, for a pm.status_listen pool, the parent's it reports.
pub struct Boards<'a> {
    pub own: Option<&'a SharedWords>,
    pub status: Option<(&'a str, &'a SharedWords)>,
}

/// The accept loop. Never returns: the worker leaves through `exit_now`.
pub fn run(
    engine: &Engine,
    pool: &PoolRuntime,
    listen: BorrowedFd<'_>,
    boards: &Boards,
    slot: usize,
    access_log: Option<std::fs::File>,
    at_accept: Option<std::os::fd::OwnedFd>,
) -> ! {
    let board = boards.own;
    let log = WorkerLog {
        min_level: pool.log_level,
    };
    let writer = board.and_then(|b| SlotWriter::new(b.words(), slot));
    if let Some(w) = &writer {
        w.init(std::process::id());
    }
    let allowed = AllowedClients::parse(pool.allowed_clients.as_deref(), &log);
    let access = access_log.filter(|_| pool.access_format.is_some());
    let waiter = match Waiter::new(listen) {
        Ok(w) => w,
        Err(e) => {
            log.line(LogLevel::Error, e.to_string().as_bytes());
            corral_sys::process::exit_now(1);
        }
    };
    let mut ctx = connection::WorkerCtx {
        waiter,
        cgi: connection::cgi_options(engine),
        buf: Vec::new(),
        reuse: connection::Reused::default(),
        engine,
        pool,
        slot: writer.as_ref(),
        access,
        served: 0,
        pacer: Pacer::new(crate::pacing::DEFAULT_BURST),
        log: &log,
        board: board.map(|b| b.words()),
        status: match boards.status {
            Some((name, b)) => Some((name, b.words())),
            None => board.map(|b| (pool.name.as_str(), b.words())),
        },
    };
    let inet = corral_sys::socket::is_inet(listen.as_raw_fd());
    // Tell the prototype we are at accept(): it forks the next worker only
    // then, so workers queue for connections in slot order.
    if let Some(fd) = at_accept {
        let _ = std::io::Write::write_all(&mut std::fs::File::from(fd), b"a");
    }
    loop {
        if corral_sys::signal::quit_requested() {
            corral_sys::process::exit_now(0);
        }
        let end = match ctx.waiter.next(&mut ctx.pacer) {
            Next::Fresh(sock) => {
                let peer = if inet {
                    client_ip(sock.as_raw_fd())
                } else {
                    None
                };
                if !allowed.admits(peer) {
                    let ip = peer.map(|p| p.to_string()).unwrap_or_default();
                    log.line(
                        LogLevel::Error,
                        format!("Connection disallowed: IP address '{ip}' has been dropped.")
                            .as_bytes(),
                    );
                    continue;
                }
                connection::serve(&mut ctx, sock, peer)
            }
            Next::Kept(kept) => connection::resume(&mut ctx, kept),
            Next::Nothing => continue,
            Next::Failed(e) => {
                log.line(LogLevel::Error, format!("accept() failed: {e}").as_bytes());
                std::thread::sleep(std::time::Duration::from_millis(100));
                continue;
            }
        };
        match end {
            ConnEnd::Closed => {}
            // One kept connection too many is closed (dropped) here.
            ConnEnd::Kept(kept) => {
                ctx.waiter.park(kept);
            }
            ConnEnd::ExitWorker => corral_sys::process::exit_now(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(list: &[&str]) -> AllowedClients {
        let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        AllowedClients::parse(
            Some(&list),
            &WorkerLog {
                min_level: LogLevel::Error,
            },
        )
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse::<IpAddr>().unwrap().to_canonical())
    }

    #[test]
    fn an_ipv4_client_of_a_dual_stack_socket_is_its_ipv4_address() {
        let v4 = allowed(&["127.0.0.1"]);
        assert!(v4.admits(ip("::ffff:127.0.0.1")));
        assert!(v4.admits(ip("127.0.0.1")));
        assert!(!v4.admits(ip("::1")));
        let v6 = allowed(&["::1"]);
        assert!(!v6.admits(ip("::ffff:127.0.0.1")));
        assert!(v6.admits(ip("::1")));
        assert!(!v6.admits(ip("::2")), "all 16 bytes count");
    }
}
