//! Our tempauth against Python Swift's, case by case: each case (a filter
//! conf, memcache contents, requests in order) runs through Python's
//! `tempauth.filter_factory` (tests/data/tempauth_reference.py, with the
//! Python of `$SWIFT_VENV`, default `<workspace>/target/swift-venv`, which
//! `./test.sh` makes) and through ours, each with a fake memcache and a
//! fake app that asks `swift.authorize` as the proxy does. Status, the
//! auth headers, body, what the app saw, and the token entries left in
//! memcache must be equal (random tokens compared by where they recur).
//!
//! Then tokens cross over: one a Python tempauth issued, with the memcache
//! entries it wrote (as JSON, as memcached holds them), is checked by ours,
//! and one we issued by Python's, for memcache and Fernet tokens alike.

#![allow(clippy::unwrap_used)]

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use swift_common::config::Conf;
use swift_common::http::{BoxFuture, Reply, Request, Response, ResponseBody, Service};
use swift_common::logging::{Level, LogConfig, Logger, Target};
use swift_proxy_server::context::{
    AuthOutcome, AuthRequest, Authorize, AuthorizeOverride, CacheError, Memcache, RemoteUser,
    ResellerRequest, SwiftCache, SwiftOwner, SwiftSyncKey, is_swift_owner,
};
use swift_proxy_server::middleware::tempauth::TempAuth;
use swift_proxy_server::swob;

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

// ---------------------------------------------------------------------------
// Our side.

#[derive(Default)]
struct FakeMemcache {
    store: RefCell<BTreeMap<String, Value>>,
    ttls: RefCell<HashMap<String, Duration>>,
    fail_get: Cell<bool>,
    fail_set: Cell<bool>,
}

impl Memcache for FakeMemcache {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Value>, CacheError>> {
        let r = if self.fail_get.get() {
            Err(CacheError("down".into()))
        } else {
            Ok(self.store.borrow().get(key).cloned())
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
            Err(CacheError("down".into()))
        } else {
            // What memcached holds is the JSON text.
            let text = serde_json::to_string(value).unwrap();
            self.store
                .borrow_mut()
                .insert(key.to_owned(), serde_json::from_str(&text).unwrap());
            self.ttls.borrow_mut().insert(key.to_owned(), ttl);
            Ok(())
        };
        Box::pin(async move { r })
    }
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), CacheError>> {
        self.store.borrow_mut().remove(key);
        Box::pin(async { Ok(()) })
    }
}

#[derive(Default)]
struct FakeApp {
    acl: RefCell<Option<String>>,
    sync_key: RefCell<Option<String>>,
    seen: RefCell<Option<Value>>,
}

