//! `/v1/<account>/<container>/<object>` for replicated policies (Swift's
//! `ReplicatedObjectController`): GET and HEAD from one object server at a
//! time, the body streamed to the client; PUT streamed to every primary at
//! once (`Expect: 100-continue`, handoffs for primaries that refuse,
//! quorum, ETag agreement), never buffered whole; POST and DELETE to all
//! primaries. Every write names the container servers that the object
//! servers update (and the expirer queue for `X-Delete-At`).

use std::pin::Pin;

use bytes::Bytes;
use swift_common::http::client::{ClientError, Connection};
use swift_common::http::{Headers, Response};
use swift_common::logging::Level;
use swift_common::timestamp::normalize_delete_at_timestamp;

use super::container::csv_append;
use super::{BackendResult, Ctx, ServerType, best_response, have_quorum, quorum_size};
use crate::constraints::{
    check_content_type, check_delete_headers, check_metadata, check_object_creation,
};
use crate::context::SwiftSyncKey;
use crate::info::ContainerInfo;
use crate::node_iter::{Node, SharedNodes, next_node};
use crate::pile::{Pile, join_all};
use crate::swob;

pub const ALLOWED: &str = "DELETE, GET, HEAD, OPTIONS, POST, PUT";

/// Swift's `EXPIRER_CONTAINER_DIVISOR` and `EXPIRER_CONTAINER_PER_DIVISOR`.
const EXPIRER_DIVISOR: i64 = 86400;
const EXPIRER_PER_DIVISOR: i64 = 100;
/// The account of the expirer's task queue.
const EXPIRER_ACCOUNT: &str = ".expiring_objects";

/// What the object's container says about where the object lives.
struct Placement {
    info: ContainerInfo,
    policy_index: u64,
}

/// The container's info and the object's policy (a client-supplied
/// `X-Backend-Storage-Policy-Index` from an internal caller wins).
async fn placement(ctx: &mut Ctx<'_>) -> Result<Placement, Response> {
    let info = ctx.container_info().await;
    let idx = match ctx.req.headers.get("x-backend-storage-policy-index") {
        Some(v) => v.trim().parse::<u64>().ok(),
        None => u64::try_from(info.storage_policy).ok(),
    };
    let Some(policy_index) = idx.filter(|i| ctx.app.object_ring(*i).is_some()) else {
        return Err(swob::html(503, "Unknown Storage Policy"));
    };
    ctx.req
        .headers
        .set("X-Backend-Storage-Policy-Index", policy_index.to_string());
    Ok(Placement { info, policy_index })
}

/// `clean_content_type`: drop a `;swift_bytes=` parameter.
fn clean_content_type(v: &str) -> String {
    match v.split_once(';') {
        Some((left, params)) if params.trim_start().starts_with("swift_bytes=") => left.to_owned(),
        _ => v.to_owned(),
    }
}

/// GET or HEAD.
pub async fn get_or_head(mut ctx: Ctx<'_>) -> Response {
    let p = match placement(&mut ctx).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Some(denied) = ctx.authorize(p.info.read_acl.clone()).await {
        return denied;
    }
    let app = ctx.app;
    let Some(ring) = app.object_ring(p.policy_index) else {
        return swob::status(503);
    };
    let part = app.part(ring, &ctx.account, Some(&ctx.container), Some(&ctx.object));
    let nodes = ctx.node_iter(ring, part);
    let path = ctx.entity_path();
    let query = ctx.backend_query();
    let mut resp = ctx
        .get_or_head(
            ServerType::Object,
            nodes,
            part,
            &path,
            query.as_deref(),
            &Headers::new(),
        )
        .await;
    if let Some(ct) = resp.headers.get("content-type").filter(|c| c.contains(';')) {
        let clean = clean_content_type(ct);
        resp.headers.set("Content-Type", clean);
    }
    resp
}

