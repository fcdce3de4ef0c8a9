//! The proxy survives failing storage nodes: a real cluster (Python Swift's
//! account, container and four object servers, one device each, three
//! replicas, so every partition has a handoff; memcached; the proxy with
//! two workers and short timeouts) under a bounded load of concurrent PUTs
//! and GETs of small objects, with one fault injected mid-load:
//!
//! | fault | expectation |
//! |---|---|
//! | an object server SIGKILLed | 0 failed reads, 0 failed writes (handoffs) |
//! | an object server SIGSTOPped (a stall) | 0 failed (node_timeout, then the node is error-limited) |
//! | a device not mounted (its directory gone: 507) | 0 failed (the node is limited at once) |
//! | a server answering 507 to everything | 0 failed |
//! | a server answering 503 to everything | 0 failed |
//! | a server answering garbage | 0 failed |
//! | a node that answers no SYN (its accept queue full) | 0 failed (conn_timeout) |
//! | memcached restarted (every token lost) | 0 failed once the client logs in again, as swiftclient does on a 401 |
//! | a proxy worker SIGKILLed | at most the requests in flight on it fail |
//! | three of the four object servers killed | every write 503 (no quorum), promptly |
//!
//! Each prints a line `fault=...: reads F/N failed (expect ...), writes
//! F/N failed (expect ...)`, then every acknowledged PUT is read back (its
//! ETag and bytes) and every unacknowledged one must be absent or whole.
//! Then, on their own: a large GET whose serving object server (found in
//! /proc/net/tcp) is killed or stopped mid-body resumes from another
//! replica with the same bytes; a client that goes away mid-PUT or mid-GET,
//! or stalls, closes the backend connections at once and is logged as
//! 499 (408 for a stalled upload), and leaves no object behind.
//!
//! The same scenarios run against Python Swift's proxy, longer and bigger,
//! from `bench/faults.py` (the ignored test [`bench_failing_nodes`] here,
//! driven by environment variables, writes JSON lines it reads).
//!
//! Every wait is bounded: each request has [`REQUEST_TIMEOUT`], the load
//! runs for fixed windows, readiness is polled with `wait_until`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use swift_tests::cluster::{Cluster, ClusterOptions, Node, our_proxy, python_proxy};
use swift_tests::{Response, children_of, raw_request, wait_until};

/// A bound for one client request (connect, send, read to the end).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// The proxy settings of every fault cluster: short timeouts so stalls
/// cost little, and a short error-suppression interval so that a node
/// healed by one scenario is tried again soon ([`SUPPRESSION`]).
const PROXY_SETTINGS: &[(&str, &str)] = &[
    ("conn_timeout", "0.5"),
    ("node_timeout", "2"),
    ("recoverable_node_timeout", "1"),
    ("client_timeout", "5"),
    ("post_quorum_timeout", "0.5"),
    ("error_suppression_interval", "3"),
    ("error_suppression_limit", "10"),
];

/// The `error_suppression_interval` above: after a scenario heals its
/// fault, the next one waits this long, so that it starts with nothing
/// error-limited (the proxy offers no signal for a node it forgets; its
/// rule is this interval after the node's last error).
const SUPPRESSION: Duration = Duration::from_secs(3);

/// The `client_timeout` above.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// The size of the load and of its windows.
#[derive(Clone, Debug)]
pub struct Shape {
    /// Client threads, each doing a PUT then a GET, again and again.
    pub threads: usize,
    /// Load before the fault.
    pub before: Duration,
    /// Load after the fault.
    pub during: Duration,
    /// Objects written before the load (the first reads' targets).
    pub seed: usize,
    /// The largest object (sizes run from 1 byte to this).
    pub max_size: usize,
    /// The size of the object of the resumed GETs.
    pub large: usize,
}

impl Shape {
    /// The e2e tests' shape: small and short.
    pub fn quick() -> Shape {
        Shape {
            threads: 6,
            before: Duration::from_millis(700),
            during: Duration::from_millis(2500),
            seed: 12,
            max_size: 16 * 1024,
            large: 64 << 20,
        }
    }
}

/// How many failures a scenario expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// At most this many.
    AtMost(u64),
    /// Every request of the kind fails (a write without quorum).
    All,
    /// Not part of the expectation (reported only).
    Any,
}

impl Want {
    fn met(self, failed: u64, total: u64) -> bool {
        match self {
            Want::AtMost(n) => failed <= n,
            Want::All => failed == total,
            Want::Any => true,
        }
    }

    fn text(self) -> String {
        match self {
            Want::AtMost(0) => "0".to_owned(),
            Want::AtMost(n) => format!("<= {n}"),
            Want::All => "all".to_owned(),
            Want::Any => "any".to_owned(),
        }
    }
}

/// What happened to one kind of request during the load.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub total: u64,
    pub failed: u64,
    /// Failures by what the client saw: `503`, `timeout`, `reset`, ...
    pub by_outcome: BTreeMap<String, u64>,
    pub max_latency: Duration,
    pub samples: Vec<String>,
}

impl Tally {
    fn add(&mut self, latency: Duration, failure: Option<(String, String)>) {
        self.total += 1;
        self.max_latency = self.max_latency.max(latency);
        if let Some((kind, what)) = failure {
            self.failed += 1;
            *self.by_outcome.entry(kind).or_default() += 1;
            if self.samples.len() < 5 {
                self.samples.push(what);
            }
        }
    }

    fn merge(&mut self, other: &Tally) {
        self.total += other.total;
        self.failed += other.failed;
        self.max_latency = self.max_latency.max(other.max_latency);
        for (k, v) in &other.by_outcome {
            *self.by_outcome.entry(k.clone()).or_default() += v;
        }
        for s in &other.samples {
            if self.samples.len() < 5 {
                self.samples.push(s.clone());
            }
        }
    }

    fn outcomes(&self) -> String {
        let parts: Vec<String> = self
            .by_outcome
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        parts.join(", ")
    }
}

/// One scenario's figures.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub fault: String,
    pub proxy: String,
    pub reads: Tally,
    pub writes: Tally,
    pub expect_reads: Want,
    pub expect_writes: Want,
    /// GETs answered 200 with other bytes or another ETag: never allowed.
    pub wrong_bytes: u64,
    /// 401s a new token cured (memcached lost the old one).
    pub reauths: u64,
    /// Acknowledged PUTs read back whole with their ETag, of all.
    pub readback_ok: usize,
    pub readback_total: usize,
    pub readback_failures: Vec<String>,
    /// Unacknowledged PUTs: how many are visible (whole), and any that
    /// are visible with other bytes (never allowed).
    pub unacked: usize,
    pub unacked_visible: usize,
    pub unacked_bad: Vec<String>,
    /// Acknowledged objects with three replicas on disk (a lost primary's
    /// replica went to a handoff), of `readback_total`.
    pub replicas_3: usize,
    /// Acknowledged objects with fewer than a quorum (2) on disk: never
    /// allowed. (Two is a quorum: a PUT in flight to a node when it
    /// failed ends so, as in Swift.)
    pub replicas_short: usize,
    pub notes: Vec<String>,
}

