//! The commands (Swift's `Manager` and `Server`): status, start and its
//! variants, stop, kill, shutdown, restart, reload, reload-seamless, with
//! Swift's messages, signals, waits and exit statuses.
//!
//! Every public command returns 1 when no server is valid, else 1 if
//! anything failed and 0 if not, as Swift's `@command` wrapper does; commands
//! built from others (restart = stop + start) add those 0/1 results.
//!
//! Where we do better than Swift (see the crate docs for the list): no
//! signal without an identity check, a lock against double starts, a
//! bounded wait for a starting server that also notices a silent crash,
//! `--kill-after-timeout` that checks the kill worked, `reload` starting the
//! new server (with the old one's listening socket) before stopping the old
//! one and honouring `-r`, and `reload-seamless` waiting for the servers'
//! report and leaving non-main servers alone.

use std::ffi::OsString;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};

use swift_common::wsgi::ENV_INHERITED_LISTEN_FD;

use crate::conf;
use crate::handover;
use crate::notify::{self, Outcome};
use crate::pidfile::{self, PidContent, RunDir};
use crate::process::{self, Identity, Proc};
use crate::servers::{self, Server};

/// Swift's `WARNING_WAIT`: how long a server that printed something while
/// starting is watched for an exit (its output may be only a warning).
const WARNING_WAIT: Duration = Duration::from_secs(3);

/// How long `--kill-after-timeout` waits for SIGKILLed processes to vanish.
const KILL_VERIFY_WAIT: Duration = Duration::from_secs(5);

/// Print a line on stdout, where Swift prints everything; a closed stdout
/// (`swift-init … | head -1`) must not turn into a panic.
pub fn say(line: impl AsRef<str>) {
    swift_common::sys::stdio::print_out(line.as_ref());
}

/// Settings shared by every command.
#[derive(Debug)]
pub struct Settings {
    /// Where configs are searched (absolute, normalised).
    pub swift_dir: PathBuf,
    /// Where pid files live, and its lock.
    pub run_dir: RunDir,
    /// The bound on waiting for started servers to close stdout.
    pub start_timeout: Duration,
    /// `PYTHON_EGG_CACHE` for the servers, when not already set.
    pub egg_cache: Option<OsString>,
}

/// Swift's `kwargs`: the options as every command sees them.
#[derive(Clone, Debug, Default)]
pub struct Kw {
    pub verbose: bool,
    pub wait: bool,
    pub once: bool,
    pub daemon: bool,
    pub graceful: bool,
    pub seamless: bool,
    pub number: usize,
    pub kill_wait: i64,
    pub strict: Option<bool>,
    pub kill_after_timeout: bool,
    pub quiet: bool,
}

impl Kw {
    pub fn from_options(o: &crate::cli::Options) -> Kw {
        Kw {
            verbose: o.verbose,
            wait: o.wait,
            once: o.once,
            daemon: o.daemon,
            graceful: o.graceful,
            seamless: false,
            number: o.number,
            kill_wait: o.kill_wait,
            strict: o.strict,
            kill_after_timeout: o.kill_after_timeout,
            quiet: false,
        }
    }
}

/// A valid server and the binary that runs it.
#[derive(Clone, Debug)]
pub struct Entry {
    pub server: Server,
    pub binary: PathBuf,
}

/// A running process of a server, found through its pid file.
#[derive(Debug)]
struct Running {
    pid: i32,
    pid_file: PathBuf,
    /// The pid file as read (device, inode), to remove only that one.
    identity: (u64, u64),
    proc: Proc,
}

/// What came of sending a signal to a [`Running`] process.
#[derive(Debug, PartialEq, Eq)]
enum Sent {
    Done,
    /// It had exited (its pid file was removed).
    Gone,
    /// It is running, but the signal could not be sent.
    Blocked,
}

/// The outcome of sending a signal (or none, to look) to a server's pids.
#[derive(Debug, Default)]
struct Signalled {
    /// Identified and signalled (or, for a look, running).
    pids: Vec<Running>,
    /// Running but not ours to signal, or not verifiable.
    blocked: Vec<i32>,
}

/// A process started by this swift-init.
#[derive(Debug)]
struct Spawned {
    pid: i32,
    child: Child,
    proc: Proc,
    pid_file: PathBuf,
    once: bool,
    output: Option<std::fs::File>,
}

/// The servers one command acts on (Swift's `Manager`).
#[derive(Debug)]
pub struct Manager<'a> {
    servers: Vec<Entry>,
    default_strict: bool,
    settings: &'a Settings,
    /// Set when something failed that no `--non-strict` excuses (a pid
    /// file that cannot be written, a run dir that cannot be created).
    hard_error: std::cell::Cell<bool>,
}

