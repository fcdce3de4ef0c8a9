//! swift-proxy-server's HTTP behaviour: compared request by request with
//! Python Swift's proxy (same config, both on loopback), and our own
//! guarantees where Swift is weak (CL+TE, timeouts, max_clients, TLS).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use swift_tests::server::{Server, accepted, make_rings, proxy_conf};
use swift_tests::{Response, free_port, parse_response, raw_request, scratch, wait_until};

const SEC: Duration = Duration::from_secs(1);

fn current_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .expect("current user has a name")
}

fn send(addr: SocketAddr, req: &[u8]) -> Response {
    raw_request(addr, req, 10 * SEC).unwrap_or_else(|e| {
        panic!(
            "{e}: {:?}",
            String::from_utf8_lossy(&req[..req.len().min(80)])
        )
    })
}

/// What must match between Python's proxy and ours: the status line, the
/// header names in order (without Python's `Server`), and the body where
/// it is not ours to differ.
fn shape(r: &Response, with_body: bool) -> String {
    let names: Vec<&str> = r
        .headers
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| *k != "Server")
        .collect();
    let body = if with_body {
        r.body_str()
    } else {
        String::new()
    };
    format!("{} {} | {} | {body}", r.status, r.reason, names.join(", "))
}

#[test]
fn responses_match_python_swifts_proxy() {
    let dir = scratch();
    let py_dir = dir.path().join("py");
    let rs_dir = dir.path().join("rs");
    std::fs::create_dir_all(&py_dir).unwrap();
    std::fs::create_dir_all(&rs_dir).unwrap();
    make_rings(&py_dir);
    let (py_port, rs_port) = (free_port(), free_port());
    let py_conf = proxy_conf(
        &py_dir,
        py_port,
        &format!("workers = 1\nuser = {}", current_user()),
        None,
    );
    let rs_conf = proxy_conf(&rs_dir, rs_port, "workers = 1\nuser =", None);
    let mut py = Server::start_python("swift-proxy-server", &py_conf, py_port);
    let mut rs = Server::start("swift-proxy-server", &rs_conf, rs_port);

    let line = |n: usize| {
        format!(
            "GET /{} HTTP/1.1\r\nConnection: close\r\n\r\n",
            "a".repeat(n - 16)
        )
        .into_bytes()
    };
    let header = |n: usize| {
        format!(
            "GET / HTTP/1.1\r\nX: {}\r\nConnection: close\r\n\r\n",
            "b".repeat(n - 5)
        )
        .into_bytes()
    };
    let many = |n: usize| {
        format!(
            "GET / HTTP/1.1\r\n{}Connection: close\r\n\r\n",
            "X-A: 1\r\n".repeat(n)
        )
        .into_bytes()
    };
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        (
            "healthcheck",
            b"GET /healthcheck HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(),
            true,
        ),
        (
            "healthcheck any method",
            b"DELETE /healthcheck HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(),
            true,
        ),
        (
            "healthcheck HEAD",
            b"HEAD /healthcheck HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(),
            true,
        ),
        (
            "healthcheck HTTP/1.0",
            b"GET /healthcheck HTTP/1.0\r\n\r\n".to_vec(),
            true,
        ),
        (
            "healthcheck quoted",
            b"GET /health%63heck HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(),
            true,
        ),
        (
            "info",
            b"GET /info HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(),
            false,
        ),
        (
            "root",
            b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(),
            true,
        ),
        (
            "no account",
            b"GET /foo HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(),
            true,
        ),
        (
            "version only",
            b"GET /v1 HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(),
            true,
        ),
        (
            "bad version",
            b"GET /v2/a HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(),
            true,
        ),
        ("request line 8191", line(8191), true),
        ("request line 8192", line(8192), true),
        ("header line 8191", header(8191), true),
        ("header line 8192", header(8192), true),
        ("headers 199", many(199), true),
        ("headers 200", many(200), true),
        (
            "headers too large",
            format!(
                "GET / HTTP/1.1\r\n{}Connection: close\r\n\r\n",
                format!("X: {}\r\n", "c".repeat(8000)).repeat(9)
            )
            .into_bytes(),
            true,
        ),
        (
            "HTTP/2.0",
            b"GET / HTTP/2.0\r\nConnection: close\r\n\r\n".to_vec(),
            false,
        ),
        (
            "bad protocol",
            b"GET / HTTQ/1.1\r\nConnection: close\r\n\r\n".to_vec(),
            false,
        ),
        (
            "bad syntax",
            b"GET  / HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(),
            false,
        ),
        // listing_formats (inserted by both) refuses before the app.
        (
            "listing, bad Accept",
            b"GET /v1/a HTTP/1.1\r\nAccept: bogus\r\nConnection: close\r\n\r\n".to_vec(),
            true,
        ),
        (
            "listing, nothing acceptable",
            b"GET /v1/a/c HTTP/1.1\r\nAccept: image/png\r\nConnection: close\r\n\r\n".to_vec(),
            true,
        ),
        (
            "listing, format not UTF-8",
            b"GET /v1/a?format=%FF HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(),
            true,
        ),
        (
            "negative length",
            b"GET /healthcheck HTTP/1.1\r\nContent-Length: -1\r\n\r\n".to_vec(),
            true,
        ),
    ];
    let mut diffs = Vec::new();
    for (name, req, with_body) in &cases {
        let p = shape(&send(py.addr, req), *with_body);
        let r = shape(&send(rs.addr, req), *with_body);
        if p != r {
            diffs.push(format!("{name}:\n  python: {p}\n  ours:   {r}"));
        }
    }
    assert!(
        diffs.is_empty(),
        "differences from Python Swift:\n{}",
        diffs.join("\n")
    );
    let py_workers = py.workers();
    py.signal(Signal::SIGTERM);
    rs.signal(Signal::SIGTERM);
    assert!(rs.wait_exit(5 * SEC).unwrap().0.success());
    let _ = py.wait_exit(10 * SEC);
    // Python's workers are not tied to their master: make sure they are gone.
    if wait_until(5 * SEC, || {
        swift_tests::server::all_gone(&py_workers).then_some(())
    })
    .is_none()
    {
        for pid in py_workers {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

fn start(default: &str) -> (tempfile::TempDir, Server) {
    let dir = scratch();
    let port = free_port();
    let conf = proxy_conf(dir.path(), port, &format!("user =\n{default}"), None);
    let server = Server::start("swift-proxy-server", &conf, port);
    (dir, server)
}

fn stop(mut server: Server) {
    server.signal(Signal::SIGTERM);
    assert!(server.wait_exit(5 * SEC).expect("exits").0.success());
}

#[test]
fn content_length_with_transfer_encoding_is_refused() {
    // Swift accepts both (request smuggling, wart 28); we refuse.
    let (_d, server) = start("workers = 1");
    let r = send(
        server.addr,
        b"POST /healthcheck HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body_str(),
        "Content-Length and Transfer-Encoding are not allowed together\n"
    );
    stop(server);
}

#[test]
fn response_header_names_keep_the_apps_case() {
    let (_d, server) = start("workers = 1");
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(b"GET /healthcheck HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    assert!(raw.contains("\r\nX-Trans-Id: tx"), "{raw}");
    assert!(raw.contains("\r\nX-Openstack-Request-Id: tx"), "{raw}");
    assert!(raw.contains("\r\nContent-Type: text/plain\r\n"), "{raw}");
    stop(server);
}

/// Read one response (head and Content-Length body) from a kept-alive connection.
fn read_one(s: &mut TcpStream) -> Option<Response> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return None,
        }
    }
    let head = parse_response(&buf)?;
    let len: usize = head
        .header("Content-Length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    let mut full = buf;
    full.extend_from_slice(&body);
    parse_response(&full)
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let (_d, server) = start("workers = 1");
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(5 * SEC)).unwrap();
    for _ in 0..50 {
        s.write_all(b"GET /healthcheck HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let r = read_one(&mut s).expect("response");
        assert_eq!((r.status, r.body_str().as_str()), (200, "OK"));
        assert_eq!(r.header("Connection"), None);
    }
    // Pipelined requests are answered in order.
    s.write_all(b"GET /healthcheck HTTP/1.1\r\n\r\nGET /info HTTP/1.1\r\n\r\n")
        .unwrap();
    assert_eq!(read_one(&mut s).unwrap().body_str(), "OK");
    assert!(
        read_one(&mut s)
            .unwrap()
            .body_str()
            .starts_with("{\"swift\"")
    );
    // HTTP/1.0 keep-alive is echoed.
    s.write_all(b"GET /healthcheck HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    assert_eq!(
        read_one(&mut s).unwrap().header("Connection"),
        Some("keep-alive")
    );
    stop(server);
}

#[test]
fn client_timeout_closes_a_stalled_request_and_keepalive_timeout_an_idle_one() {
    let (_d, server) = start("workers = 1\nclient_timeout = 1\nkeepalive_timeout = 0.5");
    // A request head that never completes.
    let mut stalled = TcpStream::connect(server.addr).unwrap();
    stalled.write_all(b"GET /healthcheck HTTP/1.1\r\n").unwrap();
    stalled.set_read_timeout(Some(10 * SEC)).unwrap();
    let t = Instant::now();
    let mut buf = Vec::new();
    let n = stalled.read_to_end(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "no response to a stalled request");
    assert!(
        t.elapsed() >= Duration::from_millis(900) && t.elapsed() < 5 * SEC,
        "{:?}",
        t.elapsed()
    );
    // An idle keep-alive connection is closed after keepalive_timeout.
    let mut idle = TcpStream::connect(server.addr).unwrap();
    idle.set_read_timeout(Some(10 * SEC)).unwrap();
    idle.write_all(b"GET /healthcheck HTTP/1.1\r\n\r\n")
        .unwrap();
    assert_eq!(read_one(&mut idle).unwrap().status, 200);
    let t = Instant::now();
    assert_eq!(idle.read(&mut [0u8; 16]).unwrap_or(0), 0);
    assert!(
        t.elapsed() >= Duration::from_millis(400) && t.elapsed() < 5 * SEC,
        "{:?}",
        t.elapsed()
    );
    stop(server);
}

#[test]
fn keepalive_timeout_0_closes_after_each_response() {
    let (_d, server) = start("workers = 1\nkeepalive_timeout = 0");
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(5 * SEC)).unwrap();
    s.write_all(b"GET /healthcheck HTTP/1.1\r\n\r\n").unwrap();
    let r = read_one(&mut s).unwrap();
    assert_eq!(r.header("Connection"), Some("close"));
    assert_eq!(s.read(&mut [0u8; 4]).unwrap_or(0), 0);
    stop(server);
}

