//! `/v1/<account>/<container>` (Swift's `ContainerController`): GET and
//! HEAD from one container server at a time (after checking the account),
//! authorized against the container's read ACL once it is known; PUT,
//! POST and DELETE to all primaries, each PUT and DELETE telling its
//! container server which account servers to update.
//!
//! Sharded containers are not listed from their shards yet (Swift's
//! `_get_from_shards`): a root that is sharded lists what it holds itself.

use swift_common::http::{Headers, Response};
use swift_common::logging::Level;

use super::{Ctx, ServerType, Transfer, strip_owner_headers};
use crate::constraints::{self, check_metadata};
use crate::{acl, swob};

pub const ALLOWED: &str = "DELETE, GET, HEAD, OPTIONS, POST, PUT";

const TRANSFER: Transfer = Transfer {
    server_type: ServerType::Container,
    pass_through: &[
        "x-container-read",
        "x-container-write",
        "x-container-sync-key",
        "x-container-sync-to",
        "x-versions-location",
    ],
    x_remove: &[
        "x-remove-container-read",
        "x-remove-container-write",
        "x-remove-versions-location",
        "x-remove-container-sync-key",
        "x-remove-container-sync-to",
    ],
};

/// `_get_or_head_pre_check`: the account must exist (or be autocreatable
/// by name); otherwise authorize (its denial wins) or 404.
async fn pre_check(ctx: &mut Ctx<'_>) -> Option<Response> {
    let auto = ctx
        .account
        .starts_with(crate::info::AUTO_CREATE_ACCOUNT_PREFIX);
    if auto || ctx.account_info().await.is_some() {
        return None;
    }
    if let Some(denied) = ctx.authorize(None).await {
        return Some(denied);
    }
    Some(swob::status(404))
}

/// `_get_or_head_post_check`: cache the info, authorize against the read
/// ACL, hide owner headers from others.
async fn post_check(ctx: &mut Ctx<'_>, mut resp: Response) -> Response {
    let cached = resp
        .headers
        .get("x-backend-cached-results")
        .is_some_and(swift_common::config::values::config_true_value);
    if !cached {
        resp.headers.set(
            "X-Backend-Recheck-Container-Existence",
            ctx.app.settings.recheck_container_existence.to_string(),
        );
        let (a, c) = (ctx.account.clone(), ctx.container.clone());
        crate::info::set_info_cache(&mut ctx.req.env, &a, Some(&c), &resp).await;
    }
    let read_acl = resp.headers.get("x-container-read").map(str::to_owned);
    if let Some(denied) = ctx.authorize(read_acl).await {
        return denied;
    }
    if !ctx.is_owner() {
        strip_owner_headers(ctx.app, &mut resp.headers);
    }
    if is_reseller(ctx) {
        let sharding = resp
            .headers
            .get("x-container-sysmeta-sharding")
            .is_some_and(swift_common::config::values::config_true_value);
        resp.headers.set(
            "X-Container-Sharding",
            if sharding { "True" } else { "False" },
        );
    }
    resp
}

fn is_reseller(ctx: &Ctx<'_>) -> bool {
    ctx.req
        .env
        .ext
        .get::<crate::context::ResellerRequest>()
        .is_some()
}

/// A reseller may set `X-Container-Sharding`: it becomes sysmeta.
fn sharding_to_sysmeta(ctx: &mut Ctx<'_>) {
    if is_reseller(ctx)
        && let Some(v) = ctx
            .req
            .headers
            .get("x-container-sharding")
            .map(str::to_owned)
    {
        let on = swift_common::config::values::config_true_value(&v);
        ctx.req.headers.set(
            "X-Container-Sysmeta-Sharding",
            if on { "True" } else { "False" },
        );
    }
}

fn from_backend_part(ctx: &Ctx<'_>) -> usize {
    ctx.app.part(
        &ctx.app.container_ring,
        &ctx.account,
        Some(&ctx.container),
        None,
    )
}

