//! The client against the server state machine over real loopback TCP.

mod common;

use std::net::{TcpListener, TcpStream};

use corral_fastcgi::{protocol_status, Client, Request, Role};

fn connect() -> (Client<TcpStream>, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        common::serve(stream);
    });
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    (Client::new(stream), server)
}

#[test]
fn keep_conn_requests_get_values_and_big_bodies() {
    let (mut client, server) = connect();

    let values = client
        .get_values(&["FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS"])
        .unwrap();
    assert_eq!(values.get_str("FCGI_MPXS_CONNS"), Some("0"));
    assert_eq!(values.get_str("FCGI_MAX_CONNS"), Some("1"));

    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    for id in 1..=3u16 {
        let req = Request::php("/srv/www/index.php")
            .id(id)
            .keep_conn(true)
            .method("POST")
            .query("x=1")
            .header("User-Agent", "corral")
            .body("application/octet-stream", big.clone());
        let response = client.request(&req).unwrap();
        assert_eq!(response.protocol_status, protocol_status::REQUEST_COMPLETE);
        assert_eq!(response.app_status, 0);
        assert_eq!(response.stderr, b"a warning");
        let cgi = response.cgi().unwrap();
        assert_eq!(cgi.status, 200);
        assert_eq!(cgi.header("Content-Type"), Some("text/plain"));
        let split = cgi.body.windows(3).position(|w| w == b"--\n").unwrap();
        let env = String::from_utf8_lossy(&cgi.body[..split]);
        assert!(env.contains("REQUEST_URI=/index.php?x=1\n"), "{env}");
        assert!(env.contains("HTTP_USER_AGENT=corral\n"), "{env}");
        assert_eq!(&cgi.body[split + 3..], big.as_slice());
    }

    // Unknown role is refused; the connection stays usable with keep_conn.
    let response = client
        .request(
            &Request::php("/x.php")
                .id(9)
                .keep_conn(true)
                .role(Role::Authorizer),
        )
        .unwrap();
    assert_eq!(response.protocol_status, protocol_status::UNKNOWN_ROLE);
    assert!(response.stdout.is_empty());

    // Without keep_conn the server closes after the response.
    let response = client.request(&Request::php("/x.php").id(10)).unwrap();
    assert_eq!(response.cgi().unwrap().status, 200);
    server.join().unwrap();
    let err = client.request(&Request::php("/x.php").id(11)).unwrap_err();
    assert!(matches!(
        err.kind(),
        std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::ConnectionReset
    ));
}

#[test]
fn truncated_server_output_is_an_error() {
    // A "server" that answers half a record and hangs up.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = stream.read(&mut buf);
        stream.write_all(&[1, 6, 0, 1, 0, 10, 0, 0, b'x']).unwrap();
    });
    let mut client = Client::new(TcpStream::connect(addr).unwrap());
    let err = client.request(&Request::php("/x.php")).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    server.join().unwrap();
}
