//! Reloads without dropping a request (issue 4): `swift-init reload` and
//! `reload-seamless`, `swift-reload`, and what systemd relies on, with our
//! real proxy under a bounded load (`swift_tests::load`).
//!
//! Each test has its own scratch layout (swift dir, run dir, and a `bin/`
//! holding our swift-init and a link to our proxy: Swift's swift-reload
//! only accepts servers run from a `/bin/` directory) and its own port, and
//! ends every process it started (by pid, found through its scratch path).

use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use swift_tests::init::{Layout, Out, run_out};
use swift_tests::load::{Counts, Load};
use swift_tests::{bin, children_of, free_port, http, pid_alive, raw_request, scratch, wait_until};

const SEC: Duration = Duration::from_secs(1);
/// Workers of every test server.
const WORKERS: usize = 2;
/// Reloads of each kind under load.
const RELOADS: usize = 10;
/// Keep-alive clients of the load.
const KEEPALIVE_CLIENTS: usize = 3;

/// One of our proxies managed by our swift-init in a scratch layout.
struct Rig {
    l: Layout,
    port: u16,
    addr: SocketAddr,
}

impl Rig {
    /// A layout with our proxy (not started) on a free port.
    fn new() -> Rig {
        let l = Layout::new(&[]);
        l.link("swift-proxy-server", &bin("swift-proxy-server"));
        Rig::on(l)
    }

    /// A layout of `l`'s servers, with our proxy's config on a free port.
    fn on(l: Layout) -> Rig {
        let port = free_port();
        let rig = Rig {
            l,
            port,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        rig.write_conf("", "");
        rig.write_swift_conf("");
        rig
    }

    fn conf(&self) -> PathBuf {
        self.l.etc.join("proxy-server.conf")
    }

    /// Write proxy-server.conf: `default` and `healthcheck` are extra lines
    /// for `[DEFAULT]` and `[filter:healthcheck]`.
    fn write_conf(&self, default: &str, healthcheck: &str) {
        let text = format!(
            "[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = {port}\nworkers = {WORKERS}\nuser =\n\
             swift_dir = {etc}\nbind_timeout = 1\nlog_file = {root}/proxy.log\n{default}\n\n\
             [pipeline:main]\npipeline = catch_errors gatekeeper healthcheck proxy-logging proxy-server\n\n\
             [app:proxy-server]\nuse = egg:swift#proxy\n\n\
             [filter:catch_errors]\nuse = egg:swift#catch_errors\n\n\
             [filter:gatekeeper]\nuse = egg:swift#gatekeeper\n\n\
             [filter:healthcheck]\nuse = egg:swift#healthcheck\n{healthcheck}\n\n\
             [filter:proxy-logging]\nuse = egg:swift#proxy_logging\n",
            port = self.port,
            etc = self.l.etc.display(),
            root = self.l.root.display(),
        );
        swift_tests::write_file(&self.l.etc, "proxy-server.conf", &text);
    }

    /// Write swift.conf with `constraints` lines in `[swift-constraints]`.
    fn write_swift_conf(&self, constraints: &str) {
        let text = format!(
            "[swift-hash]\nswift_hash_path_suffix = e2e\nswift_hash_path_prefix = e2e\n\n\
             [swift-constraints]\n{constraints}\n"
        );
        swift_tests::write_file(&self.l.etc, "swift.conf", &text);
        swift_tests::server::make_rings(&self.l.etc);
    }

    /// Our swift-init (`bin/swift-init`, which finds the proxy beside it)
    /// on this layout.
    fn init(&self, args: &[&str]) -> Out {
        self.l.ours(args)
    }

    fn start(&self) -> i32 {
        let o = self.init(&["proxy", "start"]);
        assert_eq!(o.code, 0, "{o}");
        let pid = self.master();
        assert!(healthy(self.addr), "{}", self.log());
        pid
    }

    /// The pid in the pid file.
    fn master(&self) -> i32 {
        self.l.pid("proxy-server.pid").expect("a pid file")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.l.root.join("proxy.log")).unwrap_or_default()
    }

