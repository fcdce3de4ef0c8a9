//! Account and container info, as Swift's `get_account_info` and
//! `get_container_info` find it: the request's info cache first
//! (`swift.infocache`), then memcache, then a pre-authorized `HEAD` through
//! the pipeline below the caller, whose response the proxy app caches
//! (`set_info_cache`) for `recheck_account_existence` /
//! `recheck_container_existence` seconds (a tenth of that for a 404).
//!
//! Info is kept as the JSON Swift stores in memcache (same keys, same
//! fields), so a Python proxy and ours can share one memcached; the typed
//! views below read it.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use swift_common::http::quote::{wsgi_as_str, wsgi_quote};
use swift_common::http::{Env, Headers, Response, Service};

use crate::context::{CACHE_TIMEOUT, SwiftOwner, cache, infocache, subrequest};

/// Swift's defaults for `recheck_account_existence` and
/// `recheck_container_existence`.
pub const DEFAULT_RECHECK_ACCOUNT_EXISTENCE: u64 = 60;
pub const DEFAULT_RECHECK_CONTAINER_EXISTENCE: u64 = 60;

/// `get_cache_key(account, container)` of str names.
pub fn cache_key(account: &str, container: Option<&str>) -> String {
    match container {
        // `concat` sizes the key once; `format!` grows it piecewise.
        Some(c) => ["container/", account, "/", c].concat(),
        None => ["account/", account].concat(),
    }
}

/// A WSGI name as the str Swift keys its caches with (itself when its
/// bytes are not UTF-8).
fn native(wsgi: &str) -> Cow<'_, str> {
    wsgi_as_str(wsgi).unwrap_or(Cow::Borrowed(wsgi))
}

/// `_prep_headers_to_info`: the headers lowercased, with `x-<type>-meta-*`
/// and `x-<type>-sysmeta-*` split out (prefix removed).
fn prep(headers: &Headers, server_type: &str) -> (Map<String, Value>, Value, Value) {
    let meta_prefix = format!("x-{server_type}-meta-");
    let sysmeta_prefix = format!("x-{server_type}-sysmeta-");
    let mut out = Map::new();
    let mut meta = Map::new();
    let mut sysmeta = Map::new();
    for (k, v) in headers.iter() {
        let k = k.to_ascii_lowercase();
        if let Some(m) = k.strip_prefix(&meta_prefix) {
            meta.insert(m.to_owned(), Value::String(v.to_owned()));
        } else if let Some(m) = k.strip_prefix(&sysmeta_prefix) {
            sysmeta.insert(m.to_owned(), Value::String(v.to_owned()));
        } else {
            out.insert(k, Value::String(v.to_owned()));
        }
    }
    (out, Value::Object(meta), Value::Object(sysmeta))
}

fn get(h: &Map<String, Value>, k: &str) -> Value {
    h.get(k).cloned().unwrap_or(Value::Null)
}

/// `headers_to_account_info`.
pub fn headers_to_account_info(headers: &Headers, status: u16) -> Value {
    let (h, meta, sysmeta) = prep(headers, "account");
    let mut info = json!({
        "status": status,
        "container_count": get(&h, "x-account-container-count"),
        "total_object_count": get(&h, "x-account-object-count"),
        "bytes": get(&h, "x-account-bytes-used"),
        "storage_policies": {},
        "meta": meta,
        "sysmeta": sysmeta,
    });
    if (200..300).contains(&status) {
        let fake = h
            .get("x-backend-fake-account-listing")
            .and_then(Value::as_str)
            .is_some_and(swift_common::config::values::config_true_value);
        info["account_really_exists"] = Value::Bool(!fake);
    }
    info
}

