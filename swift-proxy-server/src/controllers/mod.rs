//! The proxy's controllers (Swift's `swift/proxy/controllers/`): one per
//! resource ([`account`], [`container`], [`obj`]), and here what they share,
//! Swift's `Controller` base: the headers a backend request carries, a
//! request to one node at a time (`_make_request`), to all primaries with
//! quorum (`make_requests`, `best_response`), reads from one node at a time
//! in the node iterator's order (`GETorHEAD_base`), delayed authorization,
//! and account autocreation.
//!
//! Controllers never write listings or keep data: the storage servers do.

pub mod account;
pub mod container;
pub mod obj;
pub mod resume;

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use swift_common::http::client::{ClientError, Connection, ResponseHead, body_stream};
use swift_common::http::quote::{parse_qsl, urlencode, wsgi_quote};
use swift_common::http::{Headers, Request, Response, ResponseBody};
use swift_common::logging::Level;
use swift_common::timestamp::Timestamp;

use crate::app::ProxyApp;
use crate::context::{AuthRequest, Authorize, SwiftOwner, is_swift_owner};
use crate::node_iter::{Node, NodeIter, SharedNodes, next_node};
use crate::pile::Pile;
use crate::swob;

/// Which kind of server a controller talks to (log wording, quorum rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerType {
    Account,
    Container,
    Object,
}

impl ServerType {
    /// `Account`, `Container`, `Object`: Swift's `server_type`.
    pub fn name(self) -> &'static str {
        match self {
            ServerType::Account => "Account",
            ServerType::Container => "Container",
            ServerType::Object => "Object",
        }
    }

    fn lower(self) -> &'static str {
        match self {
            ServerType::Account => "account",
            ServerType::Container => "container",
            ServerType::Object => "object",
        }
    }
}

/// What one backend answered (or a stand-in 503 when none did).
#[derive(Debug)]
pub struct BackendResult {
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: Bytes,
    /// The node that answered; `None` for a stand-in.
    pub node: Option<Node>,
}

impl BackendResult {
    /// A stand-in for a backend that gave no usable answer.
    pub fn unavailable() -> BackendResult {
        BackendResult {
            status: 503,
            reason: "Service Unavailable".into(),
            headers: Headers::new(),
            body: Bytes::new(),
            node: None,
        }
    }
}

/// `quorum_size(n)`.
pub fn quorum_size(n: usize) -> usize {
    n.div_ceil(2).max(if n == 0 { 0 } else { 1 })
}

/// Status classes that can make a quorum.
fn class_of(status: u16) -> u16 {
    status / 100 * 100
}

/// `have_quorum`.
pub fn have_quorum(statuses: &[u16], node_count: usize) -> bool {
    let quorum = quorum_size(node_count);
    if statuses.len() < quorum {
        return false;
    }
    [100u16, 200, 300, 400]
        .iter()
        .any(|h| statuses.iter().filter(|s| class_of(**s) == *h).count() >= quorum)
}

/// `update_headers`: copy a backend's headers onto a response, without the
/// ones the proxy sets itself, and with the ETag unquoted.
pub fn update_headers(resp: &mut Response, headers: &Headers) {
    resp.headers.reserve(headers.len());
    for (k, v) in headers.fields() {
        if k.eq_ignore_ascii_case("etag") {
            resp.headers.set(k.clone(), unquote_etag(v));
        } else if ![
            "date",
            "content-length",
            "content-type",
            "connection",
            "x-put-timestamp",
            "x-delete-after",
        ]
        .iter()
        .any(|n| k.eq_ignore_ascii_case(n))
        {
            resp.headers.set(k.clone(), v.clone());
        }
    }
}

/// An ETag without its quotes (a copy without a scan-and-rebuild when it
/// has none).
fn unquote_etag(etag: &str) -> String {
    if etag.contains('"') {
        etag.replace('"', "")
    } else {
        etag.to_owned()
    }
}

