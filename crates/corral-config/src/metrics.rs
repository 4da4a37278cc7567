//! `corral.metrics_listen`: where the master serves Prometheus metrics
//! and the live dashboard. Off unless set; loopback unless
//! `corral.metrics_allow_remote = yes` says otherwise, because the page
//! names every pool and its load, which is no business of other hosts.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

const HINT: &str = "PORT, IP:PORT or [IPv6]:PORT, e.g. 127.0.0.1:9253";

/// The address as the master binds it: a port alone is loopback's, and
/// `localhost` is 127.0.0.1 (the master resolves no names).
pub(crate) fn parse_listen(v: &str) -> Result<SocketAddr, String> {
    let v = v.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return port(v).map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p));
    }
    if let Some(p) = v.strip_prefix("localhost:") {
        return port(p).map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p));
    }
    let addr: SocketAddr = v
        .parse()
        .map_err(|_| format!("'{v}' is not an address ({HINT})"))?;
    if addr.port() == 0 {
        return Err(format!("'{v}' needs a port other than 0 ({HINT})"));
    }
    Ok(addr)
}

fn port(v: &str) -> Result<u16, String> {
    match v.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("'{v}' is not a port (1..65535; {HINT})")),
    }
}

/// Only this host can reach the address.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    match addr.ip() {
        IpAddr::V4(ip) => ip.is_loopback(),
        IpAddr::V6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalised() {
        let p = |v| parse_listen(v).map(|a| a.to_string());
        assert_eq!(p("9253").unwrap(), "127.0.0.1:9253");
        assert_eq!(p("localhost:9253").unwrap(), "127.0.0.1:9253");
        assert_eq!(p("127.0.0.2:80").unwrap(), "127.0.0.2:80");
        assert_eq!(p("[::1]:9253").unwrap(), "[::1]:9253");
        assert_eq!(p("0.0.0.0:9253").unwrap(), "0.0.0.0:9253");
        for bad in [
            "",
            "0",
            "70000",
            "example.com:9253",
            "127.0.0.1",
            "127.0.0.1:0",
            "::1",
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn loopback_is_recognised() {
        let l = |v| is_loopback(&parse_listen(v).unwrap());
        assert!(l("127.0.0.1:1") && l("127.9.9.9:1") && l("[::1]:1") && l("[::ffff:127.0.0.1]:1"));
        assert!(!l("0.0.0.0:1") && !l("[::]:1") && !l("192.0.2.1:1"));
    }
}
