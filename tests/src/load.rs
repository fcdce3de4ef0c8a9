//! A bounded HTTP load on one server, for the reload tests: a few
//! keep-alive clients that send one request after another on the same
//! connection, and one client that opens a new connection for every request
//! (every 10 ms). Every response is checked (2xx, the expected body in
//! full), and every way a request can fail is counted on its own:
//!
//! - refused: the connection was refused (nothing listening);
//! - reset: the connection was reset, or closed by the server without a
//!   response (including a keep-alive connection the server closed without
//!   having said `Connection: close`);
//! - non_2xx: a complete response with another status or body;
//! - truncated: a response cut short;
//! - timeouts: no response within [`IO_TIMEOUT`];
//! - other: any other error.
//!
//! A connection the server closes right after a complete response that
//! said `Connection: close` is normal (a server that stops or reloads says
//! so); the client reconnects. Every socket operation has a timeout and the
//! clients stop when asked, so the load always ends.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The bound on each connect, read and write.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// How many failure descriptions are kept for the report.
const SAMPLES: usize = 20;

/// The counters, shared by the client threads.
#[derive(Debug, Default)]
pub struct Stats {
    pub ok: AtomicU64,
    pub refused: AtomicU64,
    pub reset: AtomicU64,
    pub non_2xx: AtomicU64,
    pub truncated: AtomicU64,
    pub timeouts: AtomicU64,
    pub other: AtomicU64,
    /// Keep-alive connections closed by the server after a response that
    /// said `Connection: close` (fine).
    pub closed_after_close: AtomicU64,
    /// New connections opened (by both kinds of client).
    pub connections: AtomicU64,
    samples: Mutex<Vec<String>>,
}

/// A snapshot of [`Stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub ok: u64,
    pub refused: u64,
    pub reset: u64,
    pub non_2xx: u64,
    pub truncated: u64,
    pub timeouts: u64,
    pub other: u64,
    pub closed_after_close: u64,
    pub connections: u64,
    /// The first few failures, described.
    pub samples: Vec<String>,
}

impl Counts {
    /// Every failed request, whatever the kind.
    pub fn failures(&self) -> u64 {
        self.refused + self.reset + self.non_2xx + self.truncated + self.timeouts + self.other
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Refused,
    Reset,
    Non2xx,
    Truncated,
    Timeout,
    Other,
}

impl Stats {
    fn fail(&self, kind: Kind, what: String) {
        let counter = match kind {
            Kind::Refused => &self.refused,
            Kind::Reset => &self.reset,
            Kind::Non2xx => &self.non_2xx,
            Kind::Truncated => &self.truncated,
            Kind::Timeout => &self.timeouts,
            Kind::Other => &self.other,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut s) = self.samples.lock()
            && s.len() < SAMPLES
        {
            s.push(what);
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> Counts {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Counts {
            ok: g(&self.ok),
            refused: g(&self.refused),
            reset: g(&self.reset),
            non_2xx: g(&self.non_2xx),
            truncated: g(&self.truncated),
            timeouts: g(&self.timeouts),
            other: g(&self.other),
            closed_after_close: g(&self.closed_after_close),
            connections: g(&self.connections),
            samples: self.samples.lock().map(|s| s.clone()).unwrap_or_default(),
        }
    }
}

/// A running load; [`Load::stop`] ends it.
pub struct Load {
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
    threads: Vec<JoinHandle<()>>,
}

/// What a request's response turned out to be.
enum Got {
    /// A complete response: status, body, whether it said `Connection: close`.
    Response(u16, Vec<u8>, bool),
    /// A failure of this kind.
    Failed(Kind, String),
}

fn classify(e: &std::io::Error, when: &str) -> (Kind, String) {
    use std::io::ErrorKind as K;
    let kind = match e.kind() {
        K::ConnectionRefused => Kind::Refused,
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => Kind::Reset,
        K::TimedOut | K::WouldBlock => Kind::Timeout,
        _ => Kind::Other,
    };
    (kind, format!("{when}: {e}"))
}

/// Read one response (head, then a Content-Length body) from `s`; `buf`
/// holds bytes read beyond it, for the next one.
fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> Got {
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut chunk) {
            Ok(0) if buf.is_empty() => {
                return Got::Failed(Kind::Reset, "closed without a response".into());
            }
            Ok(0) => {
                return Got::Failed(
                    Kind::Truncated,
                    format!("closed in the head: {:?}", String::from_utf8_lossy(buf)),
                );
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                let (kind, what) = classify(&e, "reading the head");
                // Some bytes already: the response was cut.
                let kind = match kind {
                    Kind::Reset if !buf.is_empty() => Kind::Truncated,
                    k => k,
                };
                return Got::Failed(kind, what);
            }
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let header = |name: &str| {
        head.split("\r\n").skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_ascii_lowercase())
        })
    };
    let Some(length) = header("content-length").and_then(|v| v.parse::<usize>().ok()) else {
        return Got::Failed(Kind::Other, format!("no Content-Length: {head:?}"));
    };
    let close = header("connection").is_some_and(|v| v == "close");
    while buf.len() < head_end + length {
        match s.read(&mut chunk) {
            Ok(0) => {
                return Got::Failed(
                    Kind::Truncated,
                    format!("closed in the body ({} of {length})", buf.len() - head_end),
                );
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                let (kind, what) = classify(&e, "reading the body");
                let kind = match kind {
                    Kind::Reset => Kind::Truncated,
                    k => k,
                };
                return Got::Failed(kind, what);
            }
        }
    }
    let body = buf[head_end..head_end + length].to_vec();
    buf.drain(..head_end + length);
    Got::Response(status, body, close)
}

