//! Requests and responses as the pipeline sees them.
//!
//! Header names keep the case they were sent or set with (Swift sends
//! response headers exactly as the app wrote them), lookups ignore case.
//! Values are latin-1 text, as in WSGI.

use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;

use super::body::Body;

/// A header name or value: static text costs no allocation.
pub type Text = Cow<'static, str>;

/// An ordered list of header fields.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(Text, Text)>);

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

impl Headers {
    pub fn new() -> Headers {
        Headers(Vec::new())
    }

    pub fn with_capacity(n: usize) -> Headers {
        Headers(Vec::with_capacity(n))
    }

    /// Room for `additional` more fields without growing.
    pub fn reserve(&mut self, additional: usize) {
        self.0.reserve(additional);
    }

    /// The first value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Add a field, keeping any existing ones of that name.
    pub fn append(&mut self, name: impl Into<Text>, value: impl Into<Text>) {
        self.0.push((name.into(), value.into()));
    }

    /// Replace every field of `name` by one (at the position of the first).
    pub fn set(&mut self, name: impl Into<Text>, value: impl Into<Text>) {
        let name = name.into();
        let value = value.into();
        match self
            .0
            .iter()
            .position(|(k, _)| k.eq_ignore_ascii_case(&name))
        {
            Some(i) => {
                let mut j = i + 1;
                while j < self.0.len() {
                    if self.0[j].0.eq_ignore_ascii_case(&name) {
                        self.0.remove(j);
                    } else {
                        j += 1;
                    }
                }
                self.0[i] = (name, value);
            }
            None => self.0.push((name, value)),
        }
    }

    /// Set `name` only if it is absent.
    pub fn set_default(&mut self, name: impl Into<Text>, value: impl Into<Text>) {
        let name = name.into();
        if !self.contains(&name) {
            self.0.push((name, value.into()));
        }
    }

    /// Remove every field of `name`; returns how many were removed.
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.0.len();
        self.0.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        before - self.0.len()
    }

    /// Keep only the fields for which `keep(name)` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.0.retain(|(k, _)| keep(k));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }

    /// The fields as stored: copying a static name (`Cow::Borrowed`)
    /// allocates nothing.
    pub fn fields(&self) -> impl Iterator<Item = (&Text, &Text)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The request's protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    /// `SERVER_PROTOCOL` as WSGI reports it.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// Per-request state that middleware share (the parts of Swift's WSGI
/// environ that are not HTTP).
#[derive(Clone, Debug, Default)]
pub struct Env {
    /// `swift.trans_id`, set by catch_errors.
    pub trans_id: Option<String>,
    /// `swift.source`: which middleware made a subrequest.
    pub source: Option<String>,
    /// `swift.log_info`.
    pub log_info: Vec<String>,
    /// `swift.proxy_access_log_made`.
    pub access_log_made: bool,
    /// What a server's middleware share beyond the above (Swift's
    /// `swift.authorize`, `swift.cache`, `swift.infocache`, ...), by type:
    /// each server crate keeps its own types here.
    pub ext: Extensions,
}

/// A small map from type to value, for [`Env::ext`]. Values sit behind
/// `Rc`, so copying an `Env` for a subrequest is cheap and shares them;
/// a value that a subrequest must not change is replaced, not mutated.
#[derive(Clone, Default)]
pub struct Extensions(Vec<(std::any::TypeId, std::rc::Rc<dyn std::any::Any>)>);

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} extensions", self.0.len())
    }
}

impl Extensions {
    /// The value of type `T`, if one was inserted.
    pub fn get<T: 'static>(&self) -> Option<&T> {
        let id = std::any::TypeId::of::<T>();
        self.0
            .iter()
            .find(|(t, _)| *t == id)
            .and_then(|(_, v)| v.downcast_ref::<T>())
    }

    /// The shared handle of the value of type `T`.
    pub fn get_rc<T: 'static>(&self) -> Option<std::rc::Rc<T>> {
        let id = std::any::TypeId::of::<T>();
        self.0
            .iter()
            .find(|(t, _)| *t == id)
            .and_then(|(_, v)| v.clone().downcast::<T>().ok())
    }

    /// Insert `value`, replacing any earlier value of its type.
    pub fn insert<T: 'static>(&mut self, value: T) {
        self.insert_rc(std::rc::Rc::new(value));
    }

    /// Insert a shared value, replacing any earlier value of its type.
    pub fn insert_rc<T: 'static>(&mut self, value: std::rc::Rc<T>) {
        let id = std::any::TypeId::of::<T>();
        self.0.retain(|(t, _)| *t != id);
        self.0.push((id, value));
    }

    /// Remove the value of type `T`.
    pub fn remove<T: 'static>(&mut self) {
        let id = std::any::TypeId::of::<T>();
        self.0.retain(|(t, _)| *t != id);
    }
}