impl Outcome {
    /// Whether the stated expectation holds (and nothing is ever wrong).
    pub fn met(&self) -> bool {
        self.expect_reads.met(self.reads.failed, self.reads.total)
            && self
                .expect_writes
                .met(self.writes.failed, self.writes.total)
            && self.wrong_bytes == 0
            && self.readback_ok == self.readback_total
            && self.unacked_bad.is_empty()
            && self.replicas_short == 0
    }

    /// The line the issue asks for.
    pub fn line(&self) -> String {
        let mut s = format!(
            "fault={}: reads {}/{} failed (expect {}), writes {}/{} failed (expect {}); \
             read back {}/{} acknowledged objects (ETag and bytes); unacknowledged PUTs {} \
             ({} visible, whole); wrong bytes {}; replicas on disk: {}/{} have 3, {} fewer than 2",
            self.fault,
            self.reads.failed,
            self.reads.total,
            self.expect_reads.text(),
            self.writes.failed,
            self.writes.total,
            self.expect_writes.text(),
            self.readback_ok,
            self.readback_total,
            self.unacked,
            self.unacked_visible,
            self.wrong_bytes,
            self.replicas_3,
            self.readback_total,
            self.replicas_short,
        );
        if self.reauths > 0 {
            s.push_str(&format!("; {} 401s cured by a new token", self.reauths));
        }
        s.push_str(&format!(
            "; slowest read {:.2}s, write {:.2}s",
            self.reads.max_latency.as_secs_f64(),
            self.writes.max_latency.as_secs_f64()
        ));
        for (what, t) in [("reads", &self.reads), ("writes", &self.writes)] {
            if t.failed > 0 {
                s.push_str(&format!(
                    "\n    failed {what}: {}; e.g. {:?}",
                    t.outcomes(),
                    t.samples
                ));
            }
        }
        for f in self
            .readback_failures
            .iter()
            .chain(&self.unacked_bad)
            .take(5)
        {
            s.push_str(&format!("\n    read back: {f}"));
        }
        for n in &self.notes {
            s.push_str(&format!("\n    note: {n}"));
        }
        s
    }

    /// One JSON object, for bench/faults.py.
    pub fn json(&self) -> serde_json::Value {
        let tally = |t: &Tally| {
            serde_json::json!({
                "total": t.total,
                "failed": t.failed,
                "by_outcome": t.by_outcome,
                "max_latency_s": (t.max_latency.as_secs_f64() * 1000.0).round() / 1000.0,
                "samples": t.samples,
            })
        };
        serde_json::json!({
            "kind": "load",
            "proxy": self.proxy,
            "fault": self.fault,
            "reads": tally(&self.reads),
            "writes": tally(&self.writes),
            "expect_reads": self.expect_reads.text(),
            "expect_writes": self.expect_writes.text(),
            "wrong_bytes": self.wrong_bytes,
            "reauths": self.reauths,
            "readback_ok": self.readback_ok,
            "readback_total": self.readback_total,
            "unacked": self.unacked,
            "unacked_visible": self.unacked_visible,
            "unacked_bad": self.unacked_bad.len(),
            "replicas_3": self.replicas_3,
            "replicas_short": self.replicas_short,
            "met": self.met(),
            "notes": self.notes,
        })
    }
}

/// The deterministic body of an object: its size (1 to `max_size`) and
/// bytes follow from its name, so any copy can be checked by name alone.
fn body_of(name: &str, max_size: usize) -> Vec<u8> {
    let digest = Md5::digest(name.as_bytes());
    let mut seed = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes")) | 1;
    let size = 1 + (seed % max_size as u64) as usize;
    pattern(&mut seed, size)
}

/// `size` pseudo-random bytes (xorshift).
fn pattern(seed: &mut u64, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 8);
    while out.len() < size {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(size);
    out
}

