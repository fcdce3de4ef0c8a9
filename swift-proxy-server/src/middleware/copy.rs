//! `copy` (Swift's `egg:swift#copy`): server-side copy.
//!
//! A `COPY` of an object with `Destination: <container>/<object>` (and
//! `Destination-Account`) is turned into a `PUT` of the destination with
//! `X-Copy-From`; a `PUT` with `X-Copy-From: <container>/<object>` (and
//! `X-Copy-From-Account`) and no body reads the source with a GET
//! subrequest (`X-Newest`, the client's Range and conditions, authorized as
//! the client, logged with source `SSC`) and streams it into the PUT, the
//! source's metadata merged under the request's as Swift merges them. With
//! `?heartbeat=on` the answer is a 202 at once, spaces while the PUT runs,
//! then its outcome as text or JSON. `OPTIONS` of an object adds `COPY` to
//! the methods it allows.
//!
//! It copies what the services after it give it: large-object manifests
//! and symlinks are their own middleware's business. Nothing is registered
//! in `/info` (Swift's copy registers nothing).

use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use swift_common::config::Conf;
use swift_common::config::swift_conf::json_string;
use swift_common::config::values::config_true_value;
use swift_common::http::message::CompletionHooks;
use swift_common::http::quote::{
    bytes_to_wsgi, parse_qsl, unquote_to_bytes, urlencode, wsgi_bytes, wsgi_quote,
};
use swift_common::http::{
    Body, BodyStream, Completion, Headers, Panic, Reply, Request, Response, ResponseBody, Service,
    call_catching, panic_message,
};

use crate::context::{LoggedTarget, client_subrequest};
use crate::pipeline::FilterContext;
use crate::swob;

const DESTINATION_FORM: &str =
    "Destination header must be of the form <container name>/<object name>";
const COPY_FROM_FORM: &str =
    "X-Copy-From header must be of the form <container name>/<object name>";

/// Source headers a copy does not take over (unless fresh metadata is asked
/// for, when only sysmeta is taken).
const NOT_COPIED: &[&str] = &[
    "x-static-large-object",
    "x-object-manifest",
    "etag",
    "content-type",
    "x-timestamp",
    "x-backend-timestamp",
];

/// Swift's `OBJECT_SYSMETA_CONTAINER_UPDATE_OVERRIDE_PREFIX`.
const CONTAINER_UPDATE_OVERRIDE: &str = "x-object-sysmeta-container-update-override-";

/// The formats a heartbeat answer can be written in, preferred first.
const HEARTBEAT_FORMATS: &[&str] = &["text/plain", "application/json"];

pub struct ServerSideCopy {
    next: Rc<dyn Service>,
    /// swift.conf's `max_file_size`: a larger source is refused (413).
    max_file_size: i64,
    /// How often a heartbeat answer sends a space.
    yield_frequency: Duration,
}

/// `egg:swift#copy`; reads `yield_frequency` (seconds, 10).
pub fn factory(ctx: &FilterContext<'_>, next: Rc<dyn Service>) -> Result<Rc<dyn Service>, String> {
    let max_file_size = ctx.app.swift_conf.constraints.max_file_size;
    Ok(Rc::new(ServerSideCopy::new(ctx.conf, max_file_size, next)?))
}

impl ServerSideCopy {
    fn new(conf: &Conf, max_file_size: i64, next: Rc<dyn Service>) -> Result<Self, String> {
        let secs = conf
            .get_parsed::<i64>("yield_frequency", 10)
            .map_err(|e| e.to_string())?;
        // Swift takes any integer; zero or less would send spaces without pause.
        let secs = u64::try_from(secs).ok().filter(|s| *s > 0).ok_or_else(|| {
            conf.invalid("yield_frequency", "must be a positive number of seconds")
                .to_string()
        })?;
        Ok(ServerSideCopy {
            next,
            max_file_size,
            yield_frequency: Duration::from_secs(secs),
        })
    }
}

impl Service for ServerSideCopy {
    fn call(&self, req: Request) -> Reply<'_> {
        let copying = match &*req.method {
            "PUT" => req
                .headers
                .get("x-copy-from")
                .is_some_and(|v| !v.is_empty()),
            "COPY" | "OPTIONS" => true,
            _ => false,
        };
        if !copying {
            return self.next.call(req);
        }
        let path_info = req.path_info().into_owned();
        let Some(segs) = crate::constraints::split_path(&path_info, 4, 4, true) else {
            return self.next.call(req);
        };
        let seg = |i: usize| segs[i].unwrap_or("");
        let (ver, account, container, obj) = (seg(0), seg(1), seg(2), seg(3));
        match &*req.method {
            "PUT" => Reply::pending(self.handle_put(req)),
            "COPY" => match copy_to_put(req, ver, account, container, obj) {
                Ok(req) => Reply::pending(self.handle_put(req)),
                Err(refusal) => Reply::Ready(refusal),
            },
            _ => self.next.call(req).map(allow_copy),
        }
    }
}

/// swob's `wsgi_unquote`: `%XX` decoded, bytes as latin-1.
fn wsgi_unquote(s: &str) -> String {
    bytes_to_wsgi(&unquote_to_bytes(&wsgi_bytes(s)))
}

/// `check_path_header(req, name, 2, message)`: the `(container, object)` a
/// header names, or 412 with `message`.
fn path_header(value: &str, message: &'static str) -> Result<(String, String), Response> {
    let unquoted = wsgi_unquote(value);
    let rest = unquoted.strip_prefix('/').unwrap_or(&unquoted);
    match rest.split_once('/') {
        Some((c, o)) if !c.is_empty() && !o.is_empty() => Ok((c.to_owned(), o.to_owned())),
        _ => Err(swob::html(412, message)),
    }
}

/// `check_account_format`.
fn account_format(name: String) -> Result<String, Response> {
    if name.is_empty() {
        return Err(swob::html(412, "Account name cannot be empty"));
    }
    if name.contains('/') {
        return Err(swob::html(412, "Account name cannot contain slashes"));
    }
    Ok(name)
}

/// `handle_COPY`: rewrite the request into the PUT of the destination with
/// `X-Copy-From` naming the source (the access log names the destination
/// too, as Swift's does).
fn copy_to_put(
    mut req: Request,
    ver: &str,
    account: &str,
    container: &str,
    obj: &str,
) -> Result<Request, Response> {
    if req.headers.get("destination").is_none_or(str::is_empty) {
        return Err(swob::html(412, "Destination header required"));
    }
    let mut dest_account = account.to_owned();
    if let Some(v) = req.headers.get("destination-account") {
        dest_account = account_format(wsgi_unquote(v))?;
        req.headers
            .set("X-Copy-From-Account", wsgi_quote(account, "/"));
        req.headers.remove("destination-account");
    }
    let (dest_container, dest_object) = path_header(
        req.headers.get("destination").unwrap_or(""),
        DESTINATION_FORM,
    )?;
    let source = format!("/{container}/{obj}");
    let mut target = wsgi_quote(
        &format!("/{ver}/{dest_account}/{dest_container}/{dest_object}"),
        "/",
    );
    if let Some(q) = req.query() {
        target.push('?');
        target.push_str(q);
    }
    req.method = "PUT".into();
    req.target = target;
    LoggedTarget::rewrite(&req.env, &req.target);
    req.headers.set("Content-Length", "0");
    req.headers.set("X-Copy-From", wsgi_quote(&source, "/"));
    req.headers.remove("destination");
    Ok(req)
}

/// The source object's GET answer, ready to be streamed into the PUT.
struct Source {
    status: u16,
    headers: Headers,
    length: u64,
    body: SourceBody,
}

impl ServerSideCopy {
    /// `handle_PUT` (a PUT with `X-Copy-From`, or a rewritten COPY).
    async fn handle_put(&self, req: Request) -> Response {
        match self.copy(req).await {
            Ok(resp) | Err(resp) => resp,
        }
    }