/// `best_response`: the highest status of the first class (2xx, 3xx, 4xx)
/// that has a quorum, with its reason, body and headers; `overrides`
/// re-map statuses only when nothing else has a quorum; otherwise 503.
pub fn best_response(
    app: &ProxyApp,
    trans_id: &str,
    results: &[BackendResult],
    server_type: &str,
    etag: Option<&str>,
    overrides: &[(u16, u16)],
    quorum: Option<usize>,
) -> Response {
    let quorum = quorum.unwrap_or_else(|| quorum_size(results.len()));
    let statuses: Vec<u16> = results.iter().map(|r| r.status).collect();
    if let Some(resp) = quorum_response(results, &statuses, etag, quorum, &[]) {
        return resp;
    }
    if !overrides.is_empty() {
        let mut faked = Vec::new();
        let mapped: Vec<u16> = statuses
            .iter()
            .enumerate()
            .map(
                |(i, s)| match overrides.iter().find(|(from, _)| from == s) {
                    Some((_, to)) => {
                        faked.push(i);
                        *to
                    }
                    None => *s,
                },
            )
            .collect();
        if let Some(resp) = quorum_response(results, &mapped, etag, quorum, &faked) {
            return resp;
        }
    }
    app.log(
        Level::Error,
        trans_id,
        format_args!("{server_type} returning 503 for {}", py_list(&statuses)),
    );
    swob::status(503)
}

/// Python's repr of a list of ints (`[503, 404]`), as Swift logs it.
pub fn py_list(statuses: &[u16]) -> String {
    let items: Vec<String> = statuses.iter().map(u16::to_string).collect();
    format!(
        "({})",
        items.join(", ") + if items.len() == 1 { "," } else { "" }
    )
}

fn quorum_response(
    results: &[BackendResult],
    statuses: &[u16],
    etag: Option<&str>,
    quorum: usize,
    avoid: &[usize],
) -> Option<Response> {
    if statuses.is_empty() {
        return None;
    }
    for hundred in [200u16, 300, 400] {
        let in_class: Vec<(usize, u16)> = statuses
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, s)| class_of(*s) == hundred)
            .collect();
        if in_class.len() < quorum {
            continue;
        }
        // Python's max() keeps the first of equal maxima.
        let Some((i, status)) = in_class.iter().filter(|(i, _)| !avoid.contains(i)).fold(
            None::<(usize, u16)>,
            |best, &(i, s)| match best {
                Some((_, bs)) if bs >= s => best,
                _ => Some((i, s)),
            },
        ) else {
            continue;
        };
        let r = &results[i];
        let mut resp = Response::with_body(status, swob::HTML, r.body.clone());
        resp.reason = std::borrow::Cow::Owned(r.reason.clone());
        update_headers(&mut resp, &r.headers);
        if let Some(e) = etag {
            resp.headers.set("Etag", e.replace('"', ""));
        }
        return Some(resp);
    }
    None
}

/// The request a controller handles, and what it knows about it.
pub struct Ctx<'a> {
    pub app: &'a ProxyApp,
    pub req: Request,
    pub trans_id: String,
    /// WSGI strings, as in the path.
    pub account: String,
    pub container: String,
    pub object: String,
    /// The request's `X-Timestamp` (set or checked by the app).
    pub timestamp: Timestamp,
}

impl<'a> Ctx<'a> {
    /// `swift_entity_path`: `/a[/c[/o]]` (a WSGI string).
    pub fn entity_path(&self) -> String {
        let mut p = String::with_capacity(
            3 + self.account.len() + self.container.len() + self.object.len(),
        );
        p.push('/');
        p.push_str(&self.account);
        if !self.container.is_empty() {
            p.push('/');
            p.push_str(&self.container);
            if !self.object.is_empty() {
                p.push('/');
                p.push_str(&self.object);
            }
        }
        p
    }

    /// The client's query, re-encoded for a backend; `None` when empty.
    pub fn backend_query(&self) -> Option<String> {
        let q = self.req.query().filter(|q| !q.is_empty())?;
        Some(urlencode(&parse_qsl(q)))
    }