fn md5_hex(b: &[u8]) -> String {
    Md5::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

/// A tempauth client of the proxy: one token shared by the load's threads,
/// renewed (once per lost token, up to three tries) when the proxy says
/// 401, and the request tried once more, as swiftclient does.
pub struct Client {
    pub proxy: SocketAddr,
    token: RwLock<String>,
    reauths: AtomicU64,
}

impl Client {
    pub fn login(proxy: SocketAddr) -> Client {
        let token = wait_until(Duration::from_secs(30), || get_token(proxy).ok())
            .expect("a tempauth token within 30 s");
        Client {
            proxy,
            token: RwLock::new(token),
            reauths: AtomicU64::new(0),
        }
    }

    fn token(&self) -> String {
        self.token.read().expect("token lock").clone()
    }

    /// A request as `test:tester`; a 401 gets a new token and one retry.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Response> {
        let token = self.token();
        let resp = send(self.proxy, method, path, &token, headers, body)?;
        if resp.status != 401 {
            return Ok(resp);
        }
        {
            let mut current = self.token.write().expect("token lock");
            if *current == token {
                // As swiftclient: a few tries, a little apart (memcached
                // may be on its way back).
                let fresh = (0..3).find_map(|i| {
                    if i > 0 {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    get_token(self.proxy).ok()
                });
                match fresh {
                    Some(t) => *current = t,
                    None => return Ok(resp),
                }
            }
        }
        self.reauths.fetch_add(1, Ordering::Relaxed);
        send(self.proxy, method, path, &self.token(), headers, body)
    }
}

fn get_token(proxy: SocketAddr) -> Result<String, String> {
    let req = format!(
        "GET /auth/v1.0 HTTP/1.1\r\nHost: {proxy}\r\nConnection: close\r\n\
         X-Auth-User: test:tester\r\nX-Auth-Key: testing\r\n\r\n"
    );
    let resp = raw_request(proxy, req.as_bytes(), REQUEST_TIMEOUT).map_err(|e| e.to_string())?;
    match (resp.status, resp.header("X-Auth-Token")) {
        (200, Some(t)) => Ok(t.to_owned()),
        (s, _) => Err(format!("GET /auth/v1.0: {s}")),
    }
}

/// One request on a new connection (`Connection: close`), bounded.
fn send(
    proxy: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {proxy}\r\nConnection: close\r\nX-Auth-Token: {token}\r\n"
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "PUT" || !body.is_empty() {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    raw_request(proxy, &bytes, REQUEST_TIMEOUT)
}

/// What a failed request looked like, for the counts: its status, or the
/// kind of I/O error.
fn io_kind(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        TimedOut | WouldBlock => "timeout".into(),
        ConnectionReset | ConnectionAborted | BrokenPipe => "reset".into(),
        ConnectionRefused => "refused".into(),
        _ if e.to_string().starts_with("bad response") => "truncated".into(),
        _ => "error".into(),
    }
}

/// PUT `name` (its body from [`body_of`], with its MD5 as the ETag): the
/// failure, if any.
fn put_object(client: &Client, name: &str, max_size: usize) -> Option<(String, String)> {
    let body = body_of(name, max_size);
    let etag = md5_hex(&body);
    match client.call(
        "PUT",
        &format!("/v1/AUTH_test/{name}"),
        &[("ETag", &etag)],
        &body,
    ) {
        Ok(r) if r.status == 201 && r.header("Etag") == Some(etag.as_str()) => None,
        Ok(r) => Some((
            r.status.to_string(),
            format!(
                "PUT {name}: {} {} etag {:?}",
                r.status,
                r.reason,
                r.header("Etag")
            ),
        )),
        Err(e) => Some((io_kind(&e), format!("PUT {name}: {e}"))),
    }
}

/// How a GET of `name` went.
enum Got {
    Whole,
    Missing(u16),
    /// 200 with other bytes or ETag.
    Wrong(String),
    Failed(String, String),
}

fn get_object(client: &Client, name: &str, max_size: usize) -> Got {
    match client.call("GET", &format!("/v1/AUTH_test/{name}"), &[], b"") {
        Ok(r) if r.status == 200 => {
            let want = body_of(name, max_size);
            let etag = md5_hex(&want);
            if r.body == want && r.header("Etag") == Some(etag.as_str()) {
                Got::Whole
            } else {
                Got::Wrong(format!(
                    "GET {name}: {} bytes (want {}), etag {:?} (want {etag})",
                    r.body.len(),
                    want.len(),
                    r.header("Etag")
                ))
            }
        }
        Ok(r) if r.status == 404 => Got::Missing(404),
        Ok(r) => Got::Failed(
            r.status.to_string(),
            format!("GET {name}: {} {}", r.status, r.reason),
        ),
        Err(e) => Got::Failed(io_kind(&e), format!("GET {name}: {e}")),
    }
}

/// What the load's threads share.
struct LoadState {
    stop: AtomicBool,
    acked: Mutex<Vec<String>>,
    unacked: Mutex<Vec<String>>,
    reads: Mutex<Tally>,
    writes: Mutex<Tally>,
    wrong: AtomicU64,
}

/// Start the load: each thread PUTs `<container>/t<i>-<k>` and GETs a
/// random acknowledged object, until told to stop.
fn start_load(
    client: &Arc<Client>,
    container: &str,
    shape: &Shape,
    seeded: Vec<String>,
) -> (Arc<LoadState>, Vec<JoinHandle<()>>) {
    let state = Arc::new(LoadState {
        stop: AtomicBool::new(false),
        acked: Mutex::new(seeded),
        unacked: Mutex::new(Vec::new()),
        reads: Mutex::new(Tally::default()),
        writes: Mutex::new(Tally::default()),
        wrong: AtomicU64::new(0),
    });
    let threads = (0..shape.threads)
        .map(|i| {
            let client = client.clone();
            let state = state.clone();
            let container = container.to_owned();
            let max_size = shape.max_size;
            std::thread::spawn(move || {
                let mut reads = Tally::default();
                let mut writes = Tally::default();
                let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ ((i as u64 + 1) * 0x1000_0001);
                let mut k = 0usize;
                while !state.stop.load(Ordering::Relaxed) {
                    let name = format!("{container}/t{i}-{k}");
                    k += 1;
                    let started = Instant::now();
                    let failure = put_object(&client, &name, max_size);
                    writes.add(started.elapsed(), failure.clone());
                    match failure {
                        None => state.acked.lock().expect("lock").push(name),
                        Some(_) => state.unacked.lock().expect("lock").push(name),
                    }
                    if state.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let target = {
                        let acked = state.acked.lock().expect("lock");
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        (!acked.is_empty())
                            .then(|| acked[(rng % acked.len() as u64) as usize].clone())
                    };
                    let Some(target) = target else { continue };
                    let started = Instant::now();
                    let failure = match get_object(&client, &target, max_size) {
                        Got::Whole => None,
                        Got::Missing(s) => {
                            Some((s.to_string(), format!("GET {target}: {s} (acknowledged)")))
                        }
                        Got::Wrong(what) => {
                            state.wrong.fetch_add(1, Ordering::Relaxed);
                            Some(("wrong bytes".to_owned(), what))
                        }
                        Got::Failed(kind, what) => Some((kind, what)),
                    };
                    reads.add(started.elapsed(), failure);
                }
                state.reads.lock().expect("lock").merge(&reads);
                state.writes.lock().expect("lock").merge(&writes);
            })
        })
        .collect();
    (state, threads)
}

/// Undoing a fault; notes about what it found.
type Heal<'f> = Box<dyn FnOnce(&mut Cluster) -> Vec<String> + 'f>;

/// A fault, how to undo it, and what it should cost.
struct Scenario<'f> {
    label: &'f str,
    expect: (Want, Want),
    fault: Box<dyn FnOnce(&mut Cluster) + 'f>,
    /// Undo the fault; notes about what it found.
    heal: Heal<'f>,
    /// Heal before reading back (when the fault leaves objects out of
    /// reach, as a lost quorum does); otherwise the read-back runs with the
    /// fault still in place.
    heal_first: bool,
}

/// Run `shape`'s load on a fresh container, inject the fault after
/// `shape.before` (at once, before the load, when that is zero), stop
/// after `shape.during`, then read back every acknowledged object and
/// check the unacknowledged ones, heal, and count every acknowledged
/// object's replicas on disk.
fn under_load(
    cluster: &mut Cluster,
    client: &Arc<Client>,
    proxy: &str,
    shape: &Shape,
    scenario: Scenario<'_>,
) -> Outcome {
    let Scenario {
        label,
        expect,
        fault,
        heal,
        heal_first,
    } = scenario;
    let container: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let resp = client
        .call("PUT", &format!("/v1/AUTH_test/{container}"), &[], b"")
        .expect("PUT container");
    assert!(
        resp.status == 201 || resp.status == 202,
        "PUT container {container}: {} {}",
        resp.status,
        resp.body_str()
    );
    // Seed objects, written while all is well (a retry or two: a node
    // healed by the scenario before may still be error-limited).
    let seeded: Vec<String> = (0..shape.seed)
        .map(|k| {
            let name = format!("{container}/seed-{k}");
            let stored = (0..3).any(|_| put_object(client, &name, shape.max_size).is_none());
            assert!(stored, "seeding {name} failed three times");
            name
        })
        .collect();
    let reauths_before = client.reauths.load(Ordering::Relaxed);
    let mut fault = Some(fault);
    if shape.before.is_zero()
        && let Some(f) = fault.take()
    {
        f(cluster);
    }
    let (state, threads) = start_load(client, &container, shape, seeded);
    std::thread::sleep(shape.before);
    if let Some(f) = fault.take() {
        f(cluster);
    }
    std::thread::sleep(shape.during);
    state.stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("a load thread panicked");
    }
    let reauths = client.reauths.load(Ordering::Relaxed) - reauths_before;
    let acked = state.acked.lock().expect("lock").clone();
    let unacked = state.unacked.lock().expect("lock").clone();
    let mut heal = Some(heal);
    let mut notes = Vec::new();
    if heal_first && let Some(h) = heal.take() {
        notes.extend(h(cluster));
    }
    // Healed nodes may still be skipped for error_suppression_interval:
    // then a read-back that finds nothing retries (bounded).
    let patience = if heal_first {
        Duration::from_secs(10)
    } else {
        Duration::ZERO
    };
    let (readback_failures, unacked_visible, unacked_bad) =
        read_back(client, &acked, &unacked, shape, patience);
    if let Some(h) = heal.take() {
        notes.extend(h(cluster));
    }
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    for name in &acked {
        let on = replicas_on_disk(cluster, name);
        if on.len() != 3 && !counts.contains_key(&on.len()) {
            notes.push(format!(
                "{name} has replicas on {on:?}; the object servers' PUTs: {:?}",
                backend_puts(cluster, name)
            ));
        }
        *counts.entry(on.len()).or_default() += 1;
    }
    let three = counts.get(&3).copied().unwrap_or(0);
    if three != acked.len() {
        notes.push(format!(
            "acknowledged objects by replicas on disk: {counts:?}"
        ));
    }
    // Let the proxy forget the healed node before the next scenario.
    std::thread::sleep(SUPPRESSION);
    let outcome = Outcome {
        fault: label.to_owned(),
        proxy: proxy.to_owned(),
        reads: state.reads.lock().expect("lock").clone(),
        writes: state.writes.lock().expect("lock").clone(),
        expect_reads: expect.0,
        expect_writes: expect.1,
        wrong_bytes: state.wrong.load(Ordering::Relaxed),
        reauths,
        readback_ok: acked.len() - readback_failures.len(),
        readback_total: acked.len(),
        readback_failures,
        unacked: unacked.len(),
        unacked_visible,
        unacked_bad,
        replicas_3: three,
        replicas_short: counts.range(..2).map(|(_, n)| n).sum(),
        notes,
    };
    println!("{}", outcome.line());
    outcome
}