    /// Every live process running our proxy with this layout's config.
    fn processes(&self) -> Vec<i32> {
        let conf = self.conf().display().to_string();
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let is_proxy = args.iter().any(|a| a.ends_with("/swift-proxy-server"));
            if is_proxy && args.contains(&conf) && pid_alive(pid) {
                out.push(pid);
            }
        }
        out.sort();
        out
    }

    /// The pid file names a live master with exactly `WORKERS` children,
    /// and no other process of this server is left (an old master or
    /// worker still draining is given `within` to finish).
    fn assert_settled(&self, within: Duration) {
        let settled = || {
            let master = self.master();
            if !pid_alive(master) {
                return Err(format!("the pid file names {master}, which is not running"));
            }
            let workers = children_of(master);
            if workers.len() != WORKERS {
                return Err(format!("master {master} has children {workers:?}"));
            }
            let strays: Vec<i32> = self
                .processes()
                .into_iter()
                .filter(|p| *p != master && !workers.contains(p))
                .collect();
            if !strays.is_empty() {
                return Err(format!(
                    "stray processes {strays:?} beside master {master} and workers {workers:?}"
                ));
            }
            Ok(())
        };
        let mut last = String::new();
        let ok = wait_until(within, || match settled() {
            Ok(()) => Some(()),
            Err(e) => {
                last = e;
                None
            }
        });
        assert!(ok.is_some(), "{last}\n{}", self.log());
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        // Everything running this layout's config was started by this test.
        for pid in self.processes() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

fn healthy(addr: SocketAddr) -> bool {
    matches!(http(addr, "GET", "/healthcheck"), Ok(r) if r.status == 200 && r.body == b"OK")
}

/// A load on `/healthcheck` of `rig`.
fn load(rig: &Rig) -> Load {
    Load::start(rig.addr, "/healthcheck", b"OK", KEEPALIVE_CLIENTS)
}

/// Stop the load and check nothing failed and it made progress.
fn assert_lossless(load: Load, what: &str, at_least: u64) -> Counts {
    let c = load.stop();
    eprintln!("{what}: {c:?}");
    assert_eq!(c.failures(), 0, "{what}: failed requests: {c:#?}");
    assert!(c.ok >= at_least, "{what}: only {} requests served", c.ok);
    c
}

/// Output lines without the warnings of a start that cannot raise the
/// resource limits (non-root, or a container).
fn without_limit_warnings(o: &Out) -> Vec<&str> {
    o.lines()
        .into_iter()
        .filter(|l| {
            !(l.starts_with("WARNING: Unable to modify") && l.ends_with("Running as non-root?"))
        })
        .collect()
}

// ----- under load -----

#[test]
fn seamless_reloads_under_load_lose_nothing() {
    let rig = Rig::new();
    let master = rig.start();
    let load = load(&rig);
    wait_until(5 * SEC, || (load.counts().ok > 50).then_some(())).expect("load runs");
    for i in 0..RELOADS {
        let before = load.counts().ok;
        let o = rig.init(&["proxy", "reload-seamless"]);
        assert_eq!(o.code, 0, "reload {i}: {o}\n{}", rig.log());
        assert_eq!(
            o.lines(),
            [
                format!("Signal proxy-server  pid: {master}  signal: 10"),
                format!("proxy-server ({master}) reloaded"),
            ],
            "{o}"
        );
        // Same master, serving all along.
        assert_eq!(rig.master(), master);
        wait_until(5 * SEC, || (load.counts().ok > before + 100).then_some(()))
            .expect("requests are served after the reload");
    }
    let c = assert_lossless(load, "reload-seamless", 20 * RELOADS as u64);
    assert!(
        c.closed_after_close > 0,
        "the old workers closed no keep-alive connection: {c:?}"
    );
    rig.assert_settled(10 * SEC);
    assert_eq!(rig.master(), master);
}

#[test]
fn graceful_reloads_under_load_lose_nothing() {
    let rig = Rig::new();
    let mut master = rig.start();
    let load = load(&rig);
    wait_until(5 * SEC, || (load.counts().ok > 50).then_some(())).expect("load runs");
    for i in 0..RELOADS {
        let before = load.counts().ok;
        let o = rig.init(&["proxy", "reload", "-v"]);
        assert_eq!(o.code, 0, "reload {i}: {o}\n{}", rig.log());
        let new = rig.master();
        assert_ne!(new, master, "{o}");
        let conf = rig.conf();
        assert_eq!(
            without_limit_warnings(&o),
            [
                format!("Starting proxy-server...({})", conf.display()),
                format!(
                    "Handing the listening socket of proxy-server ({master}) to the new server"
                ),
                format!("Signal proxy-server  pid: {master}  signal: 1"),
                format!("proxy-server ({master}) appears to have stopped"),
            ],
            "reload {i}: {o}"
        );
        assert!(
            !pid_alive(master),
            "reload {i}: old master {master} still runs"
        );
        master = new;
        wait_until(5 * SEC, || (load.counts().ok > before + 100).then_some(()))
            .expect("requests are served after the reload");
    }
    let c = assert_lossless(load, "reload", 20 * RELOADS as u64);
    assert!(
        c.closed_after_close > 0,
        "the old servers closed no keep-alive connection: {c:?}"
    );
    rig.assert_settled(10 * SEC);
    assert_eq!(rig.master(), master);
}

// ----- failed reloads, config changes, signals -----

#[test]
fn broken_config_keeps_the_old_server_serving() {
    let rig = Rig::new();
    let master = rig.start();
    let load = load(&rig);
    wait_until(5 * SEC, || (load.counts().ok > 50).then_some(())).expect("load runs");
    let conf = rig.conf().display().to_string();
    rig.write_conf("log_level = LOUD", "");
    let named = |l: &str| l.contains(&conf) && l.contains("log_level") && l.contains("LOUD");

    let o = rig.init(&["proxy", "reload-seamless"]);
    assert_eq!(o.code, 1, "{o}");
    let prefix = format!("proxy-server ({master}) reload failed: ");
    assert!(
        o.lines().iter().any(|l| l.starts_with(&prefix) && named(l)),
        "{o}"
    );
    assert!(healthy(rig.addr));

    let o = rig.init(&["proxy", "reload"]);
    assert_eq!(o.code, 1, "{o}");
    assert!(o.lines().iter().any(|l| named(l)), "{o}");
    assert!(
        o.has(&format!(
            "proxy-server ({master}) keeps running: the new server did not start"
        )),
        "{o}"
    );
    assert_eq!(rig.master(), master);

    // A config that passes the checks but cannot start: the port it names
    // is taken by a socket without SO_REUSEPORT. (reload-seamless is left
    // out: see server_bug_reload_to_a_busy_port_keeps_serving.)
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy_port = busy.local_addr().expect("addr").port();
    let text = std::fs::read_to_string(rig.conf()).expect("read conf");
    let moved = text.replace("log_level = LOUD", "").replace(
        &format!("bind_port = {}", rig.port),
        &format!("bind_port = {busy_port}"),
    );
    swift_tests::write_file(&rig.l.etc, "proxy-server.conf", &moved);
    let o = rig.init(&["proxy", "reload"]);
    assert_eq!(o.code, 1, "{o}");
    assert!(o.has_prefix("proxy-server ("), "{o}");
    assert!(
        o.has(&format!(
            "proxy-server ({master}) keeps running: the new server did not start"
        )),
        "{o}"
    );
    drop(busy);

    // Fixed: both reloads work again.
    rig.write_conf("", "");
    let o = rig.init(&["proxy", "reload-seamless"]);
    assert_eq!(o.code, 0, "{o}");
    let o = rig.init(&["proxy", "reload"]);
    assert_eq!(o.code, 0, "{o}");
    assert_lossless(load, "broken config", 50);
    rig.assert_settled(10 * SEC);
}

/// A request with one header line of exactly `len` bytes.
fn long_header_status(addr: SocketAddr, len: usize) -> u16 {
    let line = format!("X-Long: {}", "a".repeat(len - "X-Long: ".len()));
    let req =
        format!("GET /healthcheck HTTP/1.1\r\nHost: x\r\n{line}\r\nConnection: close\r\n\r\n");
    raw_request(addr, req.as_bytes(), 10 * SEC)
        .expect("a response")
        .status
}

#[test]
fn config_changes_take_effect_after_each_kind_of_reload() {
    let rig = Rig::new();
    rig.start();
    let disabled = swift_tests::write_file(&rig.l.root, "disabled", "");
    let get = || http(rig.addr, "GET", "/healthcheck").expect("a response");
    for kind in ["reload-seamless", "reload"] {
        let reload = || {
            let o = rig.init(&["proxy", kind]);
            assert_eq!(o.code, 0, "{kind}: {o}");
            rig.assert_settled(10 * SEC);
        };
        rig.write_conf("", &format!("disable_path = {}", disabled.display()));
        // Not before the reload.
        assert_eq!(get().status, 200);
        reload();
        let r = get();
        assert_eq!(
            (r.status, r.body_str().as_str()),
            (503, "DISABLED BY FILE"),
            "{kind}"
        );
        rig.write_conf("", "");
        reload();
        assert_eq!(get().status, 200, "{kind}");

        assert_eq!(long_header_status(rig.addr, 2048), 200, "{kind}");
        rig.write_swift_conf("max_header_size = 2048");
        reload();
        assert_eq!(long_header_status(rig.addr, 2048), 400, "{kind}");
        rig.write_swift_conf("");
        reload();
        assert_eq!(long_header_status(rig.addr, 2048), 200, "{kind}");
    }
}

/// Swift's notification socket for `pid`, bound by the test.
fn notifications(pid: i32) -> UnixDatagram {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("swift-notifications\0{pid}");
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name).expect("name");
    let sock = UnixDatagram::bind_addr(&addr).expect("bind the notification socket");
    sock.set_read_timeout(Some(SEC / 10)).expect("timeout");
    sock
}

