//! `dlo` (`egg:swift#dlo`, Swift's `DynamicLargeObject`): an object whose
//! metadata has `X-Object-Manifest: <container>/<prefix>` is served as the
//! concatenation of the objects in `<container>` whose names start with
//! `<prefix>`, in listing order. A GET or HEAD of it lists the segments
//! (JSON listings, a page of `container_listing_limit` at a time), answers
//! with their total length and an ETag made of theirs, honours one byte
//! range and the conditional headers against that ETag, and streams the
//! segments one after the other, each fetched as the client (the client's
//! `swift.authorize` applies). `?multipart-manifest=get` gets the manifest
//! itself; a PUT with a malformed `X-Object-Manifest` is refused.
//!
//! Segments are streamed chunk by chunk from the segment GETs' own
//! response streams: nothing holds a whole segment. This module does not
//! write manifests or segments, and registers nothing in `/info` (Swift's
//! dlo registers nothing either).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::Bytes;
use md5::{Digest, Md5};
use swift_common::config::Conf;
use swift_common::http::message::CompletionHooks;
use swift_common::http::quote::{
    parse_qsl, quote, quote_bytes_into, unquote_to_bytes, wsgi_bytes, wsgi_quote, wsgi_to_str,
};
use swift_common::http::{
    BodyStream, Completion, Env, Headers, Reply, Request, Response, ResponseBody, Service, decimal,
};
use swift_common::logging::{Level, Logger};
use swift_common::time::unix_now;

use crate::conditional::{ByteRanges, Length, Offset, conditional_status, normalize_etag};
use crate::context::client_subrequest;
use crate::pipeline::FilterContext;
use crate::swob;

/// The header telling the object server to answer a manifest whole.
const IGNORE_RANGE: &str = "X-Backend-Ignore-Range-If-Metadata-Present";
/// `swift.source` and the User-Agent suffix of dlo's subrequests.
const SOURCE: &str = "DLO";
const LISTING_AGENT: &str = "%(orig)s DLO MultipartGET";
/// SegmentedIterable prefixes its suffix with a space of its own.
const SEGMENT_AGENT: &str = "%(orig)s  DLO MultipartGET";
/// The most of a listing page read (a page of 10000 long names is a few MiB).
const MAX_LISTING_BYTES: usize = 64 << 20;
/// The most of a failed segment GET's body read for the log line.
const MAX_ERROR_BODY: usize = 64 << 10;

/// The filter's settings (`[filter:dlo]`, or the proxy's section for
/// clusters upgraded from the days dlo lived in the proxy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Seconds a GET may take before the rest of it is cut off.
    pub max_get_time: i64,
    /// Segments served before rate limiting starts.
    pub rate_limit_after_segment: i64,
    /// Segments per second once it has (0: no limit).
    pub rate_limit_segments_per_sec: i64,
    /// swift.conf's `container_listing_limit`: a shorter page is the last.
    pub listing_limit: i64,
}

impl Settings {
    const KEYS: [&'static str; 3] = [
        "max_get_time",
        "rate_limit_after_segment",
        "rate_limit_segments_per_sec",
    ];

    /// Read the settings from the filter's conf; when it sets none of
    /// them, from the proxy app's conf (`_populate_config_from_old_location`).
    pub fn from_conf(conf: &Conf, app_conf: &Conf, listing_limit: i64) -> Result<Settings, String> {
        let src = if Self::KEYS.iter().any(|k| conf.get(k).is_some()) {
            conf
        } else {
            app_conf
        };
        let text = |e: swift_common::config::ConfigError| e.to_string();
        Ok(Settings {
            max_get_time: src.get_parsed("max_get_time", 86400).map_err(text)?,
            rate_limit_after_segment: src
                .get_parsed("rate_limit_after_segment", 10)
                .map_err(text)?,
            rate_limit_segments_per_sec: src
                .get_parsed("rate_limit_segments_per_sec", 1)
                .map_err(text)?,
            listing_limit,
        })
    }
}

/// The filter.
pub struct Dlo {
    next: Rc<dyn Service>,
    logger: Logger,
    settings: Settings,
}

/// `egg:swift#dlo`; reads `max_get_time`, `rate_limit_after_segment` and
/// `rate_limit_segments_per_sec`.
pub fn factory(ctx: &FilterContext<'_>, next: Rc<dyn Service>) -> Result<Rc<dyn Service>, String> {
    let settings = Settings::from_conf(
        ctx.conf,
        ctx.app.conf,
        ctx.app.swift_conf.constraints.container_listing_limit,
    )?;
    Ok(Rc::new(Dlo::new(next, ctx.logger("")?, settings)))
}

impl Dlo {
    pub fn new(next: Rc<dyn Service>, logger: Logger, settings: Settings) -> Dlo {
        Dlo {
            next,
            logger,
            settings,
        }
    }
}

/// `split_path(path, 4, 4, True)` succeeds: `/v/a/c/o`, none empty.
fn is_object_path(path_info: &str) -> bool {
    crate::constraints::split_path(path_info, 4, 4, true).is_some()
}

/// `req.params.get(name)`: the last value of `name` in the query.
fn param(req: &Request, name: &str) -> Option<String> {
    let q = req.query()?;
    parse_qsl(q)
        .into_iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// `_validate_x_object_manifest_header`: the 400 for a PUT whose
/// `X-Object-Manifest` is not `<container>/<prefix>`.
fn validate_manifest_header(headers: &Headers) -> Option<Response> {
    let value = headers.get("x-object-manifest")?;
    let ok = match value.split_once('/') {
        Some((container, prefix)) => {
            !container.is_empty()
                && !prefix.is_empty()
                && !value.contains('?')
                && !value.contains('&')
                && !prefix.starts_with('/')
        }
        None => false,
    };
    (!ok).then(|| {
        swob::html(
            400,
            "X-Object-Manifest must be in the format container/prefix",
        )
    })
}

impl Service for Dlo {
    fn call(&self, req: Request) -> Reply<'_> {
        if !is_object_path(&req.path_info()) {
            return self.next.call(req);
        }
        match &*req.method {
            "GET" | "HEAD" if param(&req, "multipart-manifest").as_deref() != Some("get") => {
                Reply::pending(self.handle_get_or_head(req))
            }
            "PUT" => match validate_manifest_header(&req.headers) {
                Some(refused) => Reply::Ready(refused),
                None => self.next.call(req),
            },
            _ => self.next.call(req),
        }
    }
}

/// One segment as the container listing names it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Segment {
    name: String,
    bytes: u128,
    hash: String,
}

/// A listing page's JSON, as dlo reads it (`name`, `bytes`, `hash`).
fn parse_listing(body: &[u8]) -> Result<Vec<Segment>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("bad listing JSON: {e}"))?;
    let items = value
        .as_array()
        .ok_or_else(|| "listing JSON is not a list".to_owned())?;
    items
        .iter()
        .map(|item| {
            let name = item.get("name").and_then(|v| v.as_str());
            let bytes = item.get("bytes").and_then(|v| v.as_u64());
            let hash = item.get("hash").and_then(|v| v.as_str());
            match (name, bytes, hash) {
                (Some(n), Some(b), Some(h)) => Ok(Segment {
                    name: n.to_owned(),
                    bytes: u128::from(b),
                    hash: h.to_owned(),
                }),
                _ => Err(format!("listing entry without name, bytes or hash: {item}")),
            }
        })
        .collect()
}

/// A segment to fetch: its name, and its first and last byte wanted
/// (`None`: from its start, to its end).
type SegmentPart = (String, Option<u128>, Option<u128>);

/// Why reading the large object stopped.
#[derive(Debug)]
enum Failure {
    /// Swift's `SegmentError` or `ListingIterError`: logged; before the
    /// first byte a 409, after it the end of the body.
    Segment(String),
    /// A segment GET answered 5xx (already logged): a 503 before the first
    /// byte, after it a cut connection.
    Unavailable,
    /// Anything else (a segment's stream failed, a listing was not JSON):
    /// a 500 before the first byte, after it a cut connection.
    Other(String),
}

/// Why a listing page could not be had.
enum ListingFailure {
    /// The container GET's own answer (not 2xx).
    Status(Response),
    Other(String),
}

/// The client's request, as far as the large object's reading needs it.
struct ClientRequest {
    env: Env,
    headers: Headers,
    method: String,
    /// `PATH_INFO`; [`ClientRequest::path`] quotes it for messages (only
    /// a manifest or an error needs it).
    path_info: String,
    /// WSGI strings.
    version: String,
    account: String,
}