impl Service for FakeApp {
    fn call(&self, mut req: Request) -> Reply<'_> {
        if req.env.source.as_deref() == Some("TA") {
            return Reply::Ready(swob::status(404));
        }
        Reply::pending(async move {
            *self.seen.borrow_mut() = Some(json!({}));
            if let Some(k) = self.sync_key.borrow().clone() {
                req.env.ext.insert(SwiftSyncKey(k));
            }
            if let Some(auth) = req.env.ext.get::<Authorize>().cloned() {
                let acl = self.acl.borrow().clone();
                let outcome = (auth.0)(AuthRequest {
                    method: req.method.to_string(),
                    path_info: req.path_info().into_owned(),
                    headers: req.headers.clone(),
                    acl,
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
            *self.seen.borrow_mut() = Some(json!({
                "remote_user": req.env.ext.get::<RemoteUser>().map(|u| u.0.clone()),
                "owner": is_swift_owner(&req.env),
                "reseller_request": req.env.ext.get::<ResellerRequest>().is_some(),
                "acl_header": req.headers.get("x-account-access-control"),
                "sysmeta": req.headers.get("x-account-sysmeta-core-access-control"),
            }));
            swob::status(204)
        })
    }
}

const HEADERS: [&str; 8] = [
    "www-authenticate",
    "content-type",
    "content-length",
    "x-storage-url",
    "x-auth-token",
    "x-storage-token",
    "x-auth-token-expires",
    "allow",
];

fn logger() -> Logger {
    let cfg = LogConfig {
        name: "proxy-server".into(),
        level: Level::Error,
        facility: 16,
        max_line_length: 0,
        target: Target::File(
            std::env::temp_dir().join(format!("tempauth-diff-{}.log", std::process::id())),
        ),
    };
    Logger::open(&cfg, None).unwrap()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&rt, f)
}

fn run_ours(case: &Value) -> Value {
    let pairs: Vec<(&str, &str)> = case["conf"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
        .collect();
    let conf = Conf::from_pairs("proxy-server.conf", "filter:tempauth", &pairs);
    let app = Rc::new(FakeApp::default());
    let next: Rc<dyn Service> = app.clone();
    let auth = TempAuth::new(&conf, logger(), next).unwrap();
    let mc = Rc::new(FakeMemcache::default());
    if let Some(c) = case.get("cache").and_then(Value::as_object) {
        for (k, v) in c {
            mc.store.borrow_mut().insert(k.clone(), v.clone());
        }
    }
    let mut results = Vec::new();
    for r in case["requests"].as_array().unwrap() {
        let mut req = Request::new(r["method"].as_str().unwrap(), r["path"].as_str().unwrap());
        req.headers.append("Host", "localhost:80");
        for h in r
            .get("headers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            req.headers.set(
                h[0].as_str().unwrap().to_owned(),
                h[1].as_str().unwrap().to_owned(),
            );
        }
        let flag = |k: &str| r.get(k).and_then(Value::as_bool).unwrap_or(false);
        if !flag("no_cache") {
            req.env
                .ext
                .insert(SwiftCache(mc.clone() as Rc<dyn Memcache>));
        }
        if let Some(u) = r.get("remote_user").and_then(Value::as_str) {
            req.env.ext.insert(RemoteUser(u.to_owned()));
        }
        if flag("override") {
            req.env.ext.insert(AuthorizeOverride);
        }
        if flag("other_auth") {
            req.env.ext.insert(Authorize(Rc::new(|_| {
                Box::pin(async {
                    AuthOutcome::denied(swob::with_body(409, swob::HTML, "other auth"))
                })
            })));
        }
        mc.fail_get.set(flag("fail_get"));
        mc.fail_set.set(flag("fail_set"));
        *app.acl.borrow_mut() = r.get("acl").and_then(Value::as_str).map(str::to_owned);
        *app.sync_key.borrow_mut() = r.get("sync_key").and_then(Value::as_str).map(str::to_owned);
        *app.seen.borrow_mut() = None;
        let resp: Response = block_on(auth.call(req).resolve());
        let mut headers = Map::new();
        for h in HEADERS {
            if let Some(v) = resp.headers.get(h) {
                headers.insert(h.to_owned(), json!(v));
            }
        }
        // The server sends no body for HEAD. swob also leaves its default
        // error body (and so its length) out of HEAD responses; that is
        // the server's business, not tempauth's: compare without it.
        let is_head = r["method"] == "HEAD";
        if is_head && resp.status >= 400 {
            headers.insert("content-length".into(), json!("0"));
        }
        let body = match &resp.body {
            _ if is_head => String::new(),
            ResponseBody::Full(b) => String::from_utf8_lossy(b).into_owned(),
            _ => String::new(),
        };
        results.push(json!({
            "status": resp.status,
            "headers": headers,
            "body": body,
            "app": app.seen.borrow().clone(),
        }));
    }
    let now = now();
    let mut cache = Map::new();
    for (k, v) in mc.store.borrow().iter() {
        if k.contains("/token/") || k.contains("/user/") {
            let v = match v.as_array().map(Vec::as_slice) {
                Some([e, g]) => json!([(e.as_f64().unwrap() - now).round() as i64, g]),
                _ => v.clone(),
            };
            let ttl = mc
                .ttls
                .borrow()
                .get(k)
                .map(|t| t.as_secs_f64().round() as i64);
            cache.insert(k.clone(), json!([v, ttl]));
        }
    }
    let raw: Map<String, Value> = mc.store.borrow().clone().into_iter().collect();
    json!({"requests": results, "cache": cache, "raw_cache": raw})
}

// ---------------------------------------------------------------------------
// Python's side.

fn python() -> PathBuf {
    let venv = std::env::var_os("SWIFT_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/swift-venv"));
    let py = venv.join("bin/python");
    assert!(
        py.exists(),
        "{} is missing: run ./test.sh once (it makes the venv), or point SWIFT_VENV at one",
        py.display()
    );
    py
}