/// Datagrams from `sock` until `enough` says so or `timeout` passes.
fn datagrams(
    sock: &UnixDatagram,
    timeout: Duration,
    enough: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !enough(&got) && Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    got
}

fn readies(got: &[String]) -> usize {
    got.iter()
        .filter(|d| d.lines().any(|l| l == "READY=1"))
        .count()
}

#[test]
fn second_sigusr1_during_a_reload_is_queued() {
    let rig = Rig::new();
    let master = rig.start();
    let sock = notifications(master);
    let signal =
        |sig| nix::sys::signal::kill(nix::unistd::Pid::from_raw(master), sig).expect("kill");
    signal(Signal::SIGUSR1);
    let got = datagrams(&sock, 10 * SEC, |g| {
        g.iter().any(|d| d.starts_with("RELOADING=1"))
    });
    assert!(!got.is_empty(), "no RELOADING=1\n{}", rig.log());
    // While that reload runs.
    signal(Signal::SIGUSR1);
    let got = datagrams(&sock, 20 * SEC, |g| readies(g) >= 2);
    assert_eq!(readies(&got), 2, "{got:?}\n{}", rig.log());
    for d in got.iter().filter(|d| d.starts_with("READY=1")) {
        assert!(!d.contains("Reload failed"), "{d}");
    }
    assert_eq!(rig.master(), master);
    assert!(healthy(rig.addr));
    rig.assert_settled(10 * SEC);
}

