//! Running a server binary the way swift-init does: spawn it with stdout on
//! a pipe and wait (bounded) for the pipe to close, which is the server's
//! "I am up" signal. Also: scratch Swift configs, a syslog socket the test
//! reads, the unprivileged test user, and /proc lookups of credentials.

use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::{Proc, bin, children_of, pid_alive, wait_until, write_file};

/// The unprivileged user the privilege-drop tests run workers as.
pub const TEST_USER: &str = "swift-e2e";

/// Whether the tests run as root (CI does; privilege tests need it).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Make sure [`TEST_USER`] exists (creating it with useradd when root) and
/// return its (uid, gid).
pub fn test_user() -> (u32, u32) {
    let lookup = || nix::unistd::User::from_name(TEST_USER).ok().flatten();
    if lookup().is_none() {
        let out = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                TEST_USER,
            ])
            .output()
            .expect("run useradd");
        // Another test binary may have created it in the meantime.
        assert!(
            out.status.success() || lookup().is_some(),
            "useradd {TEST_USER} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let user = lookup().expect("test user exists");
    (user.uid.as_raw(), user.gid.as_raw())
}

/// Real and effective uid and gid of a process, from /proc.
pub fn proc_ids(pid: i32) -> Option<((u32, u32), (u32, u32))> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<(u32, u32)> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let mut it = line
            .split_whitespace()
            .skip(1)
            .map(|v| v.parse::<u32>().ok());
        Some((it.next()??, it.next()??))
    };
    Some((field("Uid:")?, field("Gid:")?))
}

/// What fd `fd` of `pid` points at (`pipe:[123]`, `/dev/null`, ...).
pub fn proc_fd(pid: i32, fd: i32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
        .ok()
        .map(|p| p.display().to_string())
}

/// Write `swift.conf` and `proxy-server.conf` into `dir`. `default` is extra
/// `[DEFAULT]` lines; the pipeline is Swift's sample one unless given.
pub fn proxy_conf(dir: &Path, port: u16, default: &str, pipeline: Option<&str>) -> PathBuf {
    write_file(
        dir,
        "swift.conf",
        "[swift-hash]\nswift_hash_path_suffix = e2e\nswift_hash_path_prefix = e2e\n",
    );
    make_rings(dir);
    let pipeline =
        pipeline.unwrap_or("catch_errors gatekeeper healthcheck proxy-logging proxy-server");
    let text = format!(
        "[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = {port}\nswift_dir = {dir}\nbind_timeout = 2\n{default}\n\
         [pipeline:main]\npipeline = {pipeline}\n\n\
         [app:proxy-server]\nuse = egg:swift#proxy\n\n\
         [filter:catch_errors]\nuse = egg:swift#catch_errors\n\n\
         [filter:gatekeeper]\nuse = egg:swift#gatekeeper\n\n\
         [filter:healthcheck]\nuse = egg:swift#healthcheck\n\n\
         [filter:proxy-logging]\nuse = egg:swift#proxy_logging\n",
        dir = dir.display()
    );
    write_file(dir, "proxy-server.conf", &text)
}

/// A running server started like swift-init starts one.
pub struct Server {
    pub proc: Proc,
    pub addr: SocketAddr,
    /// What the server printed before it closed stdout.
    pub startup_output: String,
}

/// Read all of `proc`'s stdout on a thread; the receiver gets it at EOF.
fn stdout_reader(proc: &mut Proc) -> mpsc::Receiver<String> {
    let mut stdout = proc.merged.take().expect("spawned with spawn_merged");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        let _ = tx.send(String::from_utf8_lossy(&out).into_owned());
    });
    rx
}

