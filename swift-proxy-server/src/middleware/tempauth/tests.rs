//! tempauth against a fake memcache and a fake app that asks
//! `swift.authorize` as the proxy does; the cases and their expectations
//! are those of Swift's test/unit/common/middleware/test_tempauth.py.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use serde_json::{Value, json};
use swift_common::config::Conf;
use swift_common::http::{BoxFuture, Reply, Request, Response, Service};

use super::*;
use crate::context::{
    AuthOutcome, AuthRequest, Authorize, AuthorizeOverride, CacheError, Memcache, RemoteUser,
    ResellerRequest, SwiftCache, SwiftOwner, SwiftSyncKey,
};
use crate::middleware::tests::{block_on, body_of};
use swift_common::logging::{Level, LogConfig, Logger, Target};

/// Swift's `FakeMemcache`, with switches to make it fail.
#[derive(Default)]
pub(crate) struct FakeMemcache {
    pub store: RefCell<HashMap<String, (Value, Duration)>>,
    pub fail_get: Cell<bool>,
    pub fail_set: Cell<bool>,
}

impl FakeMemcache {
    pub fn put(&self, key: &str, value: Value) {
        self.store
            .borrow_mut()
            .insert(key.to_owned(), (value, Duration::ZERO));
    }
    pub fn value(&self, key: &str) -> Option<Value> {
        self.store.borrow().get(key).map(|(v, _)| v.clone())
    }
    pub fn ttl(&self, key: &str) -> Option<Duration> {
        self.store.borrow().get(key).map(|(_, t)| *t)
    }
}

impl Memcache for FakeMemcache {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Value>, CacheError>> {
        let r = if self.fail_get.get() {
            Err(CacheError("connection refused".into()))
        } else {
            Ok(self.value(key))
        };
        Box::pin(async move { r })
    }
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a Value,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), CacheError>> {
        let r = if self.fail_set.get() {
            Err(CacheError("connection refused".into()))
        } else {
            self.store
                .borrow_mut()
                .insert(key.to_owned(), (value.clone(), ttl));
            Ok(())
        };
        Box::pin(async move { r })
    }
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), CacheError>> {
        self.store.borrow_mut().remove(key);
        Box::pin(async { Ok(()) })
    }
}

/// Swift's `FakeApp`: asks `swift.authorize` (with `acl`, and the sync key
/// in env) as the proxy does and answers `status` when allowed. Account
/// info lookups (`swift.source` TA) get a 404. What it saw comes back as
/// `Seen-*` headers.
pub(crate) struct FakeApp {
    pub status: u16,
    pub acl: Option<String>,
    pub sync_key: Option<String>,
    pub calls: Cell<usize>,
}

pub(crate) fn fake_app(status: u16) -> FakeApp {
    FakeApp {
        status,
        acl: None,
        sync_key: None,
        calls: Cell::new(0),
    }
}

impl Service for FakeApp {
    fn call(&self, mut req: Request) -> Reply<'_> {
        if req.env.source.as_deref() == Some("TA") {
            return Reply::Ready(Response::new(404));
        }
        self.calls.set(self.calls.get() + 1);
        Reply::pending(async move {
            if let Some(k) = &self.sync_key {
                req.env.ext.insert(SwiftSyncKey(k.clone()));
            }
            if let Some(auth) = req.env.ext.get::<Authorize>().cloned() {
                let outcome = (auth.0)(AuthRequest {
                    method: req.method.to_string(),
                    path_info: req.path_info().into_owned(),
                    headers: req.headers.clone(),
                    acl: self.acl.clone(),
                    env: req.env.clone(),
                })
                .await;
                if outcome.swift_owner {
                    req.env.ext.insert(SwiftOwner(true));
                }
                if let Some(h) = outcome.headers {
                    req.headers = h;
                }
                if let Some(denied) = outcome.denied {
                    return denied;
                }
            }
            let mut r = swob::status(self.status);
            if let Some(u) = req.env.ext.get::<RemoteUser>() {
                r.headers.set("Seen-Remote-User", u.0.clone());
            }
            if crate::context::is_swift_owner(&req.env) {
                r.headers.set("Seen-Owner", "true");
            }
            if req.env.ext.get::<ResellerRequest>().is_some() {
                r.headers.set("Seen-Reseller-Request", "true");
            }
            for h in [
                "x-account-access-control",
                "x-account-sysmeta-core-access-control",
            ] {
                if let Some(v) = req.headers.get(h) {
                    r.headers.set(format!("Seen-{h}"), v.to_owned());
                }
            }
            r
        })
    }
}

thread_local! {
    // Each test runs on its own thread: its log goes away with it.
    static LOG_DIR: tempfile::TempDir = tempfile::tempdir().expect("tempdir");
}

fn log_path() -> std::path::PathBuf {
    LOG_DIR.with(|d| d.path().join("proxy.log"))
}

/// A logger writing to this test's own file (no DNS, no sockets).
fn test_logger() -> Logger {
    let cfg = LogConfig {
        name: "proxy-server".into(),
        level: Level::Debug,
        facility: 16,
        max_line_length: 0,
        target: Target::File(log_path()),
    };
    Logger::open(&cfg, None).expect("logger")
}

fn logged() -> String {
    std::fs::read_to_string(log_path()).unwrap_or_default()
}

fn conf(pairs: &[(&str, &str)]) -> Conf {
    Conf::from_pairs("/etc/swift/proxy-server.conf", "filter:tempauth", pairs)
}

fn auth_with(pairs: &[(&str, &str)], app: FakeApp) -> (TempAuth, Rc<FakeApp>) {
    let app = Rc::new(app);
    let next: Rc<dyn Service> = app.clone();
    let a = TempAuth::new(&conf(pairs), test_logger(), next).expect("conf");
    (a, app)
}

fn auth(pairs: &[(&str, &str)]) -> TempAuth {
    auth_with(pairs, fake_app(404)).0
}

fn request(method: &str, path: &str, headers: &[(&str, &str)], mc: &Rc<FakeMemcache>) -> Request {
    let mut req = Request::new(method, path);
    for (k, v) in headers {
        req.headers.append(k.to_string(), v.to_string());
    }
    req.headers.set_default("Host", "localhost:80");
    req.env
        .ext
        .insert(SwiftCache(mc.clone() as Rc<dyn Memcache>));
    req
}

fn run(a: &TempAuth, req: Request) -> Response {
    block_on(a.call(req).resolve())
}

fn get(a: &TempAuth, path: &str, headers: &[(&str, &str)]) -> Response {
    run(
        a,
        request("GET", path, headers, &Rc::new(FakeMemcache::default())),
    )
}

fn www(r: &Response) -> Option<&str> {
    r.headers.get("Www-Authenticate")
}

// ---------------------------------------------------------------------------
// __call__: what gets installed, and when we deny at once.

#[test]
fn top_level_and_anonymous_requests_are_denied_with_swobs_401() {
    let a = auth(&[]);
    let r = get(&a, "/", &[]);
    assert_eq!((r.status, www(&r)), (401, Some("Swift realm=\"unknown\"")));
    assert_eq!(
        body_of(&r),
        "<html><h1>Unauthorized</h1><p>This server could not verify that you are \
         authorized to access the document you requested.</p></html>"
    );
    let r = get(&a, "/v1/AUTH_account", &[]);
    assert_eq!(
        (r.status, www(&r)),
        (401, Some("Swift realm=\"AUTH_account\""))
    );
    let r = get(&a, "/v1", &[]);
    assert_eq!((r.status, www(&r)), (401, Some("Swift realm=\"unknown\"")));
}