/// `headers_to_container_info`.
pub fn headers_to_container_info(headers: &Headers, status: u16) -> Value {
    let (h, meta, sysmeta) = prep(headers, "container");
    let m = |k: &str| meta.get(k).cloned().unwrap_or(Value::Null);
    json!({
        "status": status,
        "read_acl": get(&h, "x-container-read"),
        "write_acl": get(&h, "x-container-write"),
        "sync_to": get(&h, "x-container-sync-to"),
        "sync_key": get(&h, "x-container-sync-key"),
        "object_count": get(&h, "x-container-object-count"),
        "bytes": get(&h, "x-container-bytes-used"),
        "versions": get(&h, "x-versions-location"),
        "storage_policy": h.get("x-backend-storage-policy-index").cloned()
            .unwrap_or_else(|| Value::String("0".into())),
        "cors": {
            "allow_origin": m("access-control-allow-origin"),
            "expose_headers": m("access-control-expose-headers"),
            "max_age": m("access-control-max-age"),
        },
        "meta": meta,
        "sysmeta": sysmeta,
        "sharding_state": h.get("x-backend-sharding-state").cloned()
            .unwrap_or_else(|| Value::String("unsharded".into())),
        "created_at": get(&h, "x-backend-timestamp"),
        "put_timestamp": get(&h, "x-backend-put-timestamp"),
        "delete_timestamp": get(&h, "x-backend-delete-timestamp"),
        "status_changed_at": get(&h, "x-backend-status-changed-at"),
    })
}

/// A field of an info document.
fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.as_object().and_then(|m| m.get(name))
}

