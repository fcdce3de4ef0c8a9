//! Helpers for the swift-init end-to-end tests: a scratch Swift layout (swift
//! dir, run dir, a bin dir of stand-in servers), running our swift-init or
//! Python's on it, reading what the stand-ins recorded, and normalising
//! output (paths and pids) so the two can be compared.
//!
//! The stand-in server is a small Python script that behaves as swift-init
//! expects of a Swift server (setsid, close stdout once ready, stop on
//! SIGTERM with its process group, exit on SIGHUP, stay up on SIGUSR1 and
//! notify `RELOADING=1` then `READY=1` as Swift's servers do) and
//! as its config's `standin_*` lines ask (fail, hang, ignore SIGTERM, fork
//! workers, ...). Its command line is `python3 …/swift-<server> CONF`, the
//! shape of Python Swift's servers, which is what swift-init's identity
//! check must handle. Every process it starts or sees is recorded in
//! `<root>/record.log`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::{Proc, bin, scratch, swift_venv};

/// How long any swift-init run may take before the test fails.
pub const RUN_LIMIT: Duration = Duration::from_secs(60);

const STANDIN: &str = r#"
# A stand-in Swift server for swift-init's tests (see tests/src/init.rs).
import os, resource, signal, socket, sys, time

def read_conf(path):
    opts = {}
    paths = [path]
    if os.path.isdir(path):
        paths = sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith('.conf'))
    for p in paths:
        try:
            with open(p) as f:
                for line in f:
                    if '=' in line:
                        k, v = line.split('=', 1)
                        opts[k.strip()] = v.strip()
        except OSError:
            pass
    return opts

args = sys.argv[1:]
if args == ['--probe']:
    sys.exit(0)
conf = args[0] if args else ''
opts = read_conf(conf)
record = opts.get('standin_record')
me = os.getpid()

def log(*words):
    if record:
        with open(record, 'a') as f:
            f.write(' '.join(str(w) for w in words) + '\n')

limits = []
for r in (resource.RLIMIT_NOFILE, resource.RLIMIT_DATA, resource.RLIMIT_NPROC):
    limits.extend(resource.getrlimit(r))
log('start', me, *args)
log('limits', me, *limits, os.environ.get('PYTHON_EGG_CACHE', '-'))
mode = opts.get('standin_mode', 'ready')
once = 'once' in args[1:]
verbose = 'verbose' in args[1:]
if mode == 'fail':
    print('standin: cannot use config %s' % conf, flush=True)
    sys.exit(1)
if mode == 'silent-fail':
    sys.exit(3)
os.setsid()
if mode == 'ignore-term':
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
for _ in range(int(opts.get('standin_workers', '0'))):
    pid = os.fork()
    if pid == 0:
        # Workers let go of the start pipe too, as Swift's do.
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        while True:
            time.sleep(60)
    log('worker', me, pid)

def on_term(sig, frame):
    log('signal', me, 'TERM')
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.killpg(0, signal.SIGTERM)
    os._exit(0)

def on_hup(sig, frame):
    log('signal', me, 'HUP')
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    os.killpg(0, signal.SIGHUP)
    os._exit(0)

def notify(msg):
    # What Swift's servers send to swift-reload (and our swift-init).
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.sendto(msg, '\0swift-notifications\0%d' % os.getpid())
        s.close()
    except OSError:
        pass

def on_usr1(sig, frame):
    log('signal', me, 'USR1')
    notify(b'RELOADING=1')
    notify(b'READY=1')

if mode != 'ignore-term':
    signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGHUP, on_hup)
signal.signal(signal.SIGUSR1, on_usr1)
time.sleep(float(opts.get('standin_delay', '0')))
if mode == 'warn':
    print('standin: warning: this is only a warning', flush=True)
if verbose:
    print('standin: running in the foreground', flush=True)
if once:
    if not verbose:
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
    time.sleep(float(opts.get('standin_once_secs', '0.2')))
    log('exit', me)
    sys.exit(int(opts.get('standin_once_exit', '0')))