#[test]
fn overrides() {
    let mc = Rc::new(FakeMemcache::default());
    let overridden = |a: &TempAuth| {
        let mut req = request("GET", "/v1/AUTH_account", &[], &mc);
        req.env.ext.insert(AuthorizeOverride);
        run(a, req)
    };
    let r = overridden(&auth(&[("allow_overrides", "false")]));
    assert_eq!(
        (r.status, www(&r)),
        (401, Some("Swift realm=\"AUTH_account\""))
    );
    assert_eq!(
        overridden(&auth(&[("allow_overrides", "true")])).status,
        404
    );
    assert_eq!(overridden(&auth(&[])).status, 404);
}

#[test]
fn tokens_of_other_resellers_are_denied_unless_another_auth_decides() {
    let (a, app) = auth_with(&[], fake_app(404));
    let r = get(&a, "/v1/BLAH_account", &[("X-Auth-Token", "BLAH_t")]);
    assert_eq!(
        (r.status, www(&r)),
        (401, Some("Swift realm=\"BLAH_account\""))
    );
    assert_eq!(
        app.calls.get(),
        1,
        "denied by the installed hook, in the app"
    );

    let mc = Rc::new(FakeMemcache::default());
    let mut req = request(
        "GET",
        "/v1/BLAH_account",
        &[("X-Auth-Token", "BLAH_t")],
        &mc,
    );
    req.env.ext.insert(Authorize(Rc::new(|_| {
        Box::pin(async { AuthOutcome::denied(Response::new(500)) })
    })));
    assert_eq!(run(&a, req).status, 500);
}

#[test]
fn empty_reseller_prefix_defers_to_other_auth() {
    let (a, app) = auth_with(&[("reseller_prefix", "")], fake_app(404));
    let r = get(&a, "/v1/account", &[("X-Auth-Token", "t")]);
    assert_eq!((r.status, www(&r)), (401, Some("Swift realm=\"account\"")));
    assert_eq!(app.calls.get(), 1);
    let r = get(&a, "/v1/account", &[]);
    assert_eq!((r.status, www(&r)), (401, Some("Swift realm=\"account\"")));

    let mc = Rc::new(FakeMemcache::default());
    let mut req = request("GET", "/v1/account", &[], &mc);
    req.env.ext.insert(Authorize(Rc::new(|_| {
        Box::pin(async { AuthOutcome::allowed(false) })
    })));
    assert_eq!(run(&a, req).status, 404, "the other auth's hook was kept");
}

#[test]
fn an_invalid_token_of_ours_is_401_at_once() {
    let (a, app) = auth_with(&[], fake_app(404));
    let r = get(&a, "/v1/AUTH_cfa", &[("X-Auth-Token", "AUTH_t")]);
    assert_eq!((r.status, www(&r)), (401, Some("Swift realm=\"AUTH_cfa\"")));
    assert_eq!(app.calls.get(), 0);
    // The realm is the raw path segment, not quoted.
    let r = get(&a, "/v1/AUTH_a%20b/c", &[("X-Storage-Token", "AUTH_tkx")]);
    assert_eq!(www(&r), Some("Swift realm=\"AUTH_a b\""));
}

#[test]
fn valid_tokens_set_remote_user_and_authorize() {
    let (a, _) = auth_with(&[("user_acct_user", "testing")], fake_app(204));
    let mc = Rc::new(FakeMemcache::default());
    mc.put("AUTH_/token/AUTH_tk", json!([now() + 3600.0, "AUTH_acct"]));
    for path in ["/v1/AUTH_acct", "/v1/AUTH_acct/cont/obj/name/with/slash"] {
        let r = run(
            &a,
            request("GET", path, &[("X-Auth-Token", "AUTH_tk")], &mc),
        );
        assert_eq!(r.status, 204, "{path}");
        assert_eq!(r.headers.get("Seen-Remote-User"), Some("AUTH_acct"));
    }
    // Expired.
    mc.put("AUTH_/token/AUTH_tk", json!([now() - 1.0, "AUTH_acct"]));
    let r = run(
        &a,
        request("GET", "/v1/AUTH_acct", &[("X-Auth-Token", "AUTH_tk")], &mc),
    );
    assert_eq!(r.status, 401);
    // Not what Swift stores: a miss, not a crash.
    mc.put("AUTH_/token/AUTH_tk", json!({"x": 1}));
    let r = run(
        &a,
        request("GET", "/v1/AUTH_acct", &[("X-Auth-Token", "AUTH_tk")], &mc),
    );
    assert_eq!(r.status, 401);
}

#[test]
fn reseller_requests_are_detected() {
    let (a, _) = auth_with(&[], fake_app(204));
    let mc = Rc::new(FakeMemcache::default());
    mc.put(
        "AUTH_/token/AUTH_tk",
        json!([now() + 3600.0, ".reseller_admin"]),
    );
    let r = run(
        &a,
        request("GET", "/v1/AUTH_admin", &[("X-Auth-Token", "AUTH_tk")], &mc),
    );
    assert_eq!(r.headers.get("Seen-Reseller-Request"), Some("true"));
    assert_eq!(r.headers.get("Seen-Owner"), Some("true"));
}

#[test]
fn memcache_down_while_validating_is_a_401() {
    let (a, _) = auth_with(&[], fake_app(204));
    let mc = Rc::new(FakeMemcache::default());
    mc.put("AUTH_/token/AUTH_tk", json!([now() + 3600.0, "AUTH_acct"]));
    mc.fail_get.set(true);
    let headers = [("X-Auth-Token", "AUTH_tk"), ("X-Service-Token", "AUTH_tks")];
    let r = run(&a, request("GET", "/v1/AUTH_acct", &headers, &mc));
    assert_eq!(r.status, 401);
    let log = logged();
    assert_eq!(
        log.matches("Error looking up token in memcache: connection refused")
            .count(),
        1,
        "{log}"
    );
}

#[test]
fn no_memcache_is_a_503_not_a_hang() {
    let (a, app) = auth_with(&[("user_ac_user", "testing")], fake_app(204));
    let mut req = Request::new("GET", "/v1/AUTH_acct");
    req.headers.append("X-Auth-Token", "AUTH_tk");
    assert_eq!(run(&a, req).status, 503);
    let mut req = Request::new("GET", "/auth/v1.0");
    req.headers.append("X-Auth-User", "ac:user");
    req.headers.append("X-Auth-Key", "testing");
    assert_eq!(run(&a, req).status, 503);
    assert_eq!(app.calls.get(), 0);
    let log = logged();
    assert_eq!(log.matches("Memcache required").count(), 2, "{log}");
}

// ---------------------------------------------------------------------------
// Token service.

fn token_req<'a>(
    a: &TempAuth,
    path: &str,
    headers: &[(&'a str, &'a str)],
    mc: &Rc<FakeMemcache>,
) -> Response {
    run(a, request("GET", path, headers, mc))
}