#[test]
fn a_signalled_worker_alone_is_replaced() {
    let rig = Rig::new();
    let master = rig.start();
    for sig in [Signal::SIGUSR1, Signal::SIGHUP] {
        let workers = wait_until(10 * SEC, || {
            let w = children_of(master);
            (w.len() == WORKERS).then_some(w)
        })
        .expect("workers");
        let (target, other) = (workers[0], workers[1]);
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(target), sig).expect("kill");
        let now = wait_until(10 * SEC, || {
            let w = children_of(master);
            (w.len() == WORKERS && !w.contains(&target)).then_some(w)
        })
        .unwrap_or_else(|| panic!("{sig}: worker {target} not replaced\n{}", rig.log()));
        assert!(now.contains(&other), "{sig}: {other} went too: {now:?}");
        assert!(!pid_alive(target), "{sig}");
        assert!(healthy(rig.addr));
        assert_eq!(rig.master(), master);
    }
    rig.assert_settled(10 * SEC);
}

/// A seamless reload to a config whose port cannot be bound keeps the old
/// workers serving and reports the failure (the re-executed master cannot
/// know before it tries to bind; exiting would be an outage, wart 21).
#[test]
fn reload_seamless_to_a_busy_port_keeps_serving() {
    let rig = Rig::new();
    let master = rig.start();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy_port = busy.local_addr().expect("addr").port();
    rig.write_conf("", "");
    let text = std::fs::read_to_string(rig.conf()).expect("read conf");
    let moved = text.replace(
        &format!("bind_port = {}", rig.port),
        &format!("bind_port = {busy_port}"),
    );
    swift_tests::write_file(&rig.l.etc, "proxy-server.conf", &moved);
    let o = rig.init(&["proxy", "reload-seamless"]);
    assert!(pid_alive(master), "the server died: {o}\n{}", rig.log());
    assert!(healthy(rig.addr), "{o}");
    assert_eq!(o.code, 1, "{o}");
    assert!(
        o.has_prefix(&format!("proxy-server ({master}) reload failed: ")),
        "{o}"
    );
    drop(busy);
}

// ----- swift-reload -----

/// A fake Swift server for swift-reload's failure paths: passes
/// `--test-config`, and on SIGUSR1 does what its mode file says (`ok`:
/// `READY=1`; `fail`: `READY=1` with a failed status; `die`: exit;
/// `silent`: nothing).
const FAKE_SERVER: &str = r#"
import os, signal, socket, sys
if '--test-config' in sys.argv:
    sys.exit(0)
os.setsid()
def on_usr1(sig, frame):
    addr = '\0swift-notifications\0%d' % os.getpid()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.sendto(b'RELOADING=1', addr)
    mode = open(sys.argv[1]).read().strip()
    if mode == 'ok':
        s.sendto(b'READY=1', addr)
    elif mode == 'fail':
        s.sendto(b'READY=1\nSTATUS=Reload failed: simulated trouble', addr)
    elif mode == 'die':
        os._exit(1)
signal.signal(signal.SIGUSR1, on_usr1)
print('ready', flush=True)
while True:
    signal.pause()
"#;

/// A running fake server named `name` under `<dir>/bin/`, run by python3.
struct Fake {
    proc: swift_tests::Proc,
    mode: PathBuf,
}