impl<'a> Manager<'a> {
    pub fn new(servers: Vec<Entry>, default_strict: bool, settings: &'a Settings) -> Manager<'a> {
        Manager {
            servers,
            default_strict,
            settings,
            hard_error: std::cell::Cell::new(false),
        }
    }

    /// Whether a failure happened that must make the exit status 1.
    pub fn had_hard_error(&self) -> bool {
        self.hard_error.get()
    }

    /// Run `command` (a name from [`crate::cli::COMMANDS`]).
    pub fn run(&self, command: &str, kw: &Kw) -> i32 {
        match command {
            "status" => self.status(kw),
            "start" => self.start(kw),
            "no-wait" => {
                let mut kw = kw.clone();
                kw.wait = false;
                self.start(&kw)
            }
            "no-daemon" => {
                let mut kw = kw.clone();
                kw.daemon = false;
                self.start(&kw)
            }
            "once" => {
                let mut kw = kw.clone();
                kw.once = true;
                self.start(&kw)
            }
            "stop" => self.stop(kw),
            "kill" => self.kill(kw),
            "shutdown" => {
                let mut kw = kw.clone();
                kw.graceful = true;
                self.stop(&kw)
            }
            "restart" => {
                let stopped = self.stop(kw);
                let started = self.start(kw);
                self.result((stopped + started) as u32)
            }
            "reload" | "force-reload" => self.reload(kw),
            "reload-seamless" => self.reload_seamless(kw),
            _ => 1,
        }
    }

    /// Swift's `@command` result.
    fn result(&self, failures: u32) -> i32 {
        if self.servers.is_empty() || failures > 0 {
            1
        } else {
            0
        }
    }

    // ----- per-server helpers (Swift's `Server` methods) -----

    fn dump_found(found: &[PathBuf]) {
        if !found.is_empty() {
            say("Found configs:");
        }
        for (i, c) in found.iter().enumerate() {
            say(format!("  {}) {}", i + 1, c.display()));
        }
    }

    /// The configs to act on, with Swift's messages.
    fn conf_files(&self, e: &Entry, kw: &Kw) -> Vec<PathBuf> {
        let found = conf::find_conf_files(&e.server, &self.settings.swift_dir, &|p| {
            conf::has_section(p, "object-expirer")
        });
        let confs = conf::select_number(&found, kw.number);
        if confs.is_empty() {
            if !kw.quiet {
                if kw.number > 0 {
                    say(format!(
                        "Unable to locate config number {} for {}",
                        kw.number,
                        e.server.name()
                    ));
                } else {
                    say(format!("Unable to locate config for {}", e.server.name()));
                }
                if kw.verbose {
                    Self::dump_found(&found);
                }
            }
        } else if !kw.quiet
            && confs
                .iter()
                .any(|c| c.to_string_lossy().contains("object-expirer"))
        {
            say(
                "WARNING: object-expirer.conf is deprecated. Move object-expirers' \
                 configuration into object-server.conf.",
            );
            if kw.verbose {
                Self::dump_found(&found);
            }
        }
        confs
    }

    fn pid_file_for(&self, e: &Entry, conf: &Path) -> PathBuf {
        conf::pid_file_for(
            &e.server,
            conf,
            &self.settings.swift_dir,
            self.settings.run_dir.path(),
        )
    }

    fn conf_for(&self, e: &Entry, pid_file: &Path) -> PathBuf {
        conf::conf_for_pid_file(
            &e.server,
            pid_file,
            &self.settings.swift_dir,
            self.settings.run_dir.path(),
        )
    }

    /// The server's pid files. Only `*.pid` and `*.pid.d` files count (Swift
    /// takes every `run_dir/<server>*` file, whatever its name).
    fn pid_files(&self, e: &Entry, kw: &Kw) -> Vec<PathBuf> {
        let run_dir = self.settings.run_dir.path();
        let pattern = format!("{}*", e.server.server);
        let files = match &e.server.conf {
            Some(name) => {
                let (a, b) = (format!("{name}.pid"), format!("{name}.pid.d"));
                conf::search_tree(run_dir, &pattern, &[&a, &b], None)
            }
            None => conf::search_tree(run_dir, &pattern, &[".pid", ".pid.d"], None),
        };
        if kw.number == 0 {
            return files;
        }
        let confs = self.conf_files(e, kw);
        files
            .into_iter()
            .filter(|p| confs.contains(&self.conf_for(e, p)))
            .collect()
    }

    /// Remove a pid file under the run dir lock, if it is still the one read.
    fn remove_pid_file(&self, path: &Path, identity: (u64, u64)) {
        let _guard = self.settings.run_dir.lock().ok();
        pidfile::remove_if_same(path, identity);
    }

    /// Swift's `signal_pids`: every pid file is checked, stale and wrong
    /// ones removed, and `sig` (if any) sent to the identified processes.
    fn signal_pids(&self, e: &Entry, sig: Option<Signal>, kw: &Kw) -> Signalled {
        let mut out = Signalled::default();
        for pid_file in self.pid_files(e, kw) {
            let (pid, identity) = match pidfile::read_pid(&pid_file) {
                Ok((PidContent::Pid(pid), id)) => (pid, id),
                Ok((PidContent::Invalid, id)) => {
                    say(format!(
                        "Removing pid file {} with invalid pid",
                        pid_file.display()
                    ));
                    self.remove_pid_file(&pid_file, id);
                    continue;
                }
                Err(err) if process::is_enoent(&err) => continue,
                Err(err) => {
                    say(format!(
                        "Unable to read pid file {}: {err}",
                        pid_file.display()
                    ));
                    continue;
                }
            };
            let conf = self.conf_for(e, &pid_file);
            let proc = match process::identify(pid, &e.server.cmd, &conf) {
                Identity::Ours(proc) => proc,
                Identity::Gone => {
                    if kw.verbose {
                        say(format!("Removing stale pid file {}", pid_file.display()));
                    }
                    self.remove_pid_file(&pid_file, identity);
                    continue;
                }
                Identity::Wrong => {
                    // Swift says this only with -v, and only when looking:
                    // it sends real signals to whatever holds the pid.
                    say(format!(
                        "Removing pid file {} with wrong pid {pid}",
                        pid_file.display()
                    ));
                    self.remove_pid_file(&pid_file, identity);
                    continue;
                }
                Identity::OtherConfig => {
                    say(format!(
                        "Leaving PID {pid} alone ({}): it is {} with another config",
                        pid_file.display(),
                        e.server.cmd
                    ));
                    out.blocked.push(pid);
                    continue;
                }
                Identity::Unknown(err) => {
                    say(format!(
                        "Unable to check PID {pid} ({}): {err}",
                        pid_file.display()
                    ));
                    out.blocked.push(pid);
                    continue;
                }
            };
            let r = Running {
                pid,
                pid_file,
                identity,
                proc,
            };
            if let Some(sig) = sig {
                match self.send(e, &r, sig, kw) {
                    Sent::Done => {}
                    Sent::Gone => continue,
                    Sent::Blocked => {
                        out.blocked.push(pid);
                        continue;
                    }
                }
            }
            out.pids.push(r);
        }
        out
    }

    /// Send `sig` to an identified process, with Swift's `Signal` line.
    fn send(&self, e: &Entry, r: &Running, sig: Signal, kw: &Kw) -> Sent {
        let pid = r.pid;
        say(format!(
            "Signal {}  pid: {pid}  signal: {}",
            e.server.name(),
            sig as i32
        ));
        match r.proc.signal(sig) {
            Ok(()) => Sent::Done,
            Err(Errno::ESRCH) => {
                if kw.verbose {
                    say(format!("Removing stale pid file {}", r.pid_file.display()));
                }
                self.remove_pid_file(&r.pid_file, r.identity);
                Sent::Gone
            }
            Err(Errno::EPERM) => {
                // Running, just not ours to signal: not "not running".
                say(format!("No permission to signal PID {pid}"));
                Sent::Blocked
            }
            Err(err) => {
                say(format!("Unable to signal PID {pid}: {err}"));
                Sent::Blocked
            }
        }
    }

    fn server_status(&self, e: &Entry, kw: &Kw) -> u32 {
        let running = self.signal_pids(e, None, kw);
        if running.pids.is_empty() {
            if kw.number > 0 {
                let quiet = Kw {
                    quiet: true,
                    ..kw.clone()
                };
                if let Some(conf) = self.conf_files(e, &quiet).first() {
                    say(format!(
                        "{} #{} not running ({})",
                        e.server.name(),
                        kw.number,
                        conf.display()
                    ));
                }
            } else {
                say(format!("No {} running", e.server.name()));
            }
            return 1;
        }
        for r in &running.pids {
            say(format!(
                "{} running ({} - {})",
                e.server.name(),
                r.pid,
                self.conf_for(e, &r.pid_file).display()
            ));
        }
        0
    }

    /// Swift's `Server.launch`: refuse if running, else spawn one process
    /// per config and record its pid. The run dir lock is held from the
    /// running check until the pid files are written.
    fn launch(&self, e: &Entry, kw: &Kw) -> Vec<Spawned> {
        let confs = self.conf_files(e, kw);
        if confs.is_empty() {
            return Vec::new();
        }
        let _guard = match self.settings.run_dir.lock() {
            Ok(g) => g,
            Err(msg) => {
                swift_common::sys::stdio::print_err(&msg);
                self.hard_error.set(true);
                return Vec::new();
            }
        };
        let running = self.signal_pids(e, None, kw);
        let mut already_started = false;
        for r in &running.pids {
            let conf = self.conf_for(e, &r.pid_file);
            if confs.contains(&conf) {
                already_started = true;
                say(format!(
                    "{} running ({} - {})",
                    e.server.name(),
                    r.pid,
                    conf.display()
                ));
            } else if kw.number == 0 {
                already_started = true;
                say(format!(
                    "{} running ({} - {})",
                    e.server.name(),
                    r.pid,
                    r.pid_file.display()
                ));
            }
        }
        if already_started || !running.blocked.is_empty() {
            say(format!("{} already started...", e.server.name()));
            return Vec::new();
        }
        let once = kw.once && servers::is_start_once(&e.server.server);
        let mut spawned = Vec::new();
        for conf in confs {
            if once {
                say(format!(
                    "Running {} once...({})",
                    e.server.name(),
                    conf.display()
                ));
            } else {
                say(format!(
                    "Starting {}...({})",
                    e.server.name(),
                    conf.display()
                ));
            }
            let pid_file = self.pid_file_for(e, &conf);
            if let Some(Err(msg)) = pid_file.parent().map(pidfile::create_dirs) {
                swift_common::sys::stdio::print_err(&msg);
                self.hard_error.set(true);
                break;
            }
            match self.spawn(e, &conf, once, kw, None) {
                Ok((mut child, output)) => {
                    let pid = child.id();
                    let proc = Proc::from_child(pid);
                    if let Err(err) =
                        pidfile::write_pid(&pid_file, pid, self.settings.run_dir.path())
                    {
                        // An untracked server is worse than none.
                        say(format!(
                            "Unable to write pid file {}: {err}",
                            pid_file.display()
                        ));
                        let _ = child.kill();
                        let _ = child.wait();
                        self.hard_error.set(true);
                        break;
                    }
                    spawned.push(Spawned {
                        pid: proc.pid(),
                        child,
                        proc,
                        pid_file,
                        once,
                        output,
                    });
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    say(format!("{} does not exist", e.server.cmd));
                    break;
                }
                Err(err) => {
                    say(format!("Unable to run {}: {err}", e.binary.display()));
                    break;
                }
            }
        }
        spawned
    }

    /// Swift's `Server.spawn`: `swift-<server> CONF [once] [verbose]`, stdin
    /// from /dev/null, stdout and stderr on one pipe (or /dev/null with
    /// `-w`, or ours with `-n`). `socket` is a listening socket to hand to
    /// the server (see [`crate::handover`]).
    fn spawn(
        &self,
        e: &Entry,
        conf: &Path,
        once: bool,
        kw: &Kw,
        socket: Option<OwnedFd>,
    ) -> std::io::Result<(Child, Option<std::fs::File>)> {
        let mut cmd = Command::new(&e.binary);
        // Only a socket handed over on purpose may be named here.
        cmd.env_remove(ENV_INHERITED_LISTEN_FD);
        if let Some(fd) = &socket {
            // Inheritable at the number it has here, which the server reads.
            swift_common::sys::process::set_inheritable(fd, true)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            cmd.env(ENV_INHERITED_LISTEN_FD, fd.as_raw_fd().to_string());
        }
        cmd.arg(conf);
        if once {
            cmd.arg("once");
        }
        if !kw.daemon {
            cmd.arg("verbose");
        }
        // Interactive servers share our terminal, stdin included.
        if kw.daemon {
            cmd.stdin(Stdio::null());
        }
        if let Some(egg) = &self.settings.egg_cache {
            cmd.env("PYTHON_EGG_CACHE", egg);
        }
        let mut reader = None;
        if !kw.daemon {
            // Interactive: the server shares our terminal.
        } else if kw.wait {
            let (r, w) =
                nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)?;
            cmd.stdout(Stdio::from(w.try_clone()?));
            cmd.stderr(Stdio::from(w));
            reader = Some(std::fs::File::from(r));
        } else {
            cmd.stdout(Stdio::null());
            cmd.stderr(Stdio::null());
        }
        let child = cmd.spawn()?;
        // `cmd` (holding our copy of the pipe's write end) is dropped here,
        // so the server's close is what ends the output; our copy of the
        // socket goes too (the server has its own now).
        drop(cmd);
        drop(socket);
        Ok((child, reader))
    }