#[test]
fn get_token_success_and_what_memcache_holds() {
    let a = auth(&[("user_ac_user", "testing")]);
    let mc = Rc::new(FakeMemcache::default());
    let before = now();
    let r = token_req(
        &a,
        "/auth/v1.0",
        &[("X-Auth-User", "ac:user"), ("X-Auth-Key", "testing")],
        &mc,
    );
    assert_eq!(r.status, 200);
    let token = r.headers.get("X-Auth-Token").unwrap().to_owned();
    assert_eq!(r.headers.get("X-Storage-Token"), Some(token.as_str()));
    assert!(token.starts_with("AUTH_tk") && token.len() == 39, "{token}");
    assert_eq!(
        r.headers.get("X-Storage-Url"),
        Some("http://localhost/v1/AUTH_ac")
    );
    let expires_in: i64 = r
        .headers
        .get("X-Auth-Token-Expires")
        .unwrap()
        .parse()
        .unwrap();
    assert!((86399..=86400).contains(&expires_in), "{expires_in}");
    assert_eq!(r.headers.get("Content-Type"), Some(swob::HTML));
    assert_eq!(body_of(&r), "");
    // Swift's layout: [expires, groups] under the token, the token under the user.
    let entry = mc.value(&format!("AUTH_/token/{token}")).unwrap();
    let expires = entry[0].as_f64().unwrap();
    assert!(expires >= before + 86400.0 && expires <= now() + 86400.0);
    assert_eq!(entry[1], json!("ac,ac:user"));
    assert_eq!(mc.value("AUTH_/user/ac:user"), Some(json!(token)));
    let ttl = mc.ttl("AUTH_/user/ac:user").unwrap().as_secs_f64();
    assert!((86399.0..=86400.0).contains(&ttl), "{ttl}");

    // The same user again: the same token.
    let r = token_req(
        &a,
        "/auth/v1.0",
        &[("X-Storage-User", "ac:user"), ("X-Storage-Pass", "testing")],
        &mc,
    );
    assert_eq!(r.headers.get("X-Auth-Token"), Some(token.as_str()));
    // And it works.
    let (b, _) = auth_with(&[("user_ac_user", "testing")], fake_app(204));
    // Known, but not an admin: 403, not 401.
    let r = run(
        &b,
        request("GET", "/v1/AUTH_ac", &[("X-Auth-Token", &token)], &mc),
    );
    assert_eq!(r.status, 403);
    let r = run(
        &b,
        request("GET", "/v1/AUTH_ac", &[("X-Auth-Token", "AUTH_tkx")], &mc),
    );
    assert_eq!(r.status, 401);
}

#[test]
fn get_token_other_auth_prefix_and_paths() {
    let a = auth(&[("user_ac_user", "testing"), ("auth_prefix", "/other/")]);
    let mc = Rc::new(FakeMemcache::default());
    let h = [("X-Auth-User", "ac:user"), ("X-Auth-Key", "testing")];
    let r = token_req(&a, "/other/v1.0", &h, &mc);
    assert_eq!(r.status, 200);
    assert!(
        r.headers
            .get("X-Storage-Url")
            .unwrap()
            .ends_with("/v1/AUTH_ac")
    );
    let a = auth(&[("user_ac_user", "testing")]);
    assert_eq!(token_req(&a, "/auth/auth", &h, &mc).status, 200);
    assert_eq!(token_req(&a, "/auth/v1/ac/auth", &h, &mc).status, 200);
    let r = token_req(
        &a,
        "/auth/v1/ac/auth",
        &[("X-Storage-User", "user"), ("X-Storage-Pass", "testing")],
        &mc,
    );
    assert_eq!(r.status, 200);
    assert_eq!(token_req(&a, "/auth/v2", &h, &mc).status, 400);
    assert_eq!(token_req(&a, "/auth/v1/ac", &h, &mc).status, 400);
    assert_eq!(token_req(&a, "/auth/", &h, &mc).status, 404);
    assert_eq!(token_req(&a, "/auth//v1.0", &h, &mc).status, 404);
}

#[test]
fn get_token_failures() {
    let a = auth(&[]);
    let mc = Rc::new(FakeMemcache::default());
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], u16, Option<&'a str>);
    let cases: &[Case<'_>] = &[
        ("/auth/v1.0", &[], 401, Some("unknown")),
        (
            "/auth/v1.0",
            &[("X-Auth-User", "act:usr"), ("X-Auth-Key", "key")],
            401,
            Some("act"),
        ),
        (
            "/auth/v1/act/auth",
            &[("X-Auth-User", "usr"), ("X-Auth-Key", "key")],
            401,
            Some("act"),
        ),
        (
            "/auth/v1/act/auth",
            &[("X-Auth-User", "act2:usr"), ("X-Auth-Key", "key")],
            401,
            Some("act"),
        ),
        (
            "/auth/v1/act/auth/invalid",
            &[("X-Auth-User", "act:usr"), ("X-Auth-Key", "key")],
            400,
            None,
        ),
        (
            "/auth/v1/act/auth",
            &[("X-Auth-User", "act:usr")],
            401,
            Some("act"),
        ),
        (
            "/auth/v1.0",
            &[("X-Auth-User", ":usr"), ("X-Auth-Key", "key")],
            401,
            Some("unknown"),
        ),
    ];
    for (path, headers, status, realm) in cases {
        let r = token_req(&a, path, headers, &mc);
        assert_eq!(r.status, *status, "{path} {headers:?}");
        let want = realm.map(|r| format!("Swift realm=\"{r}\""));
        assert_eq!(www(&r).map(str::to_owned), want, "{path} {headers:?}");
    }
    let a = auth(&[("user_ac_user", "testing")]);
    let r = token_req(
        &a,
        "/auth/v1.0",
        &[("X-Auth-User", "ac:user"), ("X-Auth-Key", "wrong")],
        &mc,
    );
    assert_eq!((r.status, www(&r)), (401, Some("Swift realm=\"ac\"")));
    for method in ["PUT", "HEAD", "POST", "DELETE"] {
        let r = run(
            &a,
            request(
                method,
                "/auth/v1.0",
                &[("X-Auth-User", "ac:user"), ("X-Auth-Key", "testing")],
                &mc,
            ),
        );
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.headers.get("Allow"), None);
    }
}

#[test]
fn memcache_errors_while_issuing() {
    let a = auth(&[("user_ac_user", "testing")]);
    let h = [("X-Auth-User", "ac:user"), ("X-Auth-Key", "testing")];
    let mc = Rc::new(FakeMemcache::default());
    mc.fail_set.set(true);
    assert_eq!(token_req(&a, "/auth/v1.0", &h, &mc).status, 503);
    // Lookups failing only means no token to reuse.
    let mc = Rc::new(FakeMemcache::default());
    mc.fail_get.set(true);
    assert_eq!(token_req(&a, "/auth/v1.0", &h, &mc).status, 200);
}