    async fn copy(&self, mut req: Request) -> Result<Response, Response> {
        let has_body = req
            .headers
            .get("content-length")
            .is_some_and(|v| v.trim().parse::<i64>() != Ok(0));
        if has_body {
            return Err(swob::plain(400, "Copy requests require a zero byte body"));
        }
        let params = py_dict(parse_qsl(req.query().unwrap_or("")));
        let path_info = req.path_info().into_owned();
        let mut segs = path_info.splitn(4, '/').skip(1);
        let ver = segs.next().unwrap_or("");
        let acct = segs.next().unwrap_or("");
        let src_account = match req
            .headers
            .get("x-copy-from-account")
            .filter(|v| !v.is_empty())
        {
            Some(v) => account_format(wsgi_unquote(v))?,
            None => acct.to_owned(),
        };
        let (src_container, src_obj) =
            path_header(req.headers.get("x-copy-from").unwrap_or(""), COPY_FROM_FORM)?;
        let source_path = format!("/{ver}/{src_account}/{src_container}/{src_obj}");
        let source = self.source_object(&mut req, &source_path, &params).await?;
        let client_content_type = req
            .headers
            .get("content-type")
            .is_some_and(|v| !v.is_empty());
        let fresh = req
            .headers
            .get("x-fresh-metadata")
            .is_some_and(config_true_value);
        let (headers, sink_params) = sink_headers(
            &req.headers,
            &params,
            &source.headers,
            source.status,
            source.length,
            fresh,
            client_content_type,
        );
        let resp_headers = copied_from_headers(
            &src_account,
            &format!("{src_container}/{src_obj}"),
            &source.headers,
            &headers,
        );
        let heartbeat = dict_get(&params, "heartbeat").is_some_and(config_true_value);
        if let Some(p) = sink_params {
            let mut target = req.raw_path().to_owned();
            let query = urlencode(&p);
            if !query.is_empty() {
                target.push('?');
                target.push_str(&query);
            }
            req.target = target;
        }
        req.headers = headers;
        req.body = Body::from_stream(Box::pin(source.body), Some(source.length));
        req.env.source = Some("SSC".to_owned());
        if heartbeat {
            let format = best_match(req.headers.get("accept"), HEARTBEAT_FORMATS)
                .ok()
                .flatten()
                .unwrap_or("text/plain");
            return Ok(self.heartbeat(req, resp_headers, format));
        }
        let mut resp = self.next.call(req).resolve().await;
        if (200..300).contains(&resp.status) {
            for (k, v) in resp_headers.iter() {
                resp.headers.append(k.to_owned(), v.to_owned());
            }
        }
        Ok(resp)
    }

    /// `_get_source_object`: GET the source as the client (its headers,
    /// Range and conditions included) with `X-Newest`; an answer of 300 or
    /// more is the client's answer, a source without a length or longer
    /// than `max_file_size` a 413.
    async fn source_object(
        &self,
        req: &mut Request,
        source_path: &str,
        params: &[(String, String)],
    ) -> Result<Source, Response> {
        let mut headers = req.headers.clone();
        headers.set("Content-Length", "0");
        headers.remove("x-backend-storage-policy-index");
        headers.set("X-Newest", "true");
        let mut target = wsgi_quote(source_path, "/");
        let query = if dict_get(params, "multipart-manifest") == Some("get") {
            // An SLO manifest is copied as its raw listing.
            let mut p = params.to_vec();
            dict_set(&mut p, "format", "raw");
            Some(urlencode(&p))
        } else {
            req.query().map(str::to_owned)
        };
        if let Some(q) = query.filter(|q| !q.is_empty()) {
            target.push('?');
            target.push_str(&q);
        }
        let sub = client_subrequest(
            &mut req.env,
            &req.headers,
            "GET",
            &target,
            &headers,
            "Swift",
            "SSC",
        );
        let mut resp = self.next.call(sub).resolve().await;
        let length = resp
            .headers
            .get("content-length")
            .and_then(|v| v.trim().parse::<i64>().ok());
        let Some(length) = length.filter(|l| *l <= self.max_file_size) else {
            // A chunked source (a large object of too many segments) or
            // one too large: refused after its first piece, as Swift
            // (whose swob reads that piece before anyone looks).
            let mut body = SourceBody::take(&mut resp);
            body.prefetch().await;
            return Err(swob::status(413));
        };
        if resp.status >= 300 {
            return Err(resp);
        }
        let mut body = SourceBody::take(&mut resp);
        body.prefetch().await;
        Ok(Source {
            status: resp.status,
            headers: std::mem::take(&mut resp.headers),
            length: u64::try_from(length).unwrap_or(0),
            body,
        })
    }

    /// `?heartbeat=on`: 202 at once, a space now and every
    /// `yield_frequency` while the PUT runs, then its outcome in `format`.
    fn heartbeat(&self, sink: Request, resp_headers: Headers, format: &'static str) -> Response {
        let next = self.next.clone();
        let every = self.yield_frequency;
        // One piece in flight: a client that is not reading gets no pile
        // of spaces, as a generator it does not pull gives none.
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(1);
        let space = || Ok(Bytes::from_static(b" "));
        let _ = tx.try_send(space());
        // The PUT runs on whether or not the client stays to hear of it.
        tokio::task::spawn_local(async move {
            let put = async { call_catching(&*next, sink).resolve().await };
            let mut put = std::pin::pin!(put);
            let outcome = loop {
                tokio::select! {
                    outcome = &mut put => break outcome,
                    () = tokio::time::sleep(every) => {
                        let _ = tx.try_send(space());
                    }
                }
            };
            let body = heartbeat_body(outcome, &resp_headers, format).await;
            let _ = tx.send(Ok(body)).await;
        });
        let mut resp = Response::new(202);
        resp.headers.append("Content-Type", format);
        resp.body = ResponseBody::Stream(Box::pin(Channel(rx)));
        resp
    }
}

/// The PUT's headers, from the client's and the source's, and the PUT's
/// query when it changes (`Some` of the new parameters). Swift's
/// `handle_PUT`: the source's sysmeta (only that with `fresh`), or all of
/// its headers but those of [`NOT_COPIED`], under the client's; a copied
/// manifest (`?multipart-manifest=get`) stays one; the source's ETag
/// checks a whole copy, and without it no container update override
/// survives; the source's Content-Type unless the client gave one.
fn sink_headers(
    client: &Headers,
    params: &[(String, String)],
    source: &Headers,
    source_status: u16,
    length: u64,
    fresh: bool,
    client_content_type: bool,
) -> (Headers, Option<Vec<(String, String)>>) {
    let mut sink = client.clone();
    for (k, v) in source.iter() {
        let take = if fresh {
            is_object_sysmeta(k)
        } else {
            !NOT_COPIED.iter().any(|n| k.eq_ignore_ascii_case(n))
        };
        // What the client sent wins.
        if take && !client.contains(k) {
            sink.set(k.to_owned(), v.to_owned());
        }
    }
    let mut sink_params = None;
    let manifest_get = dict_get(params, "multipart-manifest") == Some("get");
    if manifest_get {
        let mut p = params.to_vec();
        if source.contains("x-static-large-object") {
            dict_set(&mut p, "multipart-manifest", "put");
        }
        if let Some(m) = source.get("x-object-manifest") {
            p.retain(|(k, _)| k != "multipart-manifest");
            sink.set("X-Object-Manifest", m.to_owned());
        }
        sink_params = Some(p);
    }
    if dict_get(params, "version-id").is_some() {
        let mut p = sink_params.unwrap_or_else(|| params.to_vec());
        p.retain(|(k, _)| k != "version-id");
        sink_params = Some(p);
    }
    sink.set("Content-Length", length.to_string());
    let whole = source_status == 200
        && !source.contains("x-static-large-object")
        && (!source.contains("x-object-manifest") || manifest_get);
    if whole {
        match source.get("etag") {
            Some(etag) => sink.set("Etag", etag.replace('"', "")),
            None => {
                sink.remove("etag");
            }
        }
    } else {
        sink.retain(|k| !starts_with_ignore_case(k, CONTAINER_UPDATE_OVERRIDE));
    }
    sink.remove("x-copy-from");
    sink.remove("x-copy-from-account");
    if !client_content_type && let Some(ct) = source.get("content-type") {
        sink.set("Content-Type", ct.to_owned());
    }
    (sink, sink_params)
}