/// An HTTP request.
#[derive(Debug)]
pub struct Request {
    pub method: Text,
    /// The request target as sent (origin form; absolute form reduced to its
    /// path), percent-encoding intact, query included.
    pub target: String,
    pub version: Version,
    pub headers: Headers,
    pub body: Body,
    /// The peer (or the PROXY protocol's client address).
    pub remote_addr: SocketAddr,
    /// The address the connection arrived on.
    pub local_addr: SocketAddr,
    /// `https` when the connection is TLS (or the PROXY line said port 443).
    pub scheme: &'static str,
    pub env: Env,
}

impl Request {
    /// A request with no body, for tests and subrequests.
    pub fn new(method: &str, target: &str) -> Request {
        let any: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
        Request {
            method: Cow::Owned(method.to_owned()),
            target: target.to_owned(),
            version: Version::Http11,
            headers: Headers::new(),
            body: Body::empty(),
            remote_addr: any,
            local_addr: any,
            scheme: "http",
            env: Env::default(),
        }
    }

    /// The raw path part of the target (before `?`), still percent-encoded.
    pub fn raw_path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    /// The query string, if any (without `?`).
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// WSGI's `PATH_INFO`: the path percent-decoded (as latin-1).
    pub fn path_info(&self) -> Cow<'_, str> {
        percent_decode(self.raw_path())
    }

    /// The client's address as Swift's `get_remote_client` picks it:
    /// `X-Cluster-Client-Ip`, else the first of `X-Forwarded-For`, else the peer.
    pub fn client_ip(&self) -> String {
        match self.forwarded_client_ip() {
            Some(ip) => ip.to_owned(),
            None => ip_text(self.remote_addr.ip()),
        }
    }

    /// The client's address when a header names it ([`Request::client_ip`]
    /// without the peer).
    pub fn forwarded_client_ip(&self) -> Option<&str> {
        if let Some(ip) = self
            .headers
            .get("x-cluster-client-ip")
            .filter(|v| !v.is_empty())
        {
            return Some(ip);
        }
        let xff = self.headers.get("x-forwarded-for")?;
        let first = xff.split(',').next().unwrap_or("").trim();
        (!first.is_empty()).then_some(first)
    }
}

/// `ip.to_string()`, with IPv4 (the common case, once or twice per
/// request) written directly: `Ipv4Addr`'s `Display` goes through padding
/// support and costs several times more.
pub fn ip_text(ip: std::net::IpAddr) -> String {
    let std::net::IpAddr::V4(v4) = ip else {
        return ip.to_string();
    };
    let mut s = String::with_capacity(15);
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        if octet >= 100 {
            s.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            s.push(char::from(b'0' + octet / 10 % 10));
        }
        s.push(char::from(b'0' + octet % 10));
    }
    s
}

/// Decode `%XX` escapes, each byte taken as latin-1 (eventlet's PATH_INFO).
pub fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(char::from((h * 16 + l) as u8));
                i += 3;
                continue;
            }
        }
        out.push(char::from(bytes[i]));
        i += 1;
    }
    Cow::Owned(out)
}

/// A response body.
pub enum ResponseBody {
    Empty,
    Full(Bytes),
    /// Streamed; sent chunked to HTTP/1.1 clients unless the app set
    /// Content-Length, and to HTTP/1.0 clients by closing the connection.
    Stream(Pin<Box<dyn BodyStream>>),
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseBody::Empty => f.write_str("Empty"),
            ResponseBody::Full(b) => write!(f, "Full({} bytes)", b.len()),
            ResponseBody::Stream(_) => f.write_str("Stream"),
        }
    }
}

/// A source of response body chunks.
pub trait BodyStream {
    /// The next chunk, `None` at the end.
    fn poll_chunk(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::io::Result<Bytes>>>;
}

/// How sending a response ended, for [`Response::on_complete`] hooks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// Body bytes written to the client.
    pub bytes_sent: u64,
    /// Whether the whole response reached the socket.
    pub complete: bool,
}

/// A hook run when a response has been sent.
pub type CompletionHook = Box<dyn FnOnce(&Completion)>;

/// Hooks run once when a response has been sent, or when it is dropped
/// unsent (then with `complete: false`).
#[derive(Default)]
pub struct CompletionHooks(Vec<CompletionHook>);

impl CompletionHooks {
    /// Run the hooks (innermost first, as WSGI iterators close).
    pub fn fire(&mut self, c: &Completion) {
        for hook in self.0.drain(..) {
            hook(c);
        }
    }
}

impl Drop for CompletionHooks {
    fn drop(&mut self) {
        self.fire(&Completion {
            bytes_sent: 0,
            complete: false,
        });
    }
}

impl fmt::Debug for CompletionHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} hooks", self.0.len())
    }
}