#[test]
fn storage_urls() {
    let mc = Rc::new(FakeMemcache::default());
    let h = [("X-Auth-User", "test:tester"), ("X-Auth-Key", "testing")];
    let a = auth(&[("user_test_tester", "testing")]);
    let mut req = request("GET", "/auth/v1.0", &h, &mc);
    req.headers.remove("host");
    req.local_addr = "10.1.2.3:1234".parse().unwrap();
    assert_eq!(
        run(&a, req).headers.get("X-Storage-Url"),
        Some("http://10.1.2.3:1234/v1/AUTH_test")
    );
    let mut req = request("GET", "/auth/v1.0", &h, &mc);
    req.headers.set("Host", "somehost:5678");
    assert_eq!(
        run(&a, req).headers.get("X-Storage-Url"),
        Some("http://somehost:5678/v1/AUTH_test")
    );
    let mut req = request("GET", "/auth/v1.0", &h, &mc);
    req.headers.set("Host", "somehost:443");
    req.scheme = "https";
    assert_eq!(
        run(&a, req).headers.get("X-Storage-Url"),
        Some("https://somehost/v1/AUTH_test")
    );
    let a = auth(&[
        ("user_test_tester", "testing"),
        ("storage_url_scheme", "fake"),
    ]);
    let mut req = request("GET", "/auth/v1.0", &h, &mc);
    req.headers.set("Host", "somehost:5678");
    assert_eq!(
        run(&a, req).headers.get("X-Storage-Url"),
        Some("fake://somehost:5678/v1/AUTH_test")
    );
    let a = auth(&[(
        "user_test_tester",
        "testing .admin http://$HOST/x/$HOST/v1/AUTH_monkey",
    )]);
    let r = run(&a, request("GET", "/auth/v1.0", &h, &mc));
    assert_eq!(
        r.headers.get("X-Storage-Url"),
        Some("http://http://localhost/x/http://localhost/v1/AUTH_monkey")
    );
}

#[test]
fn old_tokens_are_reused_only_while_valid_and_with_the_same_groups() {
    let a = auth(&[
        ("user_test_tester", "testing"),
        ("storage_url_scheme", "fake"),
    ]);
    let h = [("X-Auth-User", "test:tester"), ("X-Auth-Key", "testing")];
    let mc = Rc::new(FakeMemcache::default());
    mc.put("AUTH_/user/test:tester", json!("uuid_token"));
    mc.put(
        "AUTH_/token/uuid_token",
        json!([now() + 180.0, "test:tester,test"]),
    );
    let r = token_req(&a, "/auth/v1.0", &h, &mc);
    assert_eq!(r.headers.get("X-Auth-Token"), Some("uuid_token"));
    assert_eq!(r.headers.get("X-Storage-Token"), Some("uuid_token"));
    let left: i64 = r
        .headers
        .get("X-Auth-Token-Expires")
        .unwrap()
        .parse()
        .unwrap();
    assert!((179..=180).contains(&left), "{left}");

    mc.put("AUTH_/token/uuid_token", json!([0, "test,test:tester"]));
    let r = token_req(&a, "/auth/v1.0", &h, &mc);
    let t = r.headers.get("X-Auth-Token").unwrap();
    assert!(t != "uuid_token" && t.starts_with("AUTH_tk"));

    mc.put("AUTH_/user/test:tester", json!("uuid_token"));
    mc.put(
        "AUTH_/token/uuid_token",
        json!([now() + 99.0, "test,test:tester,.role"]),
    );
    let r = token_req(&a, "/auth/v1.0", &h, &mc);
    let t = r.headers.get("X-Auth-Token").unwrap();
    assert!(t != "uuid_token" && t.starts_with("AUTH_tk"));
    let left: i64 = r
        .headers
        .get("X-Auth-Token-Expires")
        .unwrap()
        .parse()
        .unwrap();
    assert!((86399..=86400).contains(&left), "{left}");
}

#[test]
fn unicode_users() {
    let (a, _) = auth_with(
        &[("user_t\u{e9}st_t\u{e9}ster", "p\u{e1}ss .admin")],
        fake_app(204),
    );
    let mc = Rc::new(FakeMemcache::default());
    let wsgi = |s: &str| swift_common::http::quote::str_to_wsgi(s);
    let (user, key) = (wsgi("t\u{e9}st:t\u{e9}ster"), wsgi("p\u{e1}ss"));
    let h = [("X-Auth-User", user.as_str()), ("X-Auth-Key", key.as_str())];
    let r = token_req(&a, "/auth/v1.0", &h, &mc);
    assert_eq!(r.status, 200);
    let token = r.headers.get("X-Auth-Token").unwrap().to_owned();
    assert_eq!(
        r.headers.get("X-Storage-Url"),
        Some("http://localhost/v1/AUTH_t%C3%A9st")
    );
    let r = token_req(&a, "/auth/v1.0", &h, &mc);
    assert_eq!(r.headers.get("X-Auth-Token"), Some(token.as_str()));
    assert_eq!(
        mc.value(&format!("AUTH_/token/{token}")).unwrap()[1],
        json!("t\u{e9}st,t\u{e9}st:t\u{e9}ster,AUTH_t\u{e9}st,AUTH_t%C3%A9st")
    );
    for path in ["/v1/AUTH_t%C3%A9st", "/v1/AUTH_t\u{c3}\u{a9}st"] {
        let r = run(&a, request("GET", path, &[("X-Auth-Token", &token)], &mc));
        assert_eq!(r.status, 204, "{path}");
        assert_eq!(r.headers.get("Seen-Owner"), Some("true"));
    }
}

#[test]
fn fernet_tokens_need_no_memcache_and_survive_rotation() {
    let k24 = "esipv1wC03xLGPb3cydid0uPINl6g8sydhlPh6iwJxk=";
    let k25 = "gRXHeKlt5h1nMDZL_QA7UfVIJ5z3ZP3v351cvmiRZD4=";
    let h = [("X-Auth-User", "ac:user"), ("X-Auth-Key", "testing")];
    let bare = |path: &str, headers: &[(&str, &str)]| {
        let mut req = Request::new("GET", path);
        for (k, v) in headers {
            req.headers.append(k.to_string(), v.to_string());
        }
        req
    };
    let (a, _) = auth_with(
        &[
            ("user_ac_user", "testing .admin"),
            ("fernet_key_2024", k24),
            ("active_fernet_key_id", "2024"),
        ],
        fake_app(200),
    );
    let r = run(&a, bare("/auth/v1.0", &h));
    assert_eq!(r.status, 200);
    let token = r.headers.get("X-Auth-Token").unwrap().to_owned();
    assert_eq!(&token[..8], "AUTH_ftk");
    let r = run(&a, bare("/v1/AUTH_ac", &[("X-Auth-Token", &token)]));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers.get("Seen-Remote-User"),
        Some("ac,ac:user,AUTH_ac")
    );

    let (b, _) = auth_with(
        &[
            ("user_ac_user", "testing .admin"),
            ("fernet_key_2024", k24),
            ("fernet_key_2025", k25),
            ("active_fernet_key_id", "2025"),
        ],
        fake_app(200),
    );
    assert_eq!(
        run(&b, bare("/v1/AUTH_ac", &[("X-Auth-Token", &token)])).status,
        200
    );
    let r = run(&b, bare("/auth/v1.0", &h));
    let new_token = r.headers.get("X-Auth-Token").unwrap().to_owned();
    assert_eq!(&new_token[..8], "AUTH_ftk");

    let (c, _) = auth_with(
        &[
            ("user_ac_user", "testing .admin"),
            ("fernet_key_2025", k25),
            ("active_fernet_key_id", "2025"),
        ],
        fake_app(200),
    );
    assert_eq!(
        run(&c, bare("/v1/AUTH_ac", &[("X-Auth-Token", &token)])).status,
        401
    );
    assert_eq!(
        run(&c, bare("/v1/AUTH_ac", &[("X-Auth-Token", &new_token)])).status,
        200
    );

    // Many similar groups compress: a zftk token.
    let groups: Vec<String> = (0..20).map(|i| format!("similar-group-name-{i}")).collect();
    let value = format!("testing .admin {}", groups.join(" "));
    let (d, _) = auth_with(
        &[
            ("user_ac_user", &value),
            ("fernet_key_2024", k24),
            ("active_fernet_key_id", "2024"),
        ],
        fake_app(200),
    );
    let r = run(&d, bare("/auth/v1.0", &h));
    let token = r.headers.get("X-Auth-Token").unwrap().to_owned();
    assert_eq!(&token[..9], "AUTH_zftk");
    assert_eq!(
        run(&d, bare("/v1/AUTH_ac", &[("X-Auth-Token", &token)])).status,
        200
    );
    // A memcache token without memcache is still Swift's "Memcache required".
    assert_eq!(
        run(&d, bare("/v1/AUTH_ac", &[("X-Auth-Token", "AUTH_tkx")])).status,
        503
    );
}

