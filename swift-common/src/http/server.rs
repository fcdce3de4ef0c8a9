//! The HTTP/1.1 server a worker runs on its listening socket: accept up to
//! `max_clients` connections, read request heads within Swift's limits, call
//! the pipeline, write responses the way eventlet does (header names as the
//! app set them, `Date` added, Content-Length or chunked), keep connections
//! alive per HTTP/1.0 and 1.1 rules, and drain gracefully on shutdown.
//!
//! Limits, with Swift's responses (inventory 2.12):
//! - request line of `max_request_line` bytes or more → 414;
//! - a header line of `max_header_size` bytes or more → 400 Header Line Too Long;
//! - more than 64 KiB of headers → 400 Headers Too Large;
//! - more header lines than Swift's `MAX_HEADER_COUNT * 1.6` (the blank
//!   line that ends them counts; 201 with the default constraints, since
//!   Swift's bufferedhttp raises http.client's limit of 100) → 431;
//! - Content-Length together with Transfer-Encoding → 400 (Swift accepts
//!   them: wart 28, a request-smuggling risk).
//!
//! Shutdown: stop accepting at once; a request in progress completes and
//! its response says `Connection: close`; an idle connection may still
//! bring one request within a second (so a client that sends just as we
//! stop is answered rather than reset), then closes.
//!
//! This module knows nothing of Swift's middleware; it serves any [`Service`].

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::io;
use std::io::Write as _;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use std::pin::Pin;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Notify, Semaphore, futures::OwnedNotified, watch};

use super::body::{Body, ConnIo, ConnShared, Framing, Io};
use super::message::{
    Completion, Env, Headers, Request, Response, ResponseBody, Text, Version, push_decimal,
};
use super::service::{Service, call_catching, panic_message};
use crate::config::{Conf, ConfigError, Constraints};
use crate::logging::{Level, Logger};

/// Most bytes of header lines (eventlet's MAX_TOTAL_HEADER_SIZE).
const MAX_TOTAL_HEADER_SIZE: usize = 65536;
/// Unread request body a keep-alive connection will discard; more closes it.
const MAX_DISCARD: u64 = 1 << 20;
/// How long an idle connection may still bring one last request once the
/// server is shutting down.
const LAME_DUCK_IDLE: Duration = Duration::from_secs(1);
/// Bodies up to this size are copied behind the head into one write.
const COALESCE_LIMIT: usize = 64 * 1024;
/// A streamed body's first piece up to this size goes out in the head's
/// write (a small object: one write, one segment); a bigger one is
/// written on its own rather than copied.
const STREAM_COALESCE_LIMIT: usize = 16 * 1024;
/// The write buffer an idle connection keeps; a bigger one is dropped.
const WBUF_KEEP: usize = 4096;

/// How long an idle keep-alive connection waits for its next request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeepAlive {
    /// `keepalive_timeout` unset: wait up to `client_timeout` (eventlet's default).
    ClientTimeout,
    /// `keepalive_timeout = N`.
    Timeout(Duration),
    /// `keepalive_timeout = 0`: one request per connection.
    Disabled,
}

/// The server's settings, from the app conf and swift.conf's constraints.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    pub max_clients: usize,
    pub client_timeout: Duration,
    pub keepalive: KeepAlive,
    pub max_request_line: usize,
    pub max_header_line: usize,
    /// Most header lines, the terminating blank line included.
    pub max_header_lines: usize,
    pub require_proxy_protocol: bool,
}

impl ServerConfig {
    /// `max_clients` (1024), `client_timeout` (60), `keepalive_timeout`
    /// (unset), `require_proxy_protocol` (false); limits from `constraints`.
    pub fn from_conf(conf: &Conf, constraints: &Constraints) -> Result<ServerConfig, ConfigError> {
        let max_clients: i64 = conf.get_parsed("max_clients", 1024)?;
        if max_clients < 1 {
            return Err(conf.invalid("max_clients", "must be a positive integer"));
        }
        let client_timeout: f64 = conf.get_parsed("client_timeout", 60.0)?;
        if !(client_timeout > 0.0 && client_timeout.is_finite()) {
            return Err(conf.invalid("client_timeout", "must be a positive number of seconds"));
        }
        let keepalive = match conf.get_nonempty("keepalive_timeout") {
            None => KeepAlive::ClientTimeout,
            Some(v) => match v.parse::<f64>() {
                Ok(0.0) => KeepAlive::Disabled,
                Ok(t) if t > 0.0 && t.is_finite() => KeepAlive::Timeout(Duration::from_secs_f64(t)),
                _ => {
                    return Err(conf.invalid(
                        "keepalive_timeout",
                        "must be a number of seconds (0 disables keep-alive)",
                    ));
                }
            },
        };
        Ok(ServerConfig {
            max_clients: max_clients as usize,
            client_timeout: Duration::from_secs_f64(client_timeout),
            keepalive,
            max_request_line: constraints.max_request_line,
            max_header_line: constraints.max_header_size,
            // Swift compares the count with MAX_HEADER_COUNT * 1.6, a float.
            max_header_lines: (constraints.max_header_count().max(0) as f64 * 1.6).floor() as usize,
            require_proxy_protocol: conf.get_bool("require_proxy_protocol", false),
        })
    }

    fn idle_timeout(&self) -> Duration {
        match self.keepalive {
            KeepAlive::Timeout(t) => t,
            _ => self.client_timeout,
        }
    }
}

