//! tempauth's `authorize` and `denied_response`: the decision the proxy
//! asks for before (and, for object and container reads, again after) it
//! knows the container's ACL. In Swift's order: the path, an
//! `X-Account-Access-Control` the request sets (validated, then moved to
//! account sysmeta), reseller admins and readers, the account's owners
//! (`<PREFIX>_require_group`), container sync, OPTIONS, referrer and group
//! ACLs, and last the account's ACLs (read from its info).
//!
//! It only answers; it sends nothing and keeps no state.

use std::rc::Rc;

use serde_json::Value;
use swift_common::http::quote::{wsgi_bytes, wsgi_to_str};
use swift_common::logging::Level;

use super::{Inner, split_path};
use crate::acl::{acls_from_sysmeta, parse_acl, parse_acl_v2, py_repr, referrer_allowed};
use crate::context::{AuthOutcome, AuthRequest, RemoteUser, SwiftSyncKey};
use crate::swob;
use swift_common::config::swift_conf::json_string;

/// The header an owner sets account ACLs with, and where they are kept.
const ACL_HEADER: &str = "x-account-access-control";
const ACL_SYSMETA: &str = "X-Account-Sysmeta-Core-Access-Control";

/// A WSGI string as the str Swift compares with groups.
fn native(wsgi: &str) -> String {
    wsgi_to_str(wsgi).unwrap_or_else(|| String::from_utf8_lossy(&wsgi_bytes(wsgi)).into_owned())
}

fn remote_user(req: &AuthRequest) -> Option<&str> {
    req.env.ext.get::<RemoteUser>().map(|r| r.0.as_str())
}

/// `denied_response`: 403 for a caller we know, 401 for anyone else.
pub fn denied_response(req: &AuthRequest) -> swift_common::http::Response {
    if remote_user(req).is_some_and(|u| !u.is_empty()) {
        swob::status(403)
    } else {
        swob::unauthorized(&req.path_info)
    }
}

/// `extract_acl_and_report_errors`: what is wrong with an
/// `X-Account-Access-Control` value, if anything.
pub fn account_acl_error(value: &str) -> Option<String> {
    let data = native(value);
    let Some(acl) = parse_acl_v2(Some(&data)) else {
        return Some(format!("Syntax error in input ({})", py_repr(&data)));
    };
    const KEYS: [&str; 3] = ["admin", "read-write", "read-only"];
    if let Some(k) = acl.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Some(format!("Key {} not recognized", json_string(k)));
    }
    for k in KEYS {
        match acl.get(k) {
            None => {}
            Some(Value::Array(grantees)) if !grantees.iter().all(Value::is_string) => {
                return Some(format!(
                    "Elements of {} list must be strings",
                    json_string(k)
                ));
            }
            Some(Value::Array(_)) => {}
            Some(_) => {
                return Some(format!("Value for key {} must be a list", json_string(k)));
            }
        }
    }
    None
}

fn allowed(owner: bool) -> AuthOutcome {
    AuthOutcome::allowed(owner)
}

/// `authorize(req)`.
pub(crate) async fn authorize(inner: Rc<Inner>, mut req: AuthRequest) -> AuthOutcome {
    let Some(segs) = split_path(&req.path_info, 1, 4, true) else {
        return AuthOutcome::denied(swob::status(404));
    };
    let truthy = |s: &Option<&str>| s.is_some_and(|s| !s.is_empty());
    let (container, obj) = (truthy(&segs[2]), truthy(&segs[3]));
    let account = match segs[1].filter(|a| inner.account_prefix(a).is_some()) {
        Some(a) => a.to_owned(),
        None => {
            inner.log(
                Level::Debug,
                &req.env,
                format_args!(
                    "Account name: {} doesn't start with reseller_prefix(s): {}.",
                    segs[1].unwrap_or("None"),
                    inner.cfg.reseller_prefixes.join(",")
                ),
            );
            return AuthOutcome::denied(denied_response(&req));
        }
    };

    // We are authoritative: an ACL being set must be one tempauth knows.
    let mut headers = None;
    if let Some(value) = req.headers.get(ACL_HEADER).map(str::to_owned) {
        if let Some(error) = account_acl_error(&value) {
            let body = format!("X-Account-Access-Control invalid: {error}\n\nInput: {value}\n");
            return AuthOutcome::denied(swob::with_body(400, "text/plain; charset=UTF-8", body));
        }
        let mut h = req.headers.clone();
        h.remove(ACL_HEADER);
        h.set(ACL_SYSMETA, value);
        headers = Some(h);
    }
    let mut outcome = decide(&inner, &mut req, &account, container, obj).await;
    outcome.headers = headers;
    outcome
}