impl Fake {
    fn start(dir: &Path, name: &str) -> Fake {
        use std::io::BufRead;
        let script = swift_tests::write_file(dir, &format!("bin/{name}"), FAKE_SERVER);
        let mode = swift_tests::write_file(dir, "mode", "ok");
        let mut cmd = Command::new(swift_tests::init::python3());
        cmd.arg(&script).arg(&mode);
        let mut proc = swift_tests::Proc::spawn(&mut cmd);
        let stdout = proc.child.stdout.take().expect("stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the fake server starts");
        assert_eq!(line, "ready\n");
        Fake { proc, mode }
    }

    fn set_mode(&self, mode: &str) {
        std::fs::write(&self.mode, mode).expect("write mode");
    }

    fn pid(&self) -> String {
        self.proc.pid().to_string()
    }
}

fn swift_reload(args: &[&str]) -> Out {
    run_out(Command::new(bin("swift-reload")).args(args))
}

fn python_swift_reload(args: &[&str]) -> Out {
    run_out(swift_tests::python_swift("swift-reload").args(args))
}

#[test]
fn swift_reload_reloads_our_server() {
    let rig = Rig::new();
    let master = rig.start();
    let pid = master.to_string();
    let o = swift_reload(&[&pid]);
    assert_eq!(
        (o.code, o.stdout.as_str(), o.stderr.as_str()),
        (0, "Reloaded swift-proxy-server\n", ""),
        "{o}"
    );
    let o = swift_reload(&["-v", &pid]);
    assert_eq!(o.code, 0, "{o}");
    let lines = o.lines();
    assert_eq!(
        lines[..3],
        [
            "Checking config for swift-proxy-server",
            "Sending USR1 signal",
            "Process is RELOADING"
        ],
        "{o}"
    );
    assert!(
        lines[3].starts_with("Received notification b'MONOTONIC_USEC="),
        "{o}"
    );
    assert_eq!(
        lines[4..],
        [
            "Process is READY",
            "Received notification b'STATUS=Reloaded: serving with the new configuration'",
            "Reloaded swift-proxy-server"
        ],
        "{o}"
    );
    // Python's swift-reload works with our server too.
    let o = python_swift_reload(&[&pid]);
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "Reloaded swift-proxy-server\n"),
        "{o}"
    );
    let o = swift_reload(&["-w", &pid]);
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "Reloaded swift-proxy-server\n"),
        "{o}"
    );
    rig.assert_settled(10 * SEC);
    assert!(healthy(rig.addr));

    // A broken config: the check fails, nothing is signalled.
    rig.write_conf("log_level = LOUD", "");
    let o = swift_reload(&[&pid]);
    assert_eq!(o.code, 1, "{o}");
    assert!(o.stderr.contains("log_level"), "{o}");
    assert_eq!(
        o.stderr.lines().last(),
        Some("Failed to validate config"),
        "{o}"
    );
    assert_eq!(rig.master(), master);
    assert!(healthy(rig.addr));
    // Busy: someone else waits on this server's notifications.
    rig.write_conf("", "");
    let taken = notifications(master);
    let o = swift_reload(&[&pid]);
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (
            1,
            "Could not bind notification socket: [Errno 98] Address already in use\n"
        ),
        "{o}"
    );
    drop(taken);
}

#[test]
fn swift_reload_reports_failed_dead_and_silent_reloads() {
    let dir = scratch();
    let fake = Fake::start(dir.path(), "swift-proxy-server");
    let pid = fake.pid();
    let o = swift_reload(&[&pid]);
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "Reloaded swift-proxy-server\n"),
        "{o}"
    );
    // Reported as failed: exit 1 with the reason (Swift would say
    // "Reloaded": it looks for READY=1 only).
    fake.set_mode("fail");
    let o = swift_reload(&[&pid]);
    assert_eq!(
        (o.code, o.stdout.as_str(), o.stderr.as_str()),
        (
            1,
            "",
            "Failed to reload swift-proxy-server: simulated trouble\n"
        ),
        "{o}"
    );
    // No answer: Swift's timeout message and exit code, from both.
    fake.set_mode("silent");
    for o in [
        swift_reload(&["-t", "0.3", &pid]),
        python_swift_reload(&["-t", "0.3", &pid]),
    ] {
        assert_eq!(
            (o.code, o.stderr.as_str()),
            (238, "Timed out reloading swift-proxy-server\n"),
            "{o}"
        );
    }
    // Dies while reloading: noticed at once (Swift waits for the timeout).
    fake.set_mode("die");
    let started = Instant::now();
    let o = swift_reload(&[&pid]);
    assert_eq!(
        (o.code, o.stderr),
        (
            1,
            format!("Failed to reload swift-proxy-server: process {pid} exited\n")
        ),
    );
    assert!(started.elapsed() < 10 * SEC);
}