/// What [`serve`] reports when it returns.
#[derive(Debug, PartialEq, Eq)]
pub struct ServeOutcome {
    /// Connections still open when the drain deadline passed (0 = clean).
    pub abandoned: usize,
}

struct Ctx {
    service: Rc<dyn Service>,
    cfg: ServerConfig,
    logger: Logger,
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// The address connections arrive on (what getsockname would give for
    /// each, short of a wildcard bind: not worth a syscall per connection).
    local: SocketAddr,
    /// Set when the server stops; `stop_notify` wakes idle connections.
    /// Each connection registers once, not once per request.
    stopping: Cell<bool>,
    stop_notify: Arc<Notify>,
}

/// Serve `listener` until `shutdown` turns true, then stop accepting, let
/// open connections finish their current request (idle ones close at once)
/// and return when they are all closed or `drain_timeout` has passed.
///
/// Must run inside a `LocalSet` (connections are spawned with `spawn_local`).
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    service: Rc<dyn Service>,
    cfg: ServerConfig,
    logger: Logger,
    mut shutdown: watch::Receiver<bool>,
    drain_timeout: Duration,
) -> ServeOutcome {
    let max_clients = cfg.max_clients;
    let permits = Arc::new(Semaphore::new(max_clients));
    let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
    let ctx = Rc::new(Ctx {
        service,
        cfg,
        logger,
        tls: tls.map(tokio_rustls::TlsAcceptor::from),
        local: listener.local_addr().unwrap_or(unspecified),
        stopping: Cell::new(false),
        stop_notify: Arc::new(Notify::new()),
    });
    {
        // Relay the stop to every connection at once.
        let ctx = ctx.clone();
        let mut shutdown = shutdown.clone();
        tokio::task::spawn_local(async move {
            while !*shutdown.borrow_and_update() {
                if shutdown.changed().await.is_err() {
                    break;
                }
            }
            ctx.stopping.set(true);
            ctx.stop_notify.notify_waiters();
        });
    }
    loop {
        if *shutdown.borrow() {
            break;
        }
        // Take a slot before accepting, so a full worker leaves new
        // connections in the shared queue for the other workers.
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = shutdown.changed() => continue,
        };
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => continue,
        };
        match accepted {
            Ok((stream, peer)) => {
                let ctx = ctx.clone();
                tokio::task::spawn_local(async move {
                    let _permit = permit;
                    connection(ctx, stream, peer).await;
                });
            }
            Err(e) => {
                // Out of fds or memory: back off instead of spinning.
                ctx.logger
                    .error(format_args!("ERROR WSGI: accept failed: {e}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    drop(listener);
    let n = max_clients.min(u32::MAX as usize) as u32;
    match tokio::time::timeout(drain_timeout, permits.acquire_many(n)).await {
        Ok(_) => ServeOutcome { abandoned: 0 },
        Err(_) => ServeOutcome {
            abandoned: max_clients - permits.available_permits(),
        },
    }
}

async fn connection(ctx: Rc<Ctx>, stream: tokio::net::TcpStream, peer: SocketAddr) {
    let (io, scheme): (Box<dyn Io>, &'static str) = match &ctx.tls {
        None => (Box::new(stream), "http"),
        Some(acceptor) => {
            match tokio::time::timeout(ctx.cfg.client_timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => (Box::new(tls), "https"),
                _ => return, // failed or slow handshakes just close
            }
        }
    };
    let shared = Rc::new(ConnShared {
        io: RefCell::new(Some(ConnIo::new(io, ctx.cfg.client_timeout))),
        framing: Cell::new(Framing::Done),
        continue_pending: Cell::new(false),
        received: Cell::new(0),
        client_gone: Cell::new(false),
        client_timeout: ctx.cfg.client_timeout,
    });
    let mut stop = Box::pin(ctx.stop_notify.clone().notified_owned());
    stop.as_mut().enable();
    let mut conn = Conn {
        local: ctx.local,
        ctx,
        shared,
        peer,
        scheme,
        stop,
        tls: scheme == "https",
    };
    conn.run().await;
}

struct Conn {
    ctx: Rc<Ctx>,
    shared: Rc<ConnShared>,
    peer: SocketAddr,
    local: SocketAddr,
    scheme: &'static str,
    /// Completes when the server stops (registered once per connection).
    stop: Pin<Box<OwnedNotified>>,
    /// TLS needs an orderly shutdown (close_notify); plain TCP just closes.
    tls: bool,
}

/// Why a request head was refused.
#[derive(Debug, PartialEq, Eq)]
enum HeadError {
    /// Answered with a fixed raw response, as eventlet does.
    Raw(&'static [u8]),
    /// Answered through Swift's `send_error` (HTML body, X-Trans-Id).
    Error(u16, String),
    /// Like `Error`, with the page's explanation given (Python's `explain`).
    Explained(u16, String, String),
}

const RESPONSE_414: &[u8] =
    b"HTTP/1.0 414 Request URI Too Long\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
const RESPONSE_400_LINE: &[u8] =
    b"HTTP/1.0 400 Header Line Too Long\r\nConnection: close\r\nContent-length: 0\r\n\r\n";
const RESPONSE_400_HEADERS: &[u8] =
    b"HTTP/1.0 400 Headers Too Large\r\nConnection: close\r\nContent-length: 0\r\n\r\n";
const RESPONSE_400: &[u8] =
    b"HTTP/1.0 400 Bad Request\r\nConnection: close\r\nContent-length: 0\r\n\r\n";
const RESPONSE_400_CL_TE: &[u8] = b"HTTP/1.0 400 Bad Request\r\nConnection: close\r\nContent-Length: 62\r\n\r\nContent-Length and Transfer-Encoding are not allowed together\n";
const RESPONSE_500: &[u8] =
    b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// Where the head ends and how many header lines it has, if it is
/// complete; or why it is refused. Checks the limits on what has arrived so
/// far, so an endless line is refused early.
fn check_head(buf: &[u8], cfg: &ServerConfig) -> Result<Option<(usize, usize)>, HeadError> {
    let Some(nl) = memchr(b'\n', buf) else {
        return if buf.len() >= cfg.max_request_line {
            Err(HeadError::Raw(RESPONSE_414))
        } else {
            Ok(None)
        };
    };
    if nl + 1 >= cfg.max_request_line {
        return Err(HeadError::Raw(RESPONSE_414));
    }
    let mut pos = nl + 1;
    let mut total = 0usize;
    let mut lines = 0usize;
    loop {
        let rest = &buf[pos..];
        let Some(nl) = memchr(b'\n', rest) else {
            if rest.len() >= cfg.max_header_line {
                return Err(HeadError::Raw(RESPONSE_400_LINE));
            }
            if total + rest.len() > MAX_TOTAL_HEADER_SIZE {
                return Err(HeadError::Raw(RESPONSE_400_HEADERS));
            }
            return Ok(None);
        };
        let len = nl + 1;
        if len >= cfg.max_header_line {
            return Err(HeadError::Raw(RESPONSE_400_LINE));
        }
        total += len;
        if total > MAX_TOTAL_HEADER_SIZE {
            return Err(HeadError::Raw(RESPONSE_400_HEADERS));
        }
        lines += 1;
        if lines > cfg.max_header_lines {
            return Err(HeadError::Explained(
                431,
                "Too many headers".into(),
                format!("got more than {} headers", cfg.max_header_lines),
            ));
        }
        if rest[..nl] == *b"\r" || nl == 0 {
            return Ok(Some((pos + len, lines)));
        }
        pos += len;
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    memchr::memchr(needle, hay)
}

/// The parts of a request line.
#[derive(Debug, PartialEq, Eq)]
struct RequestLine {
    method: Text,
    target: String,
    version: Version,
    /// HTTP/1.1 or later: keep-alive unless asked otherwise.
    persistent: bool,
}

/// Parse a request line as Python's BaseHTTPRequestHandler does (split on
/// single spaces, `HTTP/x.y` with integer parts, 2.0 and above refused).
fn parse_request_line(line: &str) -> Result<RequestLine, HeadError> {
    let count = memchr::memchr_iter(b' ', line.as_bytes()).count() + 1;
    let (method, rest) = line.split_once(' ').unwrap_or((line, ""));
    let (target, version_text) = match count {
        3 => rest.rsplit_once(' ').unwrap_or((rest, "")),
        _ => (rest, line.rsplit_once(' ').map_or("", |(_, v)| v)),
    };
    let (version, persistent) = match version_text {
        _ if count < 3 => (Version::Http10, false),
        "HTTP/1.1" => (Version::Http11, true),
        "HTTP/1.0" => (Version::Http10, false),
        v => parse_version(v)?,
    };
    if !(2..=3).contains(&count) || method.is_empty() {
        return Err(HeadError::Error(
            400,
            format!("Bad request syntax ('{line}')"),
        ));
    }
    if count == 2 && method != "GET" {
        return Err(HeadError::Error(
            400,
            format!("Bad HTTP/0.9 request type ('{method}')"),
        ));
    }
    let mut target = target;
    // Absolute form: keep only the path (Python keeps the URL when it has none).
    for scheme in ["http://", "https://"] {
        if let Some(rest) = target.strip_prefix(scheme)
            && let Some(slash) = rest.find('/')
        {
            target = &rest[slash..];
        }
    }
    Ok(RequestLine {
        method: method_text(method),
        target: target.to_owned(),
        version,
        persistent,
    })
}

/// A version other than the two usual ones, as Python checks it:
/// `HTTP/x.y` with integer parts; 2.0 and above are refused.
fn parse_version(v: &str) -> Result<(Version, bool), HeadError> {
    let bad = || HeadError::Error(400, format!("Bad request version ('{v}')"));
    let number = v.strip_prefix("HTTP/").ok_or_else(bad)?;
    let (major, minor) = number.split_once('.').ok_or_else(bad)?;
    if minor.contains('.') {
        return Err(bad());
    }
    let major: u32 = major.parse().map_err(|_| bad())?;
    let minor: u32 = minor.parse().map_err(|_| bad())?;
    if major >= 2 {
        return Err(HeadError::Error(
            505,
            format!("Invalid HTTP version ({number})"),
        ));
    }
    Ok(if (major, minor) >= (1, 1) {
        (Version::Http11, true)
    } else {
        (Version::Http10, false)
    })
}

/// A header name as text: the common spellings without allocating.
fn header_name(name: &str) -> Text {
    const COMMON: &[&str] = &[
        "Host",
        "User-Agent",
        "Accept",
        "Accept-Encoding",
        "Connection",
        "Content-Length",
        "Content-Type",
        "X-Auth-Token",
        "host",
        "user-agent",
        "accept",
        "accept-encoding",
        "connection",
        "content-length",
        "content-type",
        "x-auth-token",
    ];
    match COMMON.iter().find(|c| **c == name) {
        Some(c) => Cow::Borrowed(c),
        None => Cow::Owned(name.to_owned()),
    }
}

/// The method as text: the common ones without allocating.
fn method_text(m: &str) -> Text {
    match m {
        "GET" => Cow::Borrowed("GET"),
        "HEAD" => Cow::Borrowed("HEAD"),
        "PUT" => Cow::Borrowed("PUT"),
        "POST" => Cow::Borrowed("POST"),
        "DELETE" => Cow::Borrowed("DELETE"),
        "OPTIONS" => Cow::Borrowed("OPTIONS"),
        "COPY" => Cow::Borrowed("COPY"),
        other => Cow::Owned(other.to_owned()),
    }
}

use super::quote::{bytes_to_wsgi as latin1, push_wsgi_bytes as push_latin1};

fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// A parsed head, before the body is attached.
struct Head {
    line: RequestLine,
    headers: Headers,
    framing: Framing,
    content_length: Option<u64>,
    /// The client asked to close (or HTTP/1.0 without keep-alive).
    close: bool,
    /// The client sent `Connection: keep-alive`.
    client_keep_alive: bool,
    expect_continue: bool,
}

/// Parse a complete head of `lines` header lines (from [`check_head`]).
fn parse_head(head: &[u8], lines: usize) -> Result<Head, HeadError> {
    let nl = memchr(b'\n', head).unwrap_or(head.len());
    let raw_line = &head[..nl];
    let raw_line = raw_line.strip_suffix(b"\r").unwrap_or(raw_line);
    let line = match std::str::from_utf8(raw_line) {
        Ok(ascii) if ascii.is_ascii() => parse_request_line(ascii)?,
        _ => parse_request_line(&latin1(raw_line))?,
    };
    let block = head.get(nl + 1..).unwrap_or(&[]);
    // check_head already bounded the count: most requests fit the stack
    // array; more lines get a vector.
    let mut stack = [httparse::EMPTY_HEADER; 32];
    let mut heap = Vec::new();
    let slots: &mut [httparse::Header<'_>] = if lines <= stack.len() {
        &mut stack
    } else {
        heap.resize(lines, httparse::EMPTY_HEADER);
        &mut heap
    };
    let parsed = match httparse::parse_headers(block, slots) {
        Ok(httparse::Status::Complete((_, parsed))) => parsed,
        _ => return Err(HeadError::Raw(RESPONSE_400)),
    };
    // Room for the few the proxy adds (X-Timestamp, X-Trans-Id, ...).
    let mut headers = Headers::with_capacity(parsed.len() + 8);
    for h in parsed.iter() {
        headers.append(header_name(h.name), latin1(h.value));
    }
    let mut content_length = None;
    for v in headers.get_all("content-length") {
        let n = v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|_| v.trim().bytes().all(|b| b.is_ascii_digit()));
        match (n, content_length) {
            (None, _) => return Err(HeadError::Raw(RESPONSE_400)),
            (Some(n), Some(prev)) if n != prev => return Err(HeadError::Raw(RESPONSE_400)),
            (Some(n), _) => content_length = Some(n),
        }
    }
    let te = headers.get("transfer-encoding");
    if te.is_some() && content_length.is_some() {
        return Err(HeadError::Raw(RESPONSE_400_CL_TE));
    }
    let framing = match (te, content_length) {
        (Some(te), _) => {
            if te
                .rsplit(',')
                .next()
                .map(str::trim)
                .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
            {
                Framing::ChunkSize
            } else {
                return Err(HeadError::Error(
                    501,
                    format!("Unsupported Transfer-Encoding ('{te}')"),
                ));
            }
        }
        (None, Some(n)) if n > 0 => Framing::Length(n),
        _ => Framing::Done,
    };
    let conn = headers.get("connection").unwrap_or("");
    let client_keep_alive = has_token(conn, "keep-alive");
    let close = if has_token(conn, "close") {
        true
    } else if client_keep_alive {
        false
    } else {
        !line.persistent
    };
    let expect_continue = line.version == Version::Http11
        && headers
            .get("expect")
            .is_some_and(|e| e.trim().eq_ignore_ascii_case("100-continue"));
    Ok(Head {
        line,
        headers,
        framing,
        content_length,
        close,
        client_keep_alive,
        expect_continue,
    })
}

/// The long explanation Python's http.server gives a status.
fn python_explain(code: u16) -> &'static str {
    match code {
        400 => "Bad request syntax or unsupported method",
        431 => "The server refuses to process the request because the header fields are too large",
        501 => "Server does not support this operation",
        505 => "Cannot fulfill request",
        _ => super::message::reason(code),
    }
}

/// The body of Python's `send_error` page.
fn error_page(code: u16, message: &str, explain: &str) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    format!(
        "<!DOCTYPE HTML>\n<html lang=\"en\">\n    <head>\n        <meta charset=\"utf-8\">\n        <title>Error response</title>\n    </head>\n    <body>\n        <h1>Error response</h1>\n        <p>Error code: {code}</p>\n        <p>Message: {}.</p>\n        <p>Error code explanation: {code} - {}.</p>\n    </body>\n</html>\n",
        esc(message),
        esc(explain)
    )
}

thread_local! {
    static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Append `Date: ...\r\n`, formatting at most once a second per thread.
fn push_date(out: &mut Vec<u8>) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    DATE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != now {
            *cached = (now, crate::time::Utc::from_unix(now as i64, 0).http_date());
        }
        out.extend_from_slice(b"Date: ");
        out.extend_from_slice(cached.1.as_bytes());
        out.extend_from_slice(b"\r\n");
    });
}