/// `_config_obj_expiration`: normalize `X-Delete-At` and find its task
/// container: `(container, partition, nodes)`.
fn expiration(ctx: &mut Ctx<'_>) -> Result<Option<(String, usize, Vec<Node>)>, Response> {
    check_delete_headers(&mut ctx.req.headers, ctx.timestamp)?;
    let Some(at) = ctx.req.headers.get("x-delete-at") else {
        return Ok(None);
    };
    let at = crate::constraints::python_int(at).unwrap_or(0);
    let norm = normalize_delete_at_timestamp(at as f64);
    ctx.req.headers.set("X-Delete-At", norm.clone());
    let at: i64 = norm.parse().unwrap_or(0);
    ctx.req.env.log_info.push(format!("x-delete-at:{at}"));
    let app = ctx.app;
    let hash = app.hash_path_hex(&ctx.account, Some(&ctx.container), Some(&ctx.object));
    let shard = (u128::from_str_radix(&hash, 16).unwrap_or(0) % EXPIRER_PER_DIVISOR as u128) as i64;
    let container =
        normalize_delete_at_timestamp((at / EXPIRER_DIVISOR * EXPIRER_DIVISOR - shard) as f64);
    let part = app.part(&app.container_ring, EXPIRER_ACCOUNT, Some(&container), None);
    let nodes = crate::node_iter::primaries(&app.container_ring, part);
    Ok(Some((container, part, nodes)))
}

/// `_backend_requests`: one header set per outgoing request, each with
/// its share of the container updates (and expirer queue updates).
fn backend_requests(
    ctx: &Ctx<'_>,
    n_outgoing: usize,
    info: &ContainerInfo,
    policy_index: u64,
    delete_at: Option<&(String, usize, Vec<Node>)>,
) -> Vec<Headers> {
    let app = ctx.app;
    let n_outgoing = n_outgoing.max(1);
    // Every request starts from the same headers: made once, then copied.
    let mut headers = vec![ctx.request_headers(Some(&ctx.req.headers), None); n_outgoing];
    // A copy has no spare room; the container (and expirer) updates follow.
    for h in &mut headers {
        h.reserve(10);
    }
    let cpart = app.part(
        &app.container_ring,
        &ctx.account,
        Some(&ctx.container),
        None,
    );
    let containers = crate::node_iter::primaries(&app.container_ring, cpart);
    let db_state = info.sharding_state.clone();
    let object_quorum = app
        .object_ring(policy_index)
        .map_or(quorum_size(n_outgoing), |r| {
            quorum_size(r.replica_count().round() as usize)
        });
    let needed = (quorum_size(containers.len()) + n_outgoing)
        .saturating_sub(object_quorum)
        .max(containers.len());
    if !containers.is_empty() {
        for k in 0..needed {
            let index = k % n_outgoing;
            let c = &containers[k % containers.len()];
            let h = &mut headers[index];
            h.set("X-Container-Partition", cpart.to_string());
            let host = csv_append(h.get("x-container-host"), &c.host());
            let dev = csv_append(h.get("x-container-device"), &c.device);
            h.set("X-Container-Host", host);
            h.set("X-Container-Device", dev);
            h.set("X-Container-Root-Db-State", db_state.clone());
            if let Some((dc, dpart, dnodes)) = delete_at
                && !dnodes.is_empty()
            {
                let dn = &dnodes[k % dnodes.len()];
                let h = &mut headers[n_outgoing - 1 - index];
                h.set("X-Delete-At-Container", dc.clone());
                h.set("X-Delete-At-Partition", dpart.to_string());
                let host = csv_append(h.get("x-delete-at-host"), &dn.host());
                let dev = csv_append(h.get("x-delete-at-device"), &dn.device);
                h.set("X-Delete-At-Host", host);
                h.set("X-Delete-At-Device", dev);
            }
        }
    }
    for (i, h) in headers.iter_mut().enumerate() {
        h.set_default(
            "X-Backend-Clean-Expiring-Object-Queue",
            if i < 2 { "t" } else { "f" },
        );
    }
    headers
}

/// Checks every write shares: the policy, the write ACL, the container.
async fn write_preamble(ctx: &mut Ctx<'_>) -> Result<Placement, Response> {
    let p = placement(ctx).await?;
    if let Some(key) = &p.info.sync_key {
        ctx.req.env.ext.insert(SwiftSyncKey(key.clone()));
    }
    if let Some(denied) = ctx.authorize(p.info.write_acl.clone()).await {
        return Err(denied);
    }
    if !p.info.is_success() {
        return Err(swob::status(404));
    }
    Ok(p)
}