# Recorded before stdout closes: swift-init goes on as soon as it does.
log('ready', me)
if mode != 'hang' and not verbose:
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
while True:
    signal.pause()
"#;

/// Python Swift's swift-init with its hard-coded SWIFT_DIR replaced by the
/// first argument.
const PY_SWIFT_INIT: &str = "import sys\n\
import swift.common.manager as m\n\
m.SWIFT_DIR = sys.argv.pop(1)\n\
sys.argv[0] = 'swift-init'\n\
sys.exit(m.main())\n";

/// The stand-in script, written once per build directory (atomically, and
/// only when its text changed) so that layouts can hard-link it.
fn shared_standin() -> &'static Path {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        let dir = crate::bin_dir().join("swift-init-e2e");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("standin");
        let text = format!("#!{}\n{STANDIN}", python3().display());
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            let tmp = dir.join(format!(".standin.{}", std::process::id()));
            std::fs::write(&tmp, &text).expect("write stand-in");
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            std::fs::rename(&tmp, &path).expect("rename stand-in");
        }
        warm_up(&path, "--probe");
        path
    })
}

/// Put `src` at `dst`: a hard link (nobody holds it open for writing, so
/// exec never fails with ETXTBSY), else a copy that is then run once.
///
/// A file this process has just written can fail to exec for a moment:
/// another test thread may have forked while it was open for writing, and
/// its child holds the descriptor until it execs.
fn install(src: &Path, dst: &Path, probe_arg: &str) {
    if std::fs::hard_link(src, dst).is_ok() {
        return;
    }
    std::fs::copy(src, dst).expect("copy");
    warm_up(dst, probe_arg);
}

/// Run `path probe_arg` until exec stops failing with ETXTBSY (bounded).
fn warm_up(path: &Path, probe_arg: &str) {
    let ok = crate::wait_until(Duration::from_secs(10), || {
        match Command::new(path).arg(probe_arg).output() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => None,
            _ => Some(()),
        }
    });
    assert!(ok.is_some(), "{} stays busy", path.display());
}

/// A Python 3 for the stand-ins (the system one, else the venv's).
pub fn python3() -> PathBuf {
    for p in ["/usr/bin/python3", "/usr/local/bin/python3"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    swift_venv().join("bin/python3")
}

/// What a swift-init run printed and how it exited.
#[derive(Debug, Clone)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// Whether stdout has exactly this line.
    pub fn has(&self, line: &str) -> bool {
        self.stdout.lines().any(|l| l == line)
    }

    /// Whether some stdout line starts with `prefix`.
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.stdout.lines().any(|l| l.starts_with(prefix))
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// One recorded event of a stand-in: `start PID ARGS…`, `limits PID …`,
/// `worker PID CHILD`, `signal PID NAME`, `ready PID`, `exit PID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: String,
    pub pid: i32,
    pub rest: Vec<String>,
}

/// A scratch Swift installation: `etc/` (the swift dir), `run/` (the run
/// dir), `bin/` (stand-ins and a copy of our swift-init, so it finds those
/// stand-ins rather than the servers built next to the original).
pub struct Layout {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub etc: PathBuf,
    pub run: PathBuf,
    pub bin: PathBuf,
    pub record: PathBuf,
}

impl Layout {
    /// A layout with stand-ins for `servers` (full names: `proxy-server`).
    pub fn new(servers: &[&str]) -> Layout {
        let dir = scratch();
        let root = dir.path().to_path_buf();
        let layout = Layout {
            etc: root.join("etc"),
            run: root.join("run"),
            bin: root.join("bin"),
            record: root.join("record.log"),
            root,
            _dir: dir,
        };
        for d in [&layout.etc, &layout.bin] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        install(&bin("swift-init"), &layout.bin.join("swift-init"), "-h");
        for s in servers {
            layout.standin(s);
        }
        layout
    }

    /// Install a stand-in `swift-<server>` in `bin/`.
    pub fn standin(&self, server: &str) {
        install(
            shared_standin(),
            &self.bin.join(format!("swift-{server}")),
            "--probe",
        );
    }