    /// Swift's `as_referer()`: `METHOD scheme://host/path?query`.
    fn referer(&self) -> String {
        use std::fmt::Write as _;
        // Pieces pushed into one sized buffer: `format!` grows it piecewise.
        let r = &self.req;
        let mut referer = String::with_capacity(64 + r.target.len());
        referer.push_str(&r.method);
        referer.push(' ');
        referer.push_str(r.scheme);
        referer.push_str("://");
        match r.headers.get("host") {
            Some(host) => referer.push_str(host),
            None => {
                let _ = write!(referer, "{}", r.local_addr);
            }
        }
        referer.push_str(&r.target);
        referer
    }

    /// `generate_request_headers(orig_req, additional, transfer)`.
    pub fn request_headers(
        &self,
        additional: Option<&Headers>,
        transfer: Option<&Transfer>,
    ) -> Headers {
        self.request_headers_from(additional.as_slice(), transfer)
    }

    /// [`Ctx::request_headers`] with the additional headers in layers, set
    /// one layer after the other (as if merged into one first, without
    /// copying them twice).
    fn request_headers_from(
        &self,
        additional: &[&Headers],
        transfer: Option<&Transfer>,
    ) -> Headers {
        let mut h = Headers::with_capacity(additional.iter().map(|a| a.len()).sum::<usize>() + 8);
        for (k, v) in self.req.headers.fields() {
            if starts_with_ignore_case(k, "x-backend-") || k.eq_ignore_ascii_case("x-timestamp") {
                h.set(k.clone(), v.clone());
            }
        }
        for add in additional {
            for (k, v) in add.fields() {
                h.set(k.clone(), v.clone());
            }
        }
        if let Some(t) = transfer {
            t.apply(&self.req.headers, &mut h);
        }
        h.set("X-Trans-Id", self.trans_id.clone());
        h.set("User-Agent", self.app.backend_user_agent());
        h.set("Referer", self.referer());
        h
    }

    /// Log through the app's logger with this request's trans id.
    pub fn log(&self, level: Level, msg: std::fmt::Arguments<'_>) {
        self.app.log(level, &self.trans_id, msg);
    }

    /// Ask `swift.authorize` (if still installed) about this request with
    /// `acl`; `Some` is the denial to send. Records `swift_owner`.
    pub async fn authorize(&mut self, acl: Option<String>) -> Option<Response> {
        let auth = self.req.env.ext.get::<Authorize>()?.clone();
        let outcome = (auth.0)(AuthRequest {
            method: self.req.method.to_string(),
            path_info: self.req.path_info().into_owned(),
            headers: self.req.headers.clone(),
            acl,
            env: self.req.env.clone(),
        })
        .await;
        if outcome.swift_owner {
            self.req.env.ext.insert(SwiftOwner(true));
        }
        if let Some(h) = outcome.headers {
            self.req.headers = h;
        }
        outcome.denied
    }

    pub fn is_owner(&self) -> bool {
        is_swift_owner(&self.req.env)
    }

    /// The nodes of `part` for this request.
    pub fn node_iter(&self, ring: &swift_common::ring::Ring, part: usize) -> SharedNodes {
        let primaries = crate::node_iter::primaries(ring, part);
        let count = self
            .app
            .settings
            .request_node_count
            .for_replicas(primaries.len());
        let mut nodes = NodeIter::new(
            primaries,
            crate::node_iter::handoffs(ring, part),
            count,
            self.app.limiter.clone(),
        );
        if self.app.settings.log_handoffs {
            let logger = self.app.logger.clone();
            let trans_id = self.trans_id.clone();
            nodes.on_extra_handoff(Box::new(move |n| {
                logger.log_with(
                    Level::Warning,
                    format_args!("Handoff requested ({n})"),
                    Some(&trans_id),
                    None,
                );
            }));
        }
        Rc::new(RefCell::new(nodes))
    }