fn run_python(cases: &[Value]) -> Vec<Value> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/tempauth_reference.py");
    let mut child = Command::new(python())
        .arg(script)
        .env("PYTHONWARNINGS", "ignore")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = serde_json::to_vec(cases).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            // Ours to end: the child we started.
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("the reference script did not finish in 120 s");
        }
    };
    assert!(
        out.status.success(),
        "reference script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

// ---------------------------------------------------------------------------
// Comparing.

/// Whether `s` is a token either side made at random.
fn is_token(s: &str) -> bool {
    let rest = ["AUTH_", "SERVICE_", ""]
        .iter()
        .find_map(|p| s.strip_prefix(p))
        .unwrap_or(s);
    let hex = |t: &str| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit());
    rest.strip_prefix("tk").is_some_and(hex)
        || rest
            .strip_prefix("ftk")
            .is_some_and(|t| t.starts_with("gAAAAA"))
        || rest
            .strip_prefix("zftk")
            .is_some_and(|t| t.starts_with("gAAAAA"))
}

/// Replace each random token (and each key naming one) by `<kind N>`,
/// numbered by first appearance, so two runs compare by where tokens
/// recur.
fn normalize(v: &Value, seen: &mut Vec<String>) -> Value {
    let name = |t: &str, seen: &mut Vec<String>| -> String {
        let i = match seen.iter().position(|s| s == t) {
            Some(i) => i,
            None => {
                seen.push(t.to_owned());
                seen.len() - 1
            }
        };
        let kind = if t.contains("zftk") {
            "zftk"
        } else if t.contains("ftk") {
            "ftk"
        } else {
            "tk"
        };
        format!("<{kind} {i}>")
    };
    let text = |s: &str, seen: &mut Vec<String>| -> String {
        if is_token(s) {
            return name(s, seen);
        }
        match s.rsplit_once('/') {
            Some((head, t)) if is_token(t) => format!("{head}/{}", name(t, seen)),
            _ => s.to_owned(),
        }
    };
    match v {
        Value::String(s) => Value::String(text(s, seen)),
        Value::Array(a) => Value::Array(a.iter().map(|x| normalize(x, seen)).collect()),
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m
                .iter()
                .map(|(k, x)| (text(k, seen), normalize(x, seen)))
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().collect())
        }
        other => other.clone(),
    }
}

/// The cache dump without the times of entries the case put there (each
/// side ran at its own moment); entries a side wrote keep theirs.
fn settled(cache: &Value) -> Value {
    let mut out = cache.clone();
    for (_, entry) in out.as_object_mut().into_iter().flatten() {
        if entry[1].is_null() && entry[0].is_array() {
            entry[0][0] = json!("preloaded");
        }
    }
    out
}

