//! tempauth's `handle`: requests under `auth_prefix`, which get tokens.
//! `GET <auth_prefix>v1.0` and `GET <auth_prefix>auth` take
//! `X-Auth-User: <account>:<user>` and `X-Auth-Key` (or `X-Storage-User`
//! and `X-Storage-Pass`); `GET <auth_prefix>v1/<account>/auth` takes the
//! account from the path. The answer carries `X-Auth-Token`,
//! `X-Storage-Token`, `X-Auth-Token-Expires` and `X-Storage-Url`; an
//! unexpired memcache token of the same user with the same groups is
//! handed out again, as Swift does.
//!
//! What a token grants is decided elsewhere ([`super::authorize`]).

use std::io::Write as _;
use std::rc::Rc;
use std::time::Duration;

use serde_json::{Value, json};
use swift_common::http::quote::wsgi_to_str;
use swift_common::http::{Request, Response};
use swift_common::logging::Level;

use super::{Inner, cached_auth_data, fernet, now, split_path};
use crate::context::{CacheError, cache};
use crate::swob;

/// 401 with `Www-Authenticate: Swift realm="<realm>"` (the realm as given,
/// unquoted, as tempauth writes it).
fn denied(realm: &str) -> Response {
    let mut r = swob::status(401);
    r.headers
        .append("Www-Authenticate", format!("Swift realm=\"{realm}\""));
    r
}

/// swob's `path_info_pop`: the rest of the path after its first segment.
fn pop_first_segment(path_info: &str) -> &str {
    if !path_info.starts_with('/') {
        return path_info;
    }
    match path_info[1..].find('/') {
        Some(i) => &path_info[i + 1..],
        None => "",
    }
}

/// swob's `host_url`: `scheme://Host`, else the address the request came
/// in on; the scheme's default port left out.
fn host_url(req: &Request) -> String {
    let host = match req.headers.get("host") {
        Some(h) => h.to_owned(),
        None => format!("{}:{}", req.local_addr.ip(), req.local_addr.port()),
    };
    let scheme = req.scheme;
    let host = match (scheme, host.rsplit_once(':')) {
        ("http", Some((h, "80"))) | ("https", Some((h, "443"))) => h.to_owned(),
        _ => host,
    };
    format!("{scheme}://{host}")
}

/// The first of two headers that is set and not empty.
fn either<'a>(req: &'a Request, first: &str, second: &str) -> Option<&'a str> {
    req.headers
        .get(first)
        .filter(|v| !v.is_empty())
        .or_else(|| req.headers.get(second).filter(|v| !v.is_empty()))
}

/// `handle` and `handle_request`.
pub(crate) async fn handle(inner: Rc<Inner>, req: Request) -> Response {
    if req.method != "GET" {
        return swob::status(405);
    }
    let full = req.path_info().into_owned();
    let path = pop_first_segment(&full);
    let Some(segs) = split_path(path, 1, 4, true) else {
        return swob::status(404);
    };
    if !matches!(segs[0], Some("v1" | "v1.0" | "auth")) {
        return swob::status(400);
    }
    get_token(&inner, &req, path).await
}