#[test]
fn swift_reload_rejects_what_swift_rejects() {
    let rig = Rig::new();
    let master = rig.start();
    let worker = wait_until(10 * SEC, || children_of(master).first().copied()).expect("a worker");
    let dir = scratch();
    let auditor = Fake::start(dir.path(), "swift-object-auditor");
    let mut sleeper = swift_tests::Proc::spawn(Command::new("/bin/sleep").arg("60"));
    let dead = {
        let mut c = Command::new("true").spawn().expect("spawn true");
        let pid = c.id();
        c.wait().expect("wait");
        pid.to_string()
    };
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            vec![dead.clone()],
            format!("Failed to get process information for {dead}\n"),
        ),
        (
            vec!["0".into()],
            "Failed to get process information for 0\n".into(),
        ),
        (
            vec!["-5".into()],
            "Failed to get process information for -5\n".into(),
        ),
        (
            vec![sleeper.pid().to_string()],
            "Non-swift process: '/bin/sleep 60'\n".into(),
        ),
        (
            vec![auditor.pid()],
            "Process does not support config checks: swift-object-auditor\n".into(),
        ),
        (
            vec![worker.to_string()],
            format!(
                "Process appears to be a swift-proxy-server worker, not a manager. Did you mean {master}?\n"
            ),
        ),
    ];
    for (args, stderr) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        for (who, o) in [
            ("ours", swift_reload(&args)),
            ("Swift's", python_swift_reload(&args)),
        ] {
            assert_eq!(
                (o.code, o.stderr.as_str(), o.stdout.as_str()),
                (2, stderr.as_str(), ""),
                "{who} {args:?}: {o}"
            );
        }
    }
    // Usage errors: exit 2 and argparse's message (Swift's usage shows its
    // docstring where the program name belongs).
    for (args, msg) in [
        (&[][..], "error: the following arguments are required: pid"),
        (
            &["abc"][..],
            "error: argument pid: invalid int value: 'abc'",
        ),
        (
            &["-t", "1", "-w", "5"][..],
            "error: argument -w/--no-wait: not allowed with argument -t/--timeout",
        ),
        (&["5", "6"][..], "error: unrecognized arguments: 6"),
    ] {
        for (who, o) in [
            ("ours", swift_reload(args)),
            ("Swift's", python_swift_reload(args)),
        ] {
            assert_eq!(o.code, 2, "{who} {args:?}: {o}");
            let last = o.stderr.lines().last().unwrap_or_default();
            assert!(last.ends_with(msg), "{who} {args:?}: {o}");
        }
    }
    let o = swift_reload(&["-h"]);
    assert_eq!(o.code, 0);
    assert!(
        o.stdout
            .starts_with("usage: swift-reload [-h] [-t TIMEOUT | -w] [-v] pid\n"),
        "{o}"
    );
    sleeper.signal(Signal::SIGKILL);
    let _ = sleeper.wait_timeout(10 * SEC);
    // Nothing was signalled.
    assert!(pid_alive(master) && pid_alive(worker));
}

// ----- systemd -----

/// One datagram from a `$NOTIFY_SOCKET` bound with SO_PASSCRED: the
/// sender's pid and the text.
fn recv_with_sender(sock: &UnixDatagram) -> Option<(i32, String)> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, UnixAddr, UnixCredentials, recvmsg};
    use std::os::fd::AsRawFd;
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!(UnixCredentials);
    let msg = recvmsg::<UnixAddr>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .ok()?;
    let pid = msg.cmsgs().ok()?.find_map(|c| match c {
        ControlMessageOwned::ScmCredentials(cred) => Some(cred.pid()),
        _ => None,
    });
    let len = msg.bytes;
    Some((
        pid.unwrap_or(0),
        String::from_utf8_lossy(&buf[..len]).into_owned(),
    ))
}

fn monotonic_usec() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("clock");
    ts.tv_sec() as u64 * 1_000_000 + ts.tv_nsec() as u64 / 1_000
}