/// Read back every acknowledged object (whole, with its ETag) and every
/// unacknowledged one (absent, or whole), with the load's threads.
fn read_back(
    client: &Arc<Client>,
    acked: &[String],
    unacked: &[String],
    shape: &Shape,
    patience: Duration,
) -> (Vec<String>, usize, Vec<String>) {
    let deadline = Instant::now() + patience;
    let work: Vec<(String, bool)> = acked
        .iter()
        .map(|n| (n.clone(), true))
        .chain(unacked.iter().map(|n| (n.clone(), false)))
        .collect();
    let work = Arc::new(Mutex::new(work));
    let results = Arc::new(Mutex::new((Vec::new(), 0usize, Vec::new())));
    let threads: Vec<JoinHandle<()>> = (0..shape.threads)
        .map(|_| {
            let (work, results, client) = (work.clone(), results.clone(), client.clone());
            let max_size = shape.max_size;
            std::thread::spawn(move || {
                loop {
                    let Some((name, was_acked)) = work.lock().expect("lock").pop() else {
                        return;
                    };
                    let mut read = get_object(&client, &name, max_size);
                    while matches!(read, Got::Failed(..)) && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(100));
                        read = get_object(&client, &name, max_size);
                    }
                    let mut r = results.lock().expect("lock");
                    match (was_acked, read) {
                        (true, Got::Whole) => {}
                        (true, Got::Missing(s)) => r.0.push(format!("GET {name}: {s}")),
                        (true, Got::Wrong(w) | Got::Failed(_, w)) => r.0.push(w),
                        (false, Got::Whole) => r.1 += 1,
                        (false, Got::Missing(_)) => {}
                        (false, Got::Wrong(w)) => r.2.push(format!("unacknowledged {w}")),
                        (false, Got::Failed(_, w)) => {
                            r.2.push(format!("unacknowledged, cannot tell: {w}"))
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a read-back thread panicked");
    }
    let r = results.lock().expect("lock");
    (r.0.clone(), r.1, r.2.clone())
}

/// How many `.data` files (replicas) object `name` (`<container>/<object>`
/// of `AUTH_test`) has across the object servers' devices: its hash
/// directory is `objects/<part>/<suffix>/<hash>` on each device that has
/// it (part power 8: the hash's first byte).
fn replicas_on_disk(cluster: &Cluster, name: &str) -> Vec<usize> {
    let key = format!(
        "{}/AUTH_test/{name}{}",
        swift_tests::cluster::HASH_PATH_PREFIX,
        swift_tests::cluster::HASH_PATH_SUFFIX
    );
    let digest = Md5::digest(key.as_bytes());
    let hash: String = digest.iter().map(|x| format!("{x:02x}")).collect();
    (1..=cluster.object_servers())
        .filter(|n| {
            let dir = cluster
                .object_device_dir(*n)
                .join("objects")
                .join(digest[0].to_string())
                .join(&hash[29..])
                .join(&hash);
            std::fs::read_dir(dir).is_ok_and(|entries| {
                entries
                    .flatten()
                    .any(|e| e.path().extension().is_some_and(|x| x == "data"))
            })
        })
        .collect()
}

/// The object servers' access-log lines for PUTs of `name`: which got it,
/// with what status (for notes on an object with fewer replicas).
fn backend_puts(cluster: &Cluster, name: &str) -> Vec<String> {
    let needle = format!("/AUTH_test/{name}\" ");
    (1..=cluster.object_servers())
        .flat_map(|n| {
            cluster
                .log(Node::Object(n))
                .lines()
                .filter(|l| l.contains("\"PUT /d") && l.contains(&needle))
                .map(|l| {
                    let status = l[l.find(&needle).map_or(0, |i| i + needle.len())..]
                        .split_whitespace()
                        .next()
                        .unwrap_or("?")
                        .to_owned();
                    format!("object-{n}: {status}")
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A stand-in object server on `port` that answers every request with
/// `reply` (after reading its head) and closes.
struct FakeServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u64>>,
}

impl FakeServer {
    fn start(port: u16, reply: &'static [u8]) -> FakeServer {
        // The killed server's port: free at once (std sets SO_REUSEADDR).
        let listener = wait_until(Duration::from_secs(10), || {
            TcpListener::bind(("127.0.0.1", port)).ok()
        })
        .unwrap_or_else(|| panic!("bind 127.0.0.1:{port} for the fake server"));
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut answered = 0u64;
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        answered += 1;
                        std::thread::spawn(move || {
                            let _ = s.set_nonblocking(false);
                            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                            let mut got = Vec::new();
                            let mut buf = [0u8; 4096];
                            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                                match s.read(&mut buf) {
                                    Ok(0) | Err(_) => return,
                                    Ok(n) => got.extend_from_slice(&buf[..n]),
                                }
                            }
                            let _ = s.write_all(reply);
                            let _ = s.shutdown(std::net::Shutdown::Write);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            answered
        });
        FakeServer {
            stop,
            thread: Some(thread),
        }
    }

    /// Stop listening; how many connections it answered.
    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .map(|t| t.join().expect("fake server thread"))
            .unwrap_or(0)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A node that answers no SYN: a listener on its port that never accepts,
/// its accept queue filled by connections of our own, so the kernel drops
/// every further SYN and a connect can only time out (`conn_timeout`).
struct Silent {
    _listener: TcpListener,
    fillers: Vec<TcpStream>,
}

impl Silent {
    fn start(port: u16) -> Silent {
        let listener = wait_until(Duration::from_secs(10), || {
            TcpListener::bind(("127.0.0.1", port)).ok()
        })
        .unwrap_or_else(|| panic!("bind 127.0.0.1:{port} for the silent node"));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut fillers = Vec::new();
        // The queue holds the backlog (128) and one more; bounded.
        for _ in 0..1024 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Ok(s) => fillers.push(s),
                Err(_) => break,
            }
        }
        Silent {
            _listener: listener,
            fillers,
        }
    }
}

const REPLY_507: &[u8] = b"HTTP/1.1 507 Insufficient Storage\r\nContent-Type: text/html\r\n\
    Content-Length: 0\r\nConnection: close\r\n\r\n";
const REPLY_503: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n\
    Content-Length: 10\r\nConnection: close\r\n\r\nno, sorry\n";
const REPLY_GARBAGE: &[u8] = b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\nnot HTTP at all\r\n\r\n\x00\xff";

fn signal(cluster: &Cluster, node: Node, sig: Signal) {
    let pid = cluster
        .pid(node)
        .unwrap_or_else(|| panic!("{node} is not running"));
    kill(Pid::from_raw(pid), sig).unwrap_or_else(|e| panic!("{sig} to {node} ({pid}): {e}"));
}

/// The cluster of these tests: four object servers, the proxy (`binary`)
/// with two workers and [`PROXY_SETTINGS`]. Without `keepalive`, our proxy
/// keeps no idle backend connection (Swift's way, an option Python's proxy
/// ignores): the scenarios that tell the connection serving a request, or
/// its closing, by the established connections to the object servers need
/// that; an idle kept connection is established too.
fn fault_cluster(binary: PathBuf, keepalive: bool) -> Cluster {
    let mut options = ClusterOptions::new(binary)
        .object_servers(4)
        .proxy_workers(2);
    for (k, v) in PROXY_SETTINGS {
        options = options.proxy_app_option(k, v);
    }
    if !keepalive {
        options = options.proxy_app_option("backend_keepalive_connections", "0");
    }
    Cluster::start(options)
}

/// Every scenario under load, in an order that lets the error limiter
/// forget a healed node before the fault after next (at most two nodes
/// are ever error-limited at once, so a quorum of three is always
/// reachable until the last scenario takes it away).
pub fn load_scenarios(cluster: &mut Cluster, proxy: &str, shape: &Shape) -> Vec<Outcome> {
    let client = Arc::new(Client::login(cluster.proxy_addr()));
    let zero = (Want::AtMost(0), Want::AtMost(0));
    let mut out = Vec::new();
    let mut run = |cluster: &mut Cluster, scenario: Scenario<'_>| {
        out.push(under_load(cluster, &client, proxy, shape, scenario));
    };
    let restart = |node: Node| -> Heal<'static> {
        Box::new(move |c: &mut Cluster| {
            c.start_server(node);
            Vec::new()
        })
    };

    run(
        cluster,
        Scenario {
            label: "sigkill object-1",
            expect: zero,
            fault: Box::new(|c| c.kill_server(Node::Object(1))),
            heal: restart(Node::Object(1)),
            heal_first: false,
        },
    );
    run(
        cluster,
        Scenario {
            label: "sigstop object-2",
            expect: zero,
            fault: Box::new(|c| signal(c, Node::Object(2), Signal::SIGSTOP)),
            heal: Box::new(|c| {
                signal(c, Node::Object(2), Signal::SIGCONT);
                Vec::new()
            }),
            heal_first: false,
        },
    );
    let d3 = cluster.object_device_dir(3);
    let away = d3.with_extension("unmounted");
    run(
        cluster,
        Scenario {
            label: "unmounted d3 (507)",
            expect: zero,
            // The directory goes, and a plain file takes its place: with
            // mount_check off, a PUT in flight at that moment whose
            // container update times out writes an async pending under the
            // device's path, recreating the directory, after which the
            // object server takes writes there again (onto the root
            // filesystem, in real life). A file there cannot become a
            // directory, so the device stays "unmounted" (507).
            fault: Box::new(|_| {
                std::fs::rename(&d3, &away).expect("unmount d3");
                std::fs::write(&d3, b"").expect("a file where d3 was");
            }),
            heal: Box::new(|_| {
                std::fs::remove_file(&d3).expect("remove the file where d3 was");
                std::fs::rename(&away, &d3).expect("mount d3 again");
                Vec::new()
            }),
            heal_first: false,
        },
    );
    for (n, label, reply) in [
        (4, "507 from object-4", REPLY_507),
        (1, "503 from object-1", REPLY_503),
        (2, "garbage from object-2", REPLY_GARBAGE),
    ] {
        let port = cluster.port(Node::Object(n));
        let fake = std::rc::Rc::new(std::cell::RefCell::new(None::<FakeServer>));
        let (f1, f2) = (fake.clone(), fake.clone());
        run(
            cluster,
            Scenario {
                label,
                expect: zero,
                fault: Box::new(move |c| {
                    c.kill_server(Node::Object(n));
                    *f1.borrow_mut() = Some(FakeServer::start(port, reply));
                }),
                heal: Box::new(move |c| {
                    let answered = f2.borrow_mut().take().map_or(0, FakeServer::stop);
                    c.start_server(Node::Object(n));
                    vec![format!(
                        "the fake object-{n} answered {answered} connections"
                    )]
                }),
                heal_first: false,
            },
        );
    }
    let port = cluster.port(Node::Object(3));
    let silent = std::rc::Rc::new(std::cell::RefCell::new(None::<Silent>));
    let (s1, s2) = (silent.clone(), silent.clone());
    run(
        cluster,
        Scenario {
            label: "object-3 answers no SYN (conn_timeout)",
            expect: zero,
            fault: Box::new(move |c| {
                c.kill_server(Node::Object(3));
                *s1.borrow_mut() = Some(Silent::start(port));
            }),
            heal: Box::new(move |c| {
                let queued = s2.borrow_mut().take().map_or(0, |s| s.fillers.len());
                c.start_server(Node::Object(3));
                vec![format!(
                    "the silent object-3's accept queue took {queued} connections"
                )]
            }),
            heal_first: false,
        },
    );
    run(
        cluster,
        Scenario {
            label: "memcached restarted",
            expect: zero,
            fault: Box::new(Cluster::restart_memcached),
            heal: Box::new(|_| Vec::new()),
            heal_first: false,
        },
    );
    // Each client thread has at most one request in flight.
    let in_flight = shape.threads as u64;
    let killed = std::rc::Rc::new(std::cell::Cell::new(0));
    let (k1, k2) = (killed.clone(), killed.clone());
    run(
        cluster,
        Scenario {
            label: "sigkill a proxy worker",
            expect: (Want::AtMost(in_flight), Want::AtMost(in_flight)),
            fault: Box::new(move |c| {
                let master = c.pid(Node::Proxy).expect("proxy running");
                let workers = children_of(master);
                assert!(!workers.is_empty(), "the proxy ({master}) has no workers");
                k1.set(workers[0]);
                kill(Pid::from_raw(workers[0]), Signal::SIGKILL).expect("kill a worker");
            }),
            heal: Box::new(move |c| {
                let master = c.pid(Node::Proxy).expect("proxy running");
                let killed = k2.get();
                let respawned = wait_until(Duration::from_secs(20), || {
                    let w = children_of(master);
                    (w.len() == 2 && !w.contains(&killed)).then_some(w)
                });
                vec![match respawned {
                    Some(w) => format!("worker {killed} killed; the master runs workers {w:?}"),
                    None => format!("worker {killed} killed; not replaced within 20 s"),
                }]
            }),
            heal_first: false,
        },
    );
    let mut quick = shape.clone();
    quick.before = Duration::ZERO;
    quick.during = quick.during.min(Duration::from_secs(2));
    out.push(under_load(
        cluster,
        &client,
        proxy,
        &quick,
        Scenario {
            label: "sigkill object-2,3,4 (no quorum)",
            expect: (Want::Any, Want::All),
            fault: Box::new(|c| {
                for n in 2..=4 {
                    c.kill_server(Node::Object(n));
                }
            }),
            heal: Box::new(|c| {
                for n in 2..=4 {
                    c.start_server(Node::Object(n));
                }
                Vec::new()
            }),
            heal_first: true,
        },
    ));
    out
}

/// One line of `/proc/net/tcp` (IPv4): local port, remote port, state.
fn tcp_sockets() -> Vec<(u16, u16, u8)> {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let port = |a: &str| u16::from_str_radix(a.rsplit(':').next()?, 16).ok();
            Some((
                port(f.get(1)?)?,
                port(f.get(2)?)?,
                u8::from_str_radix(f.get(3)?, 16).ok()?,
            ))
        })
        .collect()
}

const ESTABLISHED: u8 = 1;

/// The object servers with an established connection on their port (the
/// server's end): who is serving.
fn serving_nodes(cluster: &Cluster) -> Vec<Node> {
    let socks = tcp_sockets();
    (1..=cluster.object_servers())
        .map(Node::Object)
        .filter(|n| {
            let port = cluster.port(*n);
            socks.iter().any(|&(l, _, s)| l == port && s == ESTABLISHED)
        })
        .collect()
}

/// Established connections to any object server's port, from the client
/// end (the proxy's backend connections).
fn backend_connections(cluster: &Cluster) -> usize {
    let ports: Vec<u16> = (1..=cluster.object_servers())
        .map(|n| cluster.port(Node::Object(n)))
        .collect();
    tcp_sockets()
        .iter()
        .filter(|&&(_, r, s)| s == ESTABLISHED && ports.contains(&r))
        .count()
}

/// A connection with a small receive buffer (64 KiB, which also stops
/// the kernel's autotuning), so that what is in flight stays well below
/// the large object's size.
fn small_window_connection(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::RcvBuf, &(64 * 1024))
        .expect("SO_RCVBUF");
    s.set_read_timeout(Some(REQUEST_TIMEOUT)).expect("timeout");
    s.set_write_timeout(Some(REQUEST_TIMEOUT)).expect("timeout");
    s
}

/// Read a response head (and what came with it) from `s`.
fn read_head(s: &mut TcpStream) -> (Response, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            let head = swift_tests::parse_response(&buf).expect("a response head");
            return (head, rest);
        }
        let n = s.read(&mut chunk).expect("read the response head");
        assert!(n > 0, "closed before a response head");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A large GET whose serving object server gets `sig` after the client
/// has read some of the body: what the client got, and what the cluster
/// did.
#[derive(Debug, Clone)]
pub struct ResumeOutcome {
    pub fault: String,
    pub proxy: String,
    pub size: usize,
    /// Bytes the client had when the fault came.
    pub at: usize,
    pub served_by: String,
    /// The client's bytes equal the object's (its MD5, the ETag).
    pub whole: bool,
    pub received: usize,
    pub error: Option<String>,
    /// Another object server answered a 206 for the rest.
    pub resumed_elsewhere: bool,
    pub seconds: f64,
}

impl ResumeOutcome {
    pub fn line(&self) -> String {
        format!(
            "fault={} mid-GET ({} MiB, {} at byte {}): client got {} of {} bytes, {}{}; \
             another replica served the rest: {}; {:.1}s",
            self.fault,
            self.size >> 20,
            self.served_by,
            self.at,
            self.received,
            self.size,
            if self.whole {
                "every byte once (MD5 = ETag)"
            } else {
                "NOT the object"
            },
            self.error
                .as_ref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default(),
            self.resumed_elsewhere,
            self.seconds,
        )
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "kind": "resume",
            "proxy": self.proxy,
            "fault": self.fault,
            "size": self.size,
            "at": self.at,
            "whole": self.whole,
            "received": self.received,
            "error": self.error,
            "resumed_elsewhere": self.resumed_elsewhere,
            "seconds": self.seconds,
        })
    }
}

