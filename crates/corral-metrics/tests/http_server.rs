//! The metrics server against hostile and clumsy clients, over real
//! loopback sockets. The server is driven the way the master drives it
//! (ready descriptors, then expiry), here from a thread that polls by
//! trying every descriptor.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use corral_metrics::http::{Limits, Request, Response, Server};

struct Running {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn start(limits: Limits) -> Running {
    let mut server = Server::bind("127.0.0.1:0".parse().unwrap(), limits).unwrap();
    let addr = server.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        let mut handler = |req: &Request| match req.path.as_str() {
            "/big" => Response::new(200, "text/plain", vec![b'x'; 8 << 20]),
            _ => corral_metrics::routes::respond(req, true, &mut |_| {
                corral_metrics::Snapshot::default()
            }),
        };
        while !flag.load(Ordering::SeqCst) {
            for (fd, _) in server.watch() {
                server.ready(fd, &mut handler);
            }
            server.expire(Instant::now());
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    Running {
        addr,
        stop,
        thread: Some(thread),
    }
}

fn limits() -> Limits {
    Limits {
        max_connections: 8,
        max_request: 1024,
        timeout: Duration::from_millis(1500),
        accepts_per_turn: 4,
    }
}

/// Send `raw`, read the whole answer.
fn exchange(addr: SocketAddr, raw: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(raw).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn get(addr: SocketAddr, path: &str) -> String {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(),
    )
}

#[test]
fn pages_are_served() {
    let r = start(limits());
    let metrics = get(r.addr, "/metrics");
    assert!(metrics.starts_with("HTTP/1.1 200 OK\r\n"), "{metrics}");
    assert!(metrics.contains("text/plain; version=0.0.4"), "{metrics}");
    assert!(metrics.contains("corral_build_info"), "{metrics}");
    let om = exchange(
        r.addr,
        b"GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text; version=1.0.0\r\n\r\n",
    );
    assert!(
        om.contains("application/openmetrics-text") && om.ends_with("# EOF\n"),
        "{om}"
    );
    let page = get(r.addr, "/");
    assert!(page.contains("<title>corral</title>"), "{page}");
    assert!(get(r.addr, "/dashboard.js").contains("api/snapshot"));
    assert!(get(r.addr, "/api/snapshot").contains("\"pools\":[]"));
    let head = exchange(r.addr, b"HEAD /metrics HTTP/1.0\r\n\r\n");
    assert!(
        head.starts_with("HTTP/1.1 200") && head.ends_with("\r\n\r\n"),
        "{head}"
    );
    assert!(get(r.addr, "/nope").starts_with("HTTP/1.1 404"));
}

#[test]
fn bad_requests_get_clear_answers() {
    let r = start(limits());
    let cases: [(&[u8], &str); 5] = [
        (b"POST /metrics HTTP/1.1\r\n\r\n", "405"),
        (
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
            "400",
        ),
        (
            b"GET /metrics HTTP/1.1\r\nHost: rebound.example:9253\r\n\r\n",
            "421",
        ),
        (b"GET / HTTP/1.1\r\nbroken header\r\n\r\n", "400"),
        (b"GET /metrics SPDY/3\r\n\r\n", "400"),
    ];
    for (raw, status) in cases {
        let got = exchange(r.addr, raw);
        assert!(
            got.starts_with(&format!("HTTP/1.1 {status}")),
            "{raw:?}: {got}"
        );
    }
    let mut huge = b"GET /metrics HTTP/1.1\r\nX-Pad: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 64 * 1024));
    let mut s = TcpStream::connect(r.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(&huge);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(
        String::from_utf8_lossy(&out).starts_with("HTTP/1.1 431"),
        "{out:?}"
    );
    assert!(
        get(r.addr, "/metrics").starts_with("HTTP/1.1 200"),
        "still serving"
    );
}

#[test]
fn slow_clients_cannot_lock_out_a_scraper() {
    let r = start(limits());
    // Twice as many half-sent requests as there are connection slots.
    let loris: Vec<TcpStream> = (0..16)
        .map(|_| {
            let mut s = TcpStream::connect(r.addr).unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nX-Slow: ").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let got = get(r.addr, "/metrics");
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    drop(loris);
}

#[test]
fn silent_connections_time_out() {
    let r = start(limits());
    let mut s = TcpStream::connect(r.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(1000) && waited < Duration::from_secs(15),
        "{waited:?}"
    );
}

#[test]
fn a_client_that_never_reads_does_not_stall_others() {
    let r = start(limits());
    // Asks for 8 MiB and reads none of it: the server's writes stop at
    // the socket buffer, and it goes on serving others meanwhile.
    let mut stuck = TcpStream::connect(r.addr).unwrap();
    stuck.write_all(b"GET /big HTTP/1.1\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    for _ in 0..5 {
        assert!(get(r.addr, "/metrics").starts_with("HTTP/1.1 200"));
    }
    assert!(t.elapsed() < Duration::from_secs(5));
    // The stuck one is dropped at its deadline: reading it now ends
    // before the 8 MiB.
    std::thread::sleep(Duration::from_millis(1600));
    stuck
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut got = Vec::new();
    let _ = stuck.read_to_end(&mut got);
    assert!(got.len() < 8 << 20, "{} bytes", got.len());
}

#[test]
fn a_connection_flood_is_bounded() {
    let r = start(limits());
    let flood: Vec<TcpStream> = (0..200)
        .filter_map(|_| TcpStream::connect(r.addr).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let got = get(r.addr, "/metrics");
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    drop(flood);
}