#[test]
fn systemd_hears_ready_reloading_ready_stopping_from_the_master_only() {
    use nix::sys::socket::{setsockopt, sockopt::PassCred};
    let dir = scratch();
    let port = free_port();
    let conf = swift_tests::server::proxy_conf(
        dir.path(),
        port,
        &format!("workers = {WORKERS}\nuser ="),
        None,
    );
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).expect("bind NOTIFY_SOCKET");
    setsockopt(&sock, PassCred, &true).expect("SO_PASSCRED");
    sock.set_read_timeout(Some(SEC / 10)).expect("timeout");
    let mut got: Vec<(i32, String)> = Vec::new();
    let wait_for = |got: &mut Vec<(i32, String)>, prefix: &str| {
        let found = wait_until(20 * SEC, || {
            if let Some(d) = recv_with_sender(&sock) {
                got.push(d);
            }
            got.last()
                .filter(|(_, t)| t.starts_with(prefix))
                .map(|_| ())
        });
        assert!(found.is_some(), "no {prefix} in {got:?}");
    };

    let mut cmd = Command::new(bin("swift-proxy-server"));
    cmd.arg(&conf).env("NOTIFY_SOCKET", &path);
    let mut server = swift_tests::server::Server::spawn(cmd, port).expect("the server starts");
    let master = server.master();
    wait_for(&mut got, "READY=1");
    let before = monotonic_usec();
    server.signal(Signal::SIGUSR1);
    wait_for(&mut got, "RELOADING=1");
    let after = monotonic_usec();
    wait_for(&mut got, "READY=1");
    assert!(healthy(server.addr));
    server.signal(Signal::SIGTERM);
    wait_for(&mut got, "STOPPING=1");
    assert!(
        server.wait_exit(10 * SEC).is_some(),
        "the server did not stop"
    );

    let kinds: Vec<&str> = got
        .iter()
        .map(|(_, t)| t.lines().next().unwrap_or_default())
        .collect();
    assert_eq!(
        kinds,
        ["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"],
        "{got:?}"
    );
    // Workers (and any helper process) never notify.
    for (pid, text) in &got {
        assert_eq!(
            *pid, master,
            "{text:?} came from {pid}, not the master {master}"
        );
    }
    // systemd needs MONOTONIC_USEC with RELOADING=1, from the time of the
    // signal.
    let usec: u64 = got[1]
        .1
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {:?}", got[1].1));
    assert!(
        (before..=after).contains(&usec),
        "{before} <= {usec} <= {after}"
    );
}

/// The unit file as `systemd-analyze verify` sees it, with our built
/// binaries where it names /usr/bin. Skipped when systemd-analyze is not
/// installed.
#[test]
fn systemd_unit_verifies() {
    let unit = swift_tests::workspace_root().join("etc/systemd/swift-proxy.service");
    let text = std::fs::read_to_string(&unit).expect("the unit file");
    for line in [
        "Type=notify",
        "NotifyAccess=main",
        "ExecStart=/usr/bin/swift-proxy-server /etc/swift/proxy-server.conf",
        "ExecReload=/usr/bin/swift-reload $MAINPID",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no {line:?} in {}",
            unit.display()
        );
    }
    let Ok(analyze) = which("systemd-analyze") else {
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    };
    let dir = scratch();
    let local = text.replace(
        "/usr/bin/",
        &format!("{}/", swift_tests::bin_dir().display()),
    );
    let path = swift_tests::write_file(dir.path(), "swift-proxy.service", &local);
    // The man pages are this project's, not installed here.
    let o = run_out(
        Command::new(analyze)
            .args(["verify", "--man=no"])
            .arg(&path),
    );
    let ours: Vec<&str> = o
        .stderr
        .lines()
        .chain(o.stdout.lines())
        .filter(|l| l.contains("swift-proxy.service"))
        .collect();
    assert!(o.code == 0 && ours.is_empty(), "{o}");
}

fn which(name: &str) -> Result<PathBuf, ()> {
    for dir in ["/usr/bin", "/bin", "/usr/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return Ok(p);
        }
    }
    Err(())
}

// ----- what the servers inherit -----

/// The targets of `pid`'s fds (`/dev/null`, `socket:[123]`, ...).
fn fd_targets(pid: i32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|p| p.display().to_string())
        .collect()
}

/// The inode of the socket listening on 127.0.0.1:`port`.
fn listening_inode(port: u16) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let local = format!("0100007F:{port:04X}");
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&local.as_str()) && f.get(3) == Some(&"0A"))
            .then(|| f.get(9).map(|s| s.to_string()))?
    })
}