    /// The backend URL path: `/<device>/<part><entity path>`, quoted.
    pub fn backend_path(node: &Node, part: usize, entity_path: &str) -> String {
        let part = part.to_string();
        let mut raw = Vec::with_capacity(node.device.len() + part.len() + entity_path.len() + 2);
        raw.push(b'/');
        raw.extend_from_slice(node.device.as_bytes());
        raw.push(b'/');
        raw.extend_from_slice(part.as_bytes());
        swift_common::http::quote::push_wsgi_bytes(&mut raw, entity_path);
        let mut out = String::with_capacity(raw.len() + 8);
        swift_common::http::quote::quote_bytes_into(&mut out, &raw, "/");
        out
    }

    /// Open a connection to `node` and send the request head (within
    /// `conn_timeout`).
    pub async fn connect(
        &self,
        node: &Node,
        part: usize,
        method: &str,
        entity_path: &str,
        query: Option<&str>,
        headers: &Headers,
    ) -> Result<Connection, ClientError> {
        self.app
            .connect(node, part, method, entity_path, query, headers)
            .await
    }

    /// Swift's `exception_occurred`: log the failure with the node and
    /// count it against the node.
    pub fn exception_occurred(
        &self,
        node: &Node,
        server_type: ServerType,
        info: &str,
        err: &ClientError,
    ) {
        self.app
            .exception_occurred(node, server_type, info, err, &self.trans_id);
    }