/// `_create_response_headers`: what a successful copy's answer adds: where
/// the copy came from and the metadata the new object has.
fn copied_from_headers(account: &str, path: &str, source: &Headers, sink: &Headers) -> Headers {
    let mut h = Headers::new();
    h.append("X-Copied-From-Account", wsgi_quote(account, "/"));
    h.append("X-Copied-From", wsgi_quote(path, "/"));
    if let Some(lm) = source.get("last-modified") {
        h.append("X-Copied-From-Last-Modified", lm.to_owned());
    }
    if let Some(v) = source.get("x-object-version-id") {
        h.append("X-Copied-From-Version-Id", v.to_owned());
    }
    for (k, v) in sink.iter() {
        if is_object_meta(k) || is_object_sysmeta(k) || is_transient_sysmeta(k) {
            h.set(environ_header_name(k), v.to_owned());
        } else if k.eq_ignore_ascii_case("x-delete-at") {
            h.set("X-Delete-At", v.to_owned());
        }
    }
    h
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// A prefix and at least one more character (Swift's `is_*_meta`).
fn has_prefix(k: &str, prefix: &str) -> bool {
    k.len() > prefix.len() && starts_with_ignore_case(k, prefix)
}

fn is_object_meta(k: &str) -> bool {
    has_prefix(k, "x-object-meta-")
}

fn is_object_sysmeta(k: &str) -> bool {
    has_prefix(k, "x-object-sysmeta-")
}

fn is_transient_sysmeta(k: &str) -> bool {
    has_prefix(k, "x-object-transient-sysmeta-")
}

/// A header name as Swift's WSGI environ gives it back: `_` as `-`, and
/// `str.title()` (`X-Object-Meta-Color`).
fn environ_header_name(k: &str) -> String {
    let mut out = String::with_capacity(k.len());
    let mut prev_cased = false;
    for c in k.chars() {
        let c = if c == '_' { '-' } else { c };
        let cased = c.is_lowercase() || c.is_uppercase();
        if cased && prev_cased {
            out.extend(c.to_lowercase());
        } else if cased {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_cased = cased;
    }
    out
}

/// `OPTIONS` of an object: when it succeeds, `COPY` is allowed too.
fn allow_copy(mut resp: Response) -> Response {
    if !(200..300).contains(&resp.status) {
        return resp;
    }
    let mut headers = Headers::with_capacity(resp.headers.len());
    for (k, v) in resp.headers.iter() {
        let name = if k.eq_ignore_ascii_case("allow") {
            Some("Allow")
        } else if k.eq_ignore_ascii_case("access-control-allow-methods") {
            Some("Access-Control-Allow-Methods")
        } else {
            None
        };
        match name {
            Some(name) if !v.contains("COPY") => headers.append(name, format!("{v}, COPY")),
            _ => headers.append(k.to_owned(), v.to_owned()),
        }
    }
    resp.headers = headers;
    resp
}

/// Query parameters as swob's `req.params` holds them (a dict: the last
/// value of a name, at the place of its first).
fn py_dict(pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        dict_set(&mut out, &k, &v);
    }
    out
}

fn dict_get<'a>(d: &'a [(String, String)], key: &str) -> Option<&'a str> {
    d.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn dict_set(d: &mut Vec<(String, String)>, key: &str, value: &str) {
    match d.iter_mut().find(|(k, _)| k == key) {
        Some(entry) => value.clone_into(&mut entry.1),
        None => d.push((key.to_owned(), value.to_owned())),
    }
}

/// The source GET's body on its way into the PUT. The GET's access-log
/// line is written when the body ends (or, cut short, when it is dropped:
/// a 499), with the bytes the PUT read, as Swift logs the GET when its
/// iterator ends or is closed.
struct SourceBody {
    stream: Option<Pin<Box<dyn BodyStream>>>,
    /// The piece read ahead by [`SourceBody::prefetch`].
    first: Option<io::Result<Bytes>>,
    read: u64,
    hooks: CompletionHooks,
    done: bool,
}

impl SourceBody {
    /// Take `resp`'s body and its completion hooks.
    fn take(resp: &mut Response) -> SourceBody {
        let stream: Option<Pin<Box<dyn BodyStream>>> =
            match std::mem::replace(&mut resp.body, ResponseBody::Empty) {
                ResponseBody::Empty => None,
                ResponseBody::Full(b) => Some(Box::pin(Once(Some(b)))),
                ResponseBody::Stream(s) => Some(s),
            };
        SourceBody {
            stream,
            first: None,
            read: 0,
            hooks: std::mem::take(&mut resp.hooks),
            done: false,
        }
    }

    /// Read the first piece now, as swob's `get_response` does; an empty
    /// body ends (and is logged) here.
    async fn prefetch(&mut self) {
        self.first = std::future::poll_fn(|cx| self.poll_inner(cx)).await;
    }

    fn poll_inner(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        let Some(stream) = self.stream.as_mut() else {
            self.finish(true);
            return Poll::Ready(None);
        };
        match stream.as_mut().poll_chunk(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(piece))) => {
                self.read += piece.len() as u64;
                Poll::Ready(Some(Ok(piece)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.finish(false);
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                self.finish(true);
                Poll::Ready(None)
            }
        }
    }

    fn finish(&mut self, complete: bool) {
        if !self.done {
            self.done = true;
            self.stream = None;
            self.hooks.fire(&Completion {
                bytes_sent: self.read,
                complete,
            });
        }
    }
}

impl BodyStream for SourceBody {
    fn poll_chunk(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        let this = self.get_mut();
        if let Some(first) = this.first.take() {
            return Poll::Ready(Some(first));
        }
        if this.done {
            return Poll::Ready(None);
        }
        this.poll_inner(cx)
    }
}

impl Drop for SourceBody {
    fn drop(&mut self) {
        self.finish(false);
    }
}

/// A body of one piece.
struct Once(Option<Bytes>);