/// POST: metadata. Mixed answers (some primaries have the object, some
/// do not) send the POST on to handoffs, as Swift does.
pub async fn post(mut ctx: Ctx<'_>) -> Response {
    let p = match write_preamble(&mut ctx).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Some(r) = check_metadata(&ctx.req.headers, "object", &ctx.app.constraints) {
        return r;
    }
    let delete_at = match expiration(&mut ctx) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let app = ctx.app;
    let Some(ring) = app.object_ring(p.policy_index) else {
        return swob::status(503);
    };
    let part = app.part(ring, &ctx.account, Some(&ctx.container), Some(&ctx.object));
    let n = ring.get_part_nodes(part).len();
    let headers = backend_requests(&ctx, n, &p.info, p.policy_index, delete_at.as_ref());
    let nodes = ctx.node_iter(ring, part);
    let path = ctx.entity_path();
    let mut results = ctx
        .make_requests_raw(
            ServerType::Object,
            nodes.clone(),
            part,
            "POST",
            &path,
            headers.clone(),
            None,
            n,
            None,
        )
        .await;
    let found = results
        .iter()
        .filter(|r| r.node.is_some() && r.status == 202)
        .count();
    let mut quorum = quorum_size(results.len());
    if found > 0 && found < quorum {
        quorum = quorum_size(ring.replica_count().round() as usize);
        let missing = results
            .iter()
            .filter(|r| r.node.is_some() && r.status == 404)
            .count();
        let handoffs = nodes.borrow_mut().take_handoffs(missing);
        if !handoffs.is_empty() {
            let missing_headers: Vec<Headers> = headers
                .iter()
                .zip(results.iter())
                .filter(|(_, r)| r.status != 202)
                .map(|(h, _)| h.clone())
                .take(handoffs.len())
                .collect();
            let count = handoffs.len();
            let extra = std::rc::Rc::new(std::cell::RefCell::new(
                crate::node_iter::NodeIter::ordered(
                    Vec::new(),
                    Box::new(handoffs.into_iter()),
                    count,
                    app.limiter.clone(),
                ),
            ));
            let more = ctx
                .make_requests_raw(
                    ServerType::Object,
                    extra,
                    part,
                    "POST",
                    &path,
                    missing_headers,
                    None,
                    count,
                    None,
                )
                .await;
            results.extend(more);
        }
    }
    let resp = best_response(
        app,
        &ctx.trans_id,
        &results,
        "Object POST",
        None,
        &[],
        Some(quorum),
    );
    if resp.status == 404 && found > 0 {
        return swob::status(503);
    }
    resp
}

/// DELETE: a quorum of 404s with no other quorum is a 204.
pub async fn delete(mut ctx: Ctx<'_>) -> Response {
    let p = match write_preamble(&mut ctx).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let app = ctx.app;
    let Some(ring) = app.object_ring(p.policy_index) else {
        return swob::status(503);
    };
    let part = app.part(ring, &ctx.account, Some(&ctx.container), Some(&ctx.object));
    let n = ring.get_part_nodes(part).len();
    let headers = backend_requests(&ctx, n, &p.info, p.policy_index, None);
    let path = ctx.entity_path();
    ctx.make_requests(
        ServerType::Object,
        ring,
        part,
        "DELETE",
        &path,
        headers,
        None,
        &[(404, 204)],
    )
    .await
}

/// One backend object PUT in progress.
struct Putter {
    node: Node,
    conn: Connection,
    /// The answer already given to `Expect: 100-continue` when it was not
    /// `100` (a 2xx, 409, 422 or 412: no body goes out).
    final_head: Option<swift_common::http::client::ResponseHead>,
    failed: bool,
}

/// Why a PUT connection could not be made to one node.
enum ConnectFail {
    Insufficient,
    ServerError(u16),
    Client(ClientError),
}