    // ----- commands -----

    /// `status`: one line per running pid, or "No <server> running".
    pub fn status(&self, kw: &Kw) -> i32 {
        let failures: u32 = self.servers.iter().map(|e| self.server_status(e, kw)).sum();
        self.result(failures)
    }

    /// `start` (and `no-wait`, `no-daemon`, `once`).
    pub fn start(&self, kw: &Kw) -> i32 {
        for warning in crate::env::raise_limits() {
            say(warning);
        }
        let strict = kw.strict.unwrap_or(self.default_strict);
        let interactive = !kw.daemon;
        let sigs = {
            let mut s = SigSet::empty();
            s.add(Signal::SIGINT);
            s.add(Signal::SIGCHLD);
            s
        };
        if interactive {
            // Wait for children or ^C with sigwait; children get a clean mask.
            let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&sigs), None);
        }
        let mut failures = 0u32;
        let mut launched: Vec<(usize, Vec<Spawned>)> = Vec::new();
        for (i, e) in self.servers.iter().enumerate() {
            let spawned = self.launch(e, kw);
            if spawned.is_empty() {
                failures += 1;
            }
            launched.push((i, spawned));
        }
        if !strict {
            failures = 0;
        }
        if interactive {
            failures += self.interact(&mut launched, &sigs, kw);
        } else if kw.wait {
            failures += self.wait(&mut launched);
        }
        self.result(failures)
    }

    /// Swift's `Server.wait` for every started server: read its output until
    /// it closes stdout (bounded by the start timeout), print what it said,
    /// and count a server that exited with an error, even a silent one.
    fn wait(&self, launched: &mut [(usize, Vec<Spawned>)]) -> u32 {
        let deadline = Instant::now() + self.settings.start_timeout;
        let mut failures = 0;
        for (i, spawned) in launched.iter_mut() {
            let e = &self.servers[*i];
            for s in spawned.iter_mut() {
                if !self.await_start(e, s, deadline) {
                    failures += 1;
                }
            }
        }
        failures
    }

    /// Wait for one started server as [`Manager::wait`] does; whether it
    /// started (or, for a `once` run, succeeded).
    fn await_start(&self, e: &Entry, s: &mut Spawned, deadline: Instant) -> bool {
        let mut output = Vec::new();
        if let Some(reader) = s.output.take() {
            let until = (!s.once).then_some(deadline);
            let closed = read_until_eof(&reader, &mut output, until);
            if !closed {
                if !output.is_empty() {
                    say(decode(&output));
                }
                say(format!(
                    "Waited {} seconds for {} ({}) to start; giving up",
                    self.settings.start_timeout.as_secs(),
                    e.server.name(),
                    s.pid
                ));
                return false;
            }
        }
        if s.once {
            // A pass of a daemon: wait for it to finish, unbounded.
            let _ = wait_child(s, None);
        }
        if !output.is_empty() {
            say(decode(&output));
        }
        // Output may be just a warning, so a server that printed
        // something is watched for a while (as Swift does); a silent
        // one is only waited for when it closed stdout by exiting.
        let exited = if s.once || !output.is_empty() || s.proc.is_exiting() {
            wait_child(s, Some(WARNING_WAIT))
        } else {
            None
        };
        if let Some(status) = exited {
            pidfile::remove_if_holds(&s.pid_file, s.pid);
            if !status.success() {
                say(exit_line(e.server.name(), s.pid, status));
                return false;
            }
        }
        true
    }

    /// Swift's `Server.interact` (`no-daemon`): wait for every server to
    /// exit; ^C stops them all ("user quit").
    fn interact(&self, launched: &mut [(usize, Vec<Spawned>)], sigs: &SigSet, kw: &Kw) -> u32 {
        let mut failures = 0;
        for (i, spawned) in launched.iter_mut() {
            let e = &self.servers[*i];
            for s in spawned.iter_mut() {
                loop {
                    match s.child.try_wait() {
                        Ok(Some(status)) => {
                            if !status.success() {
                                say(exit_line(e.server.name(), s.pid, status));
                                failures += 1;
                            }
                            pidfile::remove_if_holds(&s.pid_file, s.pid);
                            break;
                        }
                        Ok(None) => {}
                        Err(_) => break,
                    }
                    if let Ok(Signal::SIGINT) = sigs.wait() {
                        say("\nuser quit");
                        self.stop(kw);
                        return failures;
                    }
                }
            }
        }
        failures
    }

    /// `stop` (and `shutdown`): signal every server's pids, then watch them
    /// go for up to `kill_wait` seconds.
    pub fn stop(&self, kw: &Kw) -> i32 {
        let mut pending: Vec<(usize, Vec<Running>)> = Vec::new();
        let mut blocked = false;
        for (i, e) in self.servers.iter().enumerate() {
            let main = servers::is_main(&e.server.server);
            let sig = if kw.graceful && main {
                Signal::SIGHUP
            } else if kw.seamless && main {
                Signal::SIGUSR1
            } else {
                Signal::SIGTERM
            };
            let res = self.signal_pids(e, Some(sig), kw);
            blocked |= !res.blocked.is_empty();
            if res.pids.is_empty() {
                if res.blocked.is_empty() {
                    say(format!("No {} running", e.server.name()));
                }
            } else {
                pending.push((i, res.pids));
            }
        }
        if pending.is_empty() {
            return self.result(1);
        }
        self.watch(pending, kw, blocked, false)
    }

    /// Watch signalled processes go for up to `kill_wait` seconds (then,
    /// with `--kill-after-timeout`, kill them). Those still running then
    /// fail the command, except when `retiring` (a reload's old servers,
    /// which may take longer to finish their requests).
    fn watch(
        &self,
        mut pending: Vec<(usize, Vec<Running>)>,
        kw: &Kw,
        blocked: bool,
        retiring: bool,
    ) -> i32 {
        let kill_wait = Duration::from_secs(u64::try_from(kw.kill_wait).unwrap_or(0));
        let deadline = Instant::now() + kill_wait;
        loop {
            for (i, list) in pending.iter_mut() {
                let e = &self.servers[*i];
                list.retain(|r| {
                    r.proc.reap_if_child();
                    if !r.proc.has_exited() {
                        return true;
                    }
                    self.stopped(e, r, kw);
                    false
                });
            }
            pending.retain(|(_, list)| !list.is_empty());
            if pending.is_empty() {
                return self.result(u32::from(blocked));
            }
            if Instant::now() >= deadline {
                break;
            }
            let procs: Vec<&Proc> = pending
                .iter()
                .flat_map(|(_, l)| l.iter().map(|r| &r.proc))
                .collect();
            process::wait_any(&procs, deadline);
        }
        if retiring && !kw.kill_after_timeout {
            for (i, list) in &pending {
                for r in list {
                    say(format!(
                        "{} ({}) is still finishing requests; not waiting any longer",
                        self.servers[*i].server.name(),
                        r.pid
                    ));
                }
            }
            return self.result(u32::from(blocked));
        }
        if !kw.kill_after_timeout {
            for (i, _) in &pending {
                say(format!(
                    "Waited {} seconds for {} to die; giving up",
                    kw.kill_wait,
                    self.servers[*i].server.name()
                ));
            }
            return self.result(1);
        }
        let mut groups = Vec::new();
        for (i, list) in &pending {
            let e = &self.servers[*i];
            say(format!(
                "Waited {} seconds for {} to die; killing",
                kw.kill_wait,
                e.server.name()
            ));
            for r in list {
                say(format!(
                    "Signal {}  pid: {}  signal: {}",
                    e.server.name(),
                    r.pid,
                    Signal::SIGKILL as i32
                ));
                // The server's whole process group (its workers too) when it
                // leads one, as Swift's kill_group; else just the process.
                match r.proc.group() {
                    Some(pgrp) => {
                        let _ = nix::sys::signal::killpg(
                            nix::unistd::Pid::from_raw(pgrp),
                            Signal::SIGKILL,
                        );
                        groups.push(pgrp);
                    }
                    None => {
                        let _ = r.proc.signal(Signal::SIGKILL);
                    }
                }
            }
        }
        // Swift neither checks that the kill worked nor reports success.
        let until = Instant::now() + KILL_VERIFY_WAIT;
        let mut all_dead = true;
        for (i, list) in &pending {
            let e = &self.servers[*i];
            for r in list {
                let dead =
                    process::wait_exit(&r.proc, until.saturating_duration_since(Instant::now()));
                if dead {
                    self.stopped(e, r, kw);
                } else {
                    all_dead = false;
                    say(format!(
                        "Waited {} seconds for {} ({}) to die after SIGKILL; giving up",
                        KILL_VERIFY_WAIT.as_secs(),
                        e.server.name(),
                        r.pid
                    ));
                }
            }
        }
        for pgrp in groups {
            let gone = crate::process::wait_group_gone(pgrp, until);
            if !gone {
                all_dead = false;
                say(format!(
                    "Processes of group {pgrp} are still running after SIGKILL"
                ));
            }
        }
        self.result(u32::from(!all_dead || blocked))
    }

    /// A signalled pid is gone: drop its pid file and say so.
    fn stopped(&self, e: &Entry, r: &Running, kw: &Kw) {
        let _guard = self.settings.run_dir.lock().ok();
        // After a reload the pid file names the new server: not stale.
        if kw.verbose && pidfile::holds(&r.pid_file, r.pid) {
            say(format!("Removing stale pid file {}", r.pid_file.display()));
        }
        pidfile::remove_if_holds(&r.pid_file, r.pid);
        say(format!(
            "{} ({}) appears to have stopped",
            e.server.name(),
            r.pid
        ));
    }

    /// `kill`: stop, and succeed unless a server is still running.
    fn kill(&self, kw: &Kw) -> i32 {
        let status = self.stop(kw);
        let quiet = Kw {
            quiet: true,
            ..kw.clone()
        };
        if status != 0 && self.status(&quiet) == 0 {
            return self.result(1);
        }
        self.result(0)
    }

    /// `reload` (and `force-reload`): for each main server in turn, start
    /// the new server, and stop the running one gracefully (SIGHUP) once
    /// the new one is up; other servers are stopped, then started. Swift stops first and starts then, which refuses
    /// connections for as long as the new server takes to bind; and it
    /// uses its default run dir whatever `-r` says.
    ///
    /// The new server gets the old one's listening socket when it is one of
    /// ours (see [`crate::handover`]); otherwise it binds beside the old one
    /// (SO_REUSEPORT). A new server that does not start leaves the old one
    /// serving, untouched. A server that is not running is started, as
    /// Swift's stop-then-start would (its "No ... running" still fails the
    /// command).
    fn reload(&self, kw: &Kw) -> i32 {
        // The new server must be watched until it is up, whatever -w, -n
        // or -o say: that is what makes stopping the old one safe.
        let kw = Kw {
            graceful: true,
            wait: true,
            daemon: true,
            once: false,
            ..kw.clone()
        };
        let mut failures = 0;
        for e in &self.servers {
            failures += self.reload_server(e, &kw);
        }
        self.result(failures)
    }

    /// `reload` of one server; the number of failures.
    fn reload_server(&self, e: &Entry, kw: &Kw) -> u32 {
        if !servers::is_main(&e.server.server) {
            // Daemons take no connections, and two of a kind (replicators,
            // sharders) should not overlap: Swift's stop, then start.
            let one = Manager::new(vec![e.clone()], self.default_strict, self.settings);
            let failures = one.stop(kw) + one.start(kw);
            if one.had_hard_error() {
                self.hard_error.set(true);
            }
            return failures as u32;
        }
        let guard = match self.settings.run_dir.lock() {
            Ok(g) => g,
            Err(msg) => {
                swift_common::sys::stdio::print_err(&msg);
                self.hard_error.set(true);
                return 1;
            }
        };
        let running = self.signal_pids(e, None, kw);
        if !running.blocked.is_empty() {
            // Named by our pid files but not ours to replace (see
            // signal_pids' message): leave everything as it is.
            return 1;
        }
        if running.pids.is_empty() {
            drop(guard);
            say(format!("No {} running", e.server.name()));
            let one = Manager::new(vec![e.clone()], self.default_strict, self.settings);
            let started = one.start(kw);
            if one.had_hard_error() {
                self.hard_error.set(true);
            }
            return 1 + started as u32;
        }
        let confs = self.conf_files(e, kw);
        if confs.is_empty() {
            // A config that is gone cannot be started: keep what runs.
            return 1;
        }
        for warning in crate::env::raise_limits() {
            say(warning);
        }
        let mut failures = 0;
        let mut old = running.pids;
        let mut retiring = Vec::new();
        for conf in confs {
            let pid_file = self.pid_file_for(e, &conf);
            let (replaced, rest): (Vec<Running>, Vec<Running>) =
                old.into_iter().partition(|r| r.pid_file == pid_file);
            old = rest;
            if self.replace(e, &conf, &pid_file, &replaced, kw) {
                retiring.extend(replaced);
            } else {
                failures += 1;
            }
        }
        // Pid files of configs that are no longer found: nothing replaces
        // those servers, and Swift's reload would stop them too.
        for r in old {
            if self.send(e, &r, Signal::SIGHUP, kw) == Sent::Done {
                retiring.push(r);
            }
        }
        drop(guard);
        if !retiring.is_empty() {
            let i = self
                .servers
                .iter()
                .position(|x| x.server == e.server)
                .unwrap_or(0);
            failures += self.watch(vec![(i, retiring)], kw, false, true) as u32;
        }
        failures
    }

    /// Start `swift-<server> CONF` beside the `old` processes of that
    /// config; once it is up, write its pid file and SIGHUP them. Whether
    /// it started (when not, `old` are left untouched).
    fn replace(&self, e: &Entry, conf: &Path, pid_file: &Path, old: &[Running], kw: &Kw) -> bool {
        say(format!(
            "Starting {}...({})",
            e.server.name(),
            conf.display()
        ));
        if let Some(Err(msg)) = pid_file.parent().map(pidfile::create_dirs) {
            swift_common::sys::stdio::print_err(&msg);
            self.hard_error.set(true);
            return false;
        }
        let socket = match old {
            [one]
                if handover::is_ours(&e.binary)
                    && handover::runs_ours(&one.proc, &e.binary, &e.server.cmd) =>
            {
                match handover::take_listening_socket(&one.proc) {
                    Ok(fd) => {
                        if kw.verbose {
                            say(format!(
                                "Handing the listening socket of {} ({}) to the new server",
                                e.server.name(),
                                one.pid
                            ));
                        }
                        Some(fd)
                    }
                    Err(why) => {
                        if kw.verbose {
                            say(format!(
                                "Unable to take the listening socket of {} ({}): {why}; \
                                 the new server binds its own",
                                e.server.name(),
                                one.pid
                            ));
                        }
                        None
                    }
                }
            }
            _ => None,
        };
        let (child, output) = match self.spawn(e, conf, false, kw, socket) {
            Ok(spawned) => spawned,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                say(format!("{} does not exist", e.server.cmd));
                return false;
            }
            Err(err) => {
                say(format!("Unable to run {}: {err}", e.binary.display()));
                return false;
            }
        };
        let proc = Proc::from_child(child.id());
        let mut s = Spawned {
            pid: proc.pid(),
            child,
            proc,
            pid_file: pid_file.to_path_buf(),
            once: false,
            output,
        };
        let deadline = Instant::now() + self.settings.start_timeout;
        let started = self.await_start(e, &mut s, deadline);
        let running = !s.proc.has_exited();
        if started && !running {
            say(format!(
                "{} ({}) exited while starting",
                e.server.name(),
                s.pid
            ));
        }
        if started && running {
            match pidfile::write_pid(pid_file, s.child.id(), self.settings.run_dir.path()) {
                Ok(()) => {
                    for r in old {
                        // Gone already or not signallable: nothing to wait for.
                        let _ = self.send(e, r, Signal::SIGHUP, kw);
                    }
                    return true;
                }
                Err(err) => {
                    // An untracked server is worse than none.
                    say(format!(
                        "Unable to write pid file {}: {err}",
                        pid_file.display()
                    ));
                    self.hard_error.set(true);
                }
            }
        }
        if running {
            self.abandon(e, &mut s, kw);
        }
        for r in old {
            say(format!(
                "{} ({}) keeps running: the new server did not start",
                e.server.name(),
                r.pid
            ));
        }
        false
    }

    /// Stop a new server that will not replace the old one: gracefully (it
    /// may already hold connections), then its whole process group.
    fn abandon(&self, e: &Entry, s: &mut Spawned, kw: &Kw) {
        say(format!(
            "Signal {}  pid: {}  signal: {}",
            e.server.name(),
            s.pid,
            Signal::SIGHUP as i32
        ));
        let _ = s.proc.signal(Signal::SIGHUP);
        let kill_wait = Duration::from_secs(u64::try_from(kw.kill_wait).unwrap_or(0));
        if !process::wait_exit(&s.proc, kill_wait) {
            say(format!(
                "Signal {}  pid: {}  signal: {}",
                e.server.name(),
                s.pid,
                Signal::SIGKILL as i32
            ));
            match s.proc.group() {
                Some(pgrp) => {
                    let _ =
                        nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgrp), Signal::SIGKILL);
                }
                None => {
                    let _ = s.proc.signal(Signal::SIGKILL);
                }
            }
            process::wait_exit(&s.proc, KILL_VERIFY_WAIT);
        }
        let _ = s.child.try_wait();
    }

    /// `reload-seamless`: SIGUSR1 to the main servers, then wait (up to
    /// `--start-timeout`) for each to report on Swift's notification socket
    /// that the reload is done, or that it failed. Swift sends SIGTERM to
    /// every other server, stopping it for good; those are left alone. And
    /// Swift returns at once, reporting nothing of how the reload went.
    fn reload_seamless(&self, kw: &Kw) -> i32 {
        let kw = Kw {
            graceful: false,
            seamless: true,
            ..kw.clone()
        };
        let mut failures = 0;
        for e in &self.servers {
            if !servers::is_main(&e.server.server) {
                say(format!(
                    "Skipping {}: only proxy, account, container and object servers reload seamlessly",
                    e.server.name()
                ));
                continue;
            }
            failures += self.reload_seamless_server(e, &kw);
        }
        self.result(failures)
    }

    /// `reload-seamless` of one main server; the number of failures.
    fn reload_seamless_server(&self, e: &Entry, kw: &Kw) -> u32 {
        let name = e.server.name();
        let found = self.signal_pids(e, None, kw);
        let mut failures = u32::from(!found.blocked.is_empty());
        let mut waiting = Vec::new();
        for r in found.pids {
            // Bound before the signal: a notification to an unbound name is
            // lost. Taken already means another reload is waiting on it.
            let listener = match notify::Listener::bind(r.pid) {
                Ok(l) => l,
                Err(err) => {
                    say(format!(
                        "Unable to reload {name} ({}): cannot listen for its notifications: {err}",
                        r.pid
                    ));
                    failures += 1;
                    continue;
                }
            };
            match self.send(e, &r, Signal::SIGUSR1, kw) {
                Sent::Done => waiting.push((r, listener)),
                Sent::Gone => {}
                Sent::Blocked => failures += 1,
            }
        }
        if waiting.is_empty() {
            if failures == 0 {
                say(format!("No {name} running"));
            }
            return failures.max(1);
        }
        let deadline = Instant::now() + self.settings.start_timeout;
        for (r, listener) in waiting {
            let pid = r.pid;
            let outcome = listener.wait_ready(&r.proc, deadline, &mut |line| {
                if kw.verbose && !line.is_empty() {
                    say(format!("{name} ({pid}) notified {}", decode(line)));
                }
            });
            match outcome {
                Outcome::Ready(_) => say(format!("{name} ({pid}) reloaded")),
                Outcome::Failed(why) => {
                    say(format!("{name} ({pid}) reload failed: {why}"));
                    failures += 1;
                }
                Outcome::Exited => {
                    say(format!("{name} ({pid}) exited while reloading"));
                    failures += 1;
                }
                Outcome::TimedOut => {
                    say(format!(
                        "Waited {} seconds for {name} ({pid}) to reload; giving up",
                        self.settings.start_timeout.as_secs()
                    ));
                    failures += 1;
                }
            }
        }
        failures
    }
}