/// GET: a listing (always JSON from the backend).
pub async fn get(mut ctx: Ctx<'_>) -> Response {
    let params = constraints::params(ctx.req.query());
    if let Some(r) = constraints::validate_params(
        &params,
        &[
            "marker",
            "end_marker",
            "prefix",
            "delimiter",
            "path",
            "format",
            "reverse",
            "states",
            "includes",
        ],
    ) {
        return r;
    }
    if let Some(r) =
        constraints::constrain_req_limit(&params, ctx.app.constraints.container_listing_limit)
    {
        return r;
    }
    if let Some(r) = pre_check(&mut ctx).await {
        return r;
    }
    let mut params = params;
    params.retain(|(k, _)| k != "format" && k != "states");
    params.push(("format".into(), "json".into()));
    let record_type = ctx
        .req
        .headers
        .get("x-backend-record-type")
        .map(str::to_ascii_lowercase);
    let mut extra = Headers::new();
    if !matches!(record_type.as_deref(), Some("object") | Some("shard")) {
        // Ask for objects: a root that is sharded would answer with shard
        // ranges we do not follow yet.
        extra.set("X-Backend-Record-Type", "object");
    }
    let query = swift_common::http::quote::urlencode(&params);
    let part = from_backend_part(&ctx);
    let nodes = ctx.node_iter(&ctx.app.container_ring, part);
    let path = ctx.entity_path();
    let mut resp = ctx
        .get_or_head(
            ServerType::Container,
            nodes,
            part,
            &path,
            Some(&query),
            &extra,
        )
        .await;
    if record_type.is_none() {
        resp.headers.remove("x-backend-record-type");
        resp.headers.remove("x-backend-record-shard-format");
    }
    if resp
        .headers
        .get("x-backend-sharding-state")
        .is_some_and(|s| s == "sharded")
    {
        ctx.log(
            Level::Warning,
            format_args!("Listing of sharded container {path:?} is not read from its shards"),
        );
    }
    post_check(&mut ctx, resp).await
}

/// HEAD.
pub async fn head(mut ctx: Ctx<'_>) -> Response {
    if let Some(r) = pre_check(&mut ctx).await {
        return r;
    }
    let part = from_backend_part(&ctx);
    let nodes = ctx.node_iter(&ctx.app.container_ring, part);
    let path = ctx.entity_path();
    let resp = ctx
        .get_or_head(
            ServerType::Container,
            nodes,
            part,
            &path,
            None,
            &Headers::new(),
        )
        .await;
    post_check(&mut ctx, resp).await
}

/// `clean_acls` (when an auth middleware asks for it) then
/// `check_metadata`.
fn check_acls_and_metadata(ctx: &mut Ctx<'_>) -> Option<Response> {
    let clean = ctx.req.env.ext.get::<crate::context::CleanAcl>().is_some();
    for name in ["x-container-read", "x-container-write"]
        .into_iter()
        .filter(|_| clean)
    {
        if let Some(v) = ctx.req.headers.get(name).map(str::to_owned) {
            match acl::clean_acl(name, &v) {
                Ok(clean) => ctx.req.headers.set(name, clean),
                Err(msg) => return Some(swob::html(400, msg)),
            }
        }
    }
    check_metadata(&ctx.req.headers, "container", &ctx.app.constraints)
}

fn name_too_long(ctx: &Ctx<'_>) -> Option<Response> {
    let limit = ctx.app.constraints.max_container_name_length;
    let len = ctx.container.chars().count() as i64;
    (len > limit).then(|| {
        swob::html(
            400,
            format!("Container name length of {len} longer than {limit}"),
        )
    })
}

/// PUT: create the container (and its account, when autocreate allows).
pub async fn put(mut ctx: Ctx<'_>) -> Response {
    if let Some(r) = check_acls_and_metadata(&mut ctx) {
        return r;
    }
    let policy_index = match ctx
        .req
        .headers
        .get("x-storage-policy")
        .filter(|v| !v.is_empty())
    {
        None => None,
        Some(name) => match ctx.app.policies.get_by_name(name) {
            None => {
                return swob::plain(400, format!("Invalid X-Storage-Policy '{name}'"));
            }
            Some(p) if p.is_deprecated() => {
                return swob::html(
                    400,
                    format!("Storage Policy {} is deprecated", acl::py_repr(p.name())),
                );
            }
            Some(p) => Some(p.index()),
        },
    };
    if !ctx.is_owner() {
        strip_owner_headers(ctx.app, &mut ctx.req.headers);
    }
    sharding_to_sysmeta(&mut ctx);
    if let Some(r) = name_too_long(&ctx) {
        return r;
    }
    let mut account = ctx.account_info().await;
    if account.is_none() && ctx.app.settings.account_autocreate {
        let a = ctx.account.clone();
        if !ctx.autocreate_account(&a).await {
            return swob::status(503);
        }
        account = ctx.account_info().await;
    }
    let Some(account) = account else {
        return swob::status(404);
    };
    let max = ctx.app.settings.max_containers_per_account;
    if max > 0
        && account.container_count >= max
        && !ctx
            .app
            .settings
            .max_containers_whitelist
            .contains(&ctx.account)
    {
        let info = ctx.container_info().await;
        if !info.is_success() {
            return swob::html(403, format!("Reached container limit of {max}"));
        }
    }
    let headers = backend_requests(&ctx, policy_index);
    write(&mut ctx, "PUT", headers).await
}