impl Conn {
    fn take_io(&self) -> Option<ConnIo> {
        self.shared.io.borrow_mut().take()
    }

    fn put_io(&self, cio: ConnIo) {
        *self.shared.io.borrow_mut() = Some(cio);
    }

    async fn run(&mut self) {
        if self.ctx.cfg.require_proxy_protocol && !self.read_proxy_line().await {
            return;
        }
        loop {
            let head = match self.read_head().await {
                Ok(Some(h)) => h,
                Ok(None) => return,
                Err(e) => {
                    self.refuse(e).await;
                    return;
                }
            };
            if !self.handle(head).await {
                return;
            }
        }
    }

    /// Read the PROXY protocol v1 line; false closes the connection.
    async fn read_proxy_line(&mut self) -> bool {
        let Some(mut cio) = self.take_io() else {
            return false;
        };
        let line = loop {
            if let Some(nl) = memchr(b'\n', &cio.rbuf) {
                let line = cio.rbuf.split_to(nl + 1);
                break latin1(&line);
            }
            if cio.rbuf.len() >= self.ctx.cfg.max_request_line {
                break latin1(&cio.rbuf);
            }
            match cio.fill(self.ctx.cfg.client_timeout).await {
                Ok(n) if n > 0 => {}
                _ => return false,
            }
        };
        self.put_io(cio);
        let text = line.trim_end_matches(['\r', '\n']);
        let parts: Vec<&str> = text.split(' ').collect();
        let ok = match parts.as_slice() {
            ["PROXY", kind, ..] if kind.starts_with("UNKNOWN") => true,
            ["PROXY", "TCP4" | "TCP6", src, dst, sport, dport] => {
                let src = src
                    .parse::<std::net::IpAddr>()
                    .ok()
                    .zip(sport.parse::<u16>().ok());
                let dst = dst
                    .parse::<std::net::IpAddr>()
                    .ok()
                    .zip(dport.parse::<u16>().ok());
                match (src, dst) {
                    (Some(s), Some(d)) => {
                        self.peer = SocketAddr::from(s);
                        self.local = SocketAddr::from(d);
                        if d.1 == 443 {
                            self.scheme = "https";
                        }
                        true
                    }
                    _ => false,
                }
            }
            _ => false,
        };
        if !ok {
            self.refuse(HeadError::Error(
                400,
                format!("Invalid PROXY line '{line}'"),
            ))
            .await;
        }
        ok
    }

