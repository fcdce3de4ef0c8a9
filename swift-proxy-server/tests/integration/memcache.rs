//! The memcache client and the `cache` filter against real memcached
//! servers (each test starts its own on a free loopback port and kills it
//! by pid), against Python Swift's `MemcacheRing` from the reference venv,
//! and against servers that refuse, never answer, or answer garbage.
//!
//! Tests that need memcached say "skipped: memcached not installed" when
//! the binary is absent (`./test.sh` installs it).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use swift_common::config::Conf;
use swift_common::http::{Reply, Request, Response, ResponseBody, Service};
use swift_common::logging::{Level, LogConfig, Logger, Target};
use swift_proxy_server::context::{Memcache, cache};

/// Python's `json.dumps`, as the values are stored.
fn dumps(v: &Value) -> String {
    swift_proxy_server::pyjson::dumps(v, false, false)
}
use swift_proxy_server::memcache::{MemcacheConfig, MemcacheRing, ServerAddr, md5hash};
use swift_proxy_server::middleware::cache::Cache;

/// The memcached binary on `PATH`.
fn memcached_bin() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("memcached"))
        .find(|p| p.is_file())
}

/// The memcached binary, or `None` after printing the skip line.
fn need_memcached() -> Option<PathBuf> {
    let bin = memcached_bin();
    if bin.is_none() {
        eprintln!("skipped: memcached not installed");
    }
    bin
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Ports this test binary handed out: never twice, so one test's dead
/// server cannot be another test's memcached.
static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

/// Whether `port` was not handed out yet (and now is).
fn claim(port: u16) -> bool {
    let mut used = HANDED_OUT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if used.contains(&port) {
        return false;
    }
    used.push(port);
    true
}

/// A loopback port nobody listened on a moment ago.
fn free_port() -> u16 {
    for _ in 0..100 {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        if claim(port) {
            return port;
        }
    }
    panic!("no new free port in 100 tries");
}

/// A free port for a memcached, below the ephemeral range that
/// [`free_port`] (the other tests' dead servers) and client sockets use, so
/// that no test's dead server can turn out to be another test's memcached.
fn server_port() -> u16 {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (start, span) = if low > 11024 {
        (low - 10000, 10000)
    } else {
        (1024, 0)
    };
    if span == 0 {
        return free_port();
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        ^ std::process::id().wrapping_mul(2_654_435_761);
    for i in 0..200u32 {
        let port =
            start + u16::try_from(seed.wrapping_add(i.wrapping_mul(7919)) % span).unwrap_or(0);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() && claim(port) {
            return port;
        }
    }
    free_port()
}

/// Poll `cond` every 10 ms for at most `limit`.
fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether a socket listens on `port` (of `host`'s family), from
/// /proc/net: no probe connection, so memcached's connection counts are
/// only the tests' own.
fn listening(host: &str, port: u16) -> bool {
    let table = if host.contains(':') {
        "/proc/net/tcp6"
    } else {
        "/proc/net/tcp"
    };
    let text = std::fs::read_to_string(table).unwrap_or_default();
    let local = format!(":{port:04X}");
    text.lines().skip(1).any(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        cols.len() > 3 && cols[1].ends_with(&local) && cols[3] == "0A"
    })
}

/// A memcached this test started, killed by pid on drop.
struct Memcached {
    child: Child,
    host: String,
    port: u16,
}

impl Memcached {
    fn start(bin: &Path) -> Memcached {
        for _ in 0..5 {
            if let Some(m) = Memcached::start_on(bin, "127.0.0.1", server_port()) {
                return m;
            }
        }
        panic!("memcached did not start on any of 5 free ports");
    }

    /// Start on `host:port`; `None` if it exited (the port was taken).
    fn start_on(bin: &Path, host: &str, port: u16) -> Option<Memcached> {
        let mut cmd = Command::new(bin);
        cmd.args(["-l", host, "-p", &port.to_string(), "-U", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if is_root() {
            cmd.args(["-u", "nobody"]);
        }
        let child = cmd.spawn().expect("spawn memcached");
        let mut m = Memcached {
            child,
            host: host.to_owned(),
            port,
        };
        let up = wait_until(Duration::from_secs(10), || {
            listening(&m.host, port) || m.child.try_wait().ok().flatten().is_some()
        });
        assert!(
            up,
            "memcached on port {port} neither listened nor exited in 10 s"
        );
        if m.child.try_wait().ok().flatten().is_some() {
            return None;
        }
        Some(m)
    }

    /// The server as `memcache_servers` names it.
    fn name(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Raw protocol: send `cmd`, read up to a line that ends the reply.
    fn raw(&self, cmd: &str) -> String {
        let mut s = TcpStream::connect((self.host.as_str(), self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("helper");
        s.write_all(cmd.as_bytes()).expect("helper");
        let mut r = BufReader::new(s);
        let mut out = String::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).expect("helper") == 0 {
                break;
            }
            out.push_str(&line);
            if [
                "END\r\n",
                "STORED\r\n",
                "DELETED\r\n",
                "NOT_FOUND\r\n",
                "ERROR\r\n",
            ]
            .contains(&line.as_str())
            {
                break;
            }
        }
        out
    }

    /// What is stored under Swift's `key` on this server: flags and data.
    fn stored(&self, key: &str) -> Option<(u32, String)> {
        let reply = self.raw(&format!("get {}\r\n", md5hash(key)));
        let mut lines = reply.split("\r\n");
        let head = lines.next()?;
        let words: Vec<&str> = head.split(' ').collect();
        if words[0] != "VALUE" {
            return None;
        }
        Some((words[2].parse().expect("helper"), lines.next()?.to_owned()))
    }

    fn stat(&self, name: &str) -> u64 {
        let reply = self.raw("stats\r\n");
        reply
            .lines()
            .find_map(|l| l.strip_prefix(&format!("STAT {name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no stat {name} in {reply}"))
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A worker's runtime: one per test, since pooled connections belong to
/// the runtime that opened them.
struct Rt {
    rt: tokio::runtime::Runtime,
    local: tokio::task::LocalSet,
}

impl Rt {
    fn new() -> Rt {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        Rt {
            rt,
            local: tokio::task::LocalSet::new(),
        }
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.local.block_on(&self.rt, f)
    }
}

/// A logger writing to a file, to count what was logged.
fn file_logger(path: &Path) -> Logger {
    let cfg = LogConfig {
        name: "proxy-server".into(),
        level: Level::Debug,
        facility: 16,
        max_line_length: 0,
        target: Target::File(path.to_path_buf()),
    };
    Logger::open(&cfg, None).expect("logger")
}

/// A client for `servers` with `pairs` as the `[filter:cache]` settings.
fn ring(servers: &[String], pairs: &[(&str, &str)], log: &Path) -> MemcacheRing {
    let joined = servers.join(",");
    let mut all = vec![("memcache_servers", joined.as_str())];
    all.extend_from_slice(pairs);
    let mut conf = Conf::from_pairs("/test/proxy-server.conf", "filter:cache", &all);
    conf.set("swift_dir", "/nonexistent");
    let config = MemcacheConfig::from_conf(&conf).expect("config");
    MemcacheRing::new(&config, file_logger(log))
}

fn log_lines(path: &Path, needle: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

/// The reference venv's python3 (`$SWIFT_VENV`, default `target/swift-venv`).
fn venv_python() -> PathBuf {
    let venv = std::env::var_os("SWIFT_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/swift-venv"));
    let py = venv.join("bin/python3");
    assert!(
        venv.join("bin/swift-init").exists(),
        "the Python Swift venv is missing at {}: run ./test.sh, which creates it",
        venv.display()
    );
    py
}

/// Python Swift's MemcacheRing on `servers`: sets, then gets, deletes and
/// incrs; answers `{"get": [...], "incr": [...]}`.
const PY_RING: &str = r#"
import json, sys
from swift.common.memcached import MemcacheRing
from swift.common.utils import get_logger
req = json.load(sys.stdin)
logger = get_logger({'log_udp_host': '127.0.0.1', 'log_udp_port': '9'}, log_route='memcache')
ring = MemcacheRing(req['servers'], logger=logger)
for k, v in req.get('set', []):
    ring.set(k, v, raise_on_error=True)
out = {'get': [ring.get(k, raise_on_error=True) for k in req.get('get', [])]}
for k in req.get('delete', []):
    ring.delete(k)
out['incr'] = [ring.incr(k, delta=d) for k, d in req.get('incr', [])]
json.dump(out, sys.stdout)
"#;

fn python_ring(request: &Value) -> Value {
    let mut child = Command::new(venv_python())
        .args(["-c", PY_RING])
        .env("PYTHONWARNINGS", "ignore")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python");
    child
        .stdin
        .take()
        .expect("helper")
        .write_all(request.to_string().as_bytes())
        .expect("helper");
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("helper") {
            break s;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("python did not finish in 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .expect("helper")
        .read_to_string(&mut out)
        .expect("helper");
    child
        .stderr
        .take()
        .expect("helper")
        .read_to_string(&mut err)
        .expect("helper");
    assert!(status.success(), "python failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out:?} {err}"))
}

/// A value of every JSON kind, different for each `i`.
fn sample(i: usize) -> Value {
    json!({
        "account_really_exists": i.is_multiple_of(2),
        "bytes": i * 1000,
        "container_count": i,
        "meta": {"colour": format!("bl\u{00e9}u {i}"), "emoji": "\u{1F600}"},
        "quota": 1.5 + i as f64,
        "status": 200,
        "storage_policy": null,
        "tags": ["a", i, -1, 1e-7],
    })
}

#[test]
fn set_get_delete_round_trip() {
    let rt = Rt::new();
    let Some(bin) = need_memcached() else { return };
    let m = Memcached::start(&bin);
    let dir = tempfile::tempdir().unwrap();
    let c = ring(&[m.name()], &[], &dir.path().join("log"));
    rt.block_on(async {
        assert_eq!(c.get("account/AUTH_a").await.unwrap(), None);
        for (i, key) in ["account/AUTH_a", "container/AUTH_a/c \u{2603}", ""]
            .iter()
            .enumerate()
        {
            c.set(key, &sample(i), Duration::ZERO).await.unwrap();
            assert_eq!(c.get(key).await.unwrap(), Some(sample(i)));
        }
        c.set("account/AUTH_a", &json!("second"), Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(
            c.get("account/AUTH_a").await.unwrap(),
            Some(json!("second"))
        );
        c.delete("account/AUTH_a").await.unwrap();
        assert_eq!(c.get("account/AUTH_a").await.unwrap(), None);
        // Deleting what is not there is not an error.
        c.delete("account/AUTH_a").await.unwrap();
        // Through the trait, as middleware see it.
        let dynamic: &dyn Memcache = &c;
        dynamic
            .set("k/1", &json!([1, 2]), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(dynamic.get("k/1").await.unwrap(), Some(json!([1, 2])));
        // Counters.
        assert_eq!(c.incr("ratelimit/a", 5, Duration::ZERO).await.unwrap(), 5);
        assert_eq!(c.incr("ratelimit/a", 2, Duration::ZERO).await.unwrap(), 7);
        assert_eq!(c.incr("ratelimit/a", -10, Duration::ZERO).await.unwrap(), 0);
        assert_eq!(c.incr("ratelimit/b", -3, Duration::ZERO).await.unwrap(), 0);
        assert_eq!(
            dynamic
                .incr("ratelimit/a", 1, Duration::ZERO)
                .await
                .unwrap(),
            1
        );
        assert_eq!(c.get("ratelimit/a").await.unwrap(), Some(json!("1")));
    });
    // Stored as Swift stores it: the MD5 of the key, flag 2, Python's JSON.
    let (flags, data) = m.stored("k/1").expect("stored under md5(key)");
    assert_eq!((flags, data.as_str()), (2, "[1, 2]"));
    assert_eq!(
        m.stored("container/AUTH_a/c \u{2603}").map(|(_, d)| d),
        Some(dumps(&sample(1)))
    );
    assert!(dumps(&sample(1)).contains("\\u00e9"));
    // A value with an expiry was sent with it.
    rt.block_on(c.set("short", &json!(1), Duration::from_secs(1)))
        .unwrap();
    assert!(wait_until(Duration::from_secs(5), || m
        .stored("short")
        .is_none()));
}

#[test]
fn python_swift_and_this_client_share_two_servers() {
    let rt = Rt::new();
    let Some(bin) = need_memcached() else { return };
    let (a, b) = (Memcached::start(&bin), Memcached::start(&bin));
    let servers = vec![a.name(), b.name()];
    let dir = tempfile::tempdir().unwrap();
    let c = ring(&servers, &[], &dir.path().join("log"));
    let n = 40;
    let py_keys: Vec<String> = (0..n)
        .map(|i| format!("account/AUTH_py\u{e9}{i}"))
        .collect();
    let rs_keys: Vec<String> = (0..n).map(|i| format!("container/AUTH_rs/c{i}")).collect();

    // Python writes; we read every value, from the server Python chose.
    let sets: Vec<Value> = py_keys
        .iter()
        .enumerate()
        .map(|(i, k)| json!([k, sample(i)]))
        .collect();
    python_ring(&json!({"servers": servers, "set": sets}));
    let mut on_a = 0;
    for (i, k) in py_keys.iter().enumerate() {
        let got = rt.block_on(c.get(k)).unwrap();
        assert_eq!(got, Some(sample(i)), "{k}");
        let (in_a, in_b) = (a.stored(k), b.stored(k));
        assert!(
            in_a.is_some() != in_b.is_some(),
            "{k} on exactly one server"
        );
        let holder = if in_a.is_some() { a.name() } else { b.name() };
        assert_eq!(
            c.servers_for(k)[0],
            holder,
            "{k}: our ring picks Python's server"
        );
        assert_eq!(c.servers_for(k).len(), 2);
        on_a += usize::from(in_a.is_some());
        // Byte for byte what we would have written.
        let (flags, data) = in_a.or(in_b).unwrap();
        assert_eq!((flags, data), (2, dumps(&sample(i))));
    }
    assert!(
        on_a > 0 && on_a < n,
        "both servers used: {on_a} of {n} on the first"
    );

    // We write; Python reads every value.
    rt.block_on(async {
        for (i, k) in rs_keys.iter().enumerate() {
            c.set(k, &sample(i + 100), Duration::ZERO).await.unwrap();
        }
    });
    let out = python_ring(&json!({"servers": servers, "get": rs_keys}));
    let expected: Vec<Value> = (0..n).map(|i| sample(i + 100)).collect();
    assert_eq!(out["get"], Value::Array(expected));

    // Deletes and counters, each side seeing the other's.
    rt.block_on(c.delete(&py_keys[0])).unwrap();
    let out = python_ring(&json!({
        "servers": servers,
        "get": [py_keys[0], py_keys[1]],
        "delete": [rs_keys[0]],
        "incr": [["ratelimit/shared", 3]],
    }));
    assert_eq!(out["get"], json!([null, sample(1)]));
    assert_eq!(out["incr"], json!([3]));
    rt.block_on(async {
        assert_eq!(c.get(&rs_keys[0]).await.unwrap(), None);
        assert_eq!(
            c.incr("ratelimit/shared", 4, Duration::ZERO).await.unwrap(),
            7
        );
    });
    let out = python_ring(&json!({"servers": servers, "incr": [["ratelimit/shared", -2]]}));
    assert_eq!(out["incr"], json!([5]));
}

#[test]
fn ipv6_servers_as_swift_writes_them() {
    let rt = Rt::new();
    let Some(bin) = need_memcached() else { return };
    let Ok(l) = TcpListener::bind("[::1]:0") else {
        eprintln!("skipped: no IPv6 loopback");
        return;
    };
    let port = l.local_addr().unwrap().port();
    drop(l);
    let Some(m) = Memcached::start_on(&bin, "::1", port) else {
        eprintln!("skipped: memcached could not listen on [::1]:{port}");
        return;
    };
    assert_eq!(ServerAddr::parse(&m.name()).unwrap().host, "::1");
    let dir = tempfile::tempdir().unwrap();
    let c = ring(&[m.name()], &[], &dir.path().join("log"));
    rt.block_on(async {
        c.set("v6", &json!({"a": 1}), Duration::ZERO).await.unwrap();
        assert_eq!(c.get("v6").await.unwrap(), Some(json!({"a": 1})));
    });
}

#[test]
fn a_refused_connection_is_an_error_at_once() {
    let rt = Rt::new();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let c = ring(&[format!("127.0.0.1:{port}")], &[], &log);
    let started = Instant::now();
    let err = rt
        .block_on(c.get("account/AUTH_a"))
        .unwrap_err()
        .to_string();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(err.to_lowercase().contains("refused"), "{err}");
    assert!(rt.block_on(c.set("a", &json!(1), Duration::ZERO)).is_err());
    assert!(rt.block_on(c.delete("a")).is_err());
    assert!(rt.block_on(c.incr("a", 1, Duration::ZERO)).is_err());
    assert_eq!(
        log_lines(
            &log,
            &format!(
                "Error connecting to memcached: 127.0.0.1:{port}: with key_prefix account, method get"
            )
        ),
        1
    );
}

#[test]
fn a_down_server_sends_its_keys_to_the_next_one() {
    let rt = Rt::new();
    let Some(bin) = need_memcached() else { return };
    let live = Memcached::start(&bin);
    let dead = format!("127.0.0.1:{}", free_port());
    let servers = vec![live.name(), dead.clone()];
    let dir = tempfile::tempdir().unwrap();
    let c = ring(&servers, &[], &dir.path().join("log"));
    let one_try = ring(&servers, &[("tries", "1")], &dir.path().join("log1"));
    let keys: Vec<String> = (0..20).map(|i| format!("object/{i}")).collect();
    let on_dead: Vec<&String> = keys
        .iter()
        .filter(|k| c.servers_for(k)[0] == dead)
        .collect();
    assert!(
        !on_dead.is_empty(),
        "some key maps to the dead server first"
    );
    rt.block_on(async {
        for k in &on_dead {
            c.set(k, &json!(k), Duration::ZERO).await.unwrap();
            assert_eq!(c.get(k).await.unwrap(), Some(json!(k)));
            assert!(
                one_try.get(k).await.is_err(),
                "tries = 1 goes to the dead one only"
            );
        }
    });
    for k in &on_dead {
        assert!(live.stored(k).is_some(), "{k} went to the live server");
    }
}

#[test]
fn a_server_that_never_answers_is_bounded_by_io_timeout() {
    let rt = Rt::new();
    // Connections complete in the kernel's backlog; nothing is ever read.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let name = silent.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let c = ring(
        std::slice::from_ref(&name),
        &[
            ("io_timeout", "0.3"),
            ("max_connections", "1"),
            ("pool_timeout", "0.1"),
        ],
        &log,
    );
    let started = Instant::now();
    let err = rt
        .block_on(c.get("account/AUTH_a"))
        .unwrap_err()
        .to_string();
    let took = started.elapsed();
    assert!(err.contains("timed out after 0.3s"), "{err}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(
        log_lines(
            &log,
            &format!(
                "Timeout talking to memcached: {name}: with key_prefix account, method get, config_timeout 0.3"
            )
        ),
        1
    );

    // With one connection busy, a second request waits at most pool_timeout.
    let (first, second) = rt.block_on(async {
        let t0 = Instant::now();
        let a = async {
            let r = c.get("x").await;
            (r, t0.elapsed())
        };
        let b = async {
            tokio::task::yield_now().await;
            let r = c.get("y").await;
            (r, t0.elapsed())
        };
        tokio::join!(a, b)
    });
    assert!(
        first
            .0
            .unwrap_err()
            .to_string()
            .contains("timed out after 0.3s")
    );
    let e = second.0.unwrap_err().to_string();
    assert!(e.contains("timed out after 0.1s"), "{e}");
    assert!(second.1 < Duration::from_millis(290), "{:?}", second.1);
}

#[test]
fn a_garbage_reply_fails_at_once() {
    let rt = Rt::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let name = listener.local_addr().unwrap().to_string();
    listener.set_nonblocking(true).unwrap();
    // Answers every connection with a line that is not memcached's, and
    // keeps it open (so only the reply itself can end the wait).
    let server = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut kept = Vec::new();
        while Instant::now() < deadline && kept.len() < 3 {
            match listener.accept() {
                Ok((mut s, _)) => {
                    let _ = s.write_all(b"HELLO THERE\r\n");
                    kept.push(s);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        kept.len()
    });
    let dir = tempfile::tempdir().unwrap();
    let c = ring(&[name], &[], &dir.path().join("log"));
    rt.block_on(async {
        for key in ["a", "b"] {
            let started = Instant::now();
            let err = c.get(key).await.unwrap_err().to_string();
            assert!(
                err.contains("unexpected reply to get: \"HELLO THERE\""),
                "{err}"
            );
            assert!(started.elapsed() < Duration::from_secs(1));
        }
        let err = c
            .set("c", &json!(1), Duration::ZERO)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("failed set: HELLO THERE"), "{err}");
    });
    // Each failure dropped its connection: three were made.
    assert_eq!(server.join().unwrap(), 3);
}

#[test]
fn a_restarted_memcached_is_used_again() {
    let rt = Rt::new();
    let Some(bin) = need_memcached() else { return };
    let m = Memcached::start(&bin);
    let port = m.port;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let c = ring(&[m.name()], &[], &log);
    let c = &c;
    rt.block_on(async {
        c.set("k", &json!("before"), Duration::ZERO).await.unwrap();
    });
    // Restarted between two requests: the pooled connection is dead, and
    // is replaced without failing the request.
    m.stop();
    let m = Memcached::start_on(&bin, "127.0.0.1", port).expect("restart on the same port");
    rt.block_on(async {
        assert_eq!(c.get("k").await.unwrap(), None);
        c.set("k", &json!("after"), Duration::ZERO).await.unwrap();
    });
    assert_eq!(log_lines(&log, "memcached"), 0, "nothing to report");
    // Down for a while: errors; back: used again at once.
    m.stop();
    rt.block_on(async {
        assert!(c.get("k").await.is_err());
        assert!(c.get("k").await.is_err());
    });
    let _m = Memcached::start_on(&bin, "127.0.0.1", port).expect("restart on the same port");
    rt.block_on(async {
        assert_eq!(c.get("k").await.unwrap(), None);
        c.set("k", &json!(2), Duration::ZERO).await.unwrap();
        assert_eq!(c.get("k").await.unwrap(), Some(json!(2)));
    });
    let server_lines = format!("Error connecting to memcached: 127.0.0.1:{port}: ");
    assert_eq!(log_lines(&log, &server_lines), 1);
    assert_eq!(log_lines(&log, "memcached: ALL: "), 1);
}

#[test]
fn a_failing_server_is_error_limited_then_tried_again() {
    let rt = Rt::new();
    let Some(bin) = need_memcached() else { return };
    let port = free_port();
    let name = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let c = ring(
        std::slice::from_ref(&name),
        &[
            ("error_suppression_limit", "2"),
            ("error_suppression_interval", "1.5"),
        ],
        &log,
    );
    rt.block_on(async {
        for _ in 0..3 {
            let e = c.get("a").await.unwrap_err().to_string();
            assert!(e.to_lowercase().contains("refused"), "{e}");
        }
    });
    assert_eq!(log_lines(&log, &format!("Error limiting server {name}")), 1);
    let limited_at = Instant::now();
    // While limited the server is not even tried: a memcached there now
    // sees no connection from us.
    let m = Memcached::start_on(&bin, "127.0.0.1", port).expect("memcached on the port");
    let connections = m.stat("total_connections");
    rt.block_on(async {
        for _ in 0..10 {
            let e = c.get("a").await.unwrap_err().to_string();
            assert!(e.contains(&format!("{name}: error limited")), "{e}");
        }
    });
    // Our stats connection is the only new one.
    assert_eq!(m.stat("total_connections"), connections + 1);
    // Logged once per outage and once per error-limit event, not per request.
    assert_eq!(log_lines(&log, "to memcached: 127.0.0.1"), 1);
    assert_eq!(log_lines(&log, "Error limiting server"), 1);
    assert_eq!(log_lines(&log, "No more memcached servers to try"), 1);
    // After error_suppression_interval, the server is used again.
    let back = wait_until(Duration::from_secs(5), || rt.block_on(c.get("a")).is_ok());
    assert!(back, "not used again within 5 s");
    assert!(limited_at.elapsed() >= Duration::from_millis(1400));
    rt.block_on(c.set("a", &json!(1), Duration::ZERO)).unwrap();
}

#[test]
fn connections_per_server_are_bounded_by_the_pool() {
    let rt = Rt::new();
    let Some(bin) = need_memcached() else { return };
    let m = Memcached::start(&bin);
    let dir = tempfile::tempdir().unwrap();
    let c = Rc::new(ring(
        &[m.name()],
        &[("memcache_max_connections", "2")],
        &dir.path().join("log"),
    ));
    let before = m.stat("total_connections");
    rt.block_on(async {
        c.set("k", &json!("v"), Duration::ZERO).await.unwrap();
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let c = c.clone();
                tokio::task::spawn_local(async move { c.get("k").await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), Some(json!("v")));
        }
    });
    // Two of ours, and the second stats connection.
    assert_eq!(m.stat("total_connections") - before, 3);
}

/// Stores the path in `swift.cache` and answers with what it reads back.
struct UsesCache;
impl Service for UsesCache {
    fn call(&self, req: Request) -> Reply<'_> {
        let Some(c) = cache(&req.env) else {
            return Reply::Ready(Response::new(412));
        };
        Reply::pending(async move {
            let key = req.raw_path().to_owned();
            c.set(&key, &json!({"path": key}), Duration::ZERO)
                .await
                .expect("memcached");
            let v = c.get(&key).await.expect("memcached").expect("memcached");
            Response::with_body(200, "application/json", v.to_string())
        })
    }
}

#[test]
fn the_filter_puts_the_cache_in_env() {
    let rt = Rt::new();
    let Some(bin) = need_memcached() else { return };
    let m = Memcached::start(&bin);
    let dir = tempfile::tempdir().unwrap();
    let c = Rc::new(ring(&[m.name()], &[], &dir.path().join("log")));
    let filter = Cache::new(Rc::new(UsesCache), c);
    let r = rt.block_on(filter.call(Request::new("GET", "/v1/AUTH_a")).resolve());
    assert_eq!(r.status, 200);
    let ResponseBody::Full(body) = &r.body else {
        panic!("body");
    };
    assert_eq!(&body[..], br#"{"path":"/v1/AUTH_a"}"#);
    assert_eq!(
        m.stored("/v1/AUTH_a").unwrap().1,
        r#"{"path": "/v1/AUTH_a"}"#
    );
    // Python Swift reads what went through the filter.
    let out = python_ring(&json!({"servers": [m.name()], "get": ["/v1/AUTH_a"]}));
    assert_eq!(out["get"], json!([{"path": "/v1/AUTH_a"}]));
}