/// POST: metadata and ACLs.
pub async fn post(mut ctx: Ctx<'_>) -> Response {
    if let Some(r) = check_acls_and_metadata(&mut ctx) {
        return r;
    }
    if !ctx.is_owner() {
        strip_owner_headers(ctx.app, &mut ctx.req.headers);
    }
    sharding_to_sysmeta(&mut ctx);
    if ctx.account_info().await.is_none() {
        return swob::status(404);
    }
    let n = ctx
        .app
        .container_ring
        .get_part_nodes(from_backend_part(&ctx))
        .len();
    let h = ctx.request_headers(None, Some(&TRANSFER));
    write(&mut ctx, "POST", vec![h; n]).await
}

/// DELETE: 409 when not empty; a 202 (already gone) is a 404.
pub async fn delete(mut ctx: Ctx<'_>) -> Response {
    if ctx.account_info().await.is_none() {
        return swob::status(404);
    }
    let headers = backend_requests(&ctx, None);
    let resp = write(&mut ctx, "DELETE", headers).await;
    if resp.status == 202 {
        return swob::status(404);
    }
    resp
}

/// `_backend_requests`: one header set per container primary, each with
/// the policy and its share of the account servers to update.
fn backend_requests(ctx: &Ctx<'_>, policy_index: Option<u64>) -> Vec<Headers> {
    let app = ctx.app;
    let mut additional = Headers::new();
    match policy_index {
        Some(i) => additional.set("X-Backend-Storage-Policy-Index", i.to_string()),
        None => additional.set(
            "X-Backend-Storage-Policy-Default",
            app.policies.default_policy().index().to_string(),
        ),
    }
    let n = app
        .container_ring
        .get_part_nodes(from_backend_part(ctx))
        .len()
        .max(1);
    let mut headers: Vec<Headers> = (0..n)
        .map(|_| ctx.request_headers(Some(&additional), Some(&TRANSFER)))
        .collect();
    let account_part = app.part(&app.account_ring, &ctx.account, None, None);
    let accounts = crate::node_iter::primaries(&app.account_ring, account_part);
    for (i, node) in accounts.iter().enumerate() {
        let h = &mut headers[i % n];
        h.set("X-Account-Partition", account_part.to_string());
        let host = csv_append(h.get("x-account-host"), &node.host());
        let dev = csv_append(h.get("x-account-device"), &node.device);
        h.set("X-Account-Host", host);
        h.set("X-Account-Device", dev);
    }
    headers
}

/// Swift's `csv_append`.
pub fn csv_append(existing: Option<&str>, value: &str) -> String {
    match existing {
        Some(e) if !e.is_empty() => format!("{e},{value}"),
        _ => value.to_owned(),
    }
}

async fn write(ctx: &mut Ctx<'_>, method: &str, headers: Vec<Headers>) -> Response {
    let app = ctx.app;
    let part = from_backend_part(ctx);
    let (a, c) = (ctx.account.clone(), ctx.container.clone());
    if method != "PUT" {
        crate::info::clear_info_cache(&mut ctx.req.env, &a, Some(&c)).await;
    }
    let path = ctx.entity_path();
    let resp = ctx
        .make_requests(
            ServerType::Container,
            &app.container_ring,
            part,
            method,
            &path,
            headers,
            None,
            &[],
        )
        .await;
    if method == "PUT" {
        crate::info::clear_info_cache(&mut ctx.req.env, &a, Some(&c)).await;
    }
    resp
}
