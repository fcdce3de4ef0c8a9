//! `/v1/<account>` (Swift's `AccountController`): GET and HEAD read one
//! account server at a time (a missing account is an empty listing when
//! `account_autocreate` is on), POST writes metadata to all primaries
//! (creating the account first when autocreate allows), PUT and DELETE only
//! with `allow_account_management`.

use swift_common::http::{Headers, Response};
use swift_common::timestamp::Timestamp;

use super::{Ctx, ServerType, Transfer, strip_owner_headers};
use crate::constraints::check_metadata;
use crate::{acl, swob};

const TRANSFER: Transfer = Transfer {
    server_type: ServerType::Account,
    pass_through: &[],
    x_remove: &[],
};

/// The methods an account allows, as `Allow` lists them.
pub fn allowed_methods(allow_account_management: bool) -> &'static str {
    if allow_account_management {
        "DELETE, GET, HEAD, OPTIONS, POST, PUT"
    } else {
        "GET, HEAD, OPTIONS, POST"
    }
}

fn name_too_long(ctx: &Ctx<'_>) -> Option<Response> {
    let limit = ctx.app.constraints.max_account_name_length;
    let len = ctx.account.chars().count() as i64;
    (len > limit).then(|| {
        swob::html(
            400,
            format!("Account name length of {len} longer than {limit}"),
        )
    })
}

/// `add_acls_from_sys_metadata`: the owner sees the account ACL as
/// `X-Account-Access-Control`.
fn add_acls_from_sysmeta(resp: &mut Response) {
    let internal = "x-account-sysmeta-core-access-control";
    let value = resp.headers.get(internal).map(str::to_owned);
    resp.headers.remove(internal);
    if let Some(v) = value
        && let Some(formatted) = acl::format_account_acl(&v)
    {
        resp.headers.set("X-Account-Access-Control", formatted);
    }
}

/// GET or HEAD of the account.
pub async fn get_or_head(mut ctx: Ctx<'_>) -> Response {
    if let Some(r) = name_too_long(&ctx) {
        return r;
    }
    let app = ctx.app;
    let part = app.part(&app.account_ring, &ctx.account, None, None);
    let nodes = ctx.node_iter(&app.account_ring, part);
    // Backends always list JSON; listing_formats converts.
    let mut params = crate::constraints::params(ctx.req.query());
    params.retain(|(k, _)| k != "format");
    params.push(("format".into(), "json".into()));
    let query = swift_common::http::quote::urlencode(&params);
    let path = ctx.entity_path();
    let mut resp = ctx
        .get_or_head(
            ServerType::Account,
            nodes,
            part,
            path.trim_end_matches('/'),
            Some(&query),
            &Headers::new(),
        )
        .await;
    if resp.status == 404 {
        let deleted = resp
            .headers
            .get("x-account-status")
            .is_some_and(|v| v.eq_ignore_ascii_case("deleted"));
        if deleted {
            resp.status = 410;
            resp.reason = "Gone".into();
        } else if app.settings.account_autocreate {
            resp = fake_account_listing(&ctx);
        }
    }
    resp.headers.set(
        "X-Backend-Recheck-Account-Existence",
        app.settings.recheck_account_existence.to_string(),
    );
    let account = ctx.account.clone();
    crate::info::set_info_cache(&mut ctx.req.env, &account, None, &resp).await;
    if ctx.is_owner() {
        add_acls_from_sysmeta(&mut resp);
    } else {
        strip_owner_headers(app, &mut resp.headers);
    }
    resp
}

/// `account_listing_response` of an account that does not exist yet: an
/// empty JSON listing (listing_formats converts it).
fn fake_account_listing(ctx: &Ctx<'_>) -> Response {
    let now = Timestamp::now();
    let mut resp = Response::with_body(200, "application/json; charset=utf-8", "[]");
    resp.headers.set("X-Account-Container-Count", "0");
    resp.headers.set("X-Account-Object-Count", "0");
    resp.headers.set("X-Account-Bytes-Used", "0");
    resp.headers.set("X-Timestamp", now.normal());
    resp.headers.set("X-Put-Timestamp", now.normal());
    resp.headers.set("X-Backend-Fake-Account-Listing", "yes");
    if ctx.req.method == "HEAD" {
        resp.body = swift_common::http::ResponseBody::Empty;
    }
    resp
}

/// PUT (only with `allow_account_management`).
pub async fn put(mut ctx: Ctx<'_>) -> Response {
    let app = ctx.app;
    if !app.settings.allow_account_management {
        return swob::method_not_allowed(allowed_methods(false));
    }
    if let Some(r) = check_metadata(&ctx.req.headers, "account", &app.constraints) {
        return r;
    }
    if let Some(r) = name_too_long(&ctx) {
        return r;
    }
    write(&mut ctx, "PUT", true).await
}

/// POST: metadata; autocreates a missing account when allowed.
pub async fn post(mut ctx: Ctx<'_>) -> Response {
    if let Some(r) = name_too_long(&ctx) {
        return r;
    }
    if let Some(r) = check_metadata(&ctx.req.headers, "account", &ctx.app.constraints) {
        return r;
    }
    let mut resp = write(&mut ctx, "POST", false).await;
    if resp.status == 404 && ctx.app.settings.account_autocreate {
        let account = ctx.account.clone();
        ctx.autocreate_account(&account).await;
        resp = write(&mut ctx, "POST", true).await;
    } else {
        add_acls_from_sysmeta(&mut resp);
    }
    resp
}

/// DELETE (only with `allow_account_management`; never with a query).
pub async fn delete(mut ctx: Ctx<'_>) -> Response {
    if ctx.req.query().is_some_and(|q| !q.is_empty()) {
        return swob::status(400);
    }
    if !ctx.app.settings.allow_account_management {
        return swob::method_not_allowed(allowed_methods(false));
    }
    let app = ctx.app;
    let part = app.part(&app.account_ring, &ctx.account, None, None);
    let n = app.account_ring.get_part_nodes(part).len();
    let headers = ctx.request_headers(None, None);
    let account = ctx.account.clone();
    crate::info::clear_info_cache(&mut ctx.req.env, &account, None).await;
    let path = ctx.entity_path();
    ctx.make_requests(
        ServerType::Account,
        &app.account_ring,
        part,
        "DELETE",
        &path,
        vec![headers; n],
        None,
        &[],
    )
    .await
}

async fn write(ctx: &mut Ctx<'_>, method: &str, acls: bool) -> Response {
    let app = ctx.app;
    let part = app.part(&app.account_ring, &ctx.account, None, None);
    let n = app.account_ring.get_part_nodes(part).len();
    let headers = ctx.request_headers(None, Some(&TRANSFER));
    let account = ctx.account.clone();
    crate::info::clear_info_cache(&mut ctx.req.env, &account, None).await;
    let path = ctx.entity_path();
    let mut resp = ctx
        .make_requests(
            ServerType::Account,
            &app.account_ring,
            part,
            method,
            &path,
            vec![headers; n],
            None,
            &[],
        )
        .await;
    if acls {
        add_acls_from_sysmeta(&mut resp);
    }
    resp
}