impl ClientRequest {
    /// swob's `req.path`: the quoted path, for messages.
    fn path(&self) -> String {
        wsgi_quote(&self.path_info, "/")
    }
}

/// Swift's `EventletRateLimiter` with a 5 s buffer.
struct RateLimiter {
    max_rate: i64,
    running_time_ms: f64,
}

impl RateLimiter {
    const RATE_BUFFER_MS: f64 = 5000.0;

    async fn wait(&mut self) {
        if self.max_rate <= 0 {
            return;
        }
        let per_request = 1000.0 / self.max_rate as f64;
        let now = unix_now() * 1000.0;
        if now - self.running_time_ms > Self::RATE_BUFFER_MS {
            self.running_time_ms = now;
        }
        if now < self.running_time_ms {
            let pause = (self.running_time_ms - now) / 1000.0;
            self.running_time_ms += per_request;
            tokio::time::sleep(std::time::Duration::from_secs_f64(pause)).await;
        } else {
            self.running_time_ms += per_request;
        }
    }
}

/// The segment being read.
struct Current {
    /// Its quoted path (`seg_req.path`).
    path: String,
    body: ResponseBody,
    /// The MD5 of what was read, when the whole segment was asked for and
    /// it has an ETag to check it against.
    hash: Option<Md5>,
    read: u64,
    content_length: Option<u64>,
    etag: String,
    /// The segment response's own (its access log line): run when it has
    /// been read, or dropped unread.
    hooks: CompletionHooks,
    /// Bytes read of it, for the hooks.
    delivered: u64,
}

impl Drop for Current {
    fn drop(&mut self) {
        self.hooks.fire(&Completion {
            bytes_sent: self.delivered,
            complete: false,
        });
    }
}

/// The next piece of a response body.
async fn body_chunk(body: &mut ResponseBody) -> Option<io::Result<Bytes>> {
    match body {
        ResponseBody::Empty => None,
        ResponseBody::Full(_) => match std::mem::replace(body, ResponseBody::Empty) {
            ResponseBody::Full(b) => Some(Ok(b)),
            _ => None,
        },
        ResponseBody::Stream(s) => std::future::poll_fn(|cx| s.as_mut().poll_chunk(cx)).await,
    }
}