// ---------------------------------------------------------------------------
// authorize, called directly as Swift's tests do.

struct Case {
    method: &'static str,
    path: &'static str,
    remote_user: Option<&'static str>,
    acl: Option<&'static str>,
    referer: Option<&'static str>,
    /// `None`: allowed.
    want: Option<u16>,
    owner: bool,
}

const fn case(
    method: &'static str,
    path: &'static str,
    remote_user: Option<&'static str>,
    acl: Option<&'static str>,
    want: Option<u16>,
) -> Case {
    Case {
        method,
        path,
        remote_user,
        acl,
        referer: None,
        want,
        owner: false,
    }
}

fn check(a: &TempAuth, c: &Case, what: &str) {
    let mut env = swift_common::http::Env::default();
    let mc = Rc::new(FakeMemcache::default());
    env.ext.insert(SwiftCache(mc as Rc<dyn Memcache>));
    if let Some(u) = c.remote_user {
        env.ext.insert(RemoteUser(u.to_owned()));
    }
    let mut headers = swift_common::http::Headers::new();
    if let Some(r) = c.referer {
        headers.append("Referer", r);
    }
    let out = block_on(authorize::authorize(
        a.inner.clone(),
        AuthRequest {
            method: c.method.to_owned(),
            path_info: c.path.to_owned(),
            headers,
            acl: c.acl.map(str::to_owned),
            env,
        },
    ));
    let label = format!(
        "{what}: {} {} user={:?} acl={:?} referer={:?}",
        c.method, c.path, c.remote_user, c.acl, c.referer
    );
    assert_eq!(out.denied.as_ref().map(|r| r.status), c.want, "{label}");
    assert_eq!(out.swift_owner, c.owner, "{label}");
    if let Some(r) = &out.denied
        && r.status == 401
    {
        assert!(www(r).is_some(), "{label}");
    }
}

fn owner(mut c: Case) -> Case {
    c.owner = true;
    c
}

fn referer(mut c: Case, r: &'static str) -> Case {
    c.referer = Some(r);
    c
}

/// TestAuth's authorize cases; Swift runs them with one reseller prefix
/// and again with three.
#[test]
fn authorize_cases_from_swifts_tests() {
    let cfa = "/v1/AUTH_cfa";
    let cfa_c = "/v1/AUTH_cfa/c";
    let u = Some("act:usr,act");
    let cases = [
        // test_authorize_bad_path
        case("GET", "/badpath", None, None, Some(401)),
        case(
            "GET",
            "/badpath",
            Some("act:usr,act,AUTH_cfa"),
            None,
            Some(403),
        ),
        // test_authorize_account_access
        owner(case("GET", cfa, Some("act:usr,act,AUTH_cfa"), None, None)),
        case("GET", cfa, u, None, Some(403)),
        // test_authorize_acl_group_access
        case("GET", cfa, u, Some("act"), None),
        case("GET", cfa, u, Some("act:usr"), None),
        case("GET", cfa, u, Some("act2"), Some(403)),
        case("GET", cfa, u, Some("act:usr2"), Some(403)),
        // test_deny_cross_reseller
        case(
            "GET",
            "/v1/OTHER_cfa",
            Some("act:usr,act,AUTH_cfa"),
            Some("act"),
            Some(403),
        ),
        // test_authorize_acl_referer_after_user_groups
        case("GET", cfa_c, Some("act:usr"), Some(".r:*,act:usr"), None),
        // test_authorize_acl_referrer_access
        case("GET", cfa_c, u, None, Some(403)),
        case("GET", cfa_c, u, Some(".r:*,.rlistings"), None),
        case("GET", cfa_c, u, Some(".r:*"), Some(403)),
        case(
            "GET",
            cfa_c,
            u,
            Some(".r:.example.com,.rlistings"),
            Some(403),
        ),
        referer(
            case("GET", cfa_c, u, Some(".r:.example.com,.rlistings"), None),
            "http://www.example.com/index.html",
        ),
        case("GET", cfa_c, None, None, Some(401)),
        case("GET", cfa_c, None, Some(".r:*,.rlistings"), None),
        case("GET", cfa_c, None, Some(".r:*"), Some(401)),
        case(
            "GET",
            cfa_c,
            None,
            Some(".r:.example.com,.rlistings"),
            Some(401),
        ),
        referer(
            case("GET", cfa_c, None, Some(".r:.example.com,.rlistings"), None),
            "http://www.example.com/index.html",
        ),
        // Objects need no .rlistings.
        case("GET", "/v1/AUTH_cfa/c/o", None, Some(".r:*"), None),
        case(
            "GET",
            "/v1/AUTH_cfa/c/o",
            None,
            Some(".r:*,.r:-.evil.com"),
            None,
        ),
        referer(
            case(
                "GET",
                "/v1/AUTH_cfa/c/o",
                None,
                Some(".r:*,.r:-.evil.com"),
                Some(401),
            ),
            "http://www.evil.com/",
        ),
        // test_account_put_permissions / test_account_delete_permissions
        case("PUT", "/v1/AUTH_new", u, None, Some(403)),
        case(
            "PUT",
            "/v1/AUTH_new",
            Some("act:usr,act,AUTH_other"),
            None,
            Some(403),
        ),
        case(
            "PUT",
            "/v1/AUTH_old",
            Some("act:usr,act,AUTH_old"),
            None,
            Some(403),
        ),
        owner(case(
            "PUT",
            "/v1/AUTH_new",
            Some("act:usr,act,.reseller_admin"),
            None,
            None,
        )),
        case(
            "PUT",
            "/v1/AUTH_new",
            Some("act:usr,act,.reseller_reader"),
            None,
            Some(403),
        ),
        case(
            "PUT",
            "/v1/AUTH_new",
            Some("act:usr,act,.super_admin"),
            None,
            Some(403),
        ),
        case("DELETE", "/v1/AUTH_new", u, None, Some(403)),
        case(
            "DELETE",
            "/v1/AUTH_new",
            Some("act:usr,act,AUTH_other"),
            None,
            Some(403),
        ),
        case(
            "DELETE",
            "/v1/AUTH_old",
            Some("act:usr,act,AUTH_old"),
            None,
            Some(403),
        ),
        owner(case(
            "DELETE",
            "/v1/AUTH_new",
            Some("act:usr,act,.reseller_admin"),
            None,
            None,
        )),
        case(
            "DELETE",
            "/v1/AUTH_new",
            Some("act:usr,act,.reseller_reader"),
            None,
            Some(403),
        ),
        case(
            "DELETE",
            "/v1/AUTH_new",
            Some("act:usr,act,.super_admin"),
            None,
            Some(403),
        ),
        // test_reseller_admin_is_owner, test_admin_is_owner, test_regular_is_not_owner
        owner(case("GET", cfa, Some(".reseller_admin"), None, None)),
        case("GET", cfa, Some(".reseller_reader"), None, None),
        case(
            "HEAD",
            "/v1/AUTH_cfa/c/o",
            Some(".reseller_reader"),
            None,
            None,
        ),
        case("POST", cfa, Some(".reseller_reader"), None, Some(403)),
        owner(case("GET", cfa, Some("AUTH_cfa"), None, None)),
        case("GET", cfa_c, Some("act:usr"), None, Some(403)),
        // Reseller admins do not own the prefix itself or dot accounts.
        case("GET", "/v1/AUTH_", Some(".reseller_admin"), None, Some(403)),
        case(
            "GET",
            "/v1/AUTH_.expiring",
            Some(".reseller_admin"),
            None,
            Some(403),
        ),
        // test_options_call
        case("OPTIONS", "/v1/AUTH_cfa/c/o", None, None, None),
        // A path split_path refuses.
        case("GET", "/v1/AUTH_cfa//o", None, None, Some(404)),
    ];
    for pairs in [
        vec![],
        vec![("reseller_prefix", "AUTH_, SOMEOTHER_, YETANOTHER_")],
    ] {
        let a = auth(&pairs);
        for c in &cases {
            check(&a, c, &format!("{pairs:?}"));
        }
    }
}

