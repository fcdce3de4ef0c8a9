//! What the proxy's middleware and controllers share about one client
//! request, kept in [`Env::ext`]: Swift's environ keys `swift.authorize`
//! ([`Authorize`]), `swift.cache` ([`SwiftCache`]), `swift.infocache`
//! ([`InfoCache`]), `REMOTE_USER` ([`RemoteUser`]), `swift_owner`
//! ([`SwiftOwner`]); [`subrequest`], Swift's `make_pre_authed_request`;
//! [`client_subrequest`], Swift's `make_subrequest` (authorized as the
//! client); [`LoggedTarget`], the client request as the access log names it.
//!
//! Only types and the plumbing between them live here: what is cached, how
//! users are authorized, how memcached is spoken to, belong to the modules
//! that own those jobs (`info`, `middleware::tempauth`, `memcache`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use swift_common::http::{BoxFuture, Env, Headers, Request, Response};

/// Why a cache operation failed (memcached down, a timeout, a bad reply).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct CacheError(pub String);

/// A memcache client as Swift's middleware use it: JSON values, keys as
/// Swift names them (the client hashes them).
pub trait Memcache {
    /// The value stored under `key`; `Ok(None)` when there is none.
    fn get<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<serde_json::Value>, CacheError>>;

    /// As [`Memcache::get`], shared: a client that keeps what it decoded
    /// hands out the same value instead of a copy.
    fn get_shared<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Rc<serde_json::Value>>, CacheError>> {
        Box::pin(async move { self.get(key).await.map(|v| v.map(Rc::new)) })
    }

    /// Store `value` under `key` for `ttl` (zero: no expiry).
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a serde_json::Value,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), CacheError>>;

    /// Remove `key`.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), CacheError>>;

    /// Swift's `incr`: add `delta` (negative: subtract, stopping at zero)
    /// to the counter `key`, creating it with `ttl` when missing; the new
    /// value. Caches that keep no counters refuse it.
    fn incr<'a>(
        &'a self,
        key: &'a str,
        delta: i64,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<i64, CacheError>> {
        let _ = (key, delta, ttl);
        Box::pin(async { Err(CacheError("this cache keeps no counters".into())) })
    }
}

/// `swift.cache`: the memcache client the `cache` filter installs.
#[derive(Clone)]
pub struct SwiftCache(pub Rc<dyn Memcache>);

/// The cache of `env`, if a `cache` filter put one there.
pub fn cache(env: &Env) -> Option<Rc<dyn Memcache>> {
    env.ext.get::<SwiftCache>().map(|c| c.0.clone())
}

/// What an auth middleware's `authorize` is asked about: the request as
/// the controller sees it, with the ACL that applies (`req.acl` in Swift:
/// the container's read or write ACL, once the controller knows it).
pub struct AuthRequest {
    pub method: String,
    /// `PATH_INFO` (a WSGI string: percent-decoded, latin-1).
    pub path_info: String,
    pub headers: Headers,
    pub acl: Option<String>,
    /// The request's env, for lookups the decision needs (account ACLs).
    pub env: Env,
}

/// The answer of `authorize`.
#[derive(Debug)]
pub struct AuthOutcome {
    /// `None`: allowed. `Some`: the response to send instead (401 or 403).
    pub denied: Option<Response>,
    /// The caller may see and set owner-only headers (`swift_owner`).
    pub swift_owner: bool,
    /// The request's headers as `authorize` left them, when it changed
    /// them (Swift's authorize edits `req.headers`: tempauth moves a valid
    /// `X-Account-Access-Control` to account sysmeta). `None`: unchanged.
    pub headers: Option<Headers>,
}

impl AuthOutcome {
    pub fn allowed(swift_owner: bool) -> AuthOutcome {
        AuthOutcome {
            denied: None,
            swift_owner,
            headers: None,
        }
    }

    pub fn denied(resp: Response) -> AuthOutcome {
        AuthOutcome {
            denied: Some(resp),
            swift_owner: false,
            headers: None,
        }
    }
}

/// The function an auth middleware installs (`swift.authorize`).
pub type AuthorizeFn = dyn Fn(AuthRequest) -> BoxFuture<'static, AuthOutcome>;

/// `swift.authorize`.
#[derive(Clone)]
pub struct Authorize(pub Rc<AuthorizeFn>);

/// `REMOTE_USER`: the groups an auth middleware found for the caller,
/// comma-separated (`test,test:tester,AUTH_test`).
#[derive(Clone, Debug)]
pub struct RemoteUser(pub String);