    /// Wait for and parse the next request head. `Ok(None)`: the client
    /// closed, went idle past the keep-alive timeout, or we are shutting down.
    async fn read_head(&mut self) -> Result<Option<Head>, HeadError> {
        let Some(mut cio) = self.take_io() else {
            return Ok(None);
        };
        let result = self.read_head_inner(&mut cio).await;
        self.put_io(cio);
        result
    }

    async fn read_head_inner(&mut self, cio: &mut ConnIo) -> Result<Option<Head>, HeadError> {
        loop {
            // Tolerate the stray CRLF some clients send after a body.
            while cio.rbuf.starts_with(b"\r\n") {
                let _ = cio.rbuf.split_to(2);
            }
            if let Some((len, lines)) = check_head(&cio.rbuf, &self.ctx.cfg)? {
                let head = cio.rbuf.split_to(len);
                return parse_head(&head, lines).map(Some);
            }
            let n = if cio.rbuf.is_empty() {
                cio.shrink_idle();
                let idle = self.ctx.cfg.idle_timeout();
                if self.ctx.stopping.get() {
                    // Shutting down and idle: a client may be sending its
                    // next request right now, and closing under it would
                    // fail that request. Wait a moment for one more request
                    // (answered with Connection: close), then close.
                    cio.fill(idle.min(LAME_DUCK_IDLE)).await
                } else {
                    tokio::select! {
                        biased;
                        r = cio.fill(idle) => r,
                        _ = self.stop.as_mut() => continue,
                    }
                }
            } else {
                cio.fill(self.ctx.cfg.client_timeout).await
            };
            match n {
                Ok(0) | Err(_) => return Ok(None),
                Ok(_) => {}
            }
        }
    }