impl Server {
    /// Start `swift-<binary> conf` with stderr merged into stdout, wait for
    /// stdout to close (bounded), and check the process is still running.
    pub fn start(binary: &str, conf: &Path, port: u16) -> Server {
        Self::try_start(binary, conf, port, &[]).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Server::start`], returning what went wrong instead of panicking.
    pub fn try_start(
        binary: &str,
        conf: &Path,
        port: u16,
        args: &[&str],
    ) -> Result<Server, String> {
        let mut cmd = Command::new(bin(binary));
        cmd.arg(conf).args(args);
        Self::spawn(cmd, port)
    }

    /// Start Python Swift's `swift-<name>` from the venv on `conf`.
    pub fn start_python(binary: &str, conf: &Path, port: u16) -> Server {
        let mut cmd = crate::python_swift(binary);
        cmd.arg(conf);
        Self::spawn(cmd, port).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Spawn `cmd` as swift-init does and wait (bounded) for stdout to close.
    pub fn spawn(mut cmd: Command, port: u16) -> Result<Server, String> {
        let name = cmd.get_program().to_string_lossy().into_owned();
        // swift-init's spawn: stderr goes to the same pipe as stdout.
        let mut proc = Proc::spawn_merged(&mut cmd);
        // Drop the Command: it holds copies of the pipe's write end.
        drop(cmd);
        let rx = stdout_reader(&mut proc);
        let output = rx
            .recv_timeout(Duration::from_secs(20))
            .map_err(|_| format!("{name} did not close stdout within 20s"))?;
        if let Some(status) = proc.child.try_wait().expect("try_wait") {
            return Err(format!("{name} exited ({status}) during start: {output}"));
        }
        Ok(Server {
            proc,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            startup_output: output,
        })
    }

    pub fn master(&self) -> i32 {
        self.proc.pid()
    }

    pub fn workers(&self) -> Vec<i32> {
        children_of(self.master())
    }

    /// Wait until the master has exactly `n` children; returns them.
    pub fn wait_workers(&self, n: usize, timeout: Duration) -> Option<Vec<i32>> {
        wait_until(timeout, || {
            let w = self.workers();
            (w.len() == n).then_some(w)
        })
    }

    /// Send a signal to the master.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        self.proc.signal(sig);
    }

    /// Wait for the master to exit; returns its status and how long it took.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<(std::process::ExitStatus, Duration)> {
        let started = Instant::now();
        self.proc
            .wait_timeout(timeout)
            .map(|s| (s, started.elapsed()))
    }
}

/// Account, container and object rings (one device on 127.0.0.1:6200) in
/// `dir`: a proxy, ours or Python's, will not start without them. Built once
/// per test run with the venv's swift-ring-builder (a few seconds of
/// Python), then copied.
pub fn make_rings(dir: &Path) {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let built = BUILT.get_or_init(|| {
        // Kept between runs (the rings never change); built aside and
        // renamed into place, so a run cut short leaves no half cache.
        let cache = crate::workspace_root().join("target/e2e-rings");
        let complete = ["account", "container", "object"]
            .iter()
            .all(|r| cache.join(format!("{r}.ring.gz")).exists());
        if !complete {
            let tmp = crate::workspace_root()
                .join(format!("target/e2e-rings.tmp-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&tmp);
            std::fs::create_dir_all(&tmp).expect("create the ring cache dir");
            build_rings(&tmp);
            let _ = std::fs::remove_dir_all(&cache);
            std::fs::rename(&tmp, &cache).expect("move the rings into the cache");
        }
        cache
    });
    std::fs::create_dir_all(dir).expect("create the rings' dir");
    for ring in ["account", "container", "object"] {
        let name = format!("{ring}.ring.gz");
        std::fs::copy(built.join(&name), dir.join(&name)).expect("copy a ring file");
    }
}

fn build_rings(dir: &Path) {
    for ring in ["account", "container", "object"] {
        let file = dir.join(format!("{ring}.builder"));
        for args in [
            vec!["create", "4", "1", "1"],
            vec!["add", "r1z1-127.0.0.1:6200/sda", "100"],
            vec!["rebalance"],
        ] {
            let out = crate::run(
                crate::python_swift("swift-ring-builder")
                    .arg(&file)
                    .args(&args),
                Duration::from_secs(60),
            );
            // rebalance exits 1 with a warning for a one-device ring; the
            // ring file is what matters.
            assert!(
                out.status.code().is_some_and(|c| c <= 1),
                "swift-ring-builder {args:?}: {out:?}"
            );
        }
        assert!(
            dir.join(format!("{ring}.ring.gz")).exists(),
            "{ring}.ring.gz was not written"
        );
    }
}

/// Whether the server side of our connection from `client` to `server`
/// has been accepted (it has an inode in /proc/net/tcp only once a process
/// holds it). A readiness signal for tests that need a connection the
/// server already owns.
pub fn accepted(client: &std::net::TcpStream) -> bool {
    let (Ok(local), Ok(peer)) = (client.local_addr(), client.peer_addr()) else {
        return false;
    };
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    let want_local = format!(":{:04X}", peer.port());
    let want_remote = format!(":{:04X}", local.port());
    table.lines().skip(1).any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        f.len() > 9 && f[1].ends_with(&want_local) && f[2].ends_with(&want_remote) && f[9] != "0"
    })
}

impl Drop for Server {
    /// A test that fails midway must not leave workers behind: our workers
    /// die with their master, but Python Swift's do not. Kill the master's
    /// children (by pid) before the master itself (Proc's drop).
    fn drop(&mut self) {
        if pid_alive(self.master()) {
            for pid in self.workers() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// Whether every pid in `pids` is gone.
pub fn all_gone(pids: &[i32]) -> bool {
    pids.iter().all(|p| !pid_alive(*p))
}

/// A syslog socket (unix datagram) that a test reads: the server's
/// `log_address`.
pub struct Syslog {
    sock: UnixDatagram,
    pub path: PathBuf,
    seen: Vec<String>,
}

impl Syslog {
    pub fn bind(dir: &Path) -> Syslog {
        let path = dir.join("log.sock");
        let sock = UnixDatagram::bind(&path).expect("bind syslog socket");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("set timeout");
        Syslog {
            sock,
            path,
            seen: Vec::new(),
        }
    }

    /// Read datagrams until one satisfies `pred` or `timeout` passes.
    /// Every datagram read is kept (see [`Syslog::lines`]).
    pub fn wait_for(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        if let Some(l) = self.seen.iter().find(|l| pred(l)) {
            return Some(l.clone());
        }
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 65536];
        while Instant::now() < deadline {
            if let Ok(n) = self.sock.recv(&mut buf) {
                let line = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.seen.push(line.clone());
                if pred(&line) {
                    return Some(line);
                }
            }
        }
        None
    }

    /// Everything received so far (raw datagrams: `<PRI>name: msg\0`).
    pub fn lines(&mut self) -> &[String] {
        let _ = self.wait_for(Duration::from_millis(100), |_| false);
        &self.seen
    }
}