/// PUT the large object (once) and return its path and bytes.
fn large_object(client: &Client, shape: &Shape) -> (String, Arc<Vec<u8>>) {
    let resp = client
        .call("PUT", "/v1/AUTH_test/large", &[], b"")
        .expect("PUT container");
    assert!(
        matches!(resp.status, 201 | 202),
        "PUT /large: {}",
        resp.status
    );
    let mut seed = 0x5eed_u64;
    let body = pattern(&mut seed, shape.large);
    let path = "/v1/AUTH_test/large/object".to_owned();
    let etag = md5_hex(&body);
    let resp = client
        .call("PUT", &path, &[("ETag", &etag)], &body)
        .expect("PUT the large object");
    assert_eq!(
        resp.status,
        201,
        "PUT the large object: {}",
        resp.body_str()
    );
    (path, Arc::new(body))
}

/// GET the large object; after 1 MiB of body, signal the object server
/// serving it with `sig`; read the rest.
fn resumed_get(
    cluster: &mut Cluster,
    client: &Client,
    proxy: &str,
    path: &str,
    body: &[u8],
    sig: Signal,
) -> ResumeOutcome {
    let logs_before: Vec<usize> = (1..=cluster.object_servers())
        .map(|n| cluster.log(Node::Object(n)).len())
        .collect();
    let started = Instant::now();
    let mut s = small_window_connection(cluster.proxy_addr());
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Auth-Token: {}\r\n\r\n",
        client.token()
    );
    s.write_all(req.as_bytes()).expect("send the GET");
    let (head, mut got) = read_head(&mut s);
    assert_eq!(head.status, 200, "GET {path}");
    let etag = head.header("Etag").unwrap_or("").to_owned();
    assert_eq!(etag, md5_hex(body), "the large object's ETag");
    let mut chunk = vec![0u8; 64 * 1024];
    while got.len() < 1 << 20 {
        let n = s.read(&mut chunk).expect("read the first MiB");
        assert!(n > 0, "the body ended after {} bytes", got.len());
        got.extend_from_slice(&chunk[..n]);
    }
    let serving = serving_nodes(cluster);
    assert_eq!(
        serving.len(),
        1,
        "one object server serves the GET: {serving:?}"
    );
    let node = serving[0];
    let at = got.len();
    match sig {
        Signal::SIGKILL => cluster.kill_server(node),
        _ => signal(cluster, node, sig),
    }
    let mut error = None;
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
        if got.len() > body.len() {
            error = Some("more bytes than the object has".into());
            break;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    // Who served the rest: a 206 for this object in another server's log.
    let object_path = path.trim_start_matches("/v1");
    let resumed_elsewhere = (1..=cluster.object_servers())
        .filter(|n| Node::Object(*n) != node)
        .any(|n| {
            let log = cluster.log(Node::Object(n));
            log[logs_before[n - 1].min(log.len())..]
                .lines()
                .any(|l| l.contains(object_path) && l.contains("\" 206 "))
        });
    if sig == Signal::SIGSTOP {
        signal(cluster, node, Signal::SIGCONT);
    } else {
        cluster.start_server(node);
    }
    let label = match sig {
        Signal::SIGKILL => "sigkill",
        Signal::SIGSTOP => "sigstop",
        _ => "signal",
    };
    let out = ResumeOutcome {
        fault: format!("{label} the serving node"),
        proxy: proxy.to_owned(),
        size: body.len(),
        at,
        served_by: node.to_string(),
        whole: got.len() == body.len() && got == body,
        received: got.len(),
        error,
        resumed_elsewhere,
        seconds,
    };
    println!("{}", out.line());
    out
}