/// Everything after the path and ACL-syntax checks.
async fn decide(
    inner: &Inner,
    req: &mut AuthRequest,
    account: &str,
    container: bool,
    obj: bool,
) -> AuthOutcome {
    let cfg = &inner.cfg;
    let remote = remote_user(req).unwrap_or("").to_owned();
    let user_groups: Vec<&str> = remote.split(',').collect();
    let has = |g: &str| user_groups.contains(&g);
    let account_user = user_groups.get(1).copied().unwrap_or("None");
    let method = req.method.as_str();
    let read = method == "GET" || method == "HEAD";
    let txn = req.env.trans_id.clone();
    let debug = |msg: std::fmt::Arguments<'_>| {
        inner
            .logger
            .log_with(Level::Debug, msg, txn.as_deref(), None)
    };

    let resellers_account =
        !cfg.reseller_prefixes.iter().any(|p| p == account) && !dot_account(inner, account);
    if has(".reseller_admin") && resellers_account {
        debug(format_args!(
            "User {account_user} has reseller admin authorizing."
        ));
        return allowed(true);
    }
    if has(".reseller_reader") && resellers_account && read {
        debug(format_args!(
            "User {account_user} has reseller reader authorizing."
        ));
        return allowed(false);
    }

    if has(&native(account)) && (!matches!(method, "DELETE" | "PUT") || container) {
        // An account admin, not creating or deleting the account.
        let prefix = inner.account_prefix(account).unwrap_or("");
        let require_group = cfg.require_group.get(prefix).map_or("", String::as_str);
        if require_group.is_empty() {
            debug(format_args!("User {account_user} has admin authorizing."));
            return allowed(true);
        }
        if has(require_group) {
            debug(format_args!(
                "User {account_user} has admin and {require_group} group. Authorizing."
            ));
            return allowed(true);
        }
    }

    if let Some(SwiftSyncKey(key)) = req.env.ext.get::<SwiftSyncKey>()
        && !key.is_empty()
        && req.headers.get("x-container-sync-key") == Some(key.as_str())
        && req.headers.contains("x-timestamp")
    {
        debug(format_args!(
            "Allow request with container sync-key: {key}."
        ));
        return allowed(false);
    }

    if method == "OPTIONS" {
        debug(format_args!("Allow OPTIONS request."));
        return allowed(false);
    }

    let (referrers, groups) = parse_acl(req.acl.as_deref());
    let referer = req.headers.get("referer");
    if referrer_allowed(referer, &referrers) && (obj || groups.iter().any(|g| g == ".rlistings")) {
        debug(format_args!(
            "Allow authorizing {} via referer ACL.",
            referer.unwrap_or("None")
        ));
        return allowed(false);
    }
    if let Some(g) = user_groups.iter().find(|g| groups.iter().any(|a| a == *g)) {
        debug(format_args!(
            "User {account_user} allowed in ACL: {g} authorizing."
        ));
        return allowed(false);
    }

    // Account ACLs, from the account's sysmeta.
    let info = crate::info::get_account_info(&mut req.env, &*inner.next, account, "TA").await;
    let stored = info.sysmeta.get("core-access-control").map(String::as_str);
    if let Ok(Some(acls)) = acls_from_sysmeta(stored) {
        let any = |list: &[String]| list.iter().any(|m| has(m));
        if any(&acls.admin) {
            debug(format_args!(
                "User {account_user} allowed by X-Account-Access-Control (admin)"
            ));
            return allowed(true);
        }
        if any(&acls.read_write) && (container || read) {
            debug(format_args!(
                "User {account_user} allowed by X-Account-Access-Control (read-write)"
            ));
            return allowed(false);
        }
        if any(&acls.read_only) && read {
            debug(format_args!(
                "User {account_user} allowed by X-Account-Access-Control (read-only)"
            ));
            return allowed(false);
        }
    }

    AuthOutcome::denied(denied_response(req))
}

/// `_dot_account`: the account name starts with `.` after its prefix.
fn dot_account(inner: &Inner, account: &str) -> bool {
    inner
        .account_prefix(account)
        .is_some_and(|p| account.chars().nth(p.chars().count()) == Some('.'))
}