fn compare(cases: &[Value], theirs: &[Value]) {
    let mut diffs = Vec::new();
    for (i, (case, py)) in cases.iter().zip(theirs).enumerate() {
        let ours = run_ours(case);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        // Tokens are numbered over requests first, then the cache.
        let py_req = normalize(&py["requests"], &mut a);
        let our_req = normalize(&ours["requests"], &mut b);
        let py_cache = normalize(&settled(&py["cache"]), &mut a);
        let our_cache = normalize(&settled(&ours["cache"]), &mut b);
        let reqs = case["requests"].as_array().unwrap();
        for (j, r) in reqs.iter().enumerate() {
            if py_req[j] != our_req[j] {
                diffs.push(format!(
                    "case {i} ({}) request {j} {r}:\n  python: {}\n  ours:   {}",
                    case["name"], py_req[j], our_req[j]
                ));
            }
        }
        if py_cache != our_cache {
            diffs.push(format!(
                "case {i} ({}) memcache:\n  python: {py_cache}\n  ours:   {our_cache}",
                case["name"]
            ));
        }
    }
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

// ---------------------------------------------------------------------------
// The cases.

fn get(path: &str, headers: &[(&str, &str)]) -> Value {
    req("GET", path, headers)
}

fn req(method: &str, path: &str, headers: &[(&str, &str)]) -> Value {
    json!({"method": method, "path": path, "headers": headers})
}

fn with(mut r: Value, k: &str, v: Value) -> Value {
    r[k] = v;
    r
}

/// `X-Auth-User`/`X-Auth-Key`.
fn creds(user: &str, key: &str) -> Vec<(String, String)> {
    vec![
        ("X-Auth-User".into(), user.into()),
        ("X-Auth-Key".into(), key.into()),
    ]
}

fn get_token(user: &str, key: &str) -> Value {
    json!({"method": "GET", "path": "/auth/v1.0", "headers": creds(user, key)})
}

fn token_cache(token: &str, groups: &str) -> (String, Value) {
    (
        format!("AUTH_/token/{token}"),
        json!([now() + 3600.0, groups]),
    )
}

fn users() -> Value {
    json!({
        "user_admin_admin": "admin .admin .reseller_admin",
        "user_admin_reader": "reader .reseller_reader",
        "user_test_tester": "testing .admin",
        "user_test2_tester2": "testing2 .admin",
        "user_test_tester3": "testing3",
        "user64_dW5kZXJfc2NvcmU_YV9i": "testing4",
        "user_t\u{e9}st_t\u{e9}ster": "p\u{e1}ss .admin",
        "user_custom_url": "k http://example.com:8080/v1/AUTH_elsewhere",
        "user_host_url": "k .admin $HOST/v2/X",
    })
}

fn cases() -> Vec<Value> {
    let wsgi = |s: &str| swift_common::http::quote::str_to_wsgi(s);
    let tester = "test,test:tester,AUTH_test";
    let tester3 = "test,test:tester3";
    let mut out = Vec::new();

    // Tokens: issue, reuse, every path and header form, failures.
    let uni_user = wsgi("t\u{e9}st:t\u{e9}ster");
    let uni_key = wsgi("p\u{e1}ss");
    out.push(json!({
        "name": "token service",
        "conf": users(),
        "requests": [
            get_token("test:tester", "testing"),
            get_token("test:tester", "testing"),
            get("/auth/v1.0", &[("X-Storage-User", "test:tester"), ("X-Storage-Pass", "testing")]),
            get("/auth/auth", &[("X-Auth-User", "test:tester"), ("X-Storage-Pass", "testing")]),
            get("/auth/v1/test/auth", &[("X-Storage-User", "tester"), ("X-Storage-Pass", "testing")]),
            get("/auth/v1/test/auth", &[("X-Auth-User", "test:tester"), ("X-Auth-Key", "testing")]),
            get("/auth/v1/test/auth", &[("X-Auth-User", "other:tester"), ("X-Auth-Key", "testing")]),
            get("/auth/v1/test/auth", &[("X-Auth-User", "tester"), ("X-Auth-Key", "testing")]),
            get("/auth/v1/test/auth", &[("X-Auth-User", "test:tester")]),
            get("/auth/v1/test/auth/x", &[]),
            get("/auth/v1/test", &[]),
            get("/auth/v1//auth", &[]),
            get("/auth/v2", &[]),
            get("/auth/", &[]),
            get("/auth/v1.0", &[]),
            get("/auth/v1.0", &[("X-Auth-User", "test"), ("X-Auth-Key", "x")]),
            get("/auth/v1.0", &[("X-Auth-User", ":tester"), ("X-Auth-Key", "x")]),
            get("/auth/v1.0", &[("X-Auth-User", "test:"), ("X-Auth-Key", "x")]),
            get_token("test:tester", "wrong"),
            get_token("nobody:here", "x"),
            get_token("test:tester3", "testing3"),
            get_token("test2:tester2", "testing2"),
            get_token("under_score:a_b", "testing4"),
            get_token("custom:url", "k"),
            get_token("host:url", "k"),
            get_token(&uni_user, &uni_key),
            get_token(&uni_user, &uni_key),
            req("HEAD", "/auth/v1.0", &[]),
            req("PUT", "/auth/v1.0", &[("X-Auth-User", "test:tester"), ("X-Auth-Key", "testing")]),
            req("POST", "/auth/v1.0", &[]),
            req("DELETE", "/auth/v1.0", &[]),
            with(get_token("test:tester", "testing"), "fail_get", json!(true)),
            with(get_token("test2:tester2", "testing2"), "fail_set", json!(true)),
        ],
    }));

    // Requests with tokens: owners, resellers, other accounts, bad tokens.
    let mut cache = Map::new();
    for (t, g) in [
        ("AUTH_tk0", tester),
        ("AUTH_tk3", tester3),
        (
            "AUTH_tkadmin",
            "admin,admin:admin,AUTH_admin,.reseller_admin",
        ),
        ("AUTH_tkreader", "admin,admin:reader,.reseller_reader"),
        (
            "AUTH_tkuni",
            "t\u{e9}st,t\u{e9}st:t\u{e9}ster,AUTH_t\u{e9}st,AUTH_t%C3%A9st",
        ),
    ] {
        let (k, v) = token_cache(t, g);
        cache.insert(k, v);
    }
    cache.insert(
        "AUTH_/token/AUTH_tkold".into(),
        json!([now() - 10.0, tester]),
    );
    out.push(json!({
        "name": "using tokens",
        "conf": users(),
        "cache": cache,
        "requests": [
            get("/v1/AUTH_test", &[("X-Auth-Token", "AUTH_tk0")]),
            get("/v1/AUTH_test/c/o/with/slash", &[("X-Storage-Token", "AUTH_tk0")]),
            req("PUT", "/v1/AUTH_test/c", &[("X-Auth-Token", "AUTH_tk0")]),
            req("DELETE", "/v1/AUTH_test", &[("X-Auth-Token", "AUTH_tk0")]),
            req("PUT", "/v1/AUTH_test", &[("X-Auth-Token", "AUTH_tk0")]),
            req("POST", "/v1/AUTH_test", &[("X-Auth-Token", "AUTH_tk0")]),
            get("/v1/AUTH_test2", &[("X-Auth-Token", "AUTH_tk0")]),
            get("/v1/AUTH_test", &[("X-Auth-Token", "AUTH_tk3")]),
            get("/v1/AUTH_test2", &[("X-Auth-Token", "AUTH_tkadmin")]),
            req("DELETE", "/v1/AUTH_test2", &[("X-Auth-Token", "AUTH_tkadmin")]),
            get("/v1/AUTH_", &[("X-Auth-Token", "AUTH_tkadmin")]),
            get("/v1/AUTH_.dot", &[("X-Auth-Token", "AUTH_tkadmin")]),
            get("/v1/AUTH_test/c", &[("X-Auth-Token", "AUTH_tkreader")]),
            req("PUT", "/v1/AUTH_test/c", &[("X-Auth-Token", "AUTH_tkreader")]),
            get("/v1/AUTH_t%C3%A9st", &[("X-Auth-Token", "AUTH_tkuni")]),
            get("/v1/AUTH_test", &[("X-Auth-Token", "AUTH_tkold")]),
            get("/v1/AUTH_test", &[("X-Auth-Token", "AUTH_t")]),
            get("/v1/AUTH_a%20b/c", &[("X-Auth-Token", "AUTH_tkmissing")]),
            get("/v1/AUTH_test", &[("X-Auth-Token", "")]),
            get("/v1/AUTH_test", &[("X-Auth-Token", "BLAH_x")]),
            get("/v1/BLAH_test", &[("X-Auth-Token", "BLAH_x")]),
            with(get("/v1/BLAH_test", &[("X-Auth-Token", "BLAH_x")]), "other_auth", json!(true)),
            with(get("/v1/BLAH_test", &[]), "other_auth", json!(true)),
            with(get("/v1/AUTH_test", &[]), "other_auth", json!(true)),
            get("/v1/AUTH_test", &[]),
            get("/v1/BLAH_test", &[]),
            get("/", &[]),
            get("/v1", &[]),
            get("//v1/x", &[]),
            get("/info", &[]),
            with(get("/v1/AUTH_test", &[]), "override", json!(true)),
            req("OPTIONS", "/v1/AUTH_test/c/o", &[]),
            with(get("/v1/AUTH_test", &[("X-Auth-Token", "AUTH_tk0")]), "fail_get", json!(true)),
            get("/v1/AUTH_test", &[("X-Auth-Token", "AUTH_tk0"), ("X-Service-Token", "AUTH_tk3")]),
            get("/v1/AUTH_test", &[("X-Auth-Token", "AUTH_tk0"), ("X-Service-Token", "junk")]),
        ],
    }));

    // Container ACLs, referrers, sync keys.
    let acl = |path: &str, token: Option<&str>, acl: &str, referer: Option<&str>| {
        let mut h = Vec::new();
        if let Some(t) = token {
            h.push(("X-Auth-Token", t));
        }
        if let Some(r) = referer {
            h.push(("Referer", r));
        }
        with(get(path, &h), "acl", json!(acl))
    };
    let mut cache = Map::new();
    let (k, v) = token_cache("AUTH_tk3", tester3);
    cache.insert(k, v);
    let c = "/v1/AUTH_test/c";
    let o = "/v1/AUTH_test/c/o";
    let t3 = Some("AUTH_tk3");
    out.push(json!({
        "name": "container acls",
        "conf": users(),
        "cache": cache,
        "requests": [
            acl(c, t3, "test:tester3", None),
            acl(c, t3, "test", None),
            acl(c, t3, "other,test:tester", None),
            acl(c, t3, "test%3Atester3", None),
            acl(c, t3, ".r:*", None),
            acl(c, t3, ".r:*,.rlistings", None),
            acl(o, t3, ".r:*", None),
            acl(o, None, ".r:*", None),
            acl(c, None, ".r:*", None),
            acl(c, None, ".r:*,.rlistings", None),
            acl(o, None, ".r:.example.com", Some("http://www.example.com/index.html")),
            acl(o, None, ".r:.example.com", Some("http://www.example.org/")),
            acl(o, None, ".r:*,.r:-.evil.com", Some("http://x.evil.com:8080/")),
            acl(o, None, ".r:*,.r:-.evil.com", None),
            with(with(req("DELETE", o, &[("X-Container-Sync-Key", "secret"), ("X-Timestamp", "1.2")]), "sync_key", json!("secret")), "acl", Value::Null),
            with(req("DELETE", o, &[("X-Container-Sync-Key", "wrong"), ("X-Timestamp", "1.2")]), "sync_key", json!("secret")),
            with(req("DELETE", o, &[("X-Container-Sync-Key", "secret")]), "sync_key", json!("secret")),
        ],
    }));

    // Account ACLs, and setting them.
    let mut cache = Map::new();
    for (t, g) in [
        ("AUTH_tk0", tester),
        ("AUTH_tk2", "test2,test2:tester2,AUTH_test2"),
        ("AUTH_tk3", tester3),
        ("AUTH_tkrw", "rw,rw:user"),
    ] {
        let (k, v) = token_cache(t, g);
        cache.insert(k, v);
    }
    cache.insert(
        "account/AUTH_test".into(),
        json!({"status": 204, "sysmeta": {"core-access-control":
            r#"{"admin":["test2:tester2"],"read-write":["rw:user"],"read-only":["test:tester3"]}"#}}),
    );
    cache.insert(
        "account/AUTH_broken".into(),
        json!({"status": 204, "sysmeta": {"core-access-control": "not json"}}),
    );
    let t = |tok: &str, acl: Option<&str>| {
        let mut h = vec![("X-Auth-Token".to_owned(), tok.to_owned())];
        if let Some(a) = acl {
            h.push(("X-Account-Access-Control".into(), a.into()));
        }
        h
    };
    let mut acl_reqs = Vec::new();
    for (tok, path) in [
        ("AUTH_tk2", "/v1/AUTH_test"),
        ("AUTH_tk2", "/v1/AUTH_test/c/o"),
        ("AUTH_tk3", "/v1/AUTH_test"),
        ("AUTH_tk3", "/v1/AUTH_test/c"),
        ("AUTH_tkrw", "/v1/AUTH_test"),
        ("AUTH_tkrw", "/v1/AUTH_test/c"),
        ("AUTH_tk3", "/v1/AUTH_broken"),
    ] {
        for m in ["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS"] {
            acl_reqs.push(json!({"method": m, "path": path, "headers": t(tok, None)}));
        }
    }
    for a in [
        r#"{"read-only":["a","b"]}"#,
        r#"{"read-only": ["\u00e1", "b"], "admin": []}"#,
        "",
        "{ }",
        "syntactically invalid acl",
        r#"{"other-auth-system":["valid"]}"#,
        "{\"\u{e1}\u{88}\u{b4}\": []}",
        r#"{"read-write":["fine"],"admin":"should be a list"}"#,
        r#"{"read-only": ["a", 99]}"#,
        r#"["read-only"]"#,
        "1",
        "'quoted'",
    ] {
        acl_reqs.push(
            json!({"method": "POST", "path": "/v1/AUTH_test", "headers": t("AUTH_tk0", Some(a))}),
        );
    }
    acl_reqs.push(
        json!({"method": "POST", "path": "/v1/AUTH_test", "headers": t("AUTH_tk3", Some("{}"))}),
    );
    acl_reqs.push(json!({"method": "POST", "path": "/v1/AUTH_test", "headers": t("AUTH_tk2", Some(r#"{"admin":["x"]}"#))}));
    acl_reqs.push(
        json!({"method": "POST", "path": "/v1/BLAH_test", "headers": t("AUTH_tk0", Some("bad"))}),
    );
    out.push(
        json!({"name": "account acls", "conf": users(), "cache": cache, "requests": acl_reqs}),
    );

    // Several prefixes, require_group and service tokens.
    let svc = json!({
        "reseller_prefix": "AUTH, SERVICE",
        "SERVICE_require_group": ".service",
        "user_joeacct_joe": "joepw .admin",
        "user_glance_glance": "glancepw .service",
        "user_admin_admin": "admin .admin .reseller_admin",
    });
    let mut cache = Map::new();
    for (t, g) in [
        (
            "AUTH_tkjoe",
            "joeacct,joeacct:joe,AUTH_joeacct,SERVICE_joeacct",
        ),
        ("AUTH_tkglance", "glance,glance:glance,.service"),
        (
            "AUTH_tkadmin",
            "admin,admin:admin,AUTH_admin,SERVICE_admin,.reseller_admin",
        ),
    ] {
        let (k, v) = token_cache(t, g);
        cache.insert(k, v);
    }
    let joe = ("X-Auth-Token", "AUTH_tkjoe");
    let glance_svc = ("X-Service-Token", "AUTH_tkglance");
    out.push(json!({
        "name": "service tokens",
        "conf": svc,
        "cache": cache,
        "requests": [
            get_token("joeacct:joe", "joepw"),
            get("/v1/AUTH_joeacct", &[joe]),
            get("/v1/SERVICE_joeacct", &[joe]),
            get("/v1/SERVICE_joeacct", &[joe, glance_svc]),
            req("DELETE", "/v1/SERVICE_joeacct", &[joe, glance_svc]),
            get("/v1/SERVICE_joeacct", &[("X-Auth-Token", "AUTH_tkglance")]),
            get("/v1/SERVICE_joeacct", &[("X-Auth-Token", "AUTH_tkjunk"), glance_svc]),
            get("/v1/SERVICE_joeacct", &[joe, ("X-Service-Token", "AUTH_tkjunk")]),
            req("DELETE", "/v1/SERVICE_joeacct", &[("X-Auth-Token", "AUTH_tkadmin")]),
            get("/v1/SERVICE_joeacct", &[]),
            get("/v1/OTHER_joeacct", &[]),
        ],
    }));

    // The empty prefix.
    let mut cache = Map::new();
    cache.insert(
        "/token/tkabc".into(),
        json!([now() + 3600.0, "test,test:tester,test"]),
    );
    out.push(json!({
        "name": "empty reseller prefix",
        "conf": {"reseller_prefix": "", "user_test_tester": "testing .admin"},
        "cache": cache,
        "requests": [
            get_token("test:tester", "testing"),
            get("/v1/test", &[("X-Auth-Token", "tkabc")]),
            get("/v1/test", &[("X-Auth-Token", "tkother")]),
            get("/v1/test", &[("X-Auth-Token", "junk")]),
            with(get("/v1/test", &[("X-Auth-Token", "junk")]), "other_auth", json!(true)),
            get("/v1/test", &[]),
            with(get("/v1/test", &[]), "other_auth", json!(true)),
        ],
    }));
    // Blank among others, require_group for all, other settings.
    out.push(json!({
        "name": "settings",
        "conf": {
            "reseller_prefix": "'', PRE",
            "require_group": ".member",
            "auth_prefix": "other",
            "storage_url_scheme": "https",
            "token_life": "100",
            "allow_overrides": "false",
            "user_a_b": "k .admin .member",
            "user_a_c": "k .admin",
            "user_x_y": "k .admin http://h/v1/PRE_x",
        },
        "requests": [
            get("/other/v1.0", &creds_ref("a:b", "k")),
            get("/other/v1.0", &creds_ref("a:c", "k")),
            get("/other/v1.0", &creds_ref("x:y", "k")),
            get("/auth/v1.0", &creds_ref("a:b", "k")),
            with(get("/v1/PRE_a", &[]), "override", json!(true)),
            get("/v1/PRE_a", &[]),
            get("/v1/a", &[]),
            with(get("/v1/PRE_a", &[]), "remote_user", json!("a,a:b,PRE_a,.member")),
            with(get("/v1/PRE_a", &[]), "remote_user", json!("a,a:c,PRE_a")),
            with(get("/v1/a", &[]), "remote_user", json!("a,a:b,a,.member")),
            with(get("/v1/PRE_a", &[]), "remote_user", json!("")),
            with(get("/v1/PRE_a/c", &[]), "remote_user", json!("someone")),
        ],
    }));
    // Fernet tokens.
    let fernet = json!({
        "user_ac_user": "testing .admin",
        "user_ac_many": format!("testing .admin {}",
            (0..20).map(|i| format!("similar-group-name-{i}")).collect::<Vec<_>>().join(" ")),
        "fernet_key_2024": "esipv1wC03xLGPb3cydid0uPINl6g8sydhlPh6iwJxk=",
        "fernet_key_2025": "gRXHeKlt5h1nMDZL_QA7UfVIJ5z3ZP3v351cvmiRZD4=",
        "active_fernet_key_id": "2025",
    });
    out.push(json!({
        "name": "fernet",
        "conf": fernet,
        "requests": [
            with(get_token("ac:user", "testing"), "no_cache", json!(true)),
            with(get_token("ac:many", "testing"), "no_cache", json!(true)),
            get_token("ac:user", "testing"),
            with(get("/v1/AUTH_ac", &[("X-Auth-Token", "AUTH_ftkgAAAAAbad")]), "no_cache", json!(true)),
            with(get("/v1/AUTH_ac", &[("X-Auth-Token", "AUTH_zftkjunk")]), "no_cache", json!(true)),
        ],
    }));
    out
}

fn creds_ref<'a>(user: &'a str, key: &'a str) -> [(&'a str, &'a str); 2] {
    [("X-Auth-User", user), ("X-Auth-Key", key)]
}

#[test]
fn tempauth_answers_as_pythons() {
    let cases = cases();
    let theirs = run_python(&cases);
    assert_eq!(theirs.len(), cases.len());
    compare(&cases, &theirs);
}

/// The token `resp` carried.
fn token_of(result: &Value, i: usize) -> String {
    result["requests"][i]["headers"]["x-auth-token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token in {}", result["requests"][i]))
        .to_owned()
}

#[test]
fn tokens_cross_between_python_and_us() {
    let conf = json!({
        "user_test_tester": "testing .admin",
        "fernet_key_2024": "esipv1wC03xLGPb3cydid0uPINl6g8sydhlPh6iwJxk=",
    });
    let mut fernet_conf = conf.clone();
    fernet_conf["active_fernet_key_id"] = json!("2024");
    let issue =
        |conf: &Value| json!({"conf": conf, "requests": [get_token("test:tester", "testing")]});
    // Each side issues a memcache token and a Fernet token.
    let py = run_python(&[issue(&conf), issue(&fernet_conf)]);
    let ours = [run_ours(&issue(&conf)), run_ours(&issue(&fernet_conf))];
    let use_it = |cache: &Value, token: &str| {
        json!({
            "conf": conf,
            "cache": cache,
            "requests": [
                get("/v1/AUTH_test", &[("X-Auth-Token", token)]),
                get_token("test:tester", "testing"),
            ],
        })
    };
    let check = |who: &str, issued: &Value, result: &Value| {
        let r = &result["requests"][0];
        assert_eq!(r["status"], json!(204), "{who}: {r}");
        assert_eq!(
            r["app"]["remote_user"],
            json!("test,test:tester,AUTH_test"),
            "{who}: {r}"
        );
        assert_eq!(r["app"]["owner"], json!(true), "{who}: {r}");
        if issued["raw_cache"]
            .as_object()
            .is_some_and(|m| !m.is_empty())
        {
            // A memcache token is found again for the same user.
            assert_eq!(token_of(result, 1), token_of(issued, 0), "{who}");
        }
    };
    for (i, kind) in ["memcache", "fernet"].iter().enumerate() {
        let py_token = token_of(&py[i], 0);
        let our_token = token_of(&ours[i], 0);
        let ours_checks_python = run_ours(&use_it(&py[i]["raw_cache"], &py_token));
        check(
            &format!("{kind} token from Python, checked by us"),
            &py[i],
            &ours_checks_python,
        );
        let python_checks_ours = run_python(&[use_it(&ours[i]["raw_cache"], &our_token)]);
        check(
            &format!("{kind} token from us, checked by Python"),
            &ours[i],
            &python_checks_ours[0],
        );
    }
}