/// ServiceTokenFunctionality: `<PREFIX>_require_group`.
#[test]
fn service_token_cases_from_swifts_tests() {
    let single: &[(&str, &str)] = &[("reseller_prefix", "AUTH")];
    let multi: &[(&str, &str)] = &[
        ("reseller_prefix", "AUTH, PRE2"),
        ("PRE2_require_group", ".service"),
    ];
    let ok = |c: Case| owner(c);
    let table: Vec<(&[(&str, &str)], Case)> = vec![
        (
            &[],
            ok(case(
                "GET",
                "/v1/AUTH_acct",
                Some("acct:joe,acct,AUTH_acct"),
                None,
                None,
            )),
        ),
        (
            single,
            ok(case(
                "PUT",
                "/v1/AUTH_acct/c",
                Some("acct:joe,acct,AUTH_acct"),
                None,
                None,
            )),
        ),
        (
            single,
            case(
                "GET",
                "/v1/AUTH_acct",
                Some("admin:mary,admin,AUTH_admin,.reseller_reader"),
                None,
                None,
            ),
        ),
        (
            single,
            case(
                "GET",
                "/v1/AUTH_acct/c",
                Some("admin:mary,admin,AUTH_admin,.reseller_reader"),
                None,
                None,
            ),
        ),
        (
            single,
            ok(case(
                "GET",
                "/v1/AUTH_acct",
                Some("admin:mary,admin,AUTH_admin,.reseller_admin"),
                None,
                None,
            )),
        ),
        (
            single,
            ok(case(
                "DELETE",
                "/v1/AUTH_acct",
                Some("admin:mary,admin,AUTH_admin,.reseller_admin"),
                None,
                None,
            )),
        ),
        (
            single,
            case(
                "GET",
                "/v1/AUTH_acct",
                Some("fredacc:fred,fredacct,AUTH_fredacc"),
                None,
                Some(403),
            ),
        ),
        (
            single,
            case(
                "PUT",
                "/v1/AUTH_acct",
                Some("acct:joe,acct"),
                None,
                Some(403),
            ),
        ),
        (
            single,
            case(
                "DELETE",
                "/v1/AUTH_acct",
                Some("acct:joe,acct,AUTH_acct"),
                None,
                Some(403),
            ),
        ),
        (
            single,
            case(
                "PUT",
                "/v1/AUTH_acct",
                Some("admin:mary,admin,.admin,.reseller_reader"),
                None,
                Some(403),
            ),
        ),
        (
            single,
            case(
                "DELETE",
                "/v1/AUTH_acct",
                Some("admin:mary,admin,.admin,.reseller_reader"),
                None,
                Some(403),
            ),
        ),
        (
            single,
            case(
                "PUT",
                "/v1/AUTH_acct/c",
                Some("admin:mary,admin,.admin,.reseller_reader"),
                None,
                Some(403),
            ),
        ),
        (
            single,
            case(
                "DELETE",
                "/v1/AUTH_acct/c",
                Some("admin:mary,admin,.admin,.reseller_reader"),
                None,
                Some(403),
            ),
        ),
        (
            &[("reseller_prefix", "AUTH, PRE2")],
            ok(case(
                "GET",
                "/v1/PRE2_acct",
                Some("acct:joe,acct,AUTH_acct,PRE2_acct"),
                None,
                None,
            )),
        ),
        (
            multi,
            case(
                "GET",
                "/v1/PRE2_acct",
                Some("acct:joe,acct,AUTH_acct,PRE2_acct"),
                None,
                Some(403),
            ),
        ),
        (
            multi,
            case(
                "GET",
                "/v1/PRE2_acct",
                Some("acct:joe,acct,AUTH_acct,PRE2_acct,AUTH_acct,PRE2_acct"),
                None,
                Some(403),
            ),
        ),
        (
            multi,
            ok(case(
                "GET",
                "/v1/PRE2_acct",
                Some(
                    "acct:joe,acct,AUTH_acct,PRE2_acct,admin:mary,admin,AUTH_admin,PRE2_admin,.service",
                ),
                None,
                None,
            )),
        ),
        (
            multi,
            case(
                "GET",
                "/v1/PRE2_acct",
                Some("admin:mary,admin,AUTH_admin,PRE2_admin,.service"),
                None,
                Some(403),
            ),
        ),
        (
            multi,
            case(
                "GET",
                "/v1/PRE2_acct",
                Some(
                    "admin:mary,admin,AUTH_admin,PRE2_admin,.service,admin:mary,admin,AUTH_admin,PRE2_admin,.service",
                ),
                None,
                Some(403),
            ),
        ),
        (
            multi,
            case(
                "DELETE",
                "/v1/PRE2_acct",
                Some(
                    "acct:joe,acct,AUTH_acct,PRE2_acct,admin:mary,admin,AUTH_admin,PRE2_admin,.service",
                ),
                None,
                Some(403),
            ),
        ),
        (
            multi,
            ok(case(
                "DELETE",
                "/v1/PRE2_acct",
                Some(
                    "acct:joe,acct,AUTH_acct,PRE2_acct,admin:mary,admin,AUTH_admin,PRE2_admin,.reseller_admin",
                ),
                None,
                None,
            )),
        ),
    ];
    for (pairs, c) in &table {
        check(&auth(pairs), c, &format!("{pairs:?}"));
    }
}