/// PUT: stream the client's body to a quorum of object servers.
pub async fn put(mut ctx: Ctx<'_>) -> Response {
    if let Some(inm) = ctx.req.headers.get("if-none-match")
        && !inm.split(',').any(|t| t.trim() == "*")
    {
        return swob::plain(400, "If-None-Match only supports *");
    }
    let p = match write_preamble(&mut ctx).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let app = ctx.app;
    // _update_content_type
    let detect = ctx
        .req
        .headers
        .get("x-detect-content-type")
        .is_some_and(swift_common::config::values::config_true_value);
    if detect
        || ctx
            .req
            .headers
            .get("content-type")
            .is_none_or(str::is_empty)
    {
        let path_info = ctx.req.path_info().into_owned();
        let guessed = app
            .mimetypes
            .guess(&path_info)
            .unwrap_or("application/octet-stream")
            .to_owned();
        ctx.req.headers.set("Content-Type", guessed);
        if detect {
            ctx.req.headers.remove("x-detect-content-type");
        }
    }
    let object_name = swift_common::http::quote::wsgi_to_str(&ctx.object).unwrap_or_default();
    let content_length = if ctx.req.headers.contains("transfer-encoding") {
        None
    } else {
        ctx.req.body.content_length()
    };
    let now = ctx.timestamp;
    if let Some(r) = check_object_creation(
        &mut ctx.req.headers,
        content_length,
        &object_name,
        now,
        &app.constraints,
    )
    .or_else(|| check_content_type(&ctx.req.headers))
    {
        return r;
    }
    let delete_at = match expiration(&mut ctx) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let Some(ring) = app.object_ring(p.policy_index) else {
        return swob::status(503);
    };
    let part = app.part(ring, &ctx.account, Some(&ctx.container), Some(&ctx.object));
    let n = ring.get_part_nodes(part).len();
    if n == 0 {
        return swob::status(404);
    }
    let outgoing = backend_requests(&ctx, n, &p.info, p.policy_index, delete_at.as_ref());
    let nodes = ctx.node_iter(ring, part);
    store_object(&mut ctx, nodes, part, n, outgoing).await
}

/// `_store_object`.
async fn store_object(
    ctx: &mut Ctx<'_>,
    nodes: SharedNodes,
    part: usize,
    n: usize,
    outgoing: Vec<Headers>,
) -> Response {
    let min_conns = quorum_size(n);
    let mut putters = connect_putters(ctx, &nodes, part, outgoing).await;
    if let Some(resp) = check_failure_put_connections(ctx, &putters, min_conns) {
        return resp;
    }
    if let Err(resp) = transfer_data(ctx, &mut putters, min_conns).await {
        return resp;
    }
    let (results, etags) = put_responses(ctx, &mut putters, n).await;
    if etags.len() > 1 {
        ctx.log(
            Level::Error,
            format_args!("Object servers returned {} mismatched etags", etags.len()),
        );
        return swob::status(500);
    }
    let etag = etags.into_iter().next();
    let mut resp = best_response(
        ctx.app,
        &ctx.trans_id,
        &results,
        "Object PUT",
        etag.as_deref(),
        &[],
        None,
    );
    resp.headers.set("Last-Modified", ctx.timestamp.http_date());
    resp
}

/// `_get_put_connections`: one putter per header set, each taking nodes
/// from the shared iterator until one accepts the `Expect: 100-continue`.
async fn connect_putters(
    ctx: &Ctx<'_>,
    nodes: &SharedNodes,
    part: usize,
    outgoing: Vec<Headers>,
) -> Vec<Putter> {
    let path = ctx.entity_path();
    let futs: Vec<Pin<Box<dyn std::future::Future<Output = Option<Putter>> + '_>>> = outgoing
        .into_iter()
        .map(|mut h| {
            if h.get("content-length") == Some("0") {
                h.set("Transfer-Encoding", "chunked");
                h.remove("content-length");
            }
            h.set("Expect", "100-continue");
            let nodes = nodes.clone();
            let path = path.clone();
            Box::pin(async move { connect_put_node(ctx, &nodes, part, &path, &h).await })
                as Pin<Box<dyn std::future::Future<Output = Option<Putter>>>>
        })
        .collect();
    join_all(futs).await.into_iter().flatten().collect()
}

async fn connect_put_node(
    ctx: &Ctx<'_>,
    nodes: &SharedNodes,
    part: usize,
    path: &str,
    headers: &Headers,
) -> Option<Putter> {
    let node_timeout = ctx.app.settings.node_timeout;
    while let Some(node) = next_node(nodes) {
        let attempt = async {
            let mut conn = ctx
                .connect(&node, part, "PUT", path, None, headers)
                .await
                .map_err(ConnectFail::Client)?;
            let head = conn
                .read_head(node_timeout)
                .await
                .map_err(ConnectFail::Client)?;
            if head.status == 507 {
                return Err(ConnectFail::Insufficient);
            }
            if head.status >= 500 {
                return Err(ConnectFail::ServerError(head.status));
            }
            let final_now = (200..300).contains(&head.status)
                || head.status == 409
                || head.status == 422
                || (headers.contains("if-none-match") && head.status == 412)
                || (head.status >= 400 && head.status != 100);
            Ok((conn, final_now.then_some(head)))
        };
        match attempt.await {
            Ok((conn, final_head)) => {
                return Some(Putter {
                    node,
                    conn,
                    final_head,
                    failed: false,
                });
            }
            Err(ConnectFail::Insufficient) => {
                ctx.app
                    .error_limit(&node, "ERROR Insufficient Storage", &ctx.trans_id);
            }
            Err(ConnectFail::ServerError(status)) => {
                ctx.app.error_occurred(
                    &node,
                    &format!("ERROR {status} Expect: 100-continue From Object Server"),
                    &ctx.trans_id,
                );
            }
            Err(ConnectFail::Client(e)) => {
                let info = format!(
                    "Expect: 100-continue on {}",
                    swift_common::http::quote::wsgi_quote(path, "/")
                );
                ctx.exception_occurred(&node, ServerType::Object, &info, &e);
            }
        }
    }
    None
}