/// An HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub reason: Cow<'static, str>,
    pub headers: Headers,
    pub body: ResponseBody,
    pub hooks: CompletionHooks,
}

impl Response {
    /// A response with the standard reason phrase and no headers or body.
    pub fn new(status: u16) -> Response {
        Response {
            status,
            reason: Cow::Borrowed(reason(status)),
            headers: Headers::new(),
            body: ResponseBody::Empty,
            hooks: CompletionHooks::default(),
        }
    }

    /// Run `hook` once the response has been sent (or abandoned).
    pub fn on_complete(&mut self, hook: impl FnOnce(&Completion) + 'static) {
        self.hooks.0.push(Box::new(hook));
    }

    /// A complete response with a body and its Content-Type and
    /// Content-Length set, as swob builds them.
    pub fn with_body(
        status: u16,
        content_type: impl Into<Text>,
        body: impl Into<Bytes>,
    ) -> Response {
        let body: Bytes = body.into();
        let mut r = Response::new(status);
        r.headers.append("Content-Type", content_type);
        r.headers
            .append("Content-Length", decimal(body.len() as u64));
        r.body = ResponseBody::Full(body);
        r
    }

    /// `"200 OK"`.
    pub fn status_line(&self) -> String {
        format!("{} {}", self.status, self.reason)
    }
}

/// `n` in decimal, without the formatting machinery (it is on every
/// response's path).
pub fn decimal(n: u64) -> String {
    let mut out = Vec::with_capacity(20);
    push_decimal(&mut out, n);
    out.into_iter().map(char::from).collect()
}

/// Append `n` in decimal to `out`.
pub(crate) fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// The reason phrase Swift (swob) uses for a status code.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Request Entity Too Large",
        414 => "Request URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Requested Range Not Satisfiable",
        417 => "Expectation Failed",
        422 => "Unprocessable Entity",
        425 => "Too Early",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        499 => "Client Disconnect",
        500 => "Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        507 => "Insufficient Storage",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_keep_case_and_match_without_it() {
        let mut h = Headers::new();
        h.append("X-Trans-Id", "a");
        h.append("x-trans-id", "b");
        assert_eq!(h.get("X-TRANS-ID"), Some("a"));
        assert_eq!(h.get_all("x-trans-id").collect::<Vec<_>>(), ["a", "b"]);
        h.set("X-Trans-ID", "c");
        assert_eq!(h.iter().collect::<Vec<_>>(), [("X-Trans-ID", "c")]);
        h.set_default("x-trans-id", "d");
        assert_eq!(h.len(), 1);
        assert_eq!(h.remove("X-trans-id"), 1);
        assert!(h.is_empty());
    }

    #[test]
    fn extensions_are_found_by_type_and_shared_by_copies() {
        let mut env = Env::default();
        env.ext.insert(5u32);
        env.ext.insert(String::from("a"));
        env.ext.insert(6u32);
        assert_eq!(env.ext.get::<u32>(), Some(&6));
        let copy = env.clone();
        assert_eq!(copy.ext.get::<String>().map(String::as_str), Some("a"));
        assert!(std::rc::Rc::ptr_eq(
            &env.ext.get_rc::<String>().unwrap(),
            &copy.ext.get_rc::<String>().unwrap()
        ));
        env.ext.remove::<String>();
        assert!(env.ext.get::<String>().is_none());
        assert!(env.ext.get::<u64>().is_none());
    }

    #[test]
    fn decimal_matches_to_string() {
        for n in [0u64, 7, 10, 99, 1234567890, u64::MAX] {
            assert_eq!(decimal(n), n.to_string());
        }
    }

    #[test]
    fn path_info_is_percent_decoded_as_latin1() {
        let r = Request::new("GET", "/health%63heck?x=%41");
        assert_eq!(r.raw_path(), "/health%63heck");
        assert_eq!(r.path_info(), "/healthcheck");
        assert_eq!(r.query(), Some("x=%41"));
        assert_eq!(percent_decode("/a%zz%4"), "/a%zz%4");
        assert_eq!(percent_decode("%C3%A9"), "\u{c3}\u{a9}");
    }

    #[test]
    fn client_ip_prefers_cluster_header_then_forwarded_for() {
        let mut r = Request::new("GET", "/");
        assert_eq!(r.client_ip(), "127.0.0.1");
        for ip in [
            "0.0.0.0",
            "10.0.100.255",
            "192.168.9.99",
            "::1",
            "fe80::1:2",
        ] {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            assert_eq!(ip_text(ip), ip.to_string());
        }
        r.headers.append("X-Forwarded-For", " 10.0.0.1, 10.0.0.9");
        assert_eq!(r.client_ip(), "10.0.0.1");
        r.headers.append("X-Cluster-Client-Ip", "10.0.0.2");
        assert_eq!(r.client_ip(), "10.0.0.2");
    }
}