    /// Swift's `check_response`: a 507 limits the node, a 5xx counts an
    /// error; true when the status is below 500.
    pub fn check_response(
        &self,
        node: &Node,
        server_type: ServerType,
        status: u16,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> bool {
        if status == 507 {
            self.app
                .error_limit(node, "ERROR Insufficient Storage", &self.trans_id);
            false
        } else if status >= 500 {
            let msg = match body {
                Some(b) => format!(
                    "ERROR {status} {} Trying to {method} {path} From {} Server",
                    String::from_utf8_lossy(&b[..b.len().min(1024)]),
                    server_type.name()
                ),
                None => format!(
                    "ERROR {status} Trying to {method} {path} From {} Server",
                    server_type.name()
                ),
            };
            self.app.error_occurred(node, &msg, &self.trans_id);
            false
        } else {
            true
        }
    }

    /// `_make_request`: one node at a time from `nodes` until one answers
    /// below 500 (and not 1xx); `None` when none did.
    #[allow(clippy::too_many_arguments)]
    pub async fn make_request(
        &self,
        server_type: ServerType,
        nodes: &SharedNodes,
        part: usize,
        method: &str,
        entity_path: &str,
        headers: &Headers,
        query: Option<&str>,
        body: Option<&Bytes>,
    ) -> Option<BackendResult> {
        let mut headers = headers.clone();
        if let Some(b) = body.filter(|b| !b.is_empty()) {
            headers.set("Content-Length", b.len().to_string());
        }
        let node_timeout = self.app.settings.node_timeout;
        while let Some(node) = next_node(nodes) {
            let attempt = async {
                let mut conn = self
                    .connect(&node, part, method, entity_path, query, &headers)
                    .await?;
                if let Some(b) = body.filter(|b| !b.is_empty()) {
                    conn.send(b, node_timeout).await?;
                }
                let head = conn.read_head(node_timeout).await?;
                Ok::<_, ClientError>((conn, head))
            };
            match attempt.await {
                Ok((conn, head)) => {
                    if self.check_response(
                        &node,
                        server_type,
                        head.status,
                        method,
                        entity_path,
                        None,
                    ) && head.status >= 200
                    {
                        let mut b = conn.into_body(&head, node_timeout);
                        let body = b.to_bytes(1 << 20).await.unwrap_or_default();
                        return Some(BackendResult {
                            status: head.status,
                            reason: head.reason,
                            headers: head.headers,
                            body,
                            node: Some(node),
                        });
                    }
                }
                Err(e) => {
                    // The message is made only for a failure.
                    let info = format!(
                        "Trying to {method} {}",
                        wsgi_quote(&format!("/v1{entity_path}"), "/")
                    );
                    self.exception_occurred(&node, server_type, &info, &e);
                }
            }
        }
        None
    }

    /// `_make_requests`: one request per header set, all at once, sharing
    /// `nodes`; stop waiting at quorum, give stragglers
    /// `post_quorum_timeout`, pad with 503s up to `node_count`.
    #[allow(clippy::too_many_arguments)]
    pub async fn make_requests_raw(
        &self,
        server_type: ServerType,
        nodes: SharedNodes,
        part: usize,
        method: &str,
        entity_path: &str,
        headers: Vec<Headers>,
        query: Option<&str>,
        node_count: usize,
        body: Option<Bytes>,
    ) -> Vec<BackendResult> {
        let mut pile = Pile::new();
        for h in headers {
            let nodes = nodes.clone();
            let body = body.clone();
            pile.push(async move {
                self.make_request(
                    server_type,
                    &nodes,
                    part,
                    method,
                    entity_path,
                    &h,
                    query,
                    body.as_ref(),
                )
                .await
            });
        }
        let mut results: Vec<BackendResult> = Vec::new();
        let useful = |r: &BackendResult| {
            // A 404 from a handoff says nothing unless it has a tombstone.
            !(r.node.as_ref().is_some_and(Node::is_handoff)
                && r.status == 404
                && !r.headers.contains("x-backend-timestamp"))
        };
        while let Some(r) = pile.next().await {
            let Some(r) = r else { continue };
            if !useful(&r) {
                continue;
            }
            results.push(r);
            let statuses: Vec<u16> = results.iter().map(|r| r.status).collect();
            if have_quorum(&statuses, node_count) {
                break;
            }
        }
        for r in pile
            .wait_all(self.app.settings.post_quorum_timeout)
            .await
            .into_iter()
            .flatten()
        {
            if useful(&r) {
                results.push(r);
            }
        }
        while results.len() < node_count {
            results.push(BackendResult::unavailable());
        }
        results
    }

    /// `make_requests`: [`Ctx::make_requests_raw`] then [`best_response`].
    #[allow(clippy::too_many_arguments)]
    pub async fn make_requests(
        &self,
        server_type: ServerType,
        ring: &swift_common::ring::Ring,
        part: usize,
        method: &str,
        entity_path: &str,
        headers: Vec<Headers>,
        query: Option<&str>,
        overrides: &[(u16, u16)],
    ) -> Response {
        let node_count = ring.get_part_nodes(part).len();
        let nodes = self.node_iter(ring, part);
        let results = self
            .make_requests_raw(
                server_type,
                nodes,
                part,
                method,
                entity_path,
                headers,
                query,
                node_count,
                None,
            )
            .await;
        best_response(
            self.app,
            &self.trans_id,
            &results,
            &format!("{} {}", server_type.name(), self.req.method),
            None,
            overrides,
            None,
        )
    }

    /// `autocreate_account`: PUT the account to its primaries; true on
    /// success (the account info cache is cleared).
    pub async fn autocreate_account(&mut self, account: &str) -> bool {
        let ring = &self.app.account_ring;
        let part = self.app.part(ring, account, None, None);
        let n = ring.get_part_nodes(part).len();
        let mut h = Headers::new();
        h.set("X-Timestamp", Timestamp::now().internal());
        h.set("X-Trans-Id", self.trans_id.clone());
        h.set("X-Openstack-Request-Id", self.trans_id.clone());
        for (k, v) in self.req.headers.iter() {
            if k.to_ascii_lowercase().starts_with("x-account-sysmeta-") {
                h.set(k.to_owned(), v.to_owned());
            }
        }
        let path = format!("/{account}");
        let nodes = self.node_iter(ring, part);
        let results = self
            .make_requests_raw(
                ServerType::Account,
                nodes,
                part,
                "PUT",
                &path,
                vec![h; n],
                None,
                n,
                None,
            )
            .await;
        let resp = best_response(
            self.app,
            &self.trans_id,
            &results,
            "Account PUT",
            None,
            &[],
            None,
        );
        if (200..300).contains(&resp.status) {
            self.log(Level::Info, format_args!("autocreate account {:?}", path));
            crate::info::clear_info_cache(&mut self.req.env, account, None).await;
            true
        } else {
            self.log(
                Level::Warning,
                format_args!("Could not autocreate account {:?}", path),
            );
            false
        }
    }

    /// `account_info`: the account's info, or `None` when it does not
    /// (really) exist.
    pub async fn account_info(&mut self) -> Option<crate::info::AccountInfo> {
        let account = self.account.clone();
        let info = crate::info::get_account_info(&mut self.req.env, self.app, &account, "").await;
        (info.is_success() && info.account_really_exists).then_some(info)
    }

    /// `container_info` of this request's container.
    pub async fn container_info(&mut self) -> crate::info::ContainerInfo {
        let (a, c) = (self.account.clone(), self.container.clone());
        crate::info::get_container_info(&mut self.req.env, self.app, &a, &c, "").await
    }

    /// `GETorHEAD_base`: ask one node at a time (all of them with
    /// `X-Newest`) until one has a good answer; stream its body.
    pub async fn get_or_head(
        &self,
        server_type: ServerType,
        nodes: SharedNodes,
        part: usize,
        entity_path: &str,
        query: Option<&str>,
        extra: &Headers,
    ) -> Response {
        // The client's headers, then `extra`, as additional headers.
        let headers = self.request_headers_from(&[&self.req.headers, extra], None);
        let method = self.req.method.to_string();
        let newest = self
            .req
            .headers
            .get("x-newest")
            .is_some_and(swift_common::config::values::config_true_value);
        let node_timeout = self.app.settings.node_timeout;
        let body_timeout = if server_type == ServerType::Object && !newest {
            self.app.settings.recoverable_node_timeout
        } else {
            node_timeout
        };
        let mut results: Vec<BackendResult> = Vec::new();
        let mut sources: Vec<(Timestamp, Connection, ResponseHead, Node)> = Vec::new();
        let mut latest_404 = Timestamp::default();
        let primaries = nodes.borrow().num_primaries;
        let mut missing_suppression = 1usize.min(primaries.saturating_sub(1));
        while let Some(node) = next_node(&nodes) {
            let attempt = async {
                let mut conn = self
                    .connect(&node, part, &method, entity_path, query, &headers)
                    .await?;
                let head = conn.read_head(node_timeout).await?;
                Ok::<_, ClientError>((conn, head))
            };
            let (conn, head) = match attempt.await {
                Ok(x) => x,
                Err(e) => {
                    let info = format!("Trying to {method} {}", self.req.raw_path());
                    self.exception_occurred(&node, server_type, &info, &e);
                    continue;
                }
            };
            let ts_of = |h: &Headers, names: &[&str]| {
                names
                    .iter()
                    .find_map(|n| h.get(n).filter(|v| !v.is_empty()))
                    .and_then(|v| Timestamp::parse(v).ok())
                    .unwrap_or_default()
            };
            let good = (200..400).contains(&head.status)
                || (server_type == ServerType::Object && head.status == 416);
            if good {
                let put_ts_zero = head
                    .headers
                    .get("x-put-timestamp")
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .is_some_and(|v| v == 0.0);
                if put_ts_zero {
                    results.push(BackendResult {
                        status: 404,
                        reason: String::new(),
                        headers: Headers::new(),
                        body: Bytes::new(),
                        node: Some(node),
                    });
                    continue;
                }
                let ts = ts_of(
                    &head.headers,
                    &[
                        "x-backend-data-timestamp",
                        "x-backend-timestamp",
                        "x-put-timestamp",
                        "x-timestamp",
                    ],
                );
                if ts >= latest_404 {
                    sources.push((ts, conn, head, node));
                    if !newest {
                        break;
                    }
                }
                continue;
            }
            let backend_ts = ts_of(&head.headers, &["x-backend-timestamp"]);
            if node.is_handoff()
                && (head.status >= 500 || head.status == 404)
                && backend_ts == Timestamp::default()
            {
                continue;
            }
            if missing_suppression > 0 && head.status == 404 && backend_ts == Timestamp::default() {
                missing_suppression -= 1;
                continue;
            }
            let status = head.status;
            let mut body = conn.into_body(&head, node_timeout);
            let bytes = body.to_bytes(1 << 16).await.unwrap_or_default();
            if server_type == ServerType::Object && status == 404 && backend_ts > latest_404 {
                latest_404 = backend_ts;
            }
            self.check_response(
                &node,
                server_type,
                status,
                &method,
                entity_path,
                Some(&bytes),
            );
            results.push(BackendResult {
                status,
                reason: head.reason,
                headers: head.headers,
                body: bytes,
                node: Some(node),
            });
        }
        sources.retain(|(ts, _, _, _)| *ts >= latest_404);
        // The newest good source wins (the last of equals, as Python's
        // stable sort and pop give).
        let best = sources
            .iter()
            .enumerate()
            .fold(
                None::<(usize, Timestamp)>,
                |acc, (i, (ts, _, _, _))| match acc {
                    Some((_, t)) if t > *ts => acc,
                    _ => Some((i, *ts)),
                },
            )
            .map(|(i, _)| i);
        let mut resp = match best {
            Some(i) => {
                let (_, conn, head, node) = sources.swap_remove(i);
                drop(sources);
                let source = Source {
                    conn,
                    head,
                    node,
                    server_type,
                    nodes,
                    headers,
                    part,
                    entity_path,
                    query,
                };
                self.working_response(source, body_timeout)
            }
            None => best_response(
                self.app,
                &self.trans_id,
                &results,
                &format!("{} {}", server_type.name(), method),
                None,
                &[],
                None,
            ),
        };
        if (200..300).contains(&resp.status)
            && let Some(idx) = resp.headers.get("x-backend-storage-policy-index")
        {
            match idx.trim().parse::<u64>().ok().and_then(|i| self.app.policies.get_by_index(i)) {
                Some(p) => resp.headers.set("X-Storage-Policy", p.name().to_owned()),
                None => self.log(
                    Level::Error,
                    format_args!(
                        "Could not translate X-Backend-Storage-Policy-Index ({idx:?}) from {entity_path:?} to policy"
                    ),
                ),
            }
        }
        resp
    }

    /// `get_working_response`: the client's response from a good source.
    fn working_response(&self, source: Source<'_>, body_timeout: std::time::Duration) -> Response {
        let Source {
            conn,
            head,
            node,
            server_type,
            nodes,
            headers,
            part,
            entity_path,
            query,
        } = source;
        let mut resp = swob::status(head.status);
        update_headers(&mut resp, &head.headers);
        resp.headers.set("Accept-Ranges", "bytes");
        if let Some(ct) = head.headers.get("content-type") {
            resp.headers.set("Content-Type", ct.to_owned());
        }
        let streams = self.req.method == "GET" && (head.status == 200 || head.status == 206);
        if streams {
            match head.headers.get("content-length") {
                Some(cl) => resp.headers.set("Content-Length", cl.to_owned()),
                None => {
                    resp.headers.remove("content-length");
                }
            }
            let remaining = resume::Remaining::of(&head);
            let body = conn.into_body(&head, body_timeout);
            let etag = head.headers.get("etag").map(unquote_etag);
            resp.body = match (server_type, remaining, etag, self.app.shared()) {
                (ServerType::Object, Some(remaining), Some(etag), Some(app)) => {
                    ResponseBody::Stream(Box::pin(resume::stream(resume::Resume {
                        app,
                        trans_id: self.trans_id.clone(),
                        nodes,
                        headers,
                        part,
                        entity_path: entity_path.to_owned(),
                        query: query.map(str::to_owned),
                        body,
                        node,
                        etag,
                        remaining,
                        timeout: body_timeout,
                    })))
                }
                _ => ResponseBody::Stream(Box::pin(body_stream(body))),
            };
        } else {
            if self.req.method == "HEAD" {
                if let Some(cl) = head.headers.get("content-length") {
                    resp.headers.set("Content-Length", cl.to_owned());
                }
                resp.body = ResponseBody::Empty;
            }
            // Nothing more is read from it: kept for the next request if
            // the answer had no body.
            conn.finish_with(&head);
        }
        resp
    }
}

/// A good source and what resuming from another node would need.
struct Source<'q> {
    conn: Connection,
    head: ResponseHead,
    node: Node,
    server_type: ServerType,
    nodes: SharedNodes,
    headers: Headers,
    part: usize,
    entity_path: &'q str,
    query: Option<&'q str>,
}