#[test]
fn max_clients_caps_connections_per_worker() {
    let (_d, server) = start("workers = 1\nmax_clients = 1");
    let mut first = TcpStream::connect(server.addr).unwrap();
    first.set_read_timeout(Some(5 * SEC)).unwrap();
    first
        .write_all(b"GET /healthcheck HTTP/1.1\r\n\r\n")
        .unwrap();
    assert_eq!(read_one(&mut first).unwrap().status, 200);
    // The only slot is taken by `first` (kept alive): the second connection
    // waits in the listen queue, unaccepted.
    let mut second = TcpStream::connect(server.addr).unwrap();
    second.set_read_timeout(Some(5 * SEC)).unwrap();
    second
        .write_all(b"GET /healthcheck HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert!(
        wait_until(Duration::from_millis(300), || accepted(&second)
            .then_some(()))
        .is_none()
    );
    // Freeing the slot lets it in (read_one is bounded by the 5 s timeout).
    drop(first);
    assert_eq!(
        read_one(&mut second)
            .expect("answered once first closed")
            .status,
        200
    );
    stop(server);
}

#[test]
fn expect_100_continue_is_answered_when_the_body_is_read_or_the_connection_closes() {
    let (_d, server) = start("workers = 1");
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(5 * SEC)).unwrap();
    // No storage servers answer here, so the container is not found and the
    // proxy answers without reading the body: no 100, and the connection
    // closes after the final response (eventlet's behaviour).
    s.write_all(b"PUT /v1/a/c/o HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        .unwrap();
    let r = read_one(&mut s).unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(r.header("Connection"), Some("close"));
    stop(server);
}

#[test]
fn tls_serves_https_and_prints_swifts_warning() {
    use std::sync::Arc;
    let dir = scratch();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_path = swift_tests::write_file(dir.path(), "cert.pem", &cert.cert.pem());
    let key_path =
        swift_tests::write_file(dir.path(), "key.pem", &cert.signing_key.serialize_pem());
    let port = free_port();
    let conf = proxy_conf(
        dir.path(),
        port,
        &format!(
            "user =\nworkers = 1\ncert_file = {}\nkey_file = {}",
            cert_path.display(),
            key_path.display()
        ),
        None,
    );
    let server = Server::start("swift-proxy-server", &conf, port);
    assert_eq!(
        server.startup_output.trim(),
        "WARNING: SSL should only be enabled for testing purposes. Use external SSL termination for a production deployment."
    );
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let sock = TcpStream::connect(server.addr).unwrap();
    sock.set_read_timeout(Some(5 * SEC)).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    tls.write_all(b"GET /healthcheck HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let _ = tls.read_to_end(&mut buf);
    let r = parse_response(&buf).expect("a response over TLS");
    assert_eq!((r.status, r.body_str().as_str()), (200, "OK"));
    stop(server);
}