    /// Write a stand-in config `etc/<rel>` that records to this layout,
    /// with `extra` lines (`standin_mode = fail`, ...).
    pub fn conf(&self, rel: &str, extra: &str) -> PathBuf {
        let text = format!(
            "[DEFAULT]\nstandin_record = {}\n{extra}\n",
            self.record.display()
        );
        crate::write_file(&self.etc, rel, &text)
    }

    /// Put `target` in `bin/` as `name` (a symlink): a server of another
    /// installation, such as the venv's `swift-object-server`.
    pub fn link(&self, name: &str, target: &Path) {
        std::os::unix::fs::symlink(target, self.bin.join(name)).expect("symlink");
    }

    /// The environment every swift-init run here gets, ours and Python's
    /// alike: nothing inherited, `PATH` with bin/ first, and Python's own
    /// warnings silenced ([`crate::quiet_python`]) for the Python servers
    /// either may start.
    fn clean_env<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        crate::quiet_python(
            cmd.env_clear()
                .env("PATH", format!("{}:/usr/bin:/bin", self.bin.display())),
        )
    }

    /// Our swift-init (the copy in `bin/`) with a clean environment: only
    /// `PATH` (bin/ first); no `--swift-dir` or `-r` added.
    pub fn ours_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.bin.join("swift-init"));
        cmd.args(args).current_dir(&self.root);
        self.clean_env(&mut cmd);
        cmd
    }

    /// The workspace's own swift-init (which finds the servers built next
    /// to it first), on this layout (`--swift-dir etc -r run` added).
    pub fn built(&self, args: &[&str]) -> Out {
        let mut cmd = Command::new(bin("swift-init"));
        cmd.args(args)
            .arg("--swift-dir")
            .arg(&self.etc)
            .arg("-r")
            .arg(&self.run)
            .current_dir(&self.root);
        self.clean_env(&mut cmd);
        run_out(&mut cmd)
    }

    /// Run our swift-init on this layout (`--swift-dir etc -r run` added).
    pub fn ours(&self, args: &[&str]) -> Out {
        let mut cmd = self.ours_cmd(args);
        cmd.arg("--swift-dir")
            .arg(&self.etc)
            .arg("-r")
            .arg(&self.run);
        run_out(&mut cmd)
    }

    /// Python Swift's swift-init on this layout (from the venv, its
    /// SWIFT_DIR patched to `etc/`, `-r run` added), same environment.
    pub fn python(&self, args: &[&str]) -> Out {
        let mut cmd = Command::new(swift_venv().join("bin/python3"));
        cmd.arg("-c")
            .arg(PY_SWIFT_INIT)
            .arg(&self.etc)
            .args(args)
            .arg("-r")
            .arg(&self.run)
            .current_dir(&self.root);
        self.clean_env(&mut cmd);
        run_out(&mut cmd)
    }

    /// The pid in `run/<rel>`, if that file holds one.
    pub fn pid(&self, rel: &str) -> Option<i32> {
        std::fs::read_to_string(self.run.join(rel))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Everything the stand-ins recorded so far.
    pub fn events(&self) -> Vec<Event> {
        let text = std::fs::read_to_string(&self.record).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let mut w = l.split(' ');
                let kind = w.next()?.to_owned();
                let pid = w.next()?.parse().ok()?;
                Some(Event {
                    kind,
                    pid,
                    rest: w.map(str::to_owned).collect(),
                })
            })
            .collect()
    }

    /// The recorded events of one kind.
    pub fn events_of(&self, kind: &str) -> Vec<Event> {
        self.events()
            .into_iter()
            .filter(|e| e.kind == kind)
            .collect()
    }

    /// Replace this layout's root with `<ROOT>` and pids with `<PID>`.
    pub fn normalise(&self, text: &str) -> Vec<String> {
        normalise(text, &self.root)
    }

    /// End every stand-in process this layout recorded that is still alive
    /// (SIGKILL by pid), so a failed test leaves nothing behind.
    pub fn kill_all(&self) {
        for e in self.events() {
            let pids = match e.kind.as_str() {
                "start" => vec![e.pid],
                "worker" => e.rest.iter().filter_map(|p| p.parse().ok()).collect(),
                _ => vec![],
            };
            for pid in pids {
                if crate::pid_alive(pid) && is_standin(pid, &self.bin) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
    }
}

impl Drop for Layout {
    fn drop(&mut self) {
        self.kill_all();
        self.kill_pid_file_servers();
    }
}

impl Layout {
    /// End (SIGKILL, with their process groups) the servers named by pid
    /// files under `run/` whose command line mentions this layout (real
    /// servers record no events), so a failed test leaves nothing behind.
    fn kill_pid_file_servers(&self) {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.push(p);
                }
            }
        }
        let mut files = Vec::new();
        walk(&self.run, &mut files);
        for f in files {
            let Some(pid) = std::fs::read_to_string(&f)
                .ok()
                .and_then(|t| t.trim().parse::<i32>().ok())
            else {
                continue;
            };
            if pid > 1 && crate::pid_alive(pid) && is_standin(pid, &self.root) {
                use nix::sys::signal::{Signal, kill, killpg};
                use nix::unistd::{Pid, getpgid};
                let p = Pid::from_raw(pid);
                if getpgid(Some(p)) == Ok(p) {
                    let _ = killpg(p, Signal::SIGKILL);
                } else {
                    let _ = kill(p, Signal::SIGKILL);
                }
            }
        }
    }
}