/// `_check_failure_put_connections`.
fn check_failure_put_connections(
    ctx: &Ctx<'_>,
    putters: &[Putter],
    min_conns: usize,
) -> Option<Response> {
    let statuses: Vec<u16> = putters
        .iter()
        .filter_map(|p| p.final_head.as_ref().map(|h| h.status))
        .collect();
    let inm_star = ctx
        .req
        .headers
        .get("if-none-match")
        .is_some_and(|v| v.split(',').any(|t| t.trim() == "*"));
    if inm_star && statuses.contains(&412) {
        return Some(swob::status(412));
    }
    if statuses.contains(&409) {
        return Some(swob::status(202));
    }
    check_min_conn(
        ctx,
        putters.len(),
        min_conns,
        "Object PUT returning 503, {conns}/{nodes} required connections",
    )
}

fn check_min_conn(ctx: &Ctx<'_>, conns: usize, min_conns: usize, msg: &str) -> Option<Response> {
    if conns < min_conns {
        let text = msg
            .replace("{conns}", &conns.to_string())
            .replace("{nodes}", &min_conns.to_string());
        ctx.log(Level::Error, format_args!("{text}"));
        return Some(swob::status(503));
    }
    None
}

/// `_transfer_data`: read the client's body and write each piece to every
/// live putter at once; a putter that fails is dropped, fewer than a quorum
/// left is a 503.
async fn transfer_data(
    ctx: &mut Ctx<'_>,
    putters: &mut Vec<Putter>,
    min_conns: usize,
) -> Result<(), Response> {
    let node_timeout = ctx.app.settings.node_timeout;
    let max_file_size = ctx.app.constraints.max_file_size;
    let expected = if ctx.req.headers.contains("transfer-encoding") {
        None
    } else {
        ctx.req.body.content_length()
    };
    let mut sent: u64 = 0;
    let sending = |p: &Putter| !p.failed && p.final_head.is_none();
    loop {
        let piece = match ctx.req.body.chunk().await {
            Ok(Some(b)) => b,
            Ok(None) => break,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                ctx.log(
                    Level::Warning,
                    format_args!(
                        "ERROR Client read timeout ({}s)",
                        ctx.app.settings.client_timeout.as_secs_f64()
                    ),
                );
                return Err(swob::status(408));
            }
            Err(_) => {
                ctx.log(
                    Level::Warning,
                    format_args!("Client disconnected without sending last chunk"),
                );
                return Err(swob::status(499));
            }
        };
        sent += piece.len() as u64;
        if sent as i64 > max_file_size {
            return Err(swob::status(413));
        }
        send_to_all(ctx, putters, &piece, node_timeout).await;
        putters.retain(|p| !p.failed);
        if let Some(r) = check_min_conn(
            ctx,
            putters.len(),
            min_conns,
            "Object PUT exceptions during send, {conns}/{nodes} required connections",
        ) {
            return Err(r);
        }
    }
    if let Some(want) = expected
        && sent < want
    {
        ctx.log(
            Level::Warning,
            format_args!("Client disconnected without sending enough data"),
        );
        return Err(swob::status(499));
    }
    // The end of the body (the last chunk of a chunked request).
    let trans_id = ctx.trans_id.clone();
    let futs: Vec<Pin<Box<dyn std::future::Future<Output = ()> + '_>>> = putters
        .iter_mut()
        .filter(|p| sending(p))
        .map(|p| {
            let ctx = &*ctx;
            let trans_id = trans_id.clone();
            Box::pin(async move {
                if let Err(e) = p.conn.finish(node_timeout).await {
                    p.failed = true;
                    let _ = trans_id;
                    ctx.exception_occurred(
                        &p.node,
                        ServerType::Object,
                        "Trying to finish the PUT body",
                        &e,
                    );
                }
            }) as Pin<Box<dyn std::future::Future<Output = ()>>>
        })
        .collect();
    join_all(futs).await;
    let live = putters.iter().filter(|p| !p.failed).count();
    if let Some(r) = check_min_conn(
        ctx,
        live,
        min_conns,
        "Object PUT exceptions after last send, {conns}/{nodes} required connections",
    ) {
        return Err(r);
    }
    Ok(())
}