/// TestTokenHandling: X-Service-Token adds its groups.
#[test]
fn service_tokens_add_groups() {
    let setup = |pairs: &[(&str, &str)], path: &str, headers: &[(&str, &str)]| {
        let mut pairs = pairs.to_vec();
        pairs.push(("user_acct_joe", "k .admin"));
        pairs.push(("user_admin_glance", "k .service"));
        let (a, _) = auth_with(&pairs, fake_app(200));
        let mc = Rc::new(FakeMemcache::default());
        let joe = a.inner.user_groups("acct", "acct:joe", "AUTH_acct");
        let glance = a.inner.user_groups("admin", "admin:glance", "AUTH_admin");
        mc.put("AUTH_/token/AUTH_tk", json!([now() + 3600.0, joe]));
        mc.put("AUTH_/token/AUTH_tks", json!([now() + 3600.0, glance]));
        run(&a, request("GET", path, headers, &mc))
    };
    let r = setup(&[], "/v1/AUTH_acct", &[("x-auth-token", "AUTH_tk")]);
    assert_eq!(
        (r.status, r.headers.get("Seen-Remote-User")),
        (200, Some("acct,acct:joe,AUTH_acct"))
    );
    let both = [("x-auth-token", "AUTH_tk"), ("x-service-token", "AUTH_tks")];
    let r = setup(&[], "/v1/AUTH_acct", &both);
    assert_eq!(
        r.headers.get("Seen-Remote-User"),
        Some("acct,acct:joe,AUTH_acct,admin,admin:glance,.service")
    );
    let r = setup(
        &[],
        "/v1/AUTH_acct",
        &[("x-auth-token", "AUTH_tk"), ("x-service-token", "AUTH_tk")],
    );
    assert_eq!(
        r.headers.get("Seen-Remote-User"),
        Some("acct,acct:joe,AUTH_acct,acct,acct:joe,AUTH_acct")
    );
    let multi = [
        ("reseller_prefix", "AUTH, PRE2"),
        ("PRE2_require_group", ".service"),
    ];
    assert_eq!(setup(&multi, "/v1/PRE2_acct", &both).status, 200);
    assert_eq!(
        setup(&multi, "/v1/PRE2_acct", &[("x-auth-token", "AUTH_tk")]).status,
        403
    );
    assert_eq!(
        setup(&multi, "/v1/PRE2_acct", &[("x-auth-token", "AUTH_junk")]).status,
        401
    );
    assert_eq!(
        setup(
            &multi,
            "/v1/PRE2_acct",
            &[
                ("x-auth-token", "AUTH_tk"),
                ("x-service-token", "AUTH_junk")
            ]
        )
        .status,
        403
    );
    assert_eq!(
        setup(
            &multi,
            "/v1/PRE2_acct",
            &[
                ("x-auth-token", "AUTH_junk"),
                ("x-service-token", "AUTH_tks")
            ]
        )
        .status,
        401
    );
}

#[test]
fn user_groups_as_swift_makes_them() {
    let a = auth(&[(
        "user_test_tester",
        "testing .admin http://saio:8080/v1/AUTH_monkey",
    )]);
    assert_eq!(
        a.inner.user_groups("test", "test:tester", "AUTH_monkey"),
        "test,test:tester,AUTH_test,AUTH_monkey"
    );
    let a = auth(&[
        ("reseller_prefix", "AUTH_, SOMEOTHER_, YETANOTHER_"),
        ("user_test_tester", "k .admin"),
        ("user_test_plain", "k"),
    ]);
    assert_eq!(
        a.inner.user_groups("test", "test:tester", "AUTH_test"),
        "test,test:tester,AUTH_test,SOMEOTHER_test,YETANOTHER_test"
    );
    assert_eq!(
        a.inner.user_groups("test", "test:plain", "AUTH_test"),
        "test,test:plain"
    );
    let a = auth(&[("reseller_prefix", ""), ("user_test_tester", "k .admin")]);
    assert_eq!(
        a.inner.user_groups("test", "test:tester", "test"),
        "test,test:tester"
    );
}

#[test]
fn definitive_auth_and_account_prefixes() {
    let a = auth(&[("reseller_prefix", "")]);
    for p in ["/v1/test", "/v1/AUTH_test", "/v1/BLAH_test"] {
        assert!(!a.inner.is_definitive_auth(p), "{p}");
    }
    assert_eq!(a.inner.account_prefix("JUNK_1234"), Some(""));
    let a = auth(&[("reseller_prefix", " '', SOMEOTHER")]);
    assert!(!a.inner.is_definitive_auth("/v1/test"));
    assert!(a.inner.is_definitive_auth("/v1/SOMEOTHER_test"));
    assert!(!a.inner.is_definitive_auth("/v1/SOMEOTHERtest"));
    let a = auth(&[("reseller_prefix", "AUTH, SOMEOTHER")]);
    assert!(a.inner.is_definitive_auth("/v1/AUTH_test"));
    assert!(a.inner.is_definitive_auth("/v1/SOMEOTHER_test"));
    assert!(!a.inner.is_definitive_auth("/v1/BLAH_test"));
    assert_eq!(a.inner.account_prefix("AUTH_1234"), Some("AUTH_"));
    assert_eq!(a.inner.account_prefix("JUNK_1234"), None);
}