    /// Answer a refused head and close.
    async fn refuse(&mut self, err: HeadError) {
        let Some(mut cio) = self.take_io() else {
            return;
        };
        let bytes = match err {
            HeadError::Raw(raw) => Cow::Borrowed(raw),
            HeadError::Error(code, message) => {
                let explain = python_explain(code).to_owned();
                self.send_error(code, &message, &explain)
            }
            HeadError::Explained(code, message, explain) => {
                self.send_error(code, &message, &explain)
            }
        };
        let _ = cio
            .write_all_timeout(&bytes, self.ctx.cfg.client_timeout)
            .await;
        let _ = cio.io.shutdown().await;
    }

    /// Python's `send_error`, as Swift overrides it: logged with a
    /// transaction id, which the response carries.
    fn send_error(&self, code: u16, message: &str, explain: &str) -> Cow<'static, [u8]> {
        let txn = super::trans_id::generate_trans_id("");
        self.ctx.logger.log_with(
            Level::Error,
            format_args!("ERROR WSGI: code {code}, message {message}"),
            Some(&txn),
            None,
        );
        let body = error_page(code, message, explain);
        // Python's send_error: Date first (we send no Server header).
        let mut out = Vec::with_capacity(256 + body.len());
        let _ = write!(out, "HTTP/1.1 {code} {message}\r\n");
        push_date(&mut out);
        let _ = write!(
            out,
            "Connection: close\r\nContent-Type: text/html;charset=utf-8\r\nContent-Length: {}\r\nX-Trans-Id: {txn}\r\nX-Openstack-Request-Id: {txn}\r\n\r\n",
            body.len()
        );
        out.extend_from_slice(body.as_bytes());
        Cow::Owned(out)
    }

    /// Serve one request; false when the connection must close.
    async fn handle(&mut self, head: Head) -> bool {
        let cfg = &self.ctx.cfg;
        self.shared.framing.set(head.framing);
        self.shared.received.set(0);
        self.shared
            .continue_pending
            .set(head.expect_continue && head.framing != Framing::Done);
        let body = if head.framing == Framing::Done {
            Body::empty()
        } else {
            Body::incoming(self.shared.clone(), head.content_length)
        };
        let is_head = head.line.method == "HEAD";
        let version = head.line.version;
        let req = Request {
            method: head.line.method,
            target: head.line.target,
            version,
            headers: head.headers,
            body,
            remote_addr: self.peer,
            local_addr: self.local,
            scheme: self.scheme,
            env: Env::default(),
        };
        let service = self.ctx.service.clone();
        let resp = match call_catching(&*service, req).resolve().await {
            Ok(r) => r,
            Err(payload) => {
                // No detail reaches the client (Swift's eventlet sends a
                // traceback: wart 27); the panic hook logged the location.
                self.ctx.logger.error(format_args!(
                    "ERROR WSGI: unhandled error in the pipeline: {}",
                    panic_message(&*payload)
                ));
                if let Some(mut cio) = self.take_io() {
                    let _ = cio
                        .write_all_timeout(RESPONSE_500, cfg.client_timeout)
                        .await;
                    let _ = cio.io.shutdown().await;
                }
                return false;
            }
        };
        let bodyless = is_head || resp.status < 200 || resp.status == 204 || resp.status == 304;
        let mut close = head.close
            || cfg.keepalive == KeepAlive::Disabled
            || self.ctx.stopping.get()
            // The app answered without reading a body the client is waiting
            // to send: the connection's state is unknown, so close it.
            || self.shared.continue_pending.get();
        let Some(mut cio) = self.take_io() else {
            return false;
        };
        let Response {
            status,
            reason,
            headers,
            body,
            mut hooks,
        } = resp;
        let has_length = headers.contains("content-length");
        let mut chunked = false;
        let mut out = std::mem::take(&mut cio.wbuf);
        out.clear();
        out.extend_from_slice(b"HTTP/1.1 ");
        push_decimal(&mut out, u64::from(status));
        out.push(b' ');
        push_latin1(&mut out, &reason);
        out.extend_from_slice(b"\r\n");
        for (k, v) in headers.iter() {
            push_latin1(&mut out, k);
            out.extend_from_slice(b": ");
            push_latin1(&mut out, v);
            out.extend_from_slice(b"\r\n");
        }
        if !headers.contains("date") {
            push_date(&mut out);
        }
        if !has_length && !bodyless {
            match &body {
                ResponseBody::Empty => out.extend_from_slice(b"Content-Length: 0\r\n"),
                ResponseBody::Full(b) => {
                    out.extend_from_slice(b"Content-Length: ");
                    push_decimal(&mut out, b.len() as u64);
                    out.extend_from_slice(b"\r\n");
                }
                ResponseBody::Stream(_) if version == Version::Http11 => {
                    chunked = true;
                    out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
                }
                ResponseBody::Stream(_) => close = true,
            }
        }
        if close {
            out.extend_from_slice(b"Connection: close\r\n");
        } else if head.client_keep_alive {
            out.extend_from_slice(b"Connection: keep-alive\r\n");
            if let KeepAlive::Timeout(t) = cfg.keepalive
                && t.as_secs() > 0
            {
                let _ = write!(out, "Keep-Alive: timeout={}\r\n", t.as_secs());
            }
        }
        out.extend_from_slice(b"\r\n");
        let written = self
            .write_body(&mut cio, &mut out, body, bodyless, chunked)
            .await;
        hooks.fire(&Completion {
            bytes_sent: *written.as_ref().unwrap_or(&0),
            complete: written.is_ok(),
        });
        // A large first piece or chunk grew the buffer: an idle
        // keep-alive connection keeps only a small one.
        if out.capacity() > WBUF_KEEP {
            out = Vec::with_capacity(512);
        }
        cio.wbuf = out;
        if written.is_err() || close {
            // TLS needs its close_notify; plain TCP needs a FIN before the
            // close only when the client may still be sending (unread
            // bytes would turn the close into a reset and lose the response).
            if self.tls || !cio.rbuf.is_empty() || self.shared.framing.get() != Framing::Done {
                let _ = cio.io.shutdown().await;
            }
            return false;
        }
        self.put_io(cio);
        self.finish_request_body().await
    }

    /// Write the head and body; returns the body bytes written.
    async fn write_body(
        &self,
        cio: &mut ConnIo,
        out: &mut Vec<u8>,
        body: ResponseBody,
        bodyless: bool,
        chunked: bool,
    ) -> io::Result<u64> {
        let timeout = self.ctx.cfg.client_timeout;
        match body {
            _ if bodyless => cio.write_all_timeout(out, timeout).await.map(|_| 0),
            ResponseBody::Empty => cio.write_all_timeout(out, timeout).await.map(|_| 0),
            ResponseBody::Full(b) if b.len() <= COALESCE_LIMIT => {
                out.extend_from_slice(&b);
                cio.write_all_timeout(out, timeout).await?;
                Ok(b.len() as u64)
            }
            ResponseBody::Full(b) => {
                cio.write_all_timeout(out, timeout).await?;
                cio.write_all_timeout(&b, timeout).await?;
                Ok(b.len() as u64)
            }
            ResponseBody::Stream(mut stream) => {
                // The head waits for the first piece and goes out with it
                // (as eventlet sends its headers with the first chunk): a
                // small object is one write and one segment, not two.
                // `out` holds what is not written yet.
                let mut sent = 0u64;
                let mut head_pending = true;
                loop {
                    let next = std::future::poll_fn(|cx| stream.as_mut().poll_chunk(cx)).await;
                    match next {
                        None => break,
                        Some(Err(e)) => {
                            // As before: the head (if still here) goes out,
                            // then the connection is cut.
                            if head_pending {
                                cio.write_all_timeout(out, timeout).await?;
                            }
                            return Err(e);
                        }
                        Some(Ok(piece)) if piece.is_empty() => {}
                        Some(Ok(piece)) => {
                            if !head_pending {
                                out.clear();
                            }
                            head_pending = false;
                            if chunked {
                                let _ = write!(out, "{:x}\r\n", piece.len());
                            }
                            if piece.len() <= STREAM_COALESCE_LIMIT {
                                out.extend_from_slice(&piece);
                                if chunked {
                                    out.extend_from_slice(b"\r\n");
                                }
                                cio.write_all_timeout(out, timeout).await?;
                            } else {
                                cio.write_all_timeout(out, timeout).await?;
                                cio.write_all_timeout(&piece, timeout).await?;
                                if chunked {
                                    cio.write_all_timeout(b"\r\n", timeout).await?;
                                }
                            }
                            sent += piece.len() as u64;
                        }
                    }
                }
                if head_pending {
                    if chunked {
                        out.extend_from_slice(b"0\r\n\r\n");
                    }
                    cio.write_all_timeout(out, timeout).await?;
                } else if chunked {
                    cio.write_all_timeout(b"0\r\n\r\n", timeout).await?;
                }
                Ok(sent)
            }
        }
    }

    /// After a response on a kept-alive connection: discard what is left of
    /// the request body (up to a bound). False when the connection must close.
    async fn finish_request_body(&self) -> bool {
        let mut discarded = 0u64;
        loop {
            match self.shared.framing.get() {
                Framing::Done => return true,
                Framing::Broken => return false,
                _ => {}
            }
            let mut body = Body::incoming(self.shared.clone(), None);
            match body.chunk().await {
                Ok(Some(piece)) => {
                    discarded += piece.len() as u64;
                    if discarded > MAX_DISCARD {
                        return false;
                    }
                }
                Ok(None) => return true,
                Err(_) => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ServerConfig {
        ServerConfig {
            max_clients: 10,
            client_timeout: Duration::from_secs(5),
            keepalive: KeepAlive::ClientTimeout,
            max_request_line: 8192,
            max_header_line: 8192,
            max_header_lines: 201,
            require_proxy_protocol: false,
        }
    }

    #[test]
    fn head_limits_match_eventlet() {
        let c = cfg();
        assert_eq!(
            check_head(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", &c),
            Ok(Some((27, 2)))
        );
        assert_eq!(check_head(b"GET / HTTP/1.1\r\nHost: x\r\n", &c), Ok(None));
        // A request line of 8192 bytes with its CRLF is refused; 8191 is fine.
        let line = |n: usize| format!("GET /{} HTTP/1.1\r\n", "a".repeat(n - 16));
        assert_eq!(line(8192).len(), 8192);
        assert_eq!(
            check_head(line(8192).as_bytes(), &c),
            Err(HeadError::Raw(RESPONSE_414))
        );
        assert_eq!(check_head(line(8191).as_bytes(), &c), Ok(None));
        // No newline yet but already too long.
        assert_eq!(
            check_head(&[b'a'; 8192], &c),
            Err(HeadError::Raw(RESPONSE_414))
        );
        let header = |n: usize| format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "b".repeat(n - 5));
        assert_eq!(
            check_head(header(8192).as_bytes(), &c),
            Err(HeadError::Raw(RESPONSE_400_LINE))
        );
        assert!(check_head(header(8191).as_bytes(), &c).unwrap().is_some());
        // 200 headers and the blank line are 201 lines: the most Swift takes.
        let many = |n: usize| format!("GET / HTTP/1.1\r\n{}\r\n", "X-A: 1\r\n".repeat(n));
        assert!(check_head(many(200).as_bytes(), &c).unwrap().is_some());
        assert!(matches!(
            check_head(many(201).as_bytes(), &c),
            Err(HeadError::Explained(431, _, _))
        ));
        let big = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            format!("X: {}\r\n", "c".repeat(8000)).repeat(9)
        );
        assert_eq!(
            check_head(big.as_bytes(), &c),
            Err(HeadError::Raw(RESPONSE_400_HEADERS))
        );
    }

    #[test]
    fn request_lines_parse_like_python() {
        let ok = parse_request_line("GET /a?b HTTP/1.1").unwrap();
        assert_eq!(
            (&*ok.method, ok.target.as_str(), ok.version),
            ("GET", "/a?b", Version::Http11)
        );
        assert!(ok.persistent);
        assert!(!parse_request_line("GET / HTTP/1.0").unwrap().persistent);
        assert_eq!(
            parse_request_line("GET http://h:1/p/q HTTP/1.1")
                .unwrap()
                .target,
            "/p/q"
        );
        assert_eq!(
            parse_request_line("GET http://h HTTP/1.1").unwrap().target,
            "http://h"
        );
        assert_eq!(
            parse_request_line("GET / HTTP/2.0"),
            Err(HeadError::Error(505, "Invalid HTTP version (2.0)".into()))
        );
        assert_eq!(
            parse_request_line("GET / HTTQ/1.1"),
            Err(HeadError::Error(
                400,
                "Bad request version ('HTTQ/1.1')".into()
            ))
        );
        assert_eq!(
            parse_request_line("GET  / HTTP/1.1"),
            Err(HeadError::Error(
                400,
                "Bad request syntax ('GET  / HTTP/1.1')".into()
            ))
        );
        assert_eq!(
            parse_request_line("PUT /"),
            Err(HeadError::Error(
                400,
                "Bad HTTP/0.9 request type ('PUT')".into()
            ))
        );
    }

    #[test]
    fn content_length_and_transfer_encoding_are_checked() {
        let h = |extra: &str| {
            let head = format!("POST / HTTP/1.1\r\n{extra}\r\n");
            parse_head(head.as_bytes(), head.matches('\n').count() - 1)
        };
        assert_eq!(
            h("Content-Length: 5\r\n").ok().map(|h| h.framing),
            Some(Framing::Length(5))
        );
        assert_eq!(
            h("Transfer-Encoding: gzip, chunked\r\n")
                .ok()
                .map(|h| h.framing),
            Some(Framing::ChunkSize)
        );
        assert!(matches!(
            h("Content-Length: -1\r\n"),
            Err(HeadError::Raw(RESPONSE_400))
        ));
        assert!(matches!(
            h("Content-Length: 1\r\nContent-Length: 2\r\n"),
            Err(HeadError::Raw(RESPONSE_400))
        ));
        assert!(matches!(
            h("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"),
            Err(HeadError::Raw(RESPONSE_400_CL_TE))
        ));
        assert!(matches!(
            h("Transfer-Encoding: gzip\r\n"),
            Err(HeadError::Error(501, _))
        ));
        // The canned response's Content-Length matches its body.
        let text = std::str::from_utf8(RESPONSE_400_CL_TE).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("Content-Length: {}", body.len())),
            "{head}"
        );
    }

    #[test]
    fn connection_semantics_follow_version_and_headers() {
        let h = |line: &str, extra: &str| {
            parse_head(
                format!("{line}\r\n{extra}\r\n").as_bytes(),
                extra.matches('\n').count() + 1,
            )
            .ok()
            .unwrap()
        };
        assert!(!h("GET / HTTP/1.1", "").close);
        assert!(h("GET / HTTP/1.1", "Connection: close\r\n").close);
        assert!(h("GET / HTTP/1.0", "").close);
        let ka = h("GET / HTTP/1.0", "Connection: Keep-Alive\r\n");
        assert!(!ka.close && ka.client_keep_alive);
        assert!(
            h(
                "PUT / HTTP/1.1",
                "Expect: 100-continue\r\nContent-Length: 1\r\n"
            )
            .expect_continue
        );
        assert!(
            !h(
                "PUT / HTTP/1.0",
                "Expect: 100-continue\r\nContent-Length: 1\r\n"
            )
            .expect_continue
        );
    }

    #[test]
    fn error_page_escapes_the_message() {
        let p = error_page(400, "Bad request syntax ('<x>')", python_explain(400));
        assert!(
            p.contains("<p>Message: Bad request syntax ('&lt;x&gt;').</p>"),
            "{p}"
        );
        assert!(
            p.contains("Error code explanation: 400 - Bad request syntax or unsupported method.")
        );
    }

    proptest::proptest! {
        /// No request head, however malformed, makes the parser panic.
        #[test]
        fn no_head_makes_the_parser_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let c = cfg();
            if let Ok(Some((len, lines))) = check_head(&bytes, &c) {
                let _ = parse_head(&bytes[..len], lines);
            }
        }

        /// Nor does a near-HTTP one (a request line and header-like lines).
        #[test]
        fn no_near_http_head_makes_the_parser_panic(
            method in "[A-Z]{0,8}",
            target in "[ -~]{0,40}",
            version in "(HTTP/[0-9.]{0,5}|[ -~]{0,10})",
            headers in proptest::collection::vec(("[ -~]{0,20}", "[ -~\u{80}-\u{ff}]{0,30}"), 0..12),
            sep in "(\r\n|\n)",
        ) {
            let mut head = format!("{method} {target} {version}{sep}");
            for (k, v) in &headers {
                head.push_str(&format!("{k}: {v}{sep}"));
            }
            head.push_str(&sep);
            let c = cfg();
            if let Ok(Some((len, lines))) = check_head(head.as_bytes(), &c) {
                let _ = parse_head(&head.as_bytes()[..len], lines);
            }
        }
    }
}