async fn send_to_all(
    ctx: &Ctx<'_>,
    putters: &mut [Putter],
    piece: &Bytes,
    timeout: std::time::Duration,
) {
    // Once per piece of the body: nothing here allocates but the futures;
    // the path for the message is made only when a write fails.
    let futs: Vec<Pin<Box<dyn std::future::Future<Output = ()> + '_>>> = putters
        .iter_mut()
        .filter(|p| !p.failed && p.final_head.is_none())
        .map(|p| {
            Box::pin(async move {
                if let Err(e) = p.conn.send(piece, timeout).await {
                    p.failed = true;
                    let info = format!(
                        "Trying to write to {}",
                        swift_common::http::quote::wsgi_quote(&ctx.entity_path(), "/")
                    );
                    ctx.exception_occurred(&p.node, ServerType::Object, &info, &e);
                }
            }) as Pin<Box<dyn std::future::Future<Output = ()>>>
        })
        .collect();
    join_all(futs).await;
}

/// `_get_put_responses`: the final answers, in completion order, up to a
/// quorum and then `post_quorum_timeout` for the rest; padded with 503s.
async fn put_responses(
    ctx: &Ctx<'_>,
    putters: &mut Vec<Putter>,
    n: usize,
) -> (Vec<BackendResult>, std::collections::BTreeSet<String>) {
    let node_timeout = ctx.app.settings.node_timeout;
    let path = ctx.entity_path();
    let mut pile = Pile::new();
    for p in putters.drain(..).filter(|p| !p.failed) {
        let path = path.clone();
        pile.push(async move {
            let Putter {
                node,
                mut conn,
                final_head,
                ..
            } = p;
            let head = match final_head {
                Some(h) => Ok(h),
                None => loop {
                    match conn.read_head(node_timeout).await {
                        Ok(h) if h.status == 100 => continue,
                        other => break other,
                    }
                },
            };
            match head {
                Ok(head) => {
                    let mut body = conn.into_body(&head, node_timeout);
                    let bytes = body.to_bytes(1 << 16).await.unwrap_or_default();
                    Some(BackendResult {
                        status: head.status,
                        reason: head.reason,
                        headers: head.headers,
                        body: bytes,
                        node: Some(node),
                    })
                }
                Err(e) => {
                    let info = format!(
                        "Trying to get final status of PUT to {}",
                        swift_common::http::quote::wsgi_quote(&format!("/v1{path}"), "/")
                    );
                    ctx.exception_occurred(&node, ServerType::Object, &info, &e);
                    None
                }
            }
        });
    }
    let mut results: Vec<BackendResult> = Vec::new();
    let mut etags = std::collections::BTreeSet::new();
    let mut handle = |r: BackendResult, results: &mut Vec<BackendResult>| {
        if let Some(node) = &r.node
            && ctx.check_response(
                node,
                ServerType::Object,
                r.status,
                "PUT",
                &path,
                Some(&r.body),
            )
            && (200..300).contains(&r.status)
            && let Some(e) = r.headers.get("etag")
        {
            etags.insert(e.replace('"', ""));
        }
        results.push(r);
    };
    while let Some(r) = pile.next().await {
        if let Some(r) = r {
            handle(r, &mut results);
            let statuses: Vec<u16> = results.iter().map(|r| r.status).collect();
            if have_quorum(&statuses, n) {
                break;
            }
        }
    }
    for r in pile
        .wait_all(ctx.app.settings.post_quorum_timeout)
        .await
        .into_iter()
        .flatten()
    {
        handle(r, &mut results);
    }
    while results.len() < n {
        results.push(BackendResult::unavailable());
    }
    (results, etags)
}