impl BodyStream for Once {
    fn poll_chunk(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<Bytes>>> {
        Poll::Ready(self.0.take().filter(|b| !b.is_empty()).map(Ok))
    }
}

/// A body fed by a task.
struct Channel(tokio::sync::mpsc::Receiver<io::Result<Bytes>>);

impl BodyStream for Channel {
    fn poll_chunk(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<Bytes>>> {
        self.0.poll_recv(cx)
    }
}

/// All of a response's body (the PUT's answer is small: a status page).
async fn read_body(resp: &mut Response) -> Vec<u8> {
    let mut out = Vec::new();
    match std::mem::replace(&mut resp.body, ResponseBody::Empty) {
        ResponseBody::Empty => {}
        ResponseBody::Full(b) => out.extend_from_slice(&b),
        ResponseBody::Stream(mut s) => {
            while let Some(Ok(piece)) = std::future::poll_fn(|cx| s.as_mut().poll_chunk(cx)).await {
                out.extend_from_slice(&piece);
            }
        }
    }
    let mut hooks = std::mem::take(&mut resp.hooks);
    hooks.fire(&Completion {
        bytes_sent: out.len() as u64,
        complete: true,
    });
    out
}

/// The last piece of a heartbeat answer (`get_heartbeat_response_body`
/// with root `copy`): the PUT's status and body, what a successful copy's
/// answer would carry and the PUT's own headers (no sysmeta, nothing
/// internal), and the source as the error when the PUT failed.
async fn heartbeat_body(
    outcome: Result<Response, Panic>,
    resp_headers: &Headers,
    format: &str,
) -> Bytes {
    let (status, body, put_headers) = match outcome {
        Ok(mut resp) => {
            let body = read_body(&mut resp).await;
            (
                (resp.status, resp.status_line()),
                String::from_utf8_lossy(&body).into_owned(),
                resp.headers,
            )
        }
        Err(panic) => (
            (500, "500 Internal Error".to_owned()),
            panic_message(&*panic),
            Headers::new(),
        ),
    };
    let (code, status_line) = status;
    let mut dict: Vec<(String, String)> = vec![
        ("Response Status".into(), status_line.clone()),
        ("Response Body".into(), body),
    ];
    let mut errors = Vec::new();
    if !(200..300).contains(&code) {
        let src = resp_headers.get("x-copied-from").unwrap_or("");
        errors.push((wsgi_quote(src, "/"), status_line));
    }
    for (k, v) in resp_headers.iter().chain(put_headers.iter()) {
        if !starts_with_ignore_case(k, "x-object-sysmeta-")
            && !starts_with_ignore_case(k, "x-backend")
        {
            dict_set(&mut dict, k, v);
        }
    }
    let text = if format == "application/json" {
        let mut out = String::from("{");
        for (k, v) in &dict {
            out.push_str(&json_string(k));
            out.push_str(": ");
            out.push_str(&json_string(v));
            out.push_str(", ");
        }
        out.push_str("\"Errors\": [");
        for (i, (name, status)) in errors.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push('[');
            out.push_str(&json_string(name));
            out.push_str(", ");
            out.push_str(&json_string(status));
            out.push(']');
        }
        out.push_str("]}");
        out
    } else {
        dict.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = String::new();
        for (k, v) in &dict {
            out.push_str(&format!("{k}: {v}\n"));
        }
        out.push_str("Errors:\n");
        for (name, status) in &errors {
            out.push_str(&format!("{name}, {status}\n"));
        }
        out
    };
    // Python encodes the text as UTF-8, header values (latin-1) included.
    Bytes::from(text.into_bytes())
}

/// Python's `str.isspace` over latin-1.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// A character of an RFC 2616 token, as swob's Accept pattern has it.
fn token_char(c: char) -> bool {
    !(c <= ' ' || c == '\u{7f}' || "()<>@,;:\\\"/[]?={}".contains(c))
}

/// Split a leading token off `s`.
fn token(s: &str) -> Option<(&str, &str)> {
    let end = s.find(|c| !token_char(c)).unwrap_or(s.len());
    (end > 0).then(|| s.split_at(end))
}

fn skip_space(s: &str) -> &str {
    s.trim_start_matches(py_space)
}

/// Whether `s` is swob's `(extension*?\s*)$`: `; name=value` parameters,
/// each value a token or a quoted string.
fn extensions_ok(mut s: &str) -> bool {
    loop {
        s = skip_space(s);
        if s.is_empty() {
            return true;
        }
        let Some(rest) = s.strip_prefix(';') else {
            return false;
        };
        let Some((_, rest)) = token(skip_space(rest)) else {
            return false;
        };
        let Some(rest) = skip_space(rest).strip_prefix('=') else {
            return false;
        };
        let rest = skip_space(rest);
        s = match rest.strip_prefix('"') {
            Some(quoted) => {
                let mut chars = quoted.char_indices();
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '"' => {
                            end = Some(i + 1);
                            break;
                        }
                        '\\' => match chars.next() {
                            Some((_, '\n')) | None => return false,
                            Some(_) => {}
                        },
                        _ => {}
                    }
                }
                match end {
                    Some(e) => &quoted[e..],
                    None => return false,
                }
            }
            None => match token(rest) {
                Some((_, r)) => r,
                None => return false,
            },
        };
    }
}