/// What a client that goes away (or stalls) did to the proxy.
#[derive(Debug, Clone)]
pub struct GoneOutcome {
    pub what: String,
    pub proxy: String,
    /// The proxy's access-log status for the request.
    pub logged: Option<u16>,
    /// The status the client got, if it waited for one.
    pub answered: Option<u16>,
    /// Seconds from the client going away (or stalling) until the proxy
    /// had no backend connection to the object servers left.
    pub backend_closed_after: Option<f64>,
    /// The object is not there afterwards (for uploads).
    pub no_object: Option<bool>,
}

impl GoneOutcome {
    pub fn line(&self) -> String {
        format!(
            "client {}: access log {}, client got {}, backend connections closed {}{}",
            self.what,
            self.logged.map_or("-".to_owned(), |s| s.to_string()),
            self.answered
                .map_or("nothing".to_owned(), |s| s.to_string()),
            self.backend_closed_after
                .map_or("NOT within the bound".to_owned(), |s| format!(
                    "after {s:.2}s"
                )),
            match self.no_object {
                Some(true) => ", no object left behind",
                Some(false) => ", AN OBJECT WAS LEFT BEHIND",
                None => "",
            }
        )
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "kind": "client",
            "proxy": self.proxy,
            "what": self.what,
            "logged": self.logged,
            "answered": self.answered,
            "backend_closed_after": self.backend_closed_after,
            "no_object": self.no_object,
        })
    }
}