#[test]
fn servers_inherit_only_stdio_and_the_handed_over_socket() {
    let rig = Rig::new();
    let marker = swift_tests::write_file(&rig.l.root, "marker", "");
    // swift-init run with stray inheritable fds, as from a shell.
    let with_stray_fds = |args: &[&str]| {
        let mut cmd = Command::new("/bin/bash");
        cmd.arg("-c")
            .arg(r#"exec 7<"$MARKER" 250<"$MARKER"; exec "$@""#)
            .arg("bash")
            .arg(rig.l.bin.join("swift-init"))
            .args(args)
            .arg("--swift-dir")
            .arg(&rig.l.etc)
            .arg("-r")
            .arg(&rig.l.run)
            .env_clear()
            .env("MARKER", &marker)
            .env("PATH", "/usr/bin:/bin");
        run_out(&mut cmd)
    };
    let check = |what: &str| {
        let master = rig.master();
        let mut pids = children_of(master);
        pids.push(master);
        let marker = marker.display().to_string();
        for pid in pids {
            let fds = fd_targets(pid);
            assert!(
                !fds.contains(&marker),
                "{what}: {pid} inherited a stray fd: {fds:?}"
            );
        }
        // One copy of the listening socket in the master: the handed-over
        // one was adopted, not kept beside another.
        let inode = listening_inode(rig.port).expect("a listening socket");
        let socket = format!("socket:[{inode}]");
        let copies = fd_targets(master).iter().filter(|t| **t == socket).count();
        assert_eq!(copies, 1, "{what}: {:?}", fd_targets(master));
    };
    let o = with_stray_fds(&["proxy", "start"]);
    assert_eq!(o.code, 0, "{o}");
    rig.assert_settled(10 * SEC);
    check("start");
    let first = listening_inode(rig.port);
    let o = with_stray_fds(&["proxy", "reload"]);
    assert_eq!(o.code, 0, "{o}");
    rig.assert_settled(10 * SEC);
    check("reload");
    // The very socket the first server listened on.
    assert_eq!(listening_inode(rig.port), first);
}

// ----- Python-style servers (scripts): start, then stop -----

#[test]
fn reload_of_a_script_server_starts_the_new_one_before_stopping_the_old() {
    let l = Layout::new(&["proxy-server"]);
    l.conf("proxy-server.conf", "");
    assert_eq!(l.ours(&["proxy", "start"]).code, 0);
    let old = l.pid("proxy-server.pid").expect("pid");
    let o = l.ours(&["proxy", "reload", "-v"]);
    assert_eq!(o.code, 0, "{o}");
    let new = l.pid("proxy-server.pid").expect("pid");
    assert_ne!(new, old);
    // No socket is handed to a script.
    assert!(!o.stdout.contains("listening socket"), "{o}");
    let events = l.events();
    let at = |kind: &str, pid: i32| {
        events
            .iter()
            .position(|e| e.kind == kind && e.pid == pid)
            .unwrap_or_else(|| panic!("no {kind} of {pid}: {events:?}"))
    };
    assert!(at("ready", new) < at("signal", old), "{events:?}");
    assert_eq!(events[at("signal", old)].rest, ["HUP"]);

    // A new server that fails leaves the old one alone.
    l.conf("proxy-server.conf", "standin_mode = fail");
    let o = l.ours(&["proxy", "reload"]);
    assert_eq!(o.code, 1, "{o}");
    assert!(o.has_prefix("standin: cannot use config "), "{o}");
    assert!(
        o.has(&format!(
            "proxy-server ({new}) keeps running: the new server did not start"
        )),
        "{o}"
    );
    assert_eq!(l.pid("proxy-server.pid"), Some(new));
    assert!(pid_alive(new));
    assert!(!l.events_of("signal").iter().any(|e| e.pid == new));

    // Not running: started, and (as Swift's stop would) "No ... running"
    // fails the command.
    l.conf("proxy-server.conf", "");
    assert_eq!(l.ours(&["proxy", "stop"]).code, 0);
    let o = l.ours(&["proxy", "reload"]);
    assert_eq!(o.code, 1, "{o}");
    assert!(o.has("No proxy-server running"), "{o}");
    assert!(l.pid("proxy-server.pid").is_some_and(pid_alive), "{o}");
    assert_eq!(l.ours(&["proxy", "stop"]).code, 0);
}

#[test]
fn no_socket_is_taken_from_a_python_server() {
    // Python Swift's master shuts its listening socket down when it stops:
    // a new server sharing that socket would stop serving with it. So an
    // upgrade from Python's proxy to ours binds a socket of its own.
    let l = Layout::new(&[]);
    l.link(
        "swift-proxy-server",
        &swift_tests::swift_venv().join("bin/swift-proxy-server"),
    );
    let rig = Rig::on(l);
    let me = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .expect("current user")
        .name;
    let text = std::fs::read_to_string(rig.conf()).expect("conf");
    swift_tests::write_file(
        &rig.l.etc,
        "proxy-server.conf",
        &text.replace("user =\n", &format!("user = {me}\n")),
    );
    let old = rig.start();
    std::fs::remove_file(rig.l.bin.join("swift-proxy-server")).expect("rm");
    rig.l.link("swift-proxy-server", &bin("swift-proxy-server"));
    let o = rig.init(&["proxy", "reload", "-v"]);
    assert_eq!(o.code, 0, "{o}\n{}", rig.log());
    assert!(!o.stdout.contains("listening socket"), "{o}");
    assert!(
        o.has(&format!("Signal proxy-server  pid: {old}  signal: 1")),
        "{o}"
    );
    assert_ne!(rig.master(), old);
    rig.assert_settled(20 * SEC);
    assert!(healthy(rig.addr));
}