/// Whether `s` starts with the ASCII `prefix`, ignoring case.
fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// What a controller passes through from a client's write to a backend
/// (`transfer_headers`): the resource's user and system metadata, its
/// pass-through list, and `X-Remove-*` turned into empty values.
pub struct Transfer {
    pub server_type: ServerType,
    pub pass_through: &'static [&'static str],
    pub x_remove: &'static [&'static str],
}

impl Transfer {
    pub fn apply(&self, src: &Headers, dst: &mut Headers) {
        let st = self.server_type.lower();
        let remove_prefix = format!("x-remove-{st}-meta-");
        for (k, _) in src.iter() {
            let l = k.to_ascii_lowercase();
            if l.starts_with(&remove_prefix) || self.x_remove.contains(&l.as_str()) {
                dst.set(l.replacen("-remove", "", 1), "");
            }
        }
        let meta = format!("x-{st}-meta-");
        let sysmeta = format!("x-{st}-sysmeta-");
        for (k, v) in src.iter() {
            let l = k.to_ascii_lowercase();
            if self.pass_through.contains(&l.as_str())
                || (l.starts_with(&meta) && l.len() > meta.len())
                || (l.starts_with(&sysmeta) && l.len() > sysmeta.len())
            {
                dst.set(l, v.to_owned());
            }
        }
    }
}