/// Read a whole (small) response body, at most `limit` bytes of it, then
/// run the response's hooks as the server would have.
async fn read_body(resp: Response, limit: usize) -> io::Result<Vec<u8>> {
    let Response {
        body: mut b,
        mut hooks,
        ..
    } = resp;
    let mut out = Vec::new();
    let result = loop {
        match body_chunk(&mut b).await {
            None => break Ok(()),
            Some(Err(e)) => break Err(e),
            Some(Ok(piece)) if out.len() + piece.len() > limit => {
                break Err(io::Error::other(format!(
                    "response body over {limit} bytes"
                )));
            }
            Some(Ok(piece)) => out.extend_from_slice(&piece),
        }
    };
    hooks.fire(&Completion {
        bytes_sent: out.len() as u64,
        complete: result.is_ok(),
    });
    result.map(|()| out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What GetContext's `_segment_listing_iterator`, the `RateLimitedIterator`
/// around it and `SegmentedIterable` do together: list, fetch and stream
/// the segments, checking each against its headers, the whole against the
/// expected length and `max_get_time`.
struct Segmented {
    next: Rc<dyn Service>,
    logger: Logger,
    client: ClientRequest,
    container: Vec<u8>,
    prefix: String,
    listing_limit: i64,
    // The listing iterator's position.
    page: std::vec::IntoIter<Segment>,
    page_len: usize,
    page_last: Option<String>,
    first_byte: i128,
    last_byte: i128,
    listing_done: bool,
    // RateLimitedIterator.
    limit_after: i64,
    limiter: RateLimiter,
    // _coalesce_requests: the listing is read one segment ahead.
    pending: Option<SegmentPart>,
    requests_done: bool,
    deferred: Option<Failure>,
    current: Option<Current>,
    /// The path of the segment the last chunk came from.
    last_path: String,
    // _byte_counting_iter.
    bytes_left: Option<i128>,
    too_many: Option<String>,
    // _time_limited_iter.
    max_get_time: i64,
    started: Option<f64>,
    last_chunk_at: Option<f64>,
    // What the client is sent.
    expected: Option<u128>,
    sent: u128,
    peeked: Option<Bytes>,
    finished: bool,
}

impl Segmented {
    fn log(&self, level: Level, msg: std::fmt::Arguments<'_>) {
        self.logger
            .log_with(level, msg, self.client.env.trans_id.as_deref(), None);
    }

    /// `_get_container_listing`: one page of the segments container.
    async fn listing(&mut self, marker: Option<&str>) -> Result<Vec<Segment>, ListingFailure> {
        listing_page(
            &self.next,
            &mut self.client,
            &self.container,
            &self.prefix,
            marker,
        )
        .await
    }

    /// `_segment_listing_iterator`: the next segment to fetch and the part
    /// of it wanted (`None` ends: the whole of it), paging on.
    async fn next_segment(&mut self) -> Result<Option<SegmentPart>, Failure> {
        loop {
            if self.listing_done {
                return Ok(None);
            }
            for seg in self.page.by_ref() {
                let len = seg.bytes as i128;
                if self.first_byte >= len {
                    self.first_byte = (self.first_byte - len).max(-1);
                    self.last_byte = (self.last_byte - len).max(-1);
                    continue;
                }
                if self.last_byte < 0 {
                    self.listing_done = true;
                    return Ok(None);
                }
                let first = (self.first_byte > 0).then_some(self.first_byte as u128);
                let last = (self.last_byte < len - 1).then_some(self.last_byte as u128);
                self.first_byte = (self.first_byte - len).max(-1);
                self.last_byte = (self.last_byte - len).max(-1);
                return Ok(Some((seg.name, first, last)));
            }
            if (self.page_len as i64) < self.listing_limit || self.last_byte < 0 {
                self.listing_done = true;
                return Ok(None);
            }
            let marker = self.page_last.take().unwrap_or_default();
            match self.listing(Some(&marker)).await {
                Ok(segments) => self.set_page(segments),
                Err(ListingFailure::Status(resp)) => {
                    self.listing_done = true;
                    return Err(Failure::Segment(format!(
                        "Got status {} listing container /{}/{}",
                        resp.status,
                        wsgi_to_str(&self.client.account).unwrap_or_default(),
                        String::from_utf8_lossy(&self.container)
                    )));
                }
                Err(ListingFailure::Other(msg)) => {
                    self.listing_done = true;
                    return Err(Failure::Other(msg));
                }
            }
        }
    }

    fn set_page(&mut self, segments: Vec<Segment>) {
        self.page_len = segments.len();
        self.page_last = segments.last().map(|s| s.name.clone());
        self.page = segments.into_iter();
    }

    /// `RateLimitedIterator`: the first `rate_limit_after_segment` segments
    /// go at once, the rest at the configured rate.
    async fn rate_limit(&mut self) {
        if self.limit_after > 0 {
            self.limit_after -= 1;
        } else {
            self.limiter.wait().await;
        }
    }

    /// `_coalesce_requests` (which never coalesces for dlo: it gives no
    /// sizes): the next segment to fetch, once the one after it has been
    /// taken from the (rate-limited) listing; a listing error comes after
    /// the segment before it.
    async fn next_request(&mut self) -> Result<Option<SegmentPart>, Failure> {
        if let Some(e) = self.deferred.take() {
            return Err(e);
        }
        while !self.requests_done {
            match self.next_segment().await {
                Ok(Some(part)) => {
                    self.rate_limit().await;
                    if let Some(prev) = self.pending.replace(part) {
                        return Ok(Some(prev));
                    }
                }
                Ok(None) => self.requests_done = true,
                Err(Failure::Segment(msg)) => {
                    self.requests_done = true;
                    match self.pending.take() {
                        Some(prev) => {
                            self.deferred = Some(Failure::Segment(msg));
                            return Ok(Some(prev));
                        }
                        None => return Err(Failure::Segment(msg)),
                    }
                }
                Err(e) => {
                    self.requests_done = true;
                    return Err(e);
                }
            }
        }
        Ok(self.pending.take())
    }

    /// GET one segment (`?multipart-manifest=get`, as the client, with its
    /// part as a Range) and check its status.
    async fn open_segment(
        &mut self,
        name: &str,
        first: Option<u128>,
        last: Option<u128>,
    ) -> Result<Current, Failure> {
        let version = wsgi_bytes(&self.client.version);
        let account = wsgi_bytes(&self.client.account);
        let mut raw = Vec::with_capacity(name.len() + 64);
        for part in [
            &version[..],
            &account[..],
            &self.container[..],
            name.as_bytes(),
        ] {
            raw.push(b'/');
            raw.extend_from_slice(part);
        }
        let mut path = String::with_capacity(raw.len() + 16);
        quote_bytes_into(&mut path, &raw, "/");
        let target = format!("{path}?multipart-manifest=get");
        let mut sub = client_subrequest(
            &mut self.client.env,
            &self.client.headers,
            "GET",
            &target,
            &Headers::new(),
            SEGMENT_AGENT,
            SOURCE,
        );
        for h in ["X-Auth-Token", "X-Open-Expired"] {
            if let Some(v) = self.client.headers.get(h) {
                sub.headers.set(h, v.to_owned());
            }
        }
        let first = first.unwrap_or(0);
        let ranged = first != 0 || last.is_some();
        if ranged {
            let last = last.map(|l| l.to_string()).unwrap_or_default();
            sub.headers.set("Range", format!("bytes={first}-{last}"));
        }
        let next = self.next.clone();
        let resp = next.call(sub).resolve().await;
        if !(200..300).contains(&resp.status) {
            let status = resp.status;
            let body = read_body(resp, MAX_ERROR_BODY).await.unwrap_or_default();
            let body = String::from_utf8_lossy(&body);
            let shown = if body.chars().count() <= 60 {
                body.into_owned()
            } else {
                format!("{}...", body.chars().take(57).collect::<String>())
            };
            let msg = format!(
                "While processing manifest {}, got {status} ({shown}) while retrieving {path}",
                self.client.path()
            );
            if status >= 500 {
                self.log(Level::Error, format_args!("{msg}"));
                return Err(Failure::Unavailable);
            }
            return Err(Failure::Segment(msg));
        }
        let etag = resp
            .headers
            .get("etag")
            .map(|e| e.replace('"', ""))
            .unwrap_or_default();
        let content_length = resp
            .headers
            .get("content-length")
            .and_then(|v| v.trim().parse().ok());
        let Response { body, hooks, .. } = resp;
        Ok(Current {
            path,
            body,
            hash: (!etag.is_empty() && !ranged).then(Md5::new),
            read: 0,
            content_length,
            etag,
            hooks,
            delivered: 0,
        })
    }

    /// `_requests_to_bytes_iter`: the next chunk of segment data.
    async fn raw_next(&mut self) -> Result<Option<Bytes>, Failure> {
        loop {
            if let Some(cur) = self.current.as_mut() {
                match body_chunk(&mut cur.body).await {
                    Some(Ok(chunk)) if chunk.is_empty() => continue,
                    Some(Ok(chunk)) => {
                        cur.delivered += chunk.len() as u64;
                        if let Some(h) = cur.hash.as_mut() {
                            h.update(&chunk);
                            cur.read += chunk.len() as u64;
                        }
                        return Ok(Some(chunk));
                    }
                    Some(Err(e)) => {
                        let path = cur.path.clone();
                        self.current = None;
                        return Err(Failure::Other(format!("reading segment {path}: {e}")));
                    }
                    None => {
                        let Some(mut cur) = self.current.take() else {
                            continue;
                        };
                        cur.hooks.fire(&Completion {
                            bytes_sent: cur.delivered,
                            complete: true,
                        });
                        self.check_segment(&mut cur)?;
                        continue;
                    }
                }
            }
            let Some((name, first, last)) = self.next_request().await? else {
                return Ok(None);
            };
            let cur = self.open_segment(&name, first, last).await?;
            self.last_path = cur.path.clone();
            self.current = Some(cur);
        }
    }

    /// A whole segment read: its length and MD5 agree with its headers.
    fn check_segment(&self, cur: &mut Current) -> Result<(), Failure> {
        let Some(hash) = cur.hash.take() else {
            return Ok(());
        };
        if Some(cur.read) != cur.content_length {
            return Err(Failure::Segment(format!(
                "Bad response length for {} as part of {}: headers had {}, but response length was actually {}",
                cur.path,
                self.client.path(),
                cur.content_length
                    .map_or_else(|| "None".to_owned(), |l| l.to_string()),
                cur.read
            )));
        }
        let actual = hex(&hash.finalize());
        if actual != cur.etag {
            return Err(Failure::Segment(format!(
                "Bad MD5 checksum for {} as part of {}: headers had {}, but object MD5 was actually {actual}",
                cur.path,
                self.client.path(),
                cur.etag
            )));
        }
        Ok(())
    }

    /// `_time_limited_iter` over `_byte_counting_iter`.
    async fn pull(&mut self) -> Result<Option<Bytes>, Failure> {
        let started = *self.started.get_or_insert_with(unix_now);
        if let Some(at) = self.last_chunk_at.take()
            && at - started > self.max_get_time as f64
        {
            return Err(Failure::Segment(format!(
                "While processing manifest {}, max LO GET time of {}s exceeded",
                self.client.path(),
                self.max_get_time
            )));
        }
        if let Some(msg) = self.too_many.take() {
            return Err(Failure::Segment(msg));
        }
        match self.raw_next().await? {
            None => match self.bytes_left {
                Some(left) if left != 0 => Err(Failure::Segment(format!(
                    "Expected another {left} bytes for {}; closing connection",
                    self.client.path()
                ))),
                _ => Ok(None),
            },
            Some(mut chunk) => {
                if let Some(left) = self.bytes_left.as_mut() {
                    let n = chunk.len() as i128;
                    if *left >= n {
                        *left -= n;
                    } else {
                        chunk.truncate((*left).max(0) as usize);
                        *left -= n;
                        self.too_many = Some(format!(
                            "Too many bytes for {}; truncating in {} with {} bytes left",
                            self.client.path(),
                            self.last_path,
                            -*left
                        ));
                    }
                }
                self.last_chunk_at = Some(unix_now());
                Ok(Some(chunk))
            }
        }
    }

    /// `SegmentedIterable._internal_iter` once the first chunk is out, with
    /// catch_errors' byte count after it: a segment or listing error ends
    /// the body (logged); a body shorter than its Content-Length, or any
    /// other failure, is an error so the server cuts the connection.
    async fn next_for_client(&mut self) -> Option<io::Result<Bytes>> {
        if let Some(chunk) = self.peeked.take() {
            self.sent += chunk.len() as u128;
            return Some(Ok(chunk));
        }
        if self.finished {
            return None;
        }
        match self.pull().await {
            Ok(Some(chunk)) => {
                self.sent += chunk.len() as u128;
                Some(Ok(chunk))
            }
            Ok(None) => self.finish(None),
            Err(Failure::Segment(msg)) => {
                self.log(Level::Error, format_args!("{msg}"));
                self.finish(None)
            }
            Err(Failure::Unavailable) => self.finish(Some(format!(
                "a segment of {} is unavailable",
                self.client.path()
            ))),
            Err(Failure::Other(msg)) => {
                self.log(
                    Level::Error,
                    format_args!("While processing manifest {}: {msg}", self.client.path()),
                );
                self.finish(Some(msg))
            }
        }
    }

    fn finish(&mut self, error: Option<String>) -> Option<io::Result<Bytes>> {
        self.finished = true;
        self.current = None;
        if let Some(e) = error {
            return Some(Err(io::Error::other(e)));
        }
        match self.expected {
            Some(expected) if self.sent < expected => Some(Err(io::Error::other(format!(
                "Expected another {} bytes",
                expected - self.sent
            )))),
            _ => None,
        }
    }
}

/// `_get_container_listing`.
async fn listing_page(
    next: &Rc<dyn Service>,
    client: &mut ClientRequest,
    container: &[u8],
    prefix: &str,
    marker: Option<&str>,
) -> Result<Vec<Segment>, ListingFailure> {
    let mut raw = Vec::new();
    for part in [
        &wsgi_bytes(&client.version)[..],
        &wsgi_bytes(&client.account)[..],
        container,
    ] {
        raw.push(b'/');
        raw.extend_from_slice(part);
    }
    let mut target = String::with_capacity(raw.len() + prefix.len() + 16);
    quote_bytes_into(&mut target, &raw, "/");
    target.push_str("?prefix=");
    target.push_str(&quote(prefix, "/"));
    if let Some(m) = marker.filter(|m| !m.is_empty()) {
        target.push_str("&marker=");
        target.push_str(&quote(m, "/"));
    }
    let mut sub = client_subrequest(
        &mut client.env,
        &client.headers,
        "GET",
        &target,
        &Headers::new(),
        LISTING_AGENT,
        SOURCE,
    );
    if let Some(token) = client.headers.get("x-auth-token") {
        sub.headers.set("X-Auth-Token", token.to_owned());
    }
    let resp = next.clone().call(sub).resolve().await;
    if !(200..300).contains(&resp.status) {
        return Err(ListingFailure::Status(resp));
    }
    let body = read_body(resp, MAX_LISTING_BYTES)
        .await
        .map_err(|e| ListingFailure::Other(format!("reading the listing of {target}: {e}")))?;
    parse_listing(&body).map_err(ListingFailure::Other)
}

/// One step of [`DloBody`]: the next chunk, and the state back.
type Step = (Option<io::Result<Bytes>>, Box<Segmented>);

/// The body stream the client gets: one future at a time over the owned
/// [`Segmented`] state (each future holds the state while it runs).
struct DloBody {
    state: Option<Box<Segmented>>,
    running: Option<Pin<Box<dyn Future<Output = Step>>>>,
}

impl BodyStream for DloBody {
    fn poll_chunk(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<Bytes>>> {
        let this = &mut *self;
        if this.running.is_none() {
            let Some(mut state) = this.state.take() else {
                return Poll::Ready(None);
            };
            this.running = Some(Box::pin(async move {
                let item = state.next_for_client().await;
                (item, state)
            }));
        }
        let Some(fut) = this.running.as_mut() else {
            return Poll::Ready(None);
        };
        match fut.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready((item, state)) => {
                this.running = None;
                if matches!(item, Some(Ok(_))) {
                    this.state = Some(state);
                }
                Poll::Ready(item)
            }
        }
    }
}

/// The 500 Swift's catch_errors makes of an exception.
fn internal_error() -> Response {
    swob::plain(500, "An error occurred")
}

impl Dlo {
    fn log(&self, trans_id: Option<&str>, level: Level, msg: std::fmt::Arguments<'_>) {
        self.logger.log_with(level, msg, trans_id, None);
    }

    /// `GetContext.handle_request`: fetch the object (whole, if it is a
    /// manifest); a manifest's answer is the large object's.
    async fn handle_get_or_head(&self, mut req: Request) -> Response {
        let ignore = crate::controllers::container::csv_append(
            req.headers.get(IGNORE_RANGE),
            "X-Object-Manifest",
        );
        req.headers.set(IGNORE_RANGE, ignore);
        // Subrequests share the request's info cache.
        crate::context::infocache(&mut req.env);
        let path_info = req.path_info().into_owned();
        let mut segs = path_info.splitn(4, '/').skip(1);
        let version = segs.next().unwrap_or_default().to_owned();
        let account = segs.next().unwrap_or_default().to_owned();
        let client = ClientRequest {
            env: req.env.clone(),
            headers: req.headers.clone(),
            method: req.method.to_string(),
            version,
            account,
            path_info,
        };
        let resp = self.next.call(req).resolve().await;
        let Some(manifest) = resp.headers.get("x-object-manifest").map(str::to_owned) else {
            return resp;
        };
        // The manifest's own body is not wanted: dropping it closes it.
        let headers = resp.headers;
        let value = unquote_to_bytes(&wsgi_bytes(&manifest));
        self.get_or_head_response(client, headers, &value).await
    }

    /// `GetContext.get_or_head_response`.
    async fn get_or_head_response(
        &self,
        mut client: ClientRequest,
        manifest_headers: Headers,
        x_object_manifest: &[u8],
    ) -> Response {
        let trans_id = client.env.trans_id.clone();
        let Some(slash) = x_object_manifest.iter().position(|b| *b == b'/') else {
            self.log(
                trans_id.as_deref(),
                Level::Error,
                format_args!(
                    "Error: An error occurred: X-Object-Manifest of {} is not <container>/<prefix>: {:?}",
                    client.path(),
                    String::from_utf8_lossy(x_object_manifest)
                ),
            );
            return internal_error();
        };
        let container = x_object_manifest[..slash].to_vec();
        let Ok(prefix) = String::from_utf8(x_object_manifest[slash + 1..].to_vec()) else {
            self.log(
                trans_id.as_deref(),
                Level::Error,
                format_args!(
                    "Error: An error occurred: X-Object-Manifest of {} is not UTF-8",
                    client.path()
                ),
            );
            return internal_error();
        };
        let limit = self.settings.listing_limit;
        let segments = match listing_page(&self.next, &mut client, &container, &prefix, None).await
        {
            Ok(s) => s,
            Err(ListingFailure::Status(mut resp)) => {
                if client.method == "HEAD" {
                    resp.body = ResponseBody::Empty;
                    resp.headers.set("Content-Length", "0");
                }
                return resp;
            }
            Err(ListingFailure::Other(msg)) => {
                self.log(
                    trans_id.as_deref(),
                    Level::Error,
                    format_args!("Error: An error occurred: {msg}"),
                );
                return internal_error();
            }
        };
        let complete = (segments.len() as i64) < limit;
        let page_sum: u128 = segments.iter().map(|s| s.bytes).sum();

        let method = client.method.clone();
        let req_headers = client.headers.clone();
        // The part of the concatenation wanted: first and last byte
        // (the last may be -1: nothing), as the listing iterator takes them.
        let mut wanted: (i128, i128) = (0, i128::MAX);
        let mut actual_length: Option<u128> = None;
        let mut swob_length: Option<u128> = None;
        // The one range kept for swob (a 206), if any.
        let mut range: Option<ByteRanges> = None;
        let parsed = req_headers.get("range").and_then(ByteRanges::parse);
        if let Some(r) = parsed.filter(|r| r.ranges.len() == 1) {
            swob_length = Some(page_sum);
            // A suffix range needs the whole listing. Python takes [0] of
            // what may be an empty list (bytes=-0): an exception, a 500.
            let Some(&(_, range_end)) = r.ranges_for_length(Length::Infinite).first() else {
                self.log(
                    trans_id.as_deref(),
                    Level::Error,
                    format_args!(
                        "Error: An error occurred: IndexError for the Range of {}",
                        client.path()
                    ),
                );
                return internal_error();
            };
            if complete || range_end < Offset::At(page_sum) {
                let byteranges = r.ranges_for_length(Length::Bytes(page_sum));
                let Some(&(start, end)) = byteranges.first() else {
                    return range_not_satisfiable(&method, complete.then_some(page_sum));
                };
                let end = match end {
                    Offset::At(e) => e,
                    Offset::Infinite => page_sum,
                };
                wanted = (start as i128, end as i128 - 1);
                actual_length = Some(end.saturating_sub(start));
                range = Some(r);
            } else {
                // Not knowable from one page: the whole object, unranged.
                swob_length = None;
            }
        }

        let mut headers = manifest_headers;
        headers.remove("content-length");
        headers.remove("content-range");
        if let Some(l) = swob_length {
            headers.append("Content-Length", l.to_string());
        } else if complete {
            actual_length = Some(page_sum);
            headers.append("Content-Length", page_sum.to_string());
        }
        if complete {
            headers.remove("etag");
            let mut etag = Md5::new();
            for s in &segments {
                etag.update(normalize_etag(&s.hash).as_bytes());
            }
            headers.append("Etag", format!("\"{}\"", hex(&etag.finalize())));
        }
        if !headers.contains("content-type") {
            headers.append("Content-Type", swob::HTML);
        }

        let mut body = None;
        if method == "GET" {
            let mut seg = Box::new(Segmented {
                next: self.next.clone(),
                logger: self.logger.clone(),
                client,
                container,
                prefix,
                listing_limit: limit,
                page: Vec::new().into_iter(),
                page_len: 0,
                page_last: None,
                first_byte: wanted.0,
                last_byte: wanted.1,
                listing_done: false,
                limit_after: self.settings.rate_limit_after_segment,
                limiter: RateLimiter {
                    max_rate: self.settings.rate_limit_segments_per_sec,
                    running_time_ms: 0.0,
                },
                pending: None,
                requests_done: false,
                deferred: None,
                current: None,
                last_path: String::new(),
                bytes_left: actual_length.map(|l| l as i128),
                too_many: None,
                max_get_time: self.settings.max_get_time,
                started: None,
                last_chunk_at: None,
                expected: actual_length,
                sent: 0,
                peeked: None,
                finished: false,
            });
            seg.set_page(segments);
            // validate_first_segment: the first chunk, or why there is none.
            match seg.pull().await {
                Ok(Some(chunk)) => seg.peeked = Some(chunk),
                Ok(None) => {}
                Err(Failure::Segment(msg)) => {
                    seg.log(Level::Error, format_args!("{msg}"));
                    return swob::status(409);
                }
                Err(Failure::Unavailable) => {
                    let mut resp = swob::status(503);
                    resp.headers.set("Content-Type", "text/plain");
                    return resp;
                }
                Err(Failure::Other(msg)) => {
                    seg.log(
                        Level::Error,
                        format_args!("Error: An error occurred: {msg}"),
                    );
                    return internal_error();
                }
            }
            body = Some(seg);
        }
        respond(&method, &req_headers, headers, body, range)
    }
}

/// `HTTPRequestedRangeNotSatisfiable`, with the length when it is known.
fn range_not_satisfiable(method: &str, length: Option<u128>) -> Response {
    let full = swob::status(416);
    let mut resp = Response::new(416);
    resp.headers.append("Content-Type", swob::HTML);
    resp.headers.append("Accept-Ranges", "bytes");
    if let Some(l) = length {
        resp.headers.append("Content-Range", format!("bytes */{l}"));
    }
    if method == "HEAD" {
        // swob makes no body for a HEAD; the server counts the empty one.
        resp.headers.append("Content-Length", "0");
    } else if let ResponseBody::Full(b) = full.body {
        resp.headers
            .append("Content-Length", decimal(b.len() as u64));
        resp.body = ResponseBody::Full(b);
    }
    resp
}

/// swob's `Response(conditional_response=True)` for the large object: the
/// conditions (304, 412 with no body), HEAD, then the one range (206).
fn respond(
    method: &str,
    req_headers: &Headers,
    mut headers: Headers,
    body: Option<Box<Segmented>>,
    range: Option<ByteRanges>,
) -> Response {
    let mut resp = Response::new(200);
    if let Some(status) = conditional_status(req_headers, 200, &headers) {
        headers.set("Content-Length", "0");
        resp = Response::new(status);
        resp.headers = headers;
        return resp;
    }
    if method == "HEAD" {
        // swob answers a HEAD with an empty list, which the server counts.
        headers.set_default("Content-Length", "0");
        resp.headers = headers;
        return resp;
    }
    let length = headers
        .get("content-length")
        .and_then(|v| v.trim().parse::<u128>().ok());
    if let (Some(r), Some(len)) = (range, length)
        && len > 0
        && let Some(&(start, Offset::At(end))) = r.ranges_for_length(Length::Bytes(len)).first()
    {
        resp = Response::new(206);
        headers.set("Content-Length", (end - start).to_string());
        headers.append("Content-Range", format!("bytes {start}-{}/{len}", end - 1));
    }
    resp.headers = headers;
    if let Some(seg) = body {
        resp.body = ResponseBody::Stream(Box::pin(DloBody {
            state: Some(seg),
            running: None,
        }));
    }
    resp
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::{BTreeMap, HashMap};
    use std::io::Read as _;
    use std::time::Duration;

    use super::*;
    use crate::context::{AuthOutcome, Authorize};
    use crate::middleware::tests::{block_on, test_logger};

    /// What the fake does instead of serving an object normally.
    #[derive(Clone, Debug)]
    enum Trouble {
        Status(u16),
        /// Serve this many bytes, then fail the stream.
        CutAfter(usize),
        /// Claim another ETag than the data's.
        WrongEtag,
        /// Wait before answering.
        Slow(Duration),
    }

    /// A request the fake saw.
    #[derive(Debug)]
    struct Seen {
        method: String,
        target: String,
        headers: Headers,
        source: Option<String>,
        authorized_as_client: bool,
    }

    /// The rest of the pipeline: containers with JSON listings of at most
    /// `page` entries, objects streamed in `chunk`-byte pieces, ranges as
    /// the object server answers them.
    struct Fake {
        containers: RefCell<Vec<String>>,
        objects: RefCell<BTreeMap<String, (Bytes, Headers)>>,
        trouble: RefCell<HashMap<String, Trouble>>,
        seen: RefCell<Vec<Seen>>,
        page: usize,
        chunk: usize,
    }

    struct Pieces(std::collections::VecDeque<io::Result<Bytes>>);
    impl BodyStream for Pieces {
        fn poll_chunk(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<io::Result<Bytes>>> {
            Poll::Ready(self.0.pop_front())
        }
    }

    fn md5_hex(data: &[u8]) -> String {
        hex(&Md5::digest(data))
    }

    impl Fake {
        fn new(page: usize, chunk: usize) -> Rc<Fake> {
            Rc::new(Fake {
                containers: RefCell::new(Vec::new()),
                objects: RefCell::new(BTreeMap::new()),
                trouble: RefCell::new(HashMap::new()),
                seen: RefCell::new(Vec::new()),
                page,
                chunk,
            })
        }

        fn put(&self, path: &str, data: &[u8], extra: &[(&str, &str)]) {
            let container = path.rsplit_once('/').map(|x| x.0).unwrap_or_default();
            let container = container
                .splitn(5, '/')
                .take(4)
                .collect::<Vec<_>>()
                .join("/");
            if !self.containers.borrow().contains(&container) {
                self.containers.borrow_mut().push(container);
            }
            let mut h = Headers::new();
            for (k, v) in extra {
                h.append(k.to_string(), v.to_string());
            }
            self.objects
                .borrow_mut()
                .insert(path.to_owned(), (Bytes::copy_from_slice(data), h));
        }

        fn trouble(&self, path: &str, t: Trouble) {
            self.trouble.borrow_mut().insert(path.to_owned(), t);
        }

        fn seen_targets(&self) -> Vec<String> {
            self.seen
                .borrow()
                .iter()
                .map(|s| s.target.clone())
                .collect()
        }

        fn stream(&self, data: Bytes, cut: Option<usize>) -> ResponseBody {
            let end = cut.unwrap_or(data.len()).min(data.len());
            let mut pieces: std::collections::VecDeque<io::Result<Bytes>> = data
                .slice(..end)
                .chunks(self.chunk)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            if cut.is_some() {
                pieces.push_back(Err(io::Error::other("backend went away")));
            }
            ResponseBody::Stream(Box::pin(Pieces(pieces)))
        }

        fn listing(&self, container: &str, query: &[(String, String)]) -> Response {
            if !self.containers.borrow().iter().any(|c| c == container) {
                return swob::status(404);
            }
            let get = |k: &str| {
                query
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| wsgi_to_str(v).unwrap_or_default())
                    .unwrap_or_default()
            };
            let (prefix, marker) = (get("prefix"), get("marker"));
            let objects = self.objects.borrow();
            let entries: Vec<serde_json::Value> = objects
                .iter()
                .filter_map(|(path, (data, _))| {
                    let name = path.strip_prefix(&format!("{container}/"))?;
                    (name.starts_with(&prefix) && name > marker.as_str()).then(|| {
                        serde_json::json!({
                            "name": name, "bytes": data.len(), "hash": md5_hex(data),
                            "content_type": "application/octet-stream",
                        })
                    })
                })
                .take(self.page)
                .collect();
            Response::with_body(
                200,
                "application/json; charset=utf-8",
                serde_json::to_vec(&entries).unwrap(),
            )
        }

        async fn answer(&self, req: Request) -> Response {
            let path = wsgi_to_str(&req.path_info()).unwrap();
            let query = parse_qsl(req.query().unwrap_or(""));
            self.seen.borrow_mut().push(Seen {
                method: req.method.to_string(),
                target: req.target.clone(),
                headers: req.headers.clone(),
                source: req.env.source.clone(),
                authorized_as_client: req.env.ext.get::<Authorize>().is_some(),
            });
            if req.method == "PUT" {
                return Response::new(201);
            }
            if path.split('/').count() == 4 {
                return self.listing(&path, &query);
            }
            let trouble = self.trouble.borrow().get(&path).cloned();
            if let Some(Trouble::Slow(d)) = trouble {
                tokio::time::sleep(d).await;
            }
            if let Some(Trouble::Status(s)) = trouble {
                return swob::status(s);
            }
            let Some((data, extra)) = self.objects.borrow().get(&path).cloned() else {
                return swob::status(404);
            };
            let mut resp = Response::new(200);
            resp.headers
                .append("Content-Type", "application/octet-stream");
            let etag = match trouble {
                Some(Trouble::WrongEtag) => md5_hex(b"something else"),
                _ => md5_hex(&data),
            };
            resp.headers.append("Etag", etag);
            resp.headers
                .append("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT");
            for (k, v) in extra.iter() {
                resp.headers.append(k.to_owned(), v.to_owned());
            }
            let ignore = extra.contains("x-object-manifest")
                && req
                    .headers
                    .get("x-backend-ignore-range-if-metadata-present")
                    .is_some_and(|v| {
                        v.split(',')
                            .any(|h| h.eq_ignore_ascii_case("x-object-manifest"))
                    });
            let mut body = data.clone();
            if let Some(r) = req.headers.get("range").and_then(ByteRanges::parse)
                && !ignore
            {
                match r
                    .ranges_for_length(Length::Bytes(data.len() as u128))
                    .first()
                {
                    Some(&(s, Offset::At(e))) => {
                        resp = Response {
                            status: 206,
                            reason: "Partial Content".into(),
                            ..resp
                        };
                        resp.headers.append(
                            "Content-Range",
                            format!("bytes {s}-{}/{}", e - 1, data.len()),
                        );
                        body = data.slice(s as usize..e as usize);
                    }
                    _ => return swob::status(416),
                }
            }
            resp.headers
                .append("Content-Length", body.len().to_string());
            if req.method == "GET" {
                let cut = match trouble {
                    Some(Trouble::CutAfter(n)) => Some(n),
                    _ => None,
                };
                resp.body = self.stream(body, cut);
            }
            resp
        }
    }

    struct FakeService(Rc<Fake>);
    impl Service for FakeService {
        fn call(&self, req: Request) -> Reply<'_> {
            Reply::pending(self.0.answer(req))
        }
    }

    fn settings() -> Settings {
        Settings {
            max_get_time: 86400,
            rate_limit_after_segment: 10,
            rate_limit_segments_per_sec: 0,
            listing_limit: 10000,
        }
    }

    fn dlo_with(fake: &Rc<Fake>, settings: Settings, logger: Logger) -> Dlo {
        Dlo::new(Rc::new(FakeService(fake.clone())), logger, settings)
    }

    /// The manifest `/v1/a/c/man` over `/v1/a/segs/p/<n>` for each piece.
    fn cluster(pieces: &[&[u8]], page: usize) -> Rc<Fake> {
        let fake = Fake::new(page, 4);
        for (i, p) in pieces.iter().enumerate() {
            fake.put(&format!("/v1/a/segs/p/{i:03}"), p, &[]);
        }
        fake.put("/v1/a/segs/other", b"not a segment", &[]);
        fake.put(
            "/v1/a/c/man",
            b"manifest body",
            &[
                ("X-Object-Manifest", "segs/p/"),
                ("X-Object-Meta-Color", "blue"),
            ],
        );
        fake
    }

    fn get(path: &str, headers: &[(&str, &str)]) -> Request {
        let mut req = Request::new("GET", path);
        for (k, v) in headers {
            req.headers.append(k.to_string(), v.to_string());
        }
        req
    }

    /// The body and how its stream ended (`Some`: an error, the cut).
    fn read_all(resp: Response) -> (Vec<u8>, Option<String>) {
        block_on(async move {
            let mut body = resp.body;
            let mut out = Vec::new();
            while let Some(piece) = body_chunk(&mut body).await {
                match piece {
                    Ok(b) => out.extend_from_slice(&b),
                    Err(e) => return (out, Some(e.to_string())),
                }
            }
            (out, None)
        })
    }

    fn call(dlo: &Dlo, req: Request) -> Response {
        block_on(dlo.call(req).resolve())
    }

    const PIECES: [&[u8]; 4] = [b"aaaaaaaaaa", b"bbbbbbbbbb", b"ccccc", b"dddddddddddd"];

    fn concatenated() -> Vec<u8> {
        PIECES.concat()
    }

    fn dlo_etag(pieces: &[&[u8]]) -> String {
        let joined: String = pieces.iter().map(|p| md5_hex(p)).collect();
        format!("\"{}\"", md5_hex(joined.as_bytes()))
    }

    #[test]
    fn a_manifest_is_served_as_its_segments_concatenated() {
        let fake = cluster(&PIECES, 100);
        let dlo = dlo_with(&fake, settings(), test_logger());
        let mut req = get(
            "/v1/a/c/man",
            &[
                ("X-Auth-Token", "tok"),
                ("User-Agent", "curl/8"),
                ("Referer", "r"),
            ],
        );
        req.env.ext.insert(Authorize(Rc::new(|_| {
            Box::pin(async { AuthOutcome::allowed(false) })
        })));
        let resp = call(&dlo, req);
        assert_eq!(resp.status, 200);
        assert_eq!(resp.headers.get("content-length"), Some("37"));
        assert_eq!(
            resp.headers.get("etag").map(str::to_owned),
            Some(dlo_etag(&PIECES))
        );
        assert_eq!(resp.headers.get("x-object-meta-color"), Some("blue"));
        assert_eq!(resp.headers.get("x-object-manifest"), Some("segs/p/"));
        assert_eq!(read_all(resp), (concatenated(), None));
        let seen = fake.seen.borrow();
        // The manifest GET asks for the whole object.
        assert_eq!(
            seen[0]
                .headers
                .get("x-backend-ignore-range-if-metadata-present"),
            Some("X-Object-Manifest")
        );
        let listing = &seen[1];
        assert_eq!(listing.target, "/v1/a/segs?prefix=p/");
        assert_eq!(listing.source.as_deref(), Some("DLO"));
        assert_eq!(
            listing.headers.get("user-agent"),
            Some("curl/8 DLO MultipartGET")
        );
        assert_eq!(listing.headers.get("x-auth-token"), Some("tok"));
        assert_eq!(listing.headers.get("referer"), Some("r"));
        assert!(listing.authorized_as_client);
        let segs: Vec<&Seen> = seen[2..].iter().collect();
        assert_eq!(segs.len(), 4);
        assert_eq!(segs[0].target, "/v1/a/segs/p/000?multipart-manifest=get");
        for s in &segs {
            assert_eq!(s.method, "GET");
            assert!(s.authorized_as_client, "segments are fetched as the client");
            assert_eq!(s.source.as_deref(), Some("DLO"));
            assert_eq!(
                s.headers.get("user-agent"),
                Some("curl/8  DLO MultipartGET")
            );
            assert_eq!(s.headers.get("x-auth-token"), Some("tok"));
            assert!(s.headers.get("range").is_none());
        }
    }

    #[test]
    fn head_lists_but_fetches_no_segment() {
        let fake = cluster(&PIECES, 100);
        let dlo = dlo_with(&fake, settings(), test_logger());
        let resp = call(&dlo, Request::new("HEAD", "/v1/a/c/man"));
        assert_eq!(resp.status, 200);
        assert_eq!(resp.headers.get("content-length"), Some("37"));
        assert!(matches!(resp.body, ResponseBody::Empty));
        assert_eq!(fake.seen.borrow().len(), 2);
    }

    #[test]
    fn other_requests_pass_through() {
        let fake = cluster(&PIECES, 100);
        fake.put("/v1/a/c/plain", b"plain", &[]);
        let dlo = dlo_with(&fake, settings(), test_logger());
        let resp = call(&dlo, get("/v1/a/c/plain", &[]));
        assert_eq!(read_all(resp).0, b"plain");
        let resp = call(&dlo, get("/v1/a/c/man?multipart-manifest=get", &[]));
        assert_eq!(resp.headers.get("content-length"), Some("13"));
        assert_eq!(read_all(resp).0, b"manifest body");
        let resp = call(&dlo, get("/v1/a/segs", &[]));
        assert_eq!(resp.status, 200);
        // Neither a listing nor a segment was asked for.
        assert_eq!(fake.seen.borrow().len(), 3);
    }

    #[test]
    fn listings_are_paged_and_an_incomplete_one_gives_no_length_or_etag() {
        let pieces: Vec<Vec<u8>> = (0..7u8).map(|i| vec![b'a' + i; 3 + i as usize]).collect();
        let refs: Vec<&[u8]> = pieces.iter().map(|p| &p[..]).collect();
        let fake = cluster(&refs, 3);
        let mut s = settings();
        s.listing_limit = 3;
        let dlo = dlo_with(&fake, s, test_logger());
        let resp = call(&dlo, get("/v1/a/c/man", &[("Range", "bytes=0-1000")]));
        // A range that does not fit the first page is ignored.
        assert_eq!(resp.status, 200);
        assert!(resp.headers.get("content-length").is_none());
        assert_eq!(
            resp.headers.get("etag"),
            Some(md5_hex(b"manifest body").as_str())
        );
        assert_eq!(read_all(resp), (refs.concat(), None));
        let listings: Vec<String> = fake
            .seen_targets()
            .into_iter()
            .filter(|t| t.starts_with("/v1/a/segs?"))
            .collect();
        assert_eq!(
            listings,
            [
                "/v1/a/segs?prefix=p/",
                "/v1/a/segs?prefix=p/&marker=p/002",
                "/v1/a/segs?prefix=p/&marker=p/005",
            ]
        );
        // A range inside the first page is served.
        let resp = call(&dlo, get("/v1/a/c/man", &[("Range", "bytes=2-5")]));
        assert_eq!(resp.status, 206);
        assert_eq!(resp.headers.get("content-range"), Some("bytes 2-5/12"));
        assert_eq!(read_all(resp).0, b"abbb");
    }

    #[test]
    fn single_ranges_fetch_only_the_segments_they_need() {
        let fake = cluster(&PIECES, 100);
        let dlo = dlo_with(&fake, settings(), test_logger());
        let all = concatenated();
        let resp = call(&dlo, get("/v1/a/c/man", &[("Range", "bytes=8-21")]));
        assert_eq!(resp.status, 206);
        assert_eq!(resp.headers.get("content-range"), Some("bytes 8-21/37"));
        assert_eq!(resp.headers.get("content-length"), Some("14"));
        assert_eq!(read_all(resp), (all[8..22].to_vec(), None));
        let seg_ranges: Vec<(String, Option<String>)> = fake
            .seen
            .borrow()
            .iter()
            .filter(|s| s.target.contains("multipart-manifest"))
            .map(|s| (s.target.clone(), s.headers.get("range").map(str::to_owned)))
            .collect();
        assert_eq!(
            seg_ranges,
            [
                (
                    "/v1/a/segs/p/000?multipart-manifest=get".into(),
                    Some("bytes=8-".into())
                ),
                ("/v1/a/segs/p/001?multipart-manifest=get".into(), None),
                (
                    "/v1/a/segs/p/002?multipart-manifest=get".into(),
                    Some("bytes=0-1".into())
                ),
            ]
        );
        let resp = call(&dlo, get("/v1/a/c/man", &[("Range", "bytes=-5")]));
        assert_eq!(resp.status, 206);
        assert_eq!(read_all(resp).0, all[32..].to_vec());
        // Several ranges: the whole object, as Swift's dlo does.
        let resp = call(&dlo, get("/v1/a/c/man", &[("Range", "bytes=0-1,5-6")]));
        assert_eq!(resp.status, 200);
        assert_eq!(read_all(resp).0, all);
    }

    #[test]
    fn unsatisfiable_ranges() {
        let fake = cluster(&PIECES, 100);
        let dlo = dlo_with(&fake, settings(), test_logger());
        let resp = call(&dlo, get("/v1/a/c/man", &[("Range", "bytes=37-40")]));
        assert_eq!(resp.status, 416);
        assert_eq!(resp.headers.get("content-range"), Some("bytes */37"));
        assert_eq!(resp.headers.get("accept-ranges"), Some("bytes"));
        assert!(resp.headers.get("etag").is_none());
        let mut head = get("/v1/a/c/man", &[("Range", "bytes=37-40")]);
        head.method = "HEAD".into();
        let resp = call(&dlo, head);
        assert_eq!(resp.status, 416);
        assert_eq!(resp.headers.get("content-length"), Some("0"));
        // Python indexes an empty list for bytes=-0: catch_errors' 500.
        let resp = call(&dlo, get("/v1/a/c/man", &[("Range", "bytes=-0")]));
        assert_eq!(resp.status, 500);
    }

    #[test]
    fn conditions_are_checked_against_the_large_objects_etag() {
        let fake = cluster(&PIECES, 100);
        let dlo = dlo_with(&fake, settings(), test_logger());
        let etag = dlo_etag(&PIECES);
        for method in ["GET", "HEAD"] {
            let mut req = get("/v1/a/c/man", &[("If-None-Match", &etag)]);
            req.method = method.to_owned().into();
            let resp = call(&dlo, req);
            assert_eq!(resp.status, 304, "{method}");
            assert_eq!(resp.headers.get("content-length"), Some("0"));
            assert_eq!(read_all(resp).0, b"");
            let mut req = get("/v1/a/c/man", &[("If-Match", "\"nope\"")]);
            req.method = method.to_owned().into();
            assert_eq!(call(&dlo, req).status, 412, "{method}");
            let mut req = get("/v1/a/c/man", &[("If-Match", &etag[1..33])]);
            req.method = method.to_owned().into();
            assert_eq!(call(&dlo, req).status, 200, "{method}");
        }
        let resp = call(
            &dlo,
            get(
                "/v1/a/c/man",
                &[("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT")],
            ),
        );
        assert_eq!(resp.status, 304);
    }

    #[test]
    fn a_missing_segments_container_answers_with_the_listings_error() {
        let fake = cluster(&PIECES, 100);
        fake.put("/v1/a/c/lost", b"", &[("X-Object-Manifest", "nowhere/p")]);
        let dlo = dlo_with(&fake, settings(), test_logger());
        let resp = call(&dlo, get("/v1/a/c/lost", &[]));
        assert_eq!(resp.status, 404);
        assert!(read_all(resp).0.starts_with(b"<html><h1>Not Found"));
        let resp = call(&dlo, Request::new("HEAD", "/v1/a/c/lost"));
        assert_eq!(resp.status, 404);
        assert_eq!(resp.headers.get("content-length"), Some("0"));
        assert!(matches!(resp.body, ResponseBody::Empty));
    }

    #[test]
    fn an_empty_large_object_and_a_malformed_manifest() {
        let fake = cluster(&PIECES, 100);
        fake.put("/v1/a/c/empty", b"", &[("X-Object-Manifest", "segs/none-")]);
        fake.put("/v1/a/c/bad", b"", &[("X-Object-Manifest", "noslash")]);
        let dlo = dlo_with(&fake, settings(), test_logger());
        let resp = call(&dlo, get("/v1/a/c/empty", &[]));
        assert_eq!(resp.status, 200);
        assert_eq!(resp.headers.get("content-length"), Some("0"));
        assert_eq!(
            resp.headers.get("etag").map(str::to_owned),
            Some(dlo_etag(&[]))
        );
        assert_eq!(read_all(resp), (Vec::new(), None));
        assert_eq!(call(&dlo, get("/v1/a/c/bad", &[])).status, 500);
    }

    fn log_file() -> (tempfile::NamedTempFile, Logger) {
        let f = tempfile::NamedTempFile::new().unwrap();
        let logger = Logger::console_only("proxy-server", Some(f.reopen().unwrap()));
        (f, logger)
    }

    fn log_text(f: &tempfile::NamedTempFile) -> String {
        let mut s = String::new();
        f.reopen().unwrap().read_to_string(&mut s).unwrap();
        s
    }

    #[test]
    fn a_bad_first_segment_is_a_409_or_a_503() {
        let fake = cluster(&PIECES, 100);
        let (f, logger) = log_file();
        let dlo = dlo_with(&fake, settings(), logger);
        fake.trouble("/v1/a/segs/p/000", Trouble::Status(404));
        let resp = call(&dlo, get("/v1/a/c/man", &[]));
        assert_eq!(resp.status, 409);
        assert!(log_text(&f).contains(
            "While processing manifest /v1/a/c/man, got 404 (<html><h1>Not Found</h1><p>The resource could not be foun...) while retrieving /v1/a/segs/p/000"
        ));
        fake.trouble("/v1/a/segs/p/000", Trouble::Status(503));
        let resp = call(&dlo, get("/v1/a/c/man", &[]));
        assert_eq!(resp.status, 503);
        assert_eq!(resp.headers.get("content-type"), Some("text/plain"));
        fake.trouble("/v1/a/segs/p/000", Trouble::WrongEtag);
        // The first chunk is out before the MD5 can be checked.
        let resp = call(&dlo, get("/v1/a/c/man", &[]));
        assert_eq!(resp.status, 200);
        let (body, end) = read_all(resp);
        assert_eq!(body, b"aaaaaaaaaa");
        assert!(end.is_some(), "short of its Content-Length: cut");
        assert!(
            log_text(&f).contains("Bad MD5 checksum for /v1/a/segs/p/000 as part of /v1/a/c/man")
        );
    }

    #[test]
    fn a_segment_failing_later_ends_the_body_as_swift_does() {
        let all = concatenated();
        // 4xx with a known length: the body stops short, the connection is cut.
        let fake = cluster(&PIECES, 100);
        fake.trouble("/v1/a/segs/p/002", Trouble::Status(404));
        let dlo = dlo_with(&fake, settings(), test_logger());
        let (body, end) = read_all(call(&dlo, get("/v1/a/c/man", &[])));
        assert_eq!(body, all[..20].to_vec());
        assert!(end.is_some());
        // ...and with an unknown length (an incomplete listing) it just ends.
        let mut s = settings();
        s.listing_limit = 2;
        let fake = cluster(&PIECES, 2);
        fake.trouble("/v1/a/segs/p/002", Trouble::Status(404));
        let dlo = dlo_with(&fake, s, test_logger());
        let (body, end) = read_all(call(&dlo, get("/v1/a/c/man", &[])));
        assert_eq!((body, end), (all[..20].to_vec(), None));
        // 5xx, or a segment whose stream breaks: always cut.
        let fake = cluster(&PIECES, 2);
        fake.trouble("/v1/a/segs/p/002", Trouble::Status(503));
        let dlo = dlo_with(&fake, s, test_logger());
        let (body, end) = read_all(call(&dlo, get("/v1/a/c/man", &[])));
        assert_eq!(body, all[..20].to_vec());
        assert!(end.is_some());
        let fake = cluster(&PIECES, 2);
        fake.trouble("/v1/a/segs/p/001", Trouble::CutAfter(5));
        let dlo = dlo_with(&fake, s, test_logger());
        let (body, end) = read_all(call(&dlo, get("/v1/a/c/man", &[])));
        assert_eq!(body, all[..15].to_vec());
        assert!(end.is_some());
    }

    #[test]
    fn a_failing_listing_page_ends_the_body_after_the_pages_before() {
        let all = concatenated();
        let mut s = settings();
        s.listing_limit = 2;
        let fake = cluster(&PIECES, 2);
        let (f, logger) = log_file();
        let dlo = dlo_with(&fake, s, logger);
        // The second page cannot be had: its container is gone by then.
        let resp = call(&dlo, get("/v1/a/c/man", &[]));
        fake.containers.borrow_mut().clear();
        let (body, end) = read_all(resp);
        assert_eq!((body, end), (all[..20].to_vec(), None));
        assert!(log_text(&f).contains("Got status 404 listing container /a/segs"));
    }

    #[test]
    fn max_get_time_cuts_a_slow_get() {
        let fake = cluster(&PIECES, 100);
        for i in 0..4 {
            fake.trouble(
                &format!("/v1/a/segs/p/{i:03}"),
                Trouble::Slow(Duration::from_millis(20)),
            );
        }
        let mut s = settings();
        s.max_get_time = 0;
        let (f, logger) = log_file();
        let dlo = dlo_with(&fake, s, logger);
        let (body, end) = read_all(call(&dlo, get("/v1/a/c/man", &[])));
        // The first chunk goes; the time is up when the next is asked for.
        assert_eq!(body, b"aaaa");
        assert!(end.is_some());
        assert!(
            log_text(&f)
                .contains("While processing manifest /v1/a/c/man, max LO GET time of 0s exceeded")
        );
    }

    #[test]
    fn segments_after_the_first_few_are_rate_limited() {
        let pieces: Vec<Vec<u8>> = (0..6u8).map(|i| vec![b'a' + i; 2]).collect();
        let refs: Vec<&[u8]> = pieces.iter().map(|p| &p[..]).collect();
        let fake = cluster(&refs, 100);
        let mut s = settings();
        s.rate_limit_after_segment = 2;
        s.rate_limit_segments_per_sec = 20;
        let dlo = dlo_with(&fake, s, test_logger());
        let started = std::time::Instant::now();
        let (body, end) = read_all(call(&dlo, get("/v1/a/c/man", &[])));
        assert_eq!((body, end), (refs.concat(), None));
        // Four limited segments at 20/s: the first goes at once, then three
        // waits of 50 ms.
        assert!(
            started.elapsed() >= Duration::from_millis(140),
            "{:?}",
            started.elapsed()
        );
        s.rate_limit_segments_per_sec = 0;
        let dlo = dlo_with(&fake, s, test_logger());
        let started = std::time::Instant::now();
        read_all(call(&dlo, get("/v1/a/c/man", &[])));
        assert!(started.elapsed() < Duration::from_millis(140));
    }

    #[test]
    fn segment_names_and_prefixes_are_quoted() {
        let fake = Fake::new(100, 4);
        fake.put("/v1/a/segs/\u{2603} %ff/1", b"snow", &[]);
        fake.put(
            "/v1/a/c/man",
            b"",
            &[("X-Object-Manifest", "segs/%E2%98%83%20%25ff/")],
        );
        let dlo = dlo_with(&fake, settings(), test_logger());
        let (body, _) = read_all(call(&dlo, get("/v1/a/c/man", &[])));
        assert_eq!(body, b"snow");
        let targets = fake.seen_targets();
        assert_eq!(targets[1], "/v1/a/segs?prefix=%E2%98%83%20%25ff/");
        assert_eq!(
            targets[2],
            "/v1/a/segs/%E2%98%83%20%25ff/1?multipart-manifest=get"
        );
    }

    #[test]
    fn puts_with_a_malformed_manifest_header_are_refused() {
        let fake = cluster(&PIECES, 100);
        let dlo = dlo_with(&fake, settings(), test_logger());
        for bad in ["c", "c/", "/p", "c//p", "c/p?x", "c/p&y"] {
            let mut req = Request::new("PUT", "/v1/a/c/o");
            req.headers.append("X-Object-Manifest", bad);
            let resp = call(&dlo, req);
            assert_eq!(resp.status, 400, "{bad}");
            assert_eq!(
                read_all(resp).0,
                b"X-Object-Manifest must be in the format container/prefix"
            );
        }
        let mut req = Request::new("PUT", "/v1/a/c/o");
        req.headers.append("X-Object-Manifest", "c/p/");
        assert_eq!(call(&dlo, req).status, 201);
        // Only object PUTs are checked.
        let mut req = Request::new("PUT", "/v1/a/c");
        req.headers.append("X-Object-Manifest", "c");
        assert_eq!(call(&dlo, req).status, 201);
    }

    #[test]
    fn settings_come_from_the_filter_or_else_the_proxy_section() {
        let app = Conf::from_pairs("p.conf", "app:proxy-server", &[("max_get_time", "5")]);
        let filter = Conf::from_pairs("p.conf", "filter:dlo", &[]);
        let s = Settings::from_conf(&filter, &app, 7).unwrap();
        assert_eq!(
            (
                s.max_get_time,
                s.rate_limit_after_segment,
                s.rate_limit_segments_per_sec,
                s.listing_limit
            ),
            (5, 10, 1, 7)
        );
        let filter = Conf::from_pairs("p.conf", "filter:dlo", &[("rate_limit_after_segment", "3")]);
        let s = Settings::from_conf(&filter, &app, 7).unwrap();
        assert_eq!((s.max_get_time, s.rate_limit_after_segment), (86400, 3));
        let filter = Conf::from_pairs("p.conf", "filter:dlo", &[("max_get_time", "soon")]);
        let err = Settings::from_conf(&filter, &app, 7).unwrap_err();
        assert!(
            err.contains("max_get_time") && err.contains("filter:dlo"),
            "{err}"
        );
    }

    #[test]
    fn object_paths_as_split_path_4_4() {
        assert!(is_object_path("/v1/a/c/o"));
        assert!(is_object_path("/v1/a/c/o/with/slashes/"));
        for p in ["/v1/a/c", "/v1/a/c/", "/v1//c/o", "v1/a/c/o", "/info"] {
            assert!(!is_object_path(p), "{p}");
        }
    }
}