/// The status of the access-log line for `method path` in `log` after
/// `from` (Swift's proxy-logging line: `... METHOD PATH PROTOCOL STATUS ...`).
fn logged_status(log: &str, from: usize, method: &str, path: &str) -> Option<u16> {
    let needle = format!(" {method} {path} HTTP/");
    log.get(from..).unwrap_or("").lines().find_map(|l| {
        let rest = &l[l.find(&needle)? + needle.len()..];
        rest.split_whitespace().nth(1)?.parse().ok()
    })
}

/// Wait (bounded) until the proxy has no backend connection left; the
/// seconds it took.
fn backend_closed(cluster: &Cluster, since: Instant, bound: Duration) -> Option<f64> {
    wait_until(bound, || {
        (backend_connections(cluster) == 0).then(|| since.elapsed().as_secs_f64())
    })
}

/// The client goes away, or stalls, mid-PUT and mid-GET.
pub fn clients_that_go_away(
    cluster: &Cluster,
    client: &Client,
    proxy: &str,
    large_path: &str,
) -> Vec<GoneOutcome> {
    let mut out = Vec::new();
    let token = client.token();
    let addr = cluster.proxy_addr();
    let log_len = || cluster.log(Node::Proxy).len();
    // Let earlier backend connections end (a resumed GET's, say).
    backend_closed(cluster, Instant::now(), Duration::from_secs(10));

    for (what, stall) in [("disconnects mid-PUT", false), ("stalls mid-PUT", true)] {
        let name = if stall { "stalled-put" } else { "cut-put" };
        let path = format!("/v1/AUTH_test/large/{name}");
        let from = log_len();
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(CLIENT_TIMEOUT + Duration::from_secs(10)))
            .expect("timeout");
        let head = format!(
            "PUT {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Auth-Token: {token}\r\n\
             Content-Length: {}\r\n\r\n",
            4 << 20
        );
        s.write_all(head.as_bytes()).expect("send the head");
        s.write_all(&vec![b'x'; 256 * 1024])
            .expect("send some body");
        // The proxy is writing to the object servers once they have
        // connections from it.
        wait_until(Duration::from_secs(10), || {
            (backend_connections(cluster) > 0).then_some(())
        });
        let since = Instant::now();
        let mut answered = None;
        if stall {
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf);
            answered = swift_tests::parse_response(&buf).map(|r| r.status);
        } else {
            drop(s);
        }
        let closed = backend_closed(cluster, since, CLIENT_TIMEOUT + Duration::from_secs(5));
        let logged = wait_until(Duration::from_secs(10), || {
            logged_status(&cluster.log(Node::Proxy), from, "PUT", &path)
        });
        let no_object = match send(addr, "HEAD", &path, &token, &[], b"") {
            Ok(r) => Some(r.status == 404),
            Err(_) => None,
        };
        let o = GoneOutcome {
            what: what.to_owned(),
            proxy: proxy.to_owned(),
            logged,
            answered,
            backend_closed_after: closed,
            no_object,
        };
        println!("{}", o.line());
        out.push(o);
    }

    for (what, stall) in [
        ("disconnects mid-GET", false),
        ("stops reading mid-GET", true),
    ] {
        let from = log_len();
        let mut s = small_window_connection(addr);
        let req = format!(
            "GET {large_path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Auth-Token: {token}\r\n\r\n"
        );
        s.write_all(req.as_bytes()).expect("send the GET");
        let (head, mut got) = read_head(&mut s);
        let mut chunk = vec![0u8; 64 * 1024];
        while got.len() < 1 << 20 {
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
        let since = Instant::now();
        let mut s = Some(s);
        let bound = if stall {
            // The proxy gives up writing after client_timeout.
            CLIENT_TIMEOUT + Duration::from_secs(5)
        } else {
            s = None;
            Duration::from_secs(5)
        };
        let closed = backend_closed(cluster, since, bound);
        drop(s);
        let logged = wait_until(Duration::from_secs(10), || {
            logged_status(&cluster.log(Node::Proxy), from, "GET", large_path)
        });
        let o = GoneOutcome {
            what: what.to_owned(),
            proxy: proxy.to_owned(),
            logged,
            answered: Some(head.status),
            backend_closed_after: closed,
            no_object: None,
        };
        println!("{}", o.line());
        out.push(o);
    }
    out
}