fn connect(addr: SocketAddr, stats: &Stats) -> Result<TcpStream, (Kind, String)> {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(|e| classify(&e, "connect"))?;
    stats.connections.fetch_add(1, Ordering::Relaxed);
    s.set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| s.set_write_timeout(Some(IO_TIMEOUT)))
        .and_then(|()| s.set_nodelay(true))
        .map_err(|e| classify(&e, "socket options"))?;
    Ok(s)
}

/// Check a complete response; whether it was a success.
fn check(stats: &Stats, status: u16, body: &[u8], expect: &[u8], client: &str) -> bool {
    if (200..300).contains(&status) && body == expect {
        stats.ok.fetch_add(1, Ordering::Relaxed);
        true
    } else {
        stats.fail(
            Kind::Non2xx,
            format!(
                "{client}: {status} {:?}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ),
        );
        false
    }
}

/// After `Connection: close`, the server must close: expect EOF.
/// `keepalive`: a keep-alive connection (the close is counted).
fn expect_close(s: &mut TcpStream, stats: &Stats, client: &str, keepalive: bool) {
    let mut b = [0u8; 64];
    match s.read(&mut b) {
        Ok(0) => {
            if keepalive {
                stats.closed_after_close.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(n) => stats.fail(
            Kind::Other,
            format!("{client}: {n} bytes after Connection: close"),
        ),
        // A reset after a complete `Connection: close` response loses
        // nothing, but is not the clean close a client should see.
        Err(e) => {
            let (kind, what) = classify(&e, "after Connection: close");
            stats.fail(kind, format!("{client}: {what}"));
        }
    }
}

fn keepalive_client(
    addr: SocketAddr,
    path: String,
    expect: Vec<u8>,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
    id: usize,
) {
    let client = format!("keep-alive client {id}");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: e2e-load\r\n\r\n");
    let mut conn: Option<(TcpStream, Vec<u8>)> = None;
    while !stop.load(Ordering::Relaxed) {
        let (s, buf) = match &mut conn {
            Some(c) => c,
            None => match connect(addr, &stats) {
                Ok(s) => conn.insert((s, Vec::new())),
                Err((kind, what)) => {
                    stats.fail(kind, format!("{client}: {what}"));
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            },
        };
        if let Err(e) = s.write_all(req.as_bytes()) {
            // The server closed the connection without a `Connection:
            // close` on the last response.
            let (kind, what) = classify(&e, "sending on a kept-alive connection");
            stats.fail(kind, format!("{client}: {what}"));
            conn = None;
            continue;
        }
        match read_response(s, buf) {
            Got::Response(status, body, close) => {
                check(&stats, status, &body, &expect, &client);
                if close {
                    expect_close(s, &stats, &client, true);
                    conn = None;
                }
            }
            Got::Failed(kind, what) => {
                stats.fail(kind, format!("{client}: {what}"));
                conn = None;
            }
        }
        // A steady load, not a flood: the server's own work is the point.
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn new_connection_client(
    addr: SocketAddr,
    path: String,
    expect: Vec<u8>,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
) {
    let client = "new-connection client".to_owned();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: e2e-load\r\nConnection: close\r\n\r\n"
    );
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(10));
        let mut s = match connect(addr, &stats) {
            Ok(s) => s,
            Err((kind, what)) => {
                stats.fail(kind, format!("{client}: {what}"));
                continue;
            }
        };
        if let Err(e) = s.write_all(req.as_bytes()) {
            let (kind, what) = classify(&e, "sending");
            stats.fail(kind, format!("{client}: {what}"));
            continue;
        }
        let mut buf = Vec::new();
        match read_response(&mut s, &mut buf) {
            Got::Response(status, body, close) => {
                if check(&stats, status, &body, &expect, &client) {
                    if close {
                        expect_close(&mut s, &stats, &client, false);
                    } else {
                        stats.fail(Kind::Other, format!("{client}: no Connection: close"));
                    }
                }
            }
            Got::Failed(kind, what) => stats.fail(kind, format!("{client}: {what}")),
        }
    }
}

impl Load {
    /// Start `keepalive` keep-alive clients and one new-connection client,
    /// all asking `GET path` and expecting a 2xx with exactly `expect`.
    pub fn start(addr: SocketAddr, path: &str, expect: &[u8], keepalive: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Stats::default());
        let mut threads = Vec::new();
        for id in 0..keepalive {
            let (p, e, st, s) = (
                path.to_owned(),
                expect.to_vec(),
                stop.clone(),
                stats.clone(),
            );
            threads.push(std::thread::spawn(move || {
                keepalive_client(addr, p, e, st, s, id)
            }));
        }
        let (p, e, st, s) = (
            path.to_owned(),
            expect.to_vec(),
            stop.clone(),
            stats.clone(),
        );
        threads.push(std::thread::spawn(move || {
            new_connection_client(addr, p, e, st, s)
        }));
        Load {
            stop,
            stats,
            threads,
        }
    }

    /// The counters so far.
    pub fn counts(&self) -> Counts {
        self.stats.snapshot()
    }

    /// Stop the clients (each ends within [`IO_TIMEOUT`]) and return the
    /// final counts.
    pub fn stop(mut self) -> Counts {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.stats.snapshot()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