/// `swift.authorize_override`: a middleware (tempurl, container_sync)
/// has authorized the request itself; auth middleware leave it alone.
#[derive(Clone, Copy, Debug)]
pub struct AuthorizeOverride;

/// `swift_sync_key`: the container's sync key, set by the object
/// controller before it authorizes a write (container sync requests carry
/// it in `X-Container-Sync-Key`).
#[derive(Clone, Debug)]
pub struct SwiftSyncKey(pub String);

/// `reseller_request`: the caller is a reseller admin.
#[derive(Clone, Copy, Debug)]
pub struct ResellerRequest;

/// `swift.clean_acl`: an auth middleware that understands Swift's container
/// ACL syntax (tempauth) is in charge, so the container controller checks
/// and cleans `X-Container-Read`/`-Write` (without one, Swift passes them
/// on as they are).
#[derive(Clone, Copy, Debug)]
pub struct CleanAcl;

/// `swift_owner`: the caller may see and set owner-only headers.
#[derive(Clone, Copy, Debug)]
pub struct SwiftOwner(pub bool);

/// Whether `env` says the caller is the owner.
pub fn is_swift_owner(env: &Env) -> bool {
    env.ext.get::<SwiftOwner>().is_some_and(|o| o.0)
}

/// `swift.infocache`: account and container info found while serving one
/// client request, shared by all its subrequests. Keys are Swift's cache
/// keys (`account/AUTH_test`, `container/AUTH_test/c`); values the info as
/// cached in memcache (JSON, Swift's field names).
#[derive(Clone, Default)]
pub struct InfoCache(pub Rc<RefCell<HashMap<String, Rc<serde_json::Value>>>>);

/// The request's info cache, made on first use. Call it on the request's
/// env before copying the env for a subrequest, so both share one cache.
pub fn infocache(env: &mut Env) -> InfoCache {
    if let Some(c) = env.ext.get::<InfoCache>() {
        return c.clone();
    }
    let c = InfoCache::default();
    env.ext.insert(c.clone());
    c
}

/// Swift's `make_pre_authed_request`: a request made by the proxy itself on
/// behalf of `parent`, not authorized again (no `swift.authorize`), logged
/// with `source` (`swift.source`), sharing the parent's trans id, cache and
/// info cache. `path` is a quoted path with an optional query.
pub fn subrequest(parent: &mut Env, method: &str, path: &str, source: &str) -> Request {
    infocache(parent);
    let mut req = Request::new(method, path);
    req.env = parent.clone();
    req.env.ext.remove::<Authorize>();
    req.env.source = Some(source.to_owned());
    req.env.access_log_made = false;
    req.env.log_info = Vec::new();
    req.headers.append("User-Agent", "Swift");
    req
}

/// The client's request headers Swift's `make_env` carries into a
/// subrequest (besides `User-Agent`, which the caller's `agent` makes).
const CLIENT_SUBREQUEST_HEADERS: &[&str] = &[
    "Host",
    "Origin",
    "Access-Control-Request-Method",
    "X-User-Id",
    "X-Project-Id",
    "Referer",
];

/// Swift's `make_subrequest`: a request a middleware makes on behalf of
/// `parent` and authorized as the client (`swift.authorize` is kept, as are
/// `REMOTE_USER`, the caches and the trans id; `swift_owner` is not).
/// `parent_headers` are the client's: their Host, Origin, Referer, ...
/// come along. `agent` is the User-Agent, with `%(orig)s` standing for the
/// client's; `headers` are set over all of that (swob's `Request.blank`).
/// `path` is quoted, with an optional query. The body is empty and the
/// protocol HTTP/1.0, as `Request.blank` makes them.
pub fn client_subrequest(
    parent: &mut Env,
    parent_headers: &Headers,
    method: &str,
    path: &str,
    headers: &Headers,
    agent: &str,
    source: &str,
) -> Request {
    infocache(parent);
    let mut req = Request::new(method, path);
    req.version = swift_common::http::Version::Http10;
    req.env = parent.clone();
    req.env.ext.remove::<SwiftOwner>();
    req.env.source = Some(source.to_owned());
    req.env.access_log_made = false;
    req.env.log_info = Vec::new();
    for name in CLIENT_SUBREQUEST_HEADERS {
        if let Some(v) = parent_headers.get(name) {
            req.headers.append(*name, v.to_owned());
        }
    }
    let orig = parent_headers.get("user-agent").unwrap_or("");
    let ua = agent.replace("%(orig)s", orig).trim().to_owned();
    if !ua.is_empty() {
        req.headers.append("User-Agent", ua);
    }
    for (k, v) in headers.iter() {
        req.headers.set(k.to_owned(), v.to_owned());
    }
    req
}