#[test]
fn split_path_as_swift() {
    let s = |p: &'static str, min, max, rest| split_path(p, min, max, rest);
    let v = |x: &[Option<&'static str>]| x.to_vec();
    assert_eq!(s("/a", 1, 1, false), Some(v(&[Some("a")])));
    assert_eq!(s("/a", 1, 2, false), Some(v(&[Some("a"), None])));
    assert_eq!(s("/a/c", 1, 2, false), Some(v(&[Some("a"), Some("c")])));
    assert_eq!(
        s("/a/c/o/r", 1, 3, true),
        Some(v(&[Some("a"), Some("c"), Some("o/r")]))
    );
    assert_eq!(
        s("/a/c/", 2, 3, false),
        Some(v(&[Some("a"), Some("c"), Some("")]))
    );
    assert_eq!(
        s("/a/c/o/", 2, 3, false),
        Some(v(&[Some("a"), Some("c"), Some("o")]))
    );
    assert_eq!(
        s("/a/c/", 2, 3, true),
        Some(v(&[Some("a"), Some("c"), Some("")]))
    );
    assert!(s("a/c", 1, 2, false).is_none());
    assert!(s("//c", 1, 2, false).is_none());
    assert!(s("/a/c/o", 1, 2, false).is_none());
    assert!(s("/v1//auth", 1, 3, true).is_none());
    assert!(s("/", 1, 4, true).is_none());
    assert!(s("/v1/", 2, 3, true).is_none());
}

// ---------------------------------------------------------------------------
// Account ACLs (TestAccountAcls, and again with a second prefix).

fn acl_request(
    path: &str,
    headers: &[(&str, &str)],
    user_groups: &str,
    acls: Option<Value>,
    method: &str,
) -> Request {
    let mc = Rc::new(FakeMemcache::default());
    mc.put("AUTH_/token/AUTH_tk", json!([now() + 3600.0, user_groups]));
    let acct = path.split('/').nth(2).unwrap();
    let acls = acls.unwrap_or_else(|| {
        json!({"core-access-control": crate::acl::format_acl_v2(
            json!({"admin": ["AUTH_admin"], "read-write": ["AUTH_rw"], "read-only": ["AUTH_ro"]})
                .as_object().unwrap())})
    });
    mc.put(&format!("account/{acct}"), json!({"sysmeta": acls}));
    let headers: Vec<(&str, &str)> = if headers.is_empty() {
        vec![("X-Auth-Token", "AUTH_tk")]
    } else {
        headers.to_vec()
    };
    request(method, path, &headers, &mc)
}

#[test]
fn account_acls_grant_by_level() {
    for (pre, pairs) in [
        ("AUTH", vec![]),
        ("SOMEOTHER", vec![("reseller_prefix", "AUTH_, SOMEOTHER_")]),
    ] {
        let (a, _) = auth_with(&pairs, fake_app(204));
        let go = |path: &str, groups: &str, acls: Option<Value>, method: &str| {
            run(&a, acl_request(path, &[], groups, acls, method))
        };
        let acct = format!("/v1/{pre}_otheracct");
        let targets = [acct.clone(), format!("{acct}/c"), format!("{acct}/c/o")];
        let all = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "DELETE"];
        assert_eq!(go(&acct, "AUTH_admin", None, "GET").status, 204);
        assert_eq!(go(&acct, "AUTH_bob", None, "GET").status, 403);
        assert_eq!(go(&acct, "AUTH_admin", Some(json!({})), "GET").status, 403);
        for t in &targets {
            for m in all {
                let r = go(t, "AUTH_admin", None, m);
                assert_eq!(r.status, 204, "admin {m} {t}");
                assert_eq!(
                    r.headers.get("Seen-Owner").is_some(),
                    m != "OPTIONS",
                    "admin {m} {t}"
                );
                let r = go(t, "AUTH_acct,AUTH_ro,AUTH_something,AUTH_admin", None, m);
                assert_eq!(r.status, 204, "best {m} {t}");
                let r = go(t, "AUTH_rw", None, m);
                let rw_ok = *t != acct || matches!(m, "GET" | "HEAD" | "OPTIONS");
                assert_eq!(r.status, if rw_ok { 204 } else { 403 }, "rw {m} {t}");
                assert!(r.headers.get("Seen-Owner").is_none());
                let r = go(t, "AUTH_ro", None, m);
                let ro_ok = matches!(m, "GET" | "HEAD" | "OPTIONS");
                assert_eq!(r.status, if ro_ok { 204 } else { 403 }, "ro {m} {t}");
                assert!(r.headers.get("Seen-Owner").is_none());
            }
        }
    }
}

#[test]
fn account_acl_syntax_is_checked_and_moved_to_sysmeta() {
    let (a, _) = auth_with(&[("user_admin_user", "testing .admin")], fake_app(204));
    let groups = a.inner.user_groups("admin", "admin:user", "AUTH_admin");
    let target = "/v1/AUTH_firstacct";
    let with = |acl: &str, groups: &str| {
        run(
            &a,
            acl_request(
                target,
                &[
                    ("X-Auth-Token", "AUTH_tk"),
                    ("X-Account-Access-Control", acl),
                ],
                groups,
                None,
                "POST",
            ),
        )
    };
    // AUTH_admin is an admin of this account by its ACL.
    let r = run(&a, acl_request(target, &[], &groups, None, "GET"));
    assert_eq!(r.status, 204);
    assert_eq!(r.headers.get("Seen-Owner"), Some("true"));
    let r = run(&a, acl_request(target, &[], "AUTH_firstacct", None, "GET"));
    assert_eq!(r.status, 204);
    assert_eq!(
        r.headers.get("Seen-x-account-sysmeta-core-access-control"),
        None
    );

    let good = r#"{"read-only": ["\u00e1", "b"]}"#;
    for acl in [good, "{}", "", "{ }"] {
        let r = with(acl, "AUTH_firstacct");
        assert_eq!(r.status, 204, "{acl}");
        assert_eq!(
            r.headers.get("Seen-x-account-sysmeta-core-access-control"),
            Some(acl)
        );
        assert_eq!(r.headers.get("Seen-x-account-access-control"), None);
    }
    let bad: &[(&str, &str)] = &[
        (
            "syntactically invalid acl -- this does not parse as JSON",
            "Syntax error in input ('syntactically invalid acl -- this does not parse as JSON')",
        ),
        (
            r#"{"other-auth-system":["valid","json","but","wrong"]}"#,
            "Key \"other-auth-system\" not recognized",
        ),
        (
            "{\"\u{e1}\u{88}\u{b4}\": []}",
            "Key \"\\u1234\" not recognized",
        ),
        (
            r#"{"read-write":["fine"],"admin":"should be a list"}"#,
            "Value for key \"admin\" must be a list",
        ),
        (
            r#"{"read-only": ["a", 99]}"#,
            "Elements of \"read-only\" list must be strings",
        ),
        (
            r#"["read-only"]"#,
            "Syntax error in input ('[\"read-only\"]')",
        ),
        ("1", "Syntax error in input ('1')"),
        (
            r#"{"admin":["valid"],"read-write":"not a list, should fail"}"#,
            "Value for key \"read-write\" must be a list",
        ),
    ];
    for (acl, error) in bad {
        // Even the account's own admin gets a 400 for a bad ACL.
        let r = with(acl, "AUTH_firstacct");
        assert_eq!(r.status, 400, "{acl}");
        assert_eq!(
            body_of(&r),
            format!("X-Account-Access-Control invalid: {error}\n\nInput: {acl}\n")
        );
        assert_eq!(
            r.headers.get("Content-Type"),
            Some("text/plain; charset=UTF-8")
        );
    }
}

#[test]
fn container_sync_keys() {
    let go = |sync_key: Option<&str>, headers: &[(&str, &str)]| {
        let mut app = fake_app(204);
        app.sync_key = sync_key.map(str::to_owned);
        let (a, _) = auth_with(&[], app);
        let mc = Rc::new(FakeMemcache::default());
        run(&a, request("DELETE", "/v1/AUTH_cfa/c/o", headers, &mc))
    };
    let good = [
        ("x-container-sync-key", "secret"),
        ("x-timestamp", "123.456"),
    ];
    assert_eq!(go(Some("secret"), &good).status, 204);
    let wrong = [
        ("x-container-sync-key", "wrongsecret"),
        ("x-timestamp", "123.456"),
    ];
    let r = go(Some("secret"), &wrong);
    assert_eq!((r.status, www(&r)), (401, Some("Swift realm=\"AUTH_cfa\"")));
    assert_eq!(go(Some("othersecret"), &good).status, 401);
    assert_eq!(go(None, &good).status, 401);
    assert_eq!(go(Some("secret"), &good[..1]).status, 401);
}