/// Read `reader` to EOF, or until `until` passes; whether EOF was reached.
fn read_until_eof(reader: &std::fs::File, out: &mut Vec<u8>, until: Option<Instant>) -> bool {
    let mut buf = [0u8; 8192];
    let mut reader_ref = reader;
    loop {
        if let Some(until) = until {
            let now = Instant::now();
            if now >= until {
                return false;
            }
            let left = (until - now).as_millis().max(1);
            let mut fds = [PollFd::new(reader.as_fd(), PollFlags::POLLIN)];
            match nix::poll::poll(
                &mut fds,
                PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX),
            ) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(_) => return true,
            }
        }
        match reader_ref.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}

/// Wait up to `wait` (or for as long as it takes) for a spawned server to
/// exit; its status if it did.
fn wait_child(s: &mut Spawned, wait: Option<Duration>) -> Option<ExitStatus> {
    match wait {
        Some(wait) => {
            process::wait_exit(&s.proc, wait);
            s.child.try_wait().ok().flatten()
        }
        None => s.child.wait().ok(),
    }
}

/// The line for a server that exited while starting.
fn exit_line(server: &str, pid: i32, status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("{server} ({pid}) exited with status {code}"),
        (None, Some(sig)) => format!("{server} ({pid}) was killed by signal {sig}"),
        _ => format!("{server} ({pid}) exited ({status})"),
    }
}

/// Server output as Python decodes it (`utf8`, `backslashreplace`).
pub fn decode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        s.push_str(chunk.valid());
        for b in chunk.invalid() {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_backslashreplace() {
        assert_eq!(decode(b"ok\n"), "ok\n");
        assert_eq!(decode(b"a\xffb\xc3"), "a\\xffb\\xc3");
        assert_eq!(decode("é".as_bytes()), "é");
    }

    #[test]
    fn exit_lines() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            exit_line("proxy-server", 7, ExitStatus::from_raw(1 << 8)),
            "proxy-server (7) exited with status 1"
        );
        assert_eq!(
            exit_line("proxy-server", 7, ExitStatus::from_raw(9)),
            "proxy-server (7) was killed by signal 9"
        );
    }
}