/// swob's `req.accept.best_match(options)`: `Err` when the header is
/// malformed (Swift then answers in text/plain).
fn best_match<'a>(accept: Option<&str>, options: &[&'a str]) -> Result<Option<&'a str>, ()> {
    let Some(header) = accept.filter(|h| !h.is_empty()) else {
        return Ok(options.first().copied());
    };
    // (type, subtype, quality, without a glob)
    let mut types: Vec<(&str, &str, f64, bool)> = Vec::new();
    for part in header.split(',') {
        let (typ, rest) = token(skip_space(part)).ok_or(())?;
        let rest = rest.strip_prefix('/').ok_or(())?;
        let (sub, params) = token(rest).ok_or(())?;
        if !extensions_ok(params) {
            return Err(());
        }
        let mut quality = 1.0;
        let mut seen_q = false;
        for p in params.split(';').map(|p| p.trim_matches(py_space)) {
            if p.is_empty() {
                continue;
            }
            // Python's `name, value = parm.split('=')`: exactly one '='.
            let mut kv = p.split('=');
            let (Some(name), Some(value), None) = (kv.next(), kv.next(), kv.next()) else {
                return Err(());
            };
            if name.trim_matches(py_space) == "q" {
                if seen_q {
                    return Err(());
                }
                seen_q = true;
                quality = value
                    .trim_matches(py_space)
                    .parse::<f64>()
                    .map_err(|_| ())?;
            }
        }
        types.push((typ, sub, quality, typ != "*" && sub != "*"));
    }
    // By quality, then globless first; stable, as Python's sort.
    types.sort_by(|a, b| {
        (b.2, b.3)
            .partial_cmp(&(a.2, a.3))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    for (typ, sub, _, _) in types {
        for option in options {
            let (otyp, osub) = option.split_once('/').unwrap_or((option, ""));
            if (typ == "*" || typ == otyp) && (sub == "*" || sub == osub) {
                return Ok(Some(option));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::VecDeque;

    use super::*;
    use crate::context::{AuthOutcome, Authorize};
    use crate::middleware::tests::{block_on, body_of};

    /// A request as the fake next service saw it.
    #[derive(Debug)]
    struct Seen {
        method: String,
        target: String,
        headers: Headers,
        body: Vec<u8>,
        authorized: bool,
        source: Option<String>,
        logged: bool,
    }

    /// The services after copy: answers GET with `get`, PUT with
    /// `put_status` (reading the body unless the status is an error, as
    /// the proxy refuses before reading), anything else with 200 and an
    /// `Allow`. GET answers tell `completions` how their body ended.
    struct Fake {
        get: Box<dyn Fn(&Request) -> Response>,
        put_status: u16,
        seen: RefCell<Vec<Seen>>,
        completions: Rc<RefCell<Vec<Completion>>>,
        /// A PUT waits for this before answering (heartbeat tests).
        gate: RefCell<Option<tokio::sync::oneshot::Receiver<()>>>,
    }

    impl Fake {
        fn new(get: impl Fn(&Request) -> Response + 'static) -> Rc<Fake> {
            Rc::new(Fake {
                get: Box::new(get),
                put_status: 201,
                seen: RefCell::default(),
                completions: Rc::default(),
                gate: RefCell::default(),
            })
        }

        fn with_put_status(get: impl Fn(&Request) -> Response + 'static, s: u16) -> Rc<Fake> {
            Rc::new(Fake {
                get: Box::new(get),
                put_status: s,
                seen: RefCell::default(),
                completions: Rc::default(),
                gate: RefCell::default(),
            })
        }

        fn seen(&self, i: usize) -> std::cell::Ref<'_, Seen> {
            std::cell::Ref::map(self.seen.borrow(), |s| &s[i])
        }
    }

    impl Service for Fake {
        fn call(&self, mut req: Request) -> Reply<'_> {
            Reply::pending(async move {
                let mut body = Vec::new();
                let method = req.method.to_string();
                if method == "PUT" && self.put_status < 300 {
                    body = req.body.to_bytes(1 << 20).await.expect("body").to_vec();
                }
                self.seen.borrow_mut().push(Seen {
                    method: method.clone(),
                    target: req.target.clone(),
                    headers: req.headers.clone(),
                    body,
                    authorized: req.env.ext.get::<Authorize>().is_some(),
                    source: req.env.source.clone(),
                    logged: req.env.access_log_made,
                });
                match &*method {
                    "GET" => {
                        let mut r = (self.get)(&req);
                        let log = self.completions.clone();
                        r.on_complete(move |c| log.borrow_mut().push(*c));
                        r
                    }
                    "PUT" => {
                        let gate = self.gate.borrow_mut().take();
                        if let Some(gate) = gate {
                            let _ = gate.await;
                        }
                        drop(req);
                        let mut r = swob::status(self.put_status);
                        if self.put_status < 300 {
                            r = Response::with_body(self.put_status, swob::HTML, "");
                            r.headers.append("Etag", "e1");
                            r.headers
                                .append("Last-Modified", "Mon, 07 Dec 2026 19:58:49 GMT");
                            r.headers.append("X-Backend-Thing", "hidden");
                        }
                        r
                    }
                    _ => {
                        let mut r = Response::new(200);
                        r.headers.append("Allow", "GET, PUT");
                        r.headers.append("access-control-allow-methods", "GET");
                        r
                    }
                }
            })
        }
    }

    /// A body of these pieces.
    struct Pieces(VecDeque<Bytes>);

    impl BodyStream for Pieces {
        fn poll_chunk(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<io::Result<Bytes>>> {
            Poll::Ready(self.0.pop_front().map(Ok))
        }
    }

    /// A source answer: `headers`, then a streamed body of `pieces` with
    /// its Content-Length.
    fn source(status: u16, headers: &[(&str, &str)], pieces: &[&'static str]) -> Response {
        let mut r = Response::new(status);
        for (k, v) in headers {
            r.headers.append(k.to_string(), v.to_string());
        }
        let len: usize = pieces.iter().map(|p| p.len()).sum();
        r.headers.append("Content-Length", len.to_string());
        r.body = ResponseBody::Stream(Box::pin(Pieces(
            pieces
                .iter()
                .map(|p| Bytes::from_static(p.as_bytes()))
                .collect(),
        )));
        r
    }

    fn hello(_: &Request) -> Response {
        source(
            200,
            &[
                ("Content-Type", "text/x-foo"),
                ("Etag", "\"5eb63bbbe01eeed093cb22bb8f5acdc3\""),
                ("Last-Modified", "Mon, 07 Dec 2026 19:58:49 GMT"),
                ("X-Timestamp", "1796673528.48337"),
                ("X-Backend-Timestamp", "1796673528.48337"),
                ("X-Object-Meta-Color", "red"),
                ("X-Object-Meta-Size", "small"),
                ("X-Object-Sysmeta-Secret", "s1"),
                ("X-Object-Sysmeta-Container-Update-Override-Etag", "o1"),
                ("X-Object-Transient-Sysmeta-T", "t1"),
                ("X-Delete-At", "9999999999"),
                ("Content-Disposition", "inline"),
            ],
            &["hello ", "world"],
        )
    }

    fn mw(next: Rc<Fake>) -> ServerSideCopy {
        ServerSideCopy {
            next,
            max_file_size: 5_368_709_122,
            yield_frequency: Duration::from_secs(10),
        }
    }

    fn call(copy: &ServerSideCopy, req: Request) -> Response {
        block_on(copy.call(req).resolve())
    }

    fn names(h: &Headers) -> Vec<(String, String)> {
        h.iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn copy_becomes_a_put_of_the_destination_fed_by_a_get_of_the_source() {
        let fake = Fake::new(hello);
        let copy = mw(fake.clone());
        let mut req = Request::new("COPY", "/v1/AUTH_a/c/o%20x?q=1");
        req.headers.append("Destination", "/d/new%E2%98%83");
        req.headers.append("Range", "bytes=0-");
        req.headers.append("User-Agent", "curl/8");
        req.headers.append("X-Object-Meta-Size", "big");
        req.headers.append("X-Backend-Storage-Policy-Index", "3");
        let logged = LoggedTarget::default();
        req.env.ext.insert(logged.clone());
        req.env.access_log_made = true;
        req.env.ext.insert(Authorize(Rc::new(|_| {
            Box::pin(async { AuthOutcome::allowed(false) })
        })));
        let resp = call(&copy, req);
        assert_eq!(resp.status, 201);
        assert_eq!(fake.seen.borrow().len(), 2);

        let get = fake.seen(0);
        assert_eq!(get.method, "GET");
        assert_eq!(get.target, "/v1/AUTH_a/c/o%20x?q=1");
        assert_eq!(get.headers.get("x-newest"), Some("true"));
        assert_eq!(get.headers.get("range"), Some("bytes=0-"));
        assert_eq!(get.headers.get("content-length"), Some("0"));
        assert_eq!(get.headers.get("user-agent"), Some("curl/8"));
        assert_eq!(get.headers.get("x-copy-from"), Some("/c/o%20x"));
        assert_eq!(get.headers.get("x-backend-storage-policy-index"), None);
        assert_eq!(get.headers.get("destination"), None);
        assert!(get.authorized, "the source is read as the client");
        assert_eq!(get.source.as_deref(), Some("SSC"));
        assert!(!get.logged, "the GET is logged on its own");

        let put = fake.seen(1);
        assert_eq!(put.method, "PUT");
        assert_eq!(put.target, "/v1/AUTH_a/d/new%E2%98%83?q=1");
        assert_eq!(put.body, b"hello world");
        assert!(put.authorized);
        assert_eq!(put.source.as_deref(), Some("SSC"));
        assert!(put.logged, "the PUT is the client's request");
        let h = &put.headers;
        assert_eq!(h.get("content-length"), Some("11"));
        assert_eq!(h.get("etag"), Some("5eb63bbbe01eeed093cb22bb8f5acdc3"));
        assert_eq!(h.get("content-type"), Some("text/x-foo"));
        assert_eq!(h.get("x-object-meta-size"), Some("big"), "the client wins");
        assert_eq!(h.get("x-object-meta-color"), Some("red"));
        assert_eq!(h.get("x-object-sysmeta-secret"), Some("s1"));
        assert_eq!(
            h.get("x-object-sysmeta-container-update-override-etag"),
            Some("o1")
        );
        assert_eq!(h.get("x-object-transient-sysmeta-t"), Some("t1"));
        assert_eq!(h.get("x-delete-at"), Some("9999999999"));
        assert_eq!(h.get("content-disposition"), Some("inline"));
        assert_eq!(h.get("x-backend-storage-policy-index"), Some("3"));
        for gone in [
            "x-timestamp",
            "x-backend-timestamp",
            "x-copy-from",
            "x-copy-from-account",
            "destination",
        ] {
            assert_eq!(h.get(gone), None, "{gone}");
        }
        drop((get, put));

        let added: Vec<(String, String)> = names(&resp.headers)
            .into_iter()
            .skip_while(|(k, _)| k != "X-Copied-From-Account")
            .collect();
        let want: Vec<(String, String)> = [
            ("X-Copied-From-Account", "AUTH_a"),
            ("X-Copied-From", "c/o%20x"),
            (
                "X-Copied-From-Last-Modified",
                "Mon, 07 Dec 2026 19:58:49 GMT",
            ),
            ("X-Object-Meta-Size", "big"),
            ("X-Object-Meta-Color", "red"),
            ("X-Object-Sysmeta-Secret", "s1"),
            ("X-Object-Sysmeta-Container-Update-Override-Etag", "o1"),
            ("X-Object-Transient-Sysmeta-T", "t1"),
            ("X-Delete-At", "9999999999"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(added, want);
        assert_eq!(resp.headers.get("etag"), Some("e1"));
        assert_eq!(
            logged.0.borrow().as_deref(),
            Some("/v1/AUTH_a/d/new%E2%98%83?q=1"),
            "the access log names the destination"
        );
        // The GET's log line: complete, with what the PUT read.
        assert_eq!(
            *fake.completions.borrow(),
            [Completion {
                bytes_sent: 11,
                complete: true
            }]
        );
    }

    #[test]
    fn cross_account_copies_name_both_accounts() {
        let fake = Fake::new(hello);
        let copy = mw(fake.clone());
        let mut req = Request::new("COPY", "/v1/AUTH_src/c/o");
        req.headers.append("Destination", "d/o2");
        req.headers.append("Destination-Account", "AUTH_%64st");
        let resp = call(&copy, req);
        assert_eq!(resp.status, 201);
        assert_eq!(fake.seen(0).target, "/v1/AUTH_src/c/o");
        assert_eq!(
            fake.seen(0).headers.get("x-copy-from-account"),
            Some("AUTH_src")
        );
        assert_eq!(fake.seen(1).target, "/v1/AUTH_dst/d/o2");
        assert_eq!(resp.headers.get("x-copied-from-account"), Some("AUTH_src"));

        let fake = Fake::new(hello);
        let copy = mw(fake.clone());
        let mut req = Request::new("PUT", "/v1/AUTH_dst/d/o2");
        req.headers.append("X-Copy-From", "c/o");
        req.headers.append("X-Copy-From-Account", "AUTH_src");
        let resp = call(&copy, req);
        assert_eq!(resp.status, 201);
        assert_eq!(fake.seen(0).target, "/v1/AUTH_src/c/o");
        assert_eq!(fake.seen(1).target, "/v1/AUTH_dst/d/o2");
        assert_eq!(fake.seen(1).headers.get("x-copy-from-account"), None);
    }

    #[test]
    fn refusals_are_swifts() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], u16, &'a str, &'a str);
        let cases: &[Case<'_>] = &[
            ("COPY", &[], 412, swob::HTML, "Destination header required"),
            (
                "COPY",
                &[("Destination", "")],
                412,
                swob::HTML,
                "Destination header required",
            ),
            (
                "COPY",
                &[("Destination", "conly")],
                412,
                swob::HTML,
                DESTINATION_FORM,
            ),
            (
                "COPY",
                &[("Destination", "/c/")],
                412,
                swob::HTML,
                DESTINATION_FORM,
            ),
            (
                "COPY",
                &[("Destination", "//c/o")],
                412,
                swob::HTML,
                DESTINATION_FORM,
            ),
            (
                "COPY",
                &[("Destination", "c/o"), ("Destination-Account", "")],
                412,
                swob::HTML,
                "Account name cannot be empty",
            ),
            (
                "COPY",
                &[("Destination", "c/o"), ("Destination-Account", "a%2Fb")],
                412,
                swob::HTML,
                "Account name cannot contain slashes",
            ),
            (
                "PUT",
                &[("X-Copy-From", "c")],
                412,
                swob::HTML,
                COPY_FROM_FORM,
            ),
            (
                "PUT",
                &[("X-Copy-From", "c/o"), ("X-Copy-From-Account", "a/b")],
                412,
                swob::HTML,
                "Account name cannot contain slashes",
            ),
            (
                "PUT",
                &[("X-Copy-From", "c/o"), ("Content-Length", "5")],
                400,
                "text/plain",
                "Copy requests require a zero byte body",
            ),
        ];
        for (method, headers, status, ctype, body) in cases {
            let fake = Fake::new(hello);
            let copy = mw(fake.clone());
            let mut req = Request::new(method, "/v1/a/c/o");
            for (k, v) in *headers {
                req.headers.append(k.to_string(), v.to_string());
            }
            let resp = call(&copy, req);
            assert_eq!(resp.status, *status, "{method} {headers:?}");
            assert_eq!(resp.headers.get("content-type"), Some(*ctype));
            assert_eq!(body_of(&resp), *body, "{method} {headers:?}");
            assert!(fake.seen.borrow().is_empty(), "nothing was asked");
        }
        // A COPY's own body is ignored: its Content-Length becomes 0.
        let fake = Fake::new(hello);
        let mut req = Request::new("COPY", "/v1/a/c/o");
        req.headers.append("Destination", "c/o2");
        req.headers.append("Content-Length", "3");
        assert_eq!(call(&mw(fake), req).status, 201);
    }

    #[test]
    fn what_is_not_a_copy_passes_untouched() {
        for (method, target, header) in [
            ("COPY", "/v1/a/c", Some(("Destination", "c/o"))),
            ("COPY", "/v1/a/c/", Some(("Destination", "c/o"))),
            ("PUT", "/v1/a/c/o", None),
            ("PUT", "/v1/a/c/o", Some(("X-Copy-From", ""))),
            ("PUT", "/v1/a/c", Some(("X-Copy-From", "c/o"))),
            ("GET", "/v1/a/c/o", Some(("X-Copy-From", "c/o"))),
        ] {
            let fake = Fake::new(hello);
            let copy = mw(fake.clone());
            let mut req = Request::new(method, target);
            if let Some((k, v)) = header {
                req.headers.append(k, v);
            }
            let resp = call(&copy, req);
            assert!(resp.headers.get("x-copied-from").is_none());
            let seen = fake.seen.borrow();
            assert_eq!(seen.len(), 1, "{method} {target}");
            assert_eq!(seen[0].method, method);
            assert_eq!(seen[0].target, target);
            assert!(seen[0].source.is_none());
        }
    }

    #[test]
    fn a_source_that_fails_is_the_answer() {
        for status in [304, 401, 404, 412, 416, 503] {
            let fake = Fake::new(move |_| {
                let mut r = swob::status(status);
                r.headers.append("X-Trail", "kept");
                r
            });
            let copy = mw(fake.clone());
            let mut req = Request::new("PUT", "/v1/a/c/o");
            req.headers.append("X-Copy-From", "c/src");
            let resp = call(&copy, req);
            assert_eq!(resp.status, status);
            assert_eq!(resp.headers.get("x-trail"), Some("kept"));
            assert_eq!(body_of(&resp), body_of(&swob::status(status)));
            assert_eq!(fake.seen.borrow().len(), 1, "no PUT");
            // Its log line is written when the client has it.
            assert!(fake.completions.borrow().is_empty());
        }
    }

    #[test]
    fn a_source_without_a_length_or_too_large_is_413() {
        let chunked = |_: &Request| {
            let mut r = source(200, &[], &["abc", "def"]);
            r.headers.remove("content-length");
            r
        };
        let too_large = |_: &Request| {
            let mut r = source(200, &[], &["abc", "def"]);
            r.headers.set("Content-Length", "101");
            r
        };
        for get in [
            Box::new(chunked) as Box<dyn Fn(&Request) -> Response>,
            Box::new(too_large),
        ] {
            let fake = Fake::new(get);
            let mut copy = mw(fake.clone());
            copy.max_file_size = 100;
            let mut req = Request::new("PUT", "/v1/a/c/o");
            req.headers.append("X-Copy-From", "c/src");
            let resp = call(&copy, req);
            assert_eq!(resp.status, 413);
            assert_eq!(body_of(&resp), body_of(&swob::status(413)));
            assert_eq!(fake.seen.borrow().len(), 1, "no PUT");
            // Logged as cut short after its first piece, as Swift logs it.
            assert_eq!(
                *fake.completions.borrow(),
                [Completion {
                    bytes_sent: 3,
                    complete: false
                }]
            );
        }
        // At the limit is fine.
        let fake = Fake::new(|_| source(200, &[], &["abc", "def"]));
        let mut copy = mw(fake.clone());
        copy.max_file_size = 6;
        let mut req = Request::new("PUT", "/v1/a/c/o");
        req.headers.append("X-Copy-From", "c/src");
        assert_eq!(call(&copy, req).status, 201);
    }

    #[test]
    fn a_put_that_fails_adds_nothing_and_the_get_is_cut_short() {
        let fake = Fake::with_put_status(hello, 404);
        let copy = mw(fake.clone());
        let mut req = Request::new("PUT", "/v1/a/nope/o");
        req.headers.append("X-Copy-From", "c/src");
        let resp = call(&copy, req);
        assert_eq!(resp.status, 404);
        assert!(resp.headers.get("x-copied-from").is_none());
        assert!(resp.headers.get("x-object-meta-color").is_none());
        assert_eq!(
            *fake.completions.borrow(),
            [Completion {
                bytes_sent: 6,
                complete: false
            }]
        );
    }

    #[test]
    fn fresh_metadata_keeps_only_the_sources_sysmeta() {
        let fake = Fake::new(hello);
        let copy = mw(fake.clone());
        let mut req = Request::new("PUT", "/v1/a/c/o");
        req.headers.append("X-Copy-From", "c/src");
        req.headers.append("X-Fresh-Metadata", "yes");
        req.headers.append("X-Object-Meta-New", "n");
        let resp = call(&copy, req);
        let put = fake.seen(1);
        let h = &put.headers;
        assert_eq!(h.get("x-object-meta-new"), Some("n"));
        assert_eq!(h.get("x-object-sysmeta-secret"), Some("s1"));
        for gone in [
            "x-object-meta-color",
            "x-object-meta-size",
            "x-delete-at",
            "content-disposition",
            "x-object-transient-sysmeta-t",
        ] {
            assert_eq!(h.get(gone), None, "{gone}");
        }
        assert_eq!(h.get("content-type"), Some("text/x-foo"));
        assert_eq!(h.get("etag"), Some("5eb63bbbe01eeed093cb22bb8f5acdc3"));
        assert_eq!(resp.headers.get("x-object-meta-new"), Some("n"));
        assert_eq!(resp.headers.get("x-object-meta-color"), None);
    }

    #[test]
    fn a_partial_or_manifest_copy_does_not_claim_the_sources_etag() {
        // A Range gives a 206: no ETag, no container update override.
        let fake = Fake::new(|_| {
            source(
                206,
                &[
                    ("Etag", "whole"),
                    ("Content-Range", "bytes 1-3/11"),
                    ("X-Object-Sysmeta-Container-Update-Override-Etag", "o"),
                    ("x-object-sysmeta-container-update-override-size", "9"),
                ],
                &["ell"],
            )
        });
        let copy = mw(fake.clone());
        let mut req = Request::new("PUT", "/v1/a/c/o");
        req.headers.append("X-Copy-From", "c/src");
        req.headers.append("Range", "bytes=1-3");
        req.headers.append("Content-Type", "text/mine");
        assert_eq!(call(&copy, req).status, 201);
        assert_eq!(fake.seen(0).headers.get("range"), Some("bytes=1-3"));
        let put = fake.seen(1);
        assert_eq!(put.body, b"ell");
        assert_eq!(put.headers.get("etag"), None);
        assert_eq!(put.headers.get("content-type"), Some("text/mine"));
        assert!(
            !put.headers
                .iter()
                .any(|(k, _)| k.to_ascii_lowercase().contains("override")),
            "{:?}",
            put.headers
        );
        drop(put);

        // An SLO: copied as its raw manifest with ?multipart-manifest=get,
        // which it PUTs back with multipart-manifest=put; never its ETag.
        let fake = Fake::new(|_| {
            source(
                200,
                &[("Etag", "\"slo\""), ("X-Static-Large-Object", "True")],
                &["[]"],
            )
        });
        let copy = mw(fake.clone());
        let mut req = Request::new("PUT", "/v1/a/c/o?multipart-manifest=get&version-id=1");
        req.headers.append("X-Copy-From", "c/src");
        assert_eq!(call(&copy, req).status, 201);
        assert_eq!(
            fake.seen(0).target,
            "/v1/a/c/src?multipart-manifest=get&version-id=1&format=raw"
        );
        assert_eq!(fake.seen(1).target, "/v1/a/c/o?multipart-manifest=put");
        assert_eq!(fake.seen(1).headers.get("etag"), None);
        assert_eq!(fake.seen(1).headers.get("x-static-large-object"), None);

        // A DLO manifest copied as such keeps its manifest header and ETag.
        let fake = Fake::new(|_| {
            source(
                200,
                &[
                    ("Etag", "d41d8cd98f00b204e9800998ecf8427e"),
                    ("X-Object-Manifest", "c/seg"),
                ],
                &[],
            )
        });
        let copy = mw(fake.clone());
        let mut req = Request::new("PUT", "/v1/a/c/o?multipart-manifest=get&x=1");
        req.headers.append("X-Copy-From", "c/dlo");
        assert_eq!(call(&copy, req).status, 201);
        assert_eq!(fake.seen(1).target, "/v1/a/c/o?x=1");
        assert_eq!(fake.seen(1).headers.get("x-object-manifest"), Some("c/seg"));
        assert_eq!(
            fake.seen(1).headers.get("etag"),
            Some("d41d8cd98f00b204e9800998ecf8427e")
        );
        assert_eq!(fake.seen(1).headers.get("content-length"), Some("0"));
        // An empty source ends (and is logged) before the PUT begins.
        assert_eq!(
            *fake.completions.borrow(),
            [Completion {
                bytes_sent: 0,
                complete: true
            }]
        );

        // Without ?multipart-manifest=get, the DLO's content is copied
        // without the manifest header or its ETag.
        let fake = Fake::new(|_| {
            source(
                200,
                &[("Etag", "\"x\""), ("X-Object-Manifest", "c/seg")],
                &["ab"],
            )
        });
        let copy = mw(fake.clone());
        let mut req = Request::new("PUT", "/v1/a/c/o?version-id=3");
        req.headers.append("X-Copy-From", "c/dlo");
        assert_eq!(call(&copy, req).status, 201);
        assert_eq!(fake.seen(0).target, "/v1/a/c/dlo?version-id=3");
        assert_eq!(fake.seen(1).target, "/v1/a/c/o");
        assert_eq!(fake.seen(1).headers.get("x-object-manifest"), None);
        assert_eq!(fake.seen(1).headers.get("etag"), None);
    }

    #[test]
    fn options_of_an_object_allows_copy() {
        let fake = Fake::new(hello);
        let copy = mw(fake.clone());
        let resp = call(&copy, Request::new("OPTIONS", "/v1/a/c/o"));
        assert_eq!(
            names(&resp.headers),
            [
                ("Allow".to_owned(), "GET, PUT, COPY".to_owned()),
                (
                    "Access-Control-Allow-Methods".to_owned(),
                    "GET, COPY".to_owned()
                )
            ]
        );
        // Not for containers, nor twice, nor for a refusal.
        let resp = call(&copy, Request::new("OPTIONS", "/v1/a/c"));
        assert_eq!(resp.headers.get("allow"), Some("GET, PUT"));
        let mut r = Response::new(200);
        r.headers.append("allow", "COPY, GET");
        assert_eq!(names(&allow_copy(r).headers)[0].1, "COPY, GET");
        let mut r = Response::new(401);
        r.headers.append("Allow", "GET");
        assert_eq!(allow_copy(r).headers.get("allow"), Some("GET"));
    }

    /// The whole body of a streamed response.
    async fn read_all(resp: &mut Response) -> Vec<u8> {
        let ResponseBody::Stream(s) = &mut resp.body else {
            panic!("not streamed")
        };
        let mut out = Vec::new();
        while let Some(piece) = std::future::poll_fn(|cx| s.as_mut().poll_chunk(cx)).await {
            out.extend_from_slice(&piece.unwrap());
        }
        out
    }

    #[test]
    fn heartbeat_answers_202_then_spaces_then_the_outcome() {
        let fake = Fake::new(hello);
        let (open, gate) = tokio::sync::oneshot::channel();
        *fake.gate.borrow_mut() = Some(gate);
        let copy = ServerSideCopy {
            next: fake.clone(),
            max_file_size: 1 << 30,
            yield_frequency: Duration::from_millis(20),
        };
        let mut req = Request::new("PUT", "/v1/a/c/o?heartbeat=on");
        req.headers.append("X-Copy-From", "c/src");
        req.headers.append("Accept", "application/json");
        let body = block_on(async {
            let mut resp = copy.call(req).resolve().await;
            assert_eq!(resp.status, 202);
            assert_eq!(resp.headers.get("content-type"), Some("application/json"));
            let ResponseBody::Stream(s) = &mut resp.body else {
                panic!("not streamed")
            };
            let mut next = async || {
                let piece = tokio::time::timeout(
                    Duration::from_secs(10),
                    std::future::poll_fn(|cx| s.as_mut().poll_chunk(cx)),
                )
                .await
                .expect("a piece in time");
                piece.map(|p| p.unwrap())
            };
            // A space at once, another while the PUT is held up.
            assert_eq!(next().await.as_deref(), Some(&b" "[..]));
            assert_eq!(next().await.as_deref(), Some(&b" "[..]));
            open.send(()).unwrap();
            let mut rest = Vec::new();
            while let Some(p) = next().await {
                rest.extend_from_slice(&p);
            }
            rest
        });
        let text = String::from_utf8(body).unwrap();
        let last = text.trim_start_matches(' ');
        assert_eq!(
            last,
            "{\"Response Status\": \"201 Created\", \"Response Body\": \"\", \
             \"X-Copied-From-Account\": \"a\", \"X-Copied-From\": \"c/src\", \
             \"X-Copied-From-Last-Modified\": \"Mon, 07 Dec 2026 19:58:49 GMT\", \
             \"X-Object-Meta-Color\": \"red\", \"X-Object-Meta-Size\": \"small\", \
             \"X-Object-Transient-Sysmeta-T\": \"t1\", \"X-Delete-At\": \"9999999999\", \
             \"Content-Type\": \"text/html; charset=UTF-8\", \"Content-Length\": \"0\", \
             \"Etag\": \"e1\", \"Last-Modified\": \"Mon, 07 Dec 2026 19:58:49 GMT\", \"Errors\": []}"
        );
        assert_eq!(fake.seen(1).body, b"hello world");
    }

    #[test]
    fn heartbeat_reports_a_failed_put_as_text() {
        let fake = Fake::with_put_status(
            |_| {
                source(
                    200,
                    &[
                        ("X-Object-Meta-U", "\u{e2}\u{98}\u{83}"),
                        ("Content-Type", "a/b"),
                    ],
                    &["x"],
                )
            },
            404,
        );
        let copy = mw(fake.clone());
        let mut req = Request::new("PUT", "/v1/a/nope/o?heartbeat=1");
        req.headers.append("X-Copy-From", "c/s%2520p");
        req.headers
            .append("Accept", "text/*;q=0.5, application/json;q=0.4");
        let body = block_on(async {
            let mut resp = copy.call(req).resolve().await;
            assert_eq!(resp.headers.get("content-type"), Some("text/plain"));
            read_all(&mut resp).await
        });
        let want = " Content-Length: 70\nContent-Type: text/html; charset=UTF-8\n\
            Response Body: <html><h1>Not Found</h1><p>The resource could not be found.</p></html>\n\
            Response Status: 404 Not Found\nX-Copied-From: c/s%2520p\nX-Copied-From-Account: a\n\
            X-Object-Meta-U: \u{e2}\u{98}\u{83}\nErrors:\nc/s%252520p, 404 Not Found\n";
        assert_eq!(body, want.as_bytes());
    }

    #[test]
    fn accept_matches_as_swob_does() {
        // What swob.Accept(h).best_match(['text/plain', 'application/json'])
        // gives in Swift 2.38.3 (None: no match; Err: ValueError).
        let json = Ok(Some("application/json"));
        let text = Ok(Some("text/plain"));
        let cases: &[(&str, Result<Option<&str>, ()>)] = &[
            ("", text),
            ("*/*", text),
            ("application/json", json),
            ("text/*, application/json", json),
            ("*/*;q=0.9, application/json", json),
            ("Application/JSON", Ok(None)),
            ("application/json;q=0", json),
            (" application/json ; charset=\"a,b\" ; q=1", Err(())),
            ("application/json;charset=\"utf-8\"", json),
            ("garbage", Err(())),
            ("a/b;q=x", Err(())),
            ("a/b;q=1;q=1", Err(())),
            ("a/b;x=\"1=2\"", Err(())),
            ("a/b;x", Err(())),
            ("a /b", Err(())),
            ("application/*", json),
            ("text/xml", Ok(None)),
            ("text/plain;q=0.1, application/json;q=0.2", json),
            ("*/json", json),
            ("application/json;q=.5, text/plain;q=0.5", json),
            ("application/json ;q=1", json),
            ("application/json;  q = 0.3 , text/*;q=0.2", json),
            ("text/plain,", Err(())),
            (",text/plain", Err(())),
            ("application/json;a=\"x\\\"y\"", json),
            ("application/json;q=1e-1, text/plain;q=0.05", json),
            ("application/json; q=inf", json),
            ("text/plain;Q=0.1, application/json;q=0.2", text),
            ("application/json\t", json),
            ("\tapplication/json", json),
        ];
        for (h, want) in cases {
            assert_eq!(best_match(Some(h), HEARTBEAT_FORMATS), *want, "{h:?}");
        }
        assert_eq!(best_match(None, HEARTBEAT_FORMATS), text);
    }

    #[test]
    fn environ_names_are_title_case_with_dashes() {
        assert_eq!(
            environ_header_name("x-object-meta-color"),
            "X-Object-Meta-Color"
        );
        assert_eq!(
            environ_header_name("X-OBJECT-META-A_b"),
            "X-Object-Meta-A-B"
        );
        assert_eq!(
            environ_header_name("x-object-meta-1abc"),
            "X-Object-Meta-1Abc"
        );
    }

    #[test]
    fn yield_frequency_must_be_positive() {
        let next: Rc<dyn Service> = Fake::new(hello);
        for (v, ok) in [
            ("1", true),
            (" 30 ", true),
            ("0", false),
            ("-1", false),
            ("x", false),
        ] {
            let mut values = std::collections::BTreeMap::new();
            values.insert("yield_frequency".to_owned(), v.to_owned());
            let conf = Conf::new("/etc/swift/proxy-server.conf", "filter:copy", values);
            match ServerSideCopy::new(&conf, 7, next.clone()) {
                Ok(c) => {
                    assert!(ok, "{v}");
                    assert_eq!(
                        c.yield_frequency.as_secs(),
                        v.trim().parse::<u64>().unwrap()
                    );
                    assert_eq!(c.max_file_size, 7);
                }
                Err(e) => {
                    assert!(!ok, "{v}: {e}");
                    assert!(e.contains("yield_frequency"), "{e}");
                    assert!(e.contains("proxy-server.conf"), "{e}");
                }
            }
        }
    }
}