fn assert_met(outcomes: &[Outcome]) {
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.met())
        .map(Outcome::line)
        .collect();
    assert!(
        failed.is_empty(),
        "expectations not met:\n{}",
        failed.join("\n")
    );
}

/// Every load scenario against our proxy, with the expectations asserted.
#[test]
fn storage_node_faults_under_load() {
    let mut cluster = fault_cluster(our_proxy(), true);
    let started = Instant::now();
    let shape = Shape::quick();
    let outcomes = load_scenarios(&mut cluster, "ours", &shape);
    println!("load scenarios took {:.0?}", started.elapsed());
    assert_met(&outcomes);
    // Each fault meets a cluster with nothing error-limited: every write
    // that lost a primary went to the handoff, three replicas each, but
    // for the PUTs in flight to the node when it failed (at most one per
    // client thread), which end with a quorum of two, as in Swift.
    for o in &outcomes {
        assert!(
            o.readback_total - o.replicas_3 <= shape.threads,
            "{}",
            o.line()
        );
    }
    // Writes without a quorum were refused, promptly, with 503.
    let last = outcomes.last().expect("scenarios ran");
    assert!(
        last.writes.by_outcome.keys().all(|k| k == "503"),
        "{}",
        last.line()
    );
    assert!(
        last.writes.max_latency < Duration::from_secs(5),
        "{}",
        last.line()
    );
    // The error limiter: a node is limited once, and logged once per
    // worker and limit, not per request.
    let log = cluster.log(Node::Proxy);
    let port = cluster.port(Node::Object(2));
    let limited = log
        .lines()
        .filter(|l| {
            l.contains(&format!(
                "Node will be error limited for 3.00s: 127.0.0.1:{port}/d2"
            ))
        })
        .count();
    assert!(limited >= 1, "object-2 was never error-limited:\n{log}");
    let d3 = cluster.port(Node::Object(3));
    assert!(
        log.contains(&format!(
            "Node will be error limited for 3.00s: 127.0.0.1:{d3}/d3, error: ERROR Insufficient Storage"
        )),
        "{log}"
    );
    // Suspicious answers, as Swift takes them: a 507 limits the node at
    // once, a 5xx to Expect: 100-continue counts an error, garbage is an
    // exception; a node that answers no SYN times out after conn_timeout.
    let port = |n| cluster.port(Node::Object(n));
    for needle in [
        format!(
            "Node will be error limited for 3.00s: 127.0.0.1:{}/d4, error: ERROR Insufficient Storage",
            port(4)
        ),
        format!(
            "ERROR 503 Expect: 100-continue From Object Server 127.0.0.1:{}/d1",
            port(1)
        ),
        format!("ERROR with Object server 127.0.0.1:{}/d2 re: ", port(2)),
        "unparsable response head".to_owned(),
        format!("connect to 127.0.0.1:{} timed out after 500ms", port(3)),
    ] {
        assert!(
            log.contains(&needle),
            "no {needle:?} in the proxy's log:\n{log}"
        );
    }
}

/// A GET whose node dies or stalls mid-body resumes from another replica;
/// clients that go away or stall are let go, their backend connections
/// closed, logged as 499 (408 for a stalled upload).
#[test]
fn resumed_gets_and_clients_that_go_away() {
    let mut cluster = fault_cluster(our_proxy(), false);
    let shape = Shape::quick();
    let client = Client::login(cluster.proxy_addr());
    let (path, body) = large_object(&client, &shape);
    for sig in [Signal::SIGKILL, Signal::SIGSTOP] {
        let o = resumed_get(&mut cluster, &client, "ours", &path, &body, sig);
        assert!(o.whole && o.resumed_elsewhere, "{}", o.line());
        assert!(
            cluster
                .log(Node::Proxy)
                .contains("Resumed GET of /AUTH_test/large/object at byte "),
            "{}",
            cluster.log(Node::Proxy)
        );
    }
    let gone = clients_that_go_away(&cluster, &client, "ours", &path);
    let want = [
        (499, None),
        (499, Some(408)),
        (499, Some(200)),
        (499, Some(200)),
    ];
    for (o, (logged, answered)) in gone.iter().zip(want) {
        assert_eq!(o.logged, Some(logged), "{}", o.line());
        if answered.is_some() {
            assert_eq!(o.answered, answered, "{}", o.line());
        }
        assert!(o.backend_closed_after.is_some(), "{}", o.line());
        assert_ne!(o.no_object, Some(false), "{}", o.line());
    }
    // A client that went away is let go at once; a stalled one after
    // client_timeout (the bound of every wait on a client).
    assert!(
        gone[0].backend_closed_after.unwrap_or(99.0) < 2.0,
        "{}",
        gone[0].line()
    );
    assert!(
        gone[2].backend_closed_after.unwrap_or(99.0) < 2.0,
        "{}",
        gone[2].line()
    );
}

/// For bench/faults.py: every scenario, against the proxy
/// `SWIFT_FAULTS_PROXY` names (`ours`, the default, or `python`; the
/// binary of ours from `SWIFT_FAULTS_OUR_PROXY` when set), with the shape
/// `SWIFT_FAULTS_THREADS`, `SWIFT_FAULTS_SECONDS` (the fault window) give;
/// each outcome is appended to `SWIFT_FAULTS_JSON` as a JSON line.
/// Nothing is asserted: the bench reports.
#[test]
#[ignore]
fn bench_failing_nodes() {
    let proxy = std::env::var("SWIFT_FAULTS_PROXY").unwrap_or_else(|_| "ours".to_owned());
    let binary = match proxy.as_str() {
        "python" => python_proxy(),
        "ours" => std::env::var_os("SWIFT_FAULTS_OUR_PROXY")
            .map(PathBuf::from)
            .unwrap_or_else(our_proxy),
        other => panic!("SWIFT_FAULTS_PROXY must be ours or python, not {other:?}"),
    };
    let mut shape = Shape::quick();
    if let Some(t) = std::env::var("SWIFT_FAULTS_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        shape.threads = t;
    }
    if let Some(s) = std::env::var("SWIFT_FAULTS_SECONDS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
    {
        shape.during = Duration::from_secs_f64(s);
        shape.before = Duration::from_secs_f64((s / 4.0).max(0.5));
    }
    let json_path = std::env::var_os("SWIFT_FAULTS_JSON").map(PathBuf::from);
    let emit = |v: serde_json::Value| {
        if let Some(p) = &json_path {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .expect("open SWIFT_FAULTS_JSON");
            writeln!(f, "{v}").expect("write SWIFT_FAULTS_JSON");
        }
    };
    let mut cluster = fault_cluster(binary.clone(), true);
    for o in load_scenarios(&mut cluster, &proxy, &shape) {
        emit(o.json());
    }
    drop(cluster);
    let mut cluster = fault_cluster(binary, false);
    let client = Client::login(cluster.proxy_addr());
    let (path, body) = large_object(&client, &shape);
    for sig in [Signal::SIGKILL, Signal::SIGSTOP] {
        emit(resumed_get(&mut cluster, &client, &proxy, &path, &body, sig).json());
    }
    for o in clients_that_go_away(&cluster, &client, &proxy, &path) {
        emit(o.json());
    }
}