/// Drop `swift_owner_headers` from `headers` (requests and responses of
/// callers that are not the owner).
pub fn strip_owner_headers(app: &ProxyApp, headers: &mut Headers) {
    for name in &app.settings.swift_owner_headers {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_as_swift() {
        assert_eq!(quorum_size(3), 2);
        assert_eq!(quorum_size(2), 1);
        assert_eq!(quorum_size(4), 2);
        assert_eq!(quorum_size(1), 1);
        assert!(have_quorum(&[201, 201], 3));
        assert!(!have_quorum(&[201, 404], 3));
        assert!(have_quorum(&[404, 404], 3));
    }

    #[test]
    fn transfer_headers_as_swift() {
        let t = Transfer {
            server_type: ServerType::Container,
            pass_through: &["x-container-read"],
            x_remove: &["x-remove-container-read"],
        };
        let mut src = Headers::new();
        src.append("X-Container-Meta-Color", "red");
        src.append("X-Remove-Container-Meta-Old", "x");
        src.append("X-Remove-Container-Read", "x");
        src.append("X-Object-Meta-No", "n");
        src.append("X-Container-Meta-", "empty name");
        let mut dst = Headers::new();
        t.apply(&src, &mut dst);
        assert_eq!(dst.get("x-container-meta-color"), Some("red"));
        assert_eq!(dst.get("x-container-meta-old"), Some(""));
        assert_eq!(dst.get("x-container-read"), Some(""));
        assert!(dst.get("x-object-meta-no").is_none());
    }

    #[test]
    fn py_list_like_python_tuples() {
        assert_eq!(py_list(&[503]), "(503,)");
        assert_eq!(py_list(&[503, 404]), "(503, 404)");
    }
}