/// A number in info, which Swift keeps as a string or an int.
fn int_of(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

fn str_of(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

fn map_of(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// What `get_account_info` returns.
#[derive(Clone, Debug, Default)]
pub struct AccountInfo {
    pub status: u16,
    pub container_count: i64,
    pub total_object_count: i64,
    pub bytes: i64,
    pub meta: BTreeMap<String, String>,
    pub sysmeta: BTreeMap<String, String>,
    /// False for the fake listing of an autocreated account.
    pub account_really_exists: bool,
}

impl AccountInfo {
    fn from_value(v: &Value) -> AccountInfo {
        AccountInfo {
            status: int_of(field(v, "status")) as u16,
            container_count: int_of(field(v, "container_count")),
            total_object_count: int_of(field(v, "total_object_count")),
            bytes: int_of(field(v, "bytes")),
            meta: map_of(field(v, "meta")),
            sysmeta: map_of(field(v, "sysmeta")),
            account_really_exists: field(v, "account_really_exists")
                .and_then(Value::as_bool)
                .unwrap_or(true),
        }
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// What `get_container_info` returns.
#[derive(Clone, Debug, Default)]
pub struct ContainerInfo {
    pub status: u16,
    pub read_acl: Option<String>,
    pub write_acl: Option<String>,
    pub sync_key: Option<String>,
    pub sync_to: Option<String>,
    pub object_count: i64,
    pub bytes: i64,
    pub versions: Option<String>,
    pub storage_policy: i64,
    pub cors_allow_origin: Option<String>,
    pub cors_expose_headers: Option<String>,
    pub cors_max_age: Option<String>,
    pub meta: BTreeMap<String, String>,
    pub sysmeta: BTreeMap<String, String>,
    pub sharding_state: String,
}

impl ContainerInfo {
    fn from_value(v: &Value) -> ContainerInfo {
        // One pass over the document's fields: a hashed lookup per field
        // cost more than reading the whole (small) document.
        let mut info = ContainerInfo::default();
        let (mut object_count, mut container_size) = (None, None);
        let (mut cors, mut sharding_state) = (None, None);
        for (k, f) in v.as_object().into_iter().flatten() {
            let f = Some(f);
            match k.as_str() {
                "status" => info.status = int_of(f) as u16,
                "read_acl" => info.read_acl = str_of(f),
                "write_acl" => info.write_acl = str_of(f),
                "sync_key" => info.sync_key = str_of(f),
                "sync_to" => info.sync_to = str_of(f),
                "object_count" => object_count = f,
                "container_size" => container_size = f,
                "bytes" => info.bytes = int_of(f),
                "versions" => info.versions = str_of(f),
                "storage_policy" => info.storage_policy = int_of(f),
                "cors" => cors = f,
                "meta" => info.meta = map_of(f),
                "sysmeta" => info.sysmeta = map_of(f),
                "sharding_state" => sharding_state = f,
                _ => {}
            }
        }
        info.object_count = int_of(object_count.or(container_size));
        let cors_field = |k: &str| str_of(cors.and_then(|c| c.get(k)));
        info.cors_allow_origin = cors_field("allow_origin");
        info.cors_expose_headers = cors_field("expose_headers");
        info.cors_max_age = cors_field("max_age");
        info.sharding_state = str_of(sharding_state).unwrap_or_else(|| "unsharded".to_owned());
        info
    }

    /// [`ContainerInfo::from_value`] of a shared document, remembering the
    /// last one read: memcache hands out the same document (one `Rc`) for
    /// as long as the cached info does not change, and a request reads its
    /// container's info more than once. Holding the `Rc` keeps the document
    /// (immutable) alive, so the same pointer means the same content.
    fn of_shared(v: &Rc<Value>) -> ContainerInfo {
        thread_local! {
            static LAST: RefCell<Option<(Rc<Value>, ContainerInfo)>> = const { RefCell::new(None) };
        }
        LAST.with_borrow_mut(|last| match last {
            Some((doc, info)) if Rc::ptr_eq(doc, v) => info.clone(),
            _ => {
                let info = ContainerInfo::from_value(v);
                *last = Some((v.clone(), info.clone()));
                info
            }
        })
    }

    /// Info for a container that could not be looked up (`status` 0 when
    /// the account is missing, 503 when nothing answered).
    pub fn missing(status: u16) -> ContainerInfo {
        ContainerInfo::from_value(&headers_to_container_info(&Headers::new(), status))
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The cached info under `key`: the request's info cache, then memcache
/// (which then fills the info cache).
async fn from_caches(env: &mut Env, key: &str) -> Option<Rc<Value>> {
    let ic = infocache(env);
    if let Some(v) = ic.0.borrow().get(key) {
        return Some(v.clone());
    }
    let mc = cache(env)?;
    let found = tokio::time::timeout(CACHE_TIMEOUT, mc.get_shared(key)).await;
    match found {
        Ok(Ok(Some(v))) if !v.is_null() => {
            ic.0.borrow_mut().insert(key.to_owned(), v.clone());
            Some(v)
        }
        _ => None,
    }
}

/// `set_info_cache(env, account, container, resp)`: cache what a backend
/// answered, if it is an authoritative answer (2xx, 404, 410). Names are
/// WSGI strings. Returns the cached info.
pub async fn set_info_cache(
    env: &mut Env,
    account: &str,
    container: Option<&str>,
    resp: &Response,
) -> Option<Rc<Value>> {
    let key = cache_key(&native(account), container.map(native).as_deref());
    let recheck = if container.is_some() {
        (
            "x-backend-recheck-container-existence",
            DEFAULT_RECHECK_CONTAINER_EXISTENCE,
        )
    } else {
        (
            "x-backend-recheck-account-existence",
            DEFAULT_RECHECK_ACCOUNT_EXISTENCE,
        )
    };
    let mut cache_time = resp
        .headers
        .get(recheck.0)
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(recheck.1 as f64);
    if resp.status == 404 || resp.status == 410 {
        cache_time *= 0.1;
    } else if !(200..300).contains(&resp.status) {
        return None;
    }
    let info = if container.is_some() {
        headers_to_container_info(&resp.headers, resp.status)
    } else {
        headers_to_account_info(&resp.headers, resp.status)
    };
    let info = Rc::new(info);
    if let Some(mc) = cache(env) {
        // Bounded: a slow memcache must not hold the response.
        let ttl = Duration::from_secs_f64(cache_time.max(0.0));
        let _ = tokio::time::timeout(CACHE_TIMEOUT, mc.set(&key, &info, ttl)).await;
    }
    infocache(env).0.borrow_mut().insert(key, info.clone());
    Some(info)
}

/// `clear_info_cache(env, account, container)`: forget the info here and
/// in memcache (after a write that changes it). Names are WSGI strings.
pub async fn clear_info_cache(env: &mut Env, account: &str, container: Option<&str>) {
    let key = cache_key(&native(account), container.map(native).as_deref());
    infocache(env).0.borrow_mut().remove(&key);
    if let Some(mc) = cache(env) {
        let _ = tokio::time::timeout(CACHE_TIMEOUT, mc.delete(&key)).await;
    }
}

/// Make a pre-authorized `HEAD` of `path` (a WSGI path) through `app`.
async fn head_through(app: &dyn Service, env: &mut Env, path: &str, source: &str) -> Response {
    let target = wsgi_quote(path, "/");
    let mut req = subrequest(env, "HEAD", &target, source);
    // ACLs are only shown to owners; the info must carry them.
    req.env.ext.insert(SwiftOwner(true));
    req.headers.remove("origin");
    req.headers.set("X-Backend-Allow-Reserved-Names", "true");
    let mut resp = app.call(req).resolve().await;
    // Only the headers matter; a HEAD has no body to drain.
    resp.body = swift_common::http::ResponseBody::Empty;
    resp
}

/// `get_account_info`: `account` is a WSGI string; `version` the path's
/// API version (`v1`).
pub async fn get_account_info(
    env: &mut Env,
    app: &dyn Service,
    account: &str,
    source: &str,
) -> AccountInfo {
    let key = cache_key(&native(account), None);
    let info = match from_caches(env, &key).await {
        Some(v) => Some(v),
        None => {
            let source = if source.is_empty() {
                "GET_ACCOUNT_INFO"
            } else {
                source
            };
            let resp = head_through(app, env, &format!("/v1/{account}"), source).await;
            // The proxy app caches what it found; fall back to the response.
            let cached = infocache(env).0.borrow().get(&key).cloned();
            match cached {
                Some(v) => Some(v),
                None => set_info_cache(env, account, None, &resp).await,
            }
        }
    };
    match info {
        Some(v) => AccountInfo::from_value(&v),
        None => AccountInfo::from_value(&headers_to_account_info(&Headers::new(), 503)),
    }
}

/// Accounts whose names start with this are assumed to exist (Swift's
/// `AUTO_CREATE_ACCOUNT_PREFIX`).
pub const AUTO_CREATE_ACCOUNT_PREFIX: &str = ".";

/// `get_container_info`: names are WSGI strings.
pub async fn get_container_info(
    env: &mut Env,
    app: &dyn Service,
    account: &str,
    container: &str,
    source: &str,
) -> ContainerInfo {
    let key = cache_key(&native(account), Some(&native(container)));
    if let Some(v) = from_caches(env, &key).await {
        return ContainerInfo::of_shared(&v);
    }
    if !account.starts_with(AUTO_CREATE_ACCOUNT_PREFIX) {
        let ai = get_account_info(env, app, account, source).await;
        if !ai.is_success() {
            return ContainerInfo::missing(0);
        }
    }
    let source = if source.is_empty() {
        "GET_CONTAINER_INFO"
    } else {
        source
    };
    let resp = head_through(app, env, &format!("/v1/{account}/{container}"), source).await;
    let cached = infocache(env).0.borrow().get(&key).cloned();
    let info = match cached {
        Some(v) => Some(v),
        None => set_info_cache(env, account, Some(container), &resp).await,
    };
    match info {
        Some(v) => ContainerInfo::from_value(&v),
        None => ContainerInfo::missing(503),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_info_from_headers() {
        let mut h = Headers::new();
        h.append("X-Container-Read", ".r:*");
        h.append("X-Container-Object-Count", "3");
        h.append("X-Backend-Storage-Policy-Index", "1");
        h.append("X-Container-Meta-Access-Control-Allow-Origin", "http://a");
        h.append("X-Container-Sysmeta-Foo", "bar");
        let v = headers_to_container_info(&h, 204);
        let info = ContainerInfo::from_value(&v);
        assert_eq!(info.read_acl.as_deref(), Some(".r:*"));
        assert_eq!(info.object_count, 3);
        assert_eq!(info.storage_policy, 1);
        assert_eq!(info.cors_allow_origin.as_deref(), Some("http://a"));
        assert_eq!(info.sysmeta.get("foo").map(String::as_str), Some("bar"));
        assert_eq!(info.sharding_state, "unsharded");
        assert!(info.is_success());
    }

    #[test]
    fn account_info_knows_fake_listings() {
        let mut h = Headers::new();
        h.append("X-Backend-Fake-Account-Listing", "yes");
        let info = AccountInfo::from_value(&headers_to_account_info(&h, 204));
        assert!(!info.account_really_exists);
        let info = AccountInfo::from_value(&headers_to_account_info(&Headers::new(), 404));
        assert!(info.account_really_exists && !info.is_success());
    }
}