/// `handle_get_token`.
async fn get_token(inner: &Inner, req: &Request, path: &str) -> Response {
    let Some(segs) = split_path(path, 1, 3, true) else {
        return swob::status(404);
    };
    let (account, user, key) = if segs[0] == Some("v1") && segs[2] == Some("auth") {
        let account = segs[1].unwrap_or_default().to_owned();
        let user = match req.headers.get("x-storage-user").filter(|u| !u.is_empty()) {
            Some(u) => u.to_owned(),
            None => {
                let Some((account2, user)) = req
                    .headers
                    .get("x-auth-user")
                    .and_then(|u| u.split_once(':'))
                else {
                    return denied(&account);
                };
                if wsgi_to_str(&account).as_deref() != Some(account2) {
                    return denied(&account);
                }
                user.to_owned()
            }
        };
        let key = either(req, "x-storage-pass", "x-auth-key").map(str::to_owned);
        (account, user, key)
    } else if matches!(segs[0], Some("auth" | "v1.0")) {
        let Some((account, user)) =
            either(req, "x-auth-user", "x-storage-user").and_then(|u| u.split_once(':'))
        else {
            return denied("unknown");
        };
        let key = either(req, "x-auth-key", "x-storage-pass").map(str::to_owned);
        (account.to_owned(), user.to_owned(), key)
    } else {
        return swob::status(400);
    };
    let realm = if account.is_empty() {
        "unknown"
    } else {
        &account
    };
    let key = match key {
        Some(k) if !account.is_empty() && !user.is_empty() => k,
        _ => return denied(realm),
    };
    let native = |s: &str| wsgi_to_str(s);
    let (Some(account_s), Some(user_s), Some(key_s)) =
        (native(&account), native(&user), native(&key))
    else {
        // Not UTF-8: no configured user can match.
        return denied(realm);
    };
    let account_user = format!("{account_s}:{user_s}");
    let Some(u) = inner.cfg.users.get(&account_user) else {
        return denied(realm);
    };
    if !constant_time_eq(u.key.as_bytes(), key_s.as_bytes()) {
        return denied(realm);
    }
    let account_id = u.url.rsplit('/').next().unwrap_or("").to_owned();
    let url_template = u.url.clone();
    let groups = inner.user_groups(&account_s, &account_user, &account_id);

    let mc = cache(&req.env);
    let fernet = inner.cfg.active_fernet();
    if mc.is_none() && fernet.is_none() {
        return inner.memcache_required(&req.env);
    }
    let p = &inner.cfg.reseller_prefix;
    let mut failed: Option<CacheError> = None;
    let mut found = None;
    if let Some(mc) = &mc {
        let user_key = format!("{p}/user/{account_user}");
        let candidate = match mc.get(&user_key).await {
            Ok(v) => v,
            Err(e) => {
                failed = Some(e);
                None
            }
        };
        if let Some(Value::String(candidate)) = candidate.filter(|c| c != "") {
            let token_key = format!("{p}/token/{candidate}");
            let data = match mc.get(&token_key).await {
                Ok(v) => v.and_then(|v| cached_auth_data(&v)),
                Err(e) => {
                    failed = Some(e);
                    None
                }
            };
            if let Some((expires, old)) = data {
                let mut old: Vec<&str> = old.split(',').collect();
                let mut new: Vec<&str> = groups.split(',').collect();
                old.sort_unstable();
                old.dedup();
                new.sort_unstable();
                new.dedup();
                if expires > now() && old == new {
                    found = Some((candidate, expires));
                }
            }
        }
    }
    if let Some(e) = failed {
        inner.log(
            Level::Error,
            &req.env,
            format_args!("Error looking up a token in memcache: {e}; making a new one"),
        );
    }
    let (token, expires) = match found {
        Some(t) => t,
        None => match new_token(inner, mc.as_deref(), fernet, &account_user, &groups).await {
            Ok(t) => t,
            Err(e) => {
                inner.log(
                    Level::Error,
                    &req.env,
                    format_args!("Could not issue a token for {account_user}: {e}"),
                );
                return swob::status(503);
            }
        },
    };
    let mut resp = swob::with_body(200, swob::HTML, "");
    resp.headers.set("X-Auth-Token", token.clone());
    resp.headers.set("X-Storage-Token", token);
    resp.headers.set(
        "X-Auth-Token-Expires",
        ((expires - now()).trunc() as i64).to_string(),
    );
    let mut url = url_template.replace("$HOST", &host_url(req));
    if inner.cfg.storage_url_scheme != "default"
        && let Some((_, rest)) = url.split_once(':')
    {
        url = format!("{}:{rest}", inner.cfg.storage_url_scheme);
    }
    resp.headers.set("X-Storage-Url", url);
    resp
}

/// `_create_new_token`: a Fernet token when a key is active, else a
/// memcache one (stored under both keys, as Swift stores it).
async fn new_token(
    inner: &Inner,
    mc: Option<&dyn crate::context::Memcache>,
    fernet: Option<&fernet::Fernet>,
    account_user: &str,
    groups: &str,
) -> Result<(String, f64), String> {
    let p = &inner.cfg.reseller_prefix;
    let expires = now() + inner.cfg.token_life as f64;
    if let Some(f) = fernet {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
        let compressed = z
            .write_all(groups.as_bytes())
            .and_then(|()| z.finish())
            .map_err(|e| format!("zlib: {e}"))?;
        let (kind, data) = if compressed.len() < groups.len() {
            ("zftk", compressed)
        } else {
            ("ftk", groups.as_bytes().to_vec())
        };
        let sealed = f.encrypt(&data, now().floor() as u64)?;
        return Ok((format!("{p}{kind}{sealed}"), expires));
    }
    let Some(mc) = mc else {
        return Err("Memcache required".into());
    };
    let token = format!("{p}tk{}", fernet::uuid4_hex()?);
    let ttl = |expires: f64| Duration::from_secs_f64((expires - now()).max(0.0));
    mc.set(
        &format!("{p}/token/{token}"),
        &json!([expires, groups]),
        ttl(expires),
    )
    .await
    .map_err(|e| format!("memcache: {e}"))?;
    mc.set(
        &format!("{p}/user/{account_user}"),
        &Value::String(token.clone()),
        ttl(expires),
    )
    .await
    .map_err(|e| format!("memcache: {e}"))?;
    Ok((token, expires))
}

/// Compare keys without telling, by timing, how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