/// Whether `pid`'s command line mentions `dir` (guards against pid reuse).
fn is_standin(pid: i32, bin: &Path) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let bin = bin.to_string_lossy();
    String::from_utf8_lossy(&cmdline).contains(bin.as_ref())
}

/// Run a command to completion (bounded by [`RUN_LIMIT`]).
pub fn run_out(cmd: &mut Command) -> Out {
    let out = crate::run(cmd, RUN_LIMIT);
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Start a command without waiting (stdout/stderr piped).
pub fn spawn(cmd: &mut Command) -> Proc {
    Proc::spawn(cmd)
}

/// Normalise output for comparison: `root` becomes `<ROOT>`, and a number
/// that is a pid by its context (`pid: N`, `pid N`, `PID N`, `(N)`,
/// `(N - `) becomes `<PID>`.
pub fn normalise(text: &str, root: &Path) -> Vec<String> {
    let root = root.to_string_lossy();
    text.replace(root.as_ref(), "<ROOT>")
        .lines()
        .map(normalise_pids)
        .collect()
}

fn normalise_pids(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while !rest.is_empty() {
        let mut matched = false;
        for prefix in ["pid: ", "pid ", "PID ", "("] {
            if let Some(after) = rest.strip_prefix(prefix) {
                let digits = after.chars().take_while(char::is_ascii_digit).count();
                let tail = &after[digits..];
                let ok = digits > 0
                    && (prefix != "(" || tail.starts_with(')') || tail.starts_with(" - "));
                if ok {
                    out.push_str(prefix);
                    out.push_str("<PID>");
                    rest = tail;
                    matched = true;
                    break;
                }
            }
        }
        if !matched {
            let mut chars = rest.chars();
            if let Some(c) = chars.next() {
                out.push(c);
            }
            rest = chars.as_str();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_paths_and_pids() {
        let text = "Signal proxy-server  pid: 1234  signal: 15\n\
                    proxy-server running (77 - /tmp/x/etc/proxy-server.conf)\n\
                    proxy-server (77) appears to have stopped\n\
                    No permission to signal PID 4\n\
                    proxy-server #2 not running (/tmp/x/etc/p/2.conf)\n";
        let n = normalise(text, Path::new("/tmp/x"));
        assert_eq!(
            n,
            [
                "Signal proxy-server  pid: <PID>  signal: 15",
                "proxy-server running (<PID> - <ROOT>/etc/proxy-server.conf)",
                "proxy-server (<PID>) appears to have stopped",
                "No permission to signal PID <PID>",
                "proxy-server #2 not running (<ROOT>/etc/p/2.conf)",
            ]
        );
    }
}