/// The request the access log names for a client request that a middleware
/// rewrote after proxy_logging saw it: Swift's proxy_logging reads
/// `PATH_INFO` and `QUERY_STRING` when it logs, so a `COPY` that copy turned
/// into a `PUT` of the destination is logged with the destination's path.
/// proxy_logging puts a fresh one in the env of each request it logs; the
/// middleware that rewrites stores the new target (quoted path and query).
#[derive(Clone, Default, Debug)]
pub struct LoggedTarget(pub Rc<RefCell<Option<String>>>);

impl LoggedTarget {
    /// Record that the request in `env` now targets `target`.
    pub fn rewrite(env: &Env, target: &str) {
        if let Some(t) = env.ext.get::<LoggedTarget>() {
            *t.0.borrow_mut() = Some(target.to_owned());
        }
    }
}

/// How long a request may wait on memcache for info before going to the
/// backends anyway.
pub const CACHE_TIMEOUT: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subrequests_share_the_info_cache_and_are_not_authorized_again() {
        let mut env = Env {
            trans_id: Some("tx1".into()),
            ..Env::default()
        };
        env.ext.insert(Authorize(Rc::new(|_| {
            Box::pin(async { AuthOutcome::allowed(false) })
        })));
        let sub = subrequest(&mut env, "HEAD", "/v1/a", "GET_ACCOUNT_INFO");
        assert!(sub.env.ext.get::<Authorize>().is_none());
        assert!(env.ext.get::<Authorize>().is_some());
        assert_eq!(sub.env.source.as_deref(), Some("GET_ACCOUNT_INFO"));
        assert_eq!(sub.env.trans_id.as_deref(), Some("tx1"));
        let a = env.ext.get::<InfoCache>().unwrap().clone();
        let b = sub.env.ext.get::<InfoCache>().unwrap().clone();
        a.0.borrow_mut()
            .insert("k".into(), Rc::new(serde_json::Value::Null));
        assert!(b.0.borrow().contains_key("k"));
    }

    #[test]
    fn client_subrequests_keep_the_authorization_and_the_client_headers() {
        let mut env = Env {
            trans_id: Some("tx2".into()),
            ..Env::default()
        };
        env.ext.insert(Authorize(Rc::new(|_| {
            Box::pin(async { AuthOutcome::allowed(false) })
        })));
        env.ext.insert(SwiftOwner(true));
        env.ext.insert(RemoteUser("test,test:tester".into()));
        let mut h = Headers::new();
        h.append("Referer", "http://example.com/");
        h.append("User-Agent", "curl/8");
        h.append("X-Auth-Token", "secret");
        let sub = client_subrequest(
            &mut env,
            &h,
            "GET",
            "/v1/a/c?prefix=p",
            &Headers::new(),
            "%(orig)s  DLO",
            "DLO",
        );
        assert!(sub.env.ext.get::<Authorize>().is_some());
        assert!(sub.env.ext.get::<RemoteUser>().is_some());
        assert!(!is_swift_owner(&sub.env));
        assert_eq!(sub.headers.get("referer"), Some("http://example.com/"));
        assert_eq!(sub.headers.get("user-agent"), Some("curl/8  DLO"));
        assert!(sub.headers.get("x-auth-token").is_none());
        assert_eq!(sub.env.source.as_deref(), Some("DLO"));
        assert_eq!(sub.query(), Some("prefix=p"));
        let mut given = Headers::new();
        given.append("Range", "bytes=1-2");
        let sub = client_subrequest(
            &mut env,
            &Headers::new(),
            "GET",
            "/",
            &given,
            "Swift",
            "SSC",
        );
        assert_eq!(sub.headers.get("user-agent"), Some("Swift"));
        assert_eq!(sub.headers.get("range"), Some("bytes=1-2"));
    }

    #[test]
    fn a_rewrite_reaches_the_logged_target_shared_by_env_copies() {
        let mut env = Env::default();
        LoggedTarget::rewrite(&env, "/ignored");
        let t = LoggedTarget::default();
        env.ext.insert(t.clone());
        let moved = env.clone();
        LoggedTarget::rewrite(&moved, "/v1/a/c/dst?x=1");
        assert_eq!(t.0.borrow().as_deref(), Some("/v1/a/c/dst?x=1"));
    }
}
