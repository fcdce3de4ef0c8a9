//! The master process: fork `workers` children on the shared listening
//! socket, wait (bounded) for each to report ready, then tell swift-init and
//! systemd; replace dead workers (with back-off in a crash loop); and handle
//! the signals:
//!
//! - SIGTERM: stop now (workers get SIGTERM, then SIGKILL after a grace).
//! - SIGHUP, SIGINT: stop accepting, let requests finish (bounded by
//!   `stale_worker_timeout`), exit.
//! - SIGUSR1: seamless reload. Check the new config in a throwaway child;
//!   if it is bad, keep serving and report it. Otherwise re-exec in place
//!   (same pid) handing over the listening socket, so no connection is
//!   refused; the new image starts its workers and only then tells the old
//!   ones to stop accepting and finish (killed after `stale_worker_timeout`).
//!   A SIGUSR1 during a reload is queued, never fatal.
//! - SIGHUP or SIGUSR1 sent to one worker: that worker drains and exits,
//!   and a replacement starts at once.
//!
//! The master is a single-threaded loop over `poll(2)`: a signalfd, the
//! workers' status pipes and the pipes that capture stdout and stderr. It
//! never starts a thread or a runtime, so forking from it is sound. A worker
//! that cannot start never takes the master down once the server is up
//! (Swift's does: warts 18 and 19); during the first start it fails the
//! start with the worker's own error, because nothing is serving yet.
//!
//! What a worker does is not this module's business: it calls the
//! `worker_main` it is given.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::logging::{self, Logger};
use crate::sys::notify::{Notifier, monotonic_usec};
use crate::sys::privileges::{TargetUser, drop_privileges};
use crate::sys::process::{Forked, die_with_parent, fork};
use crate::sys::stdio::{CapturePipes, LineSplitter};
use crate::sys::{SysError, fds, signals};

/// How long a new worker may take to report ready before it is killed.
pub const WORKER_START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long workers get to exit after SIGTERM before SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_secs(5);
/// How long the config check of a reload may take.
pub const RELOAD_CHECK_TIMEOUT: Duration = Duration::from_secs(30);
/// A worker that dies sooner than this after its start counts toward a crash loop.
const QUICK_DEATH: Duration = Duration::from_secs(5);
/// The longest pause between respawns in a crash loop.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often the master wakes up when nothing happens.
const TICK: Duration = Duration::from_secs(1);

/// Environment of a re-executed master: the old workers it inherits.
pub const ENV_OLD_WORKERS: &str = "SWIFT_RELOAD_OLD_WORKERS";
/// Environment of a re-executed master: workers already draining, with the
/// milliseconds left before they are killed (`pid:ms,...`).
pub const ENV_STALE_WORKERS: &str = "SWIFT_RELOAD_STALE_WORKERS";
/// Environment of a re-executed master: the fds of the capture readers.
pub const ENV_CAPTURE_FDS: &str = "SWIFT_RELOAD_CAPTURE_FDS";

/// What a master re-executed by a seamless reload inherits.
#[derive(Debug, Default)]
pub struct Inherited {
    /// Workers of the previous image, still serving, to retire once the new
    /// ones are ready.
    pub old_workers: Vec<Pid>,
    /// Workers already draining, and how long they have left.
    pub stale: Vec<(Pid, Duration)>,
    /// Readers of the already-captured stdout and stderr.
    pub capture: Option<(File, File)>,
}

impl Inherited {
    /// Read what the previous image handed over (nothing on a first start).
    /// Old workers are kept only if they really are our children.
    pub fn from_env() -> Inherited {
        let me = std::process::id() as i32;
        let ours = |p: &i32| crate::sys::process::proc_stat(*p).is_some_and(|s| s.ppid == me);
        let old_workers = std::env::var(ENV_OLD_WORKERS)
            .unwrap_or_default()
            .split(',')
            .filter_map(|p| p.trim().parse::<i32>().ok())
            .filter(ours)
            .map(Pid::from_raw)
            .collect();
        let stale = std::env::var(ENV_STALE_WORKERS)
            .unwrap_or_default()
            .split(',')
            .filter_map(|e| {
                let (p, ms) = e.trim().split_once(':')?;
                Some((p.parse::<i32>().ok()?, ms.parse::<u64>().ok()?))
            })
            .filter(|(p, _)| ours(p))
            .map(|(p, ms)| (Pid::from_raw(p), Duration::from_millis(ms)))
            .collect();
        let mut capture = fds::fds_from_env(ENV_CAPTURE_FDS)
            .into_iter()
            .map(File::from);
        let capture = match (capture.next(), capture.next()) {
            (Some(out), Some(err)) => {
                let _ = crate::sys::stdio::set_nonblocking(&out);
                let _ = crate::sys::stdio::set_nonblocking(&err);
                Some((out, err))
            }
            _ => None,
        };
        Inherited {
            old_workers,
            stale,
            capture,
        }
    }

    /// Whether this process is the new image of a seamless reload.
    pub fn is_reload(&self) -> bool {
        !self.old_workers.is_empty() || !self.stale.is_empty() || self.capture.is_some()
    }
}

/// How a worker tells whoever started it that it is serving.
pub enum Readiness {
    /// A forked worker: write to the master's status pipe.
    Pipe(File),
    /// `workers = 0`: the process itself is the server; it captures its own
    /// stdio and notifies swift-init and systemd directly.
    InProcess {
        notifier: Notifier,
        capture: CapturePipes,
        keep_stderr: bool,
    },
}

/// The readers of captured stdout and stderr, for an in-process server to log.
pub struct CaptureReaders {
    pub stdout: File,
    pub stderr: File,
}

/// What a worker keeps after reporting ready.
pub enum Ready {
    /// A forked worker: its status pipe, to say it is draining.
    Worker(StatusPipe),
    /// The in-process server: the captured streams to log.
    InProcess(CaptureReaders),
}

/// A worker's channel to the master after it is ready.
pub struct StatusPipe(File);

impl StatusPipe {
    /// Tell the master this worker stopped accepting (it was signalled
    /// directly), so a replacement starts now rather than when it exits.
    pub fn draining(&mut self) {
        let _ = self.0.write_all(b"draining\n");
    }
}

impl Readiness {
    /// Report ready. For an in-process server this is when stdout closes
    /// (what swift-init waits for) and READY=1 is sent.
    pub fn ready(self) -> Result<Ready, SysError> {
        match self {
            Readiness::Pipe(mut f) => {
                let _ = f.write_all(b"ready\n");
                Ok(Ready::Worker(StatusPipe(f)))
            }
            Readiness::InProcess {
                notifier,
                capture,
                keep_stderr,
            } => {
                capture.install(keep_stderr)?;
                if !keep_stderr {
                    logging::mark_stderr_captured();
                }
                notifier.notify("READY=1");
                let (stdout, stderr) = capture.into_readers();
                Ok(Ready::InProcess(CaptureReaders { stdout, stderr }))
            }
        }
    }

    /// Report that the worker cannot start, with the one line to show.
    pub fn fail(self, message: &str) {
        match self {
            Readiness::Pipe(mut f) => {
                let _ = f.write_all(format!("error {message}\n").as_bytes());
            }
            Readiness::InProcess { .. } => {
                let _ = writeln!(std::io::stderr(), "{message}");
            }
        }
    }
}

/// What a worker process receives.
pub struct WorkerArgs {
    /// The shared listening socket (a duplicate the worker owns).
    pub listener: TcpListener,
    pub readiness: Readiness,
}

/// How to re-execute this server for a seamless reload.
pub struct Reexec<'a> {
    /// The binary to run (the path this process was started from, so an
    /// upgraded binary takes effect).
    pub path: std::path::PathBuf,
    pub argv: Vec<OsString>,
    /// `LISTEN_FDNAMES` for the socket (`bind_ip:bind_port`).
    pub listen_name: String,
    /// Check the config as it is now on disk; runs in a throwaway child.
    pub check: &'a dyn Fn() -> Result<(), String>,
}

impl Reexec<'_> {
    /// Re-execute this process in place with the listening socket on fd 3
    /// (`LISTEN_FDS`), the fds in `more` after it, and `extra` added to the
    /// environment (from which any earlier reload's variables are removed).
    /// Returns only if exec failed.
    pub fn exec(
        &self,
        logger: &Logger,
        listener: RawFd,
        more: &[RawFd],
        extra: Vec<(OsString, OsString)>,
    ) -> SysError {
        let me = std::process::id();
        let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
            .filter(|(k, _)| {
                let k = k.to_string_lossy();
                !k.starts_with("LISTEN_") && !k.starts_with("SWIFT_RELOAD_")
            })
            .collect();
        env.push(("LISTEN_PID".into(), me.to_string().into()));
        env.push(("LISTEN_FDS".into(), "1".into()));
        env.push(("LISTEN_FDNAMES".into(), self.listen_name.clone().into()));
        env.extend(extra);
        let mut keep = vec![listener];
        keep.extend_from_slice(more);
        logger.info(format_args!(
            "Old server PID={me} re'execing as: {:?}",
            self.argv
        ));
        fds::exec_with_fds(&self.path, &self.argv, &env, &keep)
    }
}

/// A reload that did not happen: log it, and end the reload for systemd and
/// swift-init with `READY=1` and the reason (`serving` says what still serves).
pub fn reload_failed(logger: &Logger, notifier: &Notifier, serving: &str, why: &str) {
    logger.error(format_args!("Reload failed; {serving}: {why}"));
    notifier.notify(&format!("READY=1\nSTATUS=Reload failed: {}", one_line(why)));
}

/// What a failed reload leaves serving, in the log line.
pub const STILL_SERVING: &str = "still serving with the previous configuration";
/// Likewise, when the re-executed image could not take over.
pub const OLD_WORKERS_SERVING: &str = "the previous workers keep serving";

/// The master's settings.
pub struct Supervisor<'a> {
    /// How many workers (at least 1; `workers = 0` never gets here).
    pub workers: usize,
    /// Who workers run as; `None` keeps the current user.
    pub user: Option<TargetUser>,
    pub logger: Logger,
    pub notifier: Notifier,
    /// Bound on a graceful stop: workers still busy after this are killed.
    pub stale_worker_timeout: Duration,
    /// `-v`: stderr stays on the console when stdio is captured.
    pub keep_stderr: bool,
    /// Runs in each worker after fork and privilege drop; returns its exit code.
    pub worker_main: &'a dyn Fn(WorkerArgs) -> i32,
    /// How to reload on SIGUSR1.
    pub reexec: Reexec<'a>,
}

/// Why the master could not run or start.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error(transparent)]
    Sys(#[from] SysError),
    /// A first-generation worker failed; the message is the worker's own.
    #[error("{0}")]
    WorkerFailed(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WorkerState {
    Starting,
    Running,
}

struct Worker {
    pid: Pid,
    state: WorkerState,
    started: Instant,
    /// Status reports: `ready`, `error <why>`, `draining`.
    pipe: Option<File>,
    buf: Vec<u8>,
}

/// A worker told to finish its requests and exit.
struct Stale {
    pid: Pid,
    deadline: Instant,
    since: Instant,
    killed: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The first workers are starting; nothing of ours is serving yet.
    Starting,
    /// New workers of a seamless reload are starting; the old ones serve.
    Reloading,
    Running,
    /// A reload's new workers could not start: the old ones keep serving,
    /// nothing is respawned, and a new SIGUSR1 may fix it.
    Degraded,
    /// Stopping; workers still alive at the deadline get SIGKILL.
    Stopping {
        deadline: Instant,
        killed: bool,
    },
}

struct Master<'a, 'b> {
    cfg: &'b Supervisor<'a>,
    me: Pid,
    workers: Vec<Worker>,
    /// A previous image's workers, serving until ours are ready.
    previous: Vec<Pid>,
    stale: Vec<Stale>,
    phase: Phase,
    /// When each missing worker may be forked again.
    respawns: Vec<Instant>,
    quick_deaths: u32,
    /// Pipes for the first workers' stdio, installed on ourselves once ready.
    capture: Option<CapturePipes>,
    readers: Vec<(File, LineSplitter, &'static str)>,
    /// The master's copy of the listening socket.
    listener: Option<TcpListener>,
    /// A SIGUSR1 arrived while a reload was in progress.
    reload_pending: bool,
}

impl Supervisor<'_> {
    /// Supervise only what a previous image handed over (its workers keep
    /// serving), because this image's config does not load. A SIGUSR1 tries
    /// the reload again; SIGTERM or SIGHUP stops the old workers and exits.
    pub fn run_degraded(
        &self,
        listener: TcpListener,
        inherited: Inherited,
    ) -> Result<i32, SupervisorError> {
        self.start(listener, inherited, true)
    }

    /// Run the master on `listener` until it stops, taking over what a
    /// previous image handed over (`inherited`, empty on a first start).
    /// Returns the exit code (0 after a signal-driven stop); an error means
    /// the server never became ready.
    pub fn run(&self, listener: TcpListener, inherited: Inherited) -> Result<i32, SupervisorError> {
        self.start(listener, inherited, false)
    }

    fn start(
        &self,
        listener: TcpListener,
        inherited: Inherited,
        degraded: bool,
    ) -> Result<i32, SupervisorError> {
        // A re-executed master inherits the blocked mask, so a signal sent
        // during the exec waits in the queue instead of killing us.
        let sfd = signals::block_and_open(signals::MASTER_SIGNALS)?;
        let reload = inherited.is_reload();
        let now = Instant::now();
        let stale = inherited
            .stale
            .iter()
            .map(|(pid, left)| Stale {
                pid: *pid,
                deadline: now + *left,
                since: now,
                killed: false,
            })
            .collect();
        let mut master = Master {
            cfg: self,
            me: nix::unistd::getpid(),
            workers: Vec::new(),
            previous: inherited.old_workers,
            stale,
            phase: if degraded {
                Phase::Degraded
            } else if reload {
                Phase::Reloading
            } else {
                Phase::Starting
            },
            respawns: Vec::new(),
            quick_deaths: 0,
            capture: None,
            readers: Vec::new(),
            listener: Some(listener),
            reload_pending: false,
        };
        match inherited.capture {
            // Already captured by the previous image: keep logging it.
            Some((out, err)) => {
                master
                    .readers
                    .push((out, LineSplitter::default(), "STDOUT"));
                master
                    .readers
                    .push((err, LineSplitter::default(), "STDERR"));
            }
            None if reload => {}
            None => master.capture = Some(CapturePipes::new()?),
        }
        let workers = if degraded { 0 } else { self.workers };
        for _ in 0..workers {
            master.spawn(&sfd)?;
        }
        master.run(&sfd)
    }
}

impl Master<'_, '_> {
    fn logger(&self) -> &Logger {
        &self.cfg.logger
    }

    /// Fork one worker.
    fn spawn(&mut self, sfd: &SignalFd) -> Result<(), SysError> {
        let Some(listener) = &self.listener else {
            return Ok(());
        };
        let (pipe_r, pipe_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| SysError {
            op: "pipe2".into(),
            source: e.into(),
        })?;
        match fork()? {
            Forked::Child => {
                // Never returns.
                self.child(sfd, pipe_r, pipe_w, listener)
            }
            Forked::Parent(pid) => {
                drop(pipe_w);
                let pipe = File::from(pipe_r);
                let _ = crate::sys::stdio::set_nonblocking(&pipe);
                self.logger().notice(format_args!(
                    "Started child {} from parent {}",
                    pid, self.me
                ));
                self.workers.push(Worker {
                    pid,
                    state: WorkerState::Starting,
                    started: Instant::now(),
                    pipe: Some(pipe),
                    buf: Vec::new(),
                });
                Ok(())
            }
        }
    }

    /// The forked worker: shed the master's state, become the target user,
    /// and run `worker_main`.
    fn child(&self, sfd: &SignalFd, pipe_r: OwnedFd, pipe_w: OwnedFd, listener: &TcpListener) -> ! {
        // Our own transaction-id sequence, not a copy of the master's.
        crate::http::trans_id::reseed();
        let mut status = File::from(pipe_w);
        let fail = |status: &mut File, msg: String| -> ! {
            let _ = status.write_all(format!("error {msg}\n").as_bytes());
            std::process::exit(2)
        };
        // The listening socket: the worker gets its own duplicate and must
        // hold no other copy, or it would keep the port open after it
        // stops accepting.
        let listener = match listener.try_clone() {
            Ok(l) => l,
            Err(e) => fail(
                &mut status,
                format!("cannot duplicate the listening socket: {e}"),
            ),
        };
        // The master's fds this process must not hold: the signalfd, the
        // socket, the other workers' pipes and the capture readers.
        let mut close = vec![sfd.as_fd().as_raw_fd(), pipe_r.as_raw_fd()];
        close.extend(self.listener.as_ref().map(|l| l.as_raw_fd()));
        close.extend(
            self.workers
                .iter()
                .filter_map(|w| w.pipe.as_ref().map(|p| p.as_raw_fd())),
        );
        close.extend(self.readers.iter().map(|(f, _, _)| f.as_raw_fd()));
        if let Some(c) = &self.capture {
            close.push(c.stdout_read.as_raw_fd());
            close.push(c.stderr_read.as_raw_fd());
        }
        for fd in close {
            let _ = nix::unistd::close(fd);
        }
        std::mem::forget(pipe_r);
        if let Err(e) = signals::reset_in_child() {
            fail(&mut status, e.to_string());
        }
        // First-generation workers stop holding swift-init's pipe; later
        // ones inherited the master's already-captured fds.
        if let Some(capture) = &self.capture {
            if let Err(e) = capture.install(self.cfg.keep_stderr) {
                fail(&mut status, e.to_string());
            }
            for fd in capture.write_fds() {
                let _ = nix::unistd::close(fd);
            }
        }
        if !self.cfg.keep_stderr {
            logging::mark_stderr_captured();
        }
        if let Some(user) = &self.cfg.user
            && let Err(e) = drop_privileges(user)
        {
            fail(
                &mut status,
                format!("cannot drop privileges to user {}: {e}", user.name),
            );
        }
        match die_with_parent(self.me) {
            Ok(true) => {}
            Ok(false) => std::process::exit(0), // the master is already gone
            Err(e) => fail(&mut status, e.to_string()),
        }
        let code = (self.cfg.worker_main)(WorkerArgs {
            listener,
            readiness: Readiness::Pipe(status),
        });
        std::process::exit(code)
    }

    fn run(&mut self, sfd: &SignalFd) -> Result<i32, SupervisorError> {
        loop {
            if let Phase::Stopping { .. } = self.phase
                && self.workers.is_empty()
                && self.stale.is_empty()
                && self.previous.is_empty()
            {
                self.read_captured();
                self.logger().notice(format_args!("Exited ({})", self.me));
                return Ok(0);
            }
            self.wait_for_events(sfd)?;
            for sig in signals::drain(sfd)? {
                self.on_signal(sig, sfd);
            }
            self.reap()?;
            self.read_status_pipes(sfd)?;
            self.check_timers(sfd)?;
            if self.reload_pending && self.phase == Phase::Running {
                self.reload_pending = false;
                self.reload(sfd);
            }
        }
    }

    /// Block in poll(2) until a signal, a status report, captured output
    /// or the next timer.
    fn wait_for_events(&mut self, sfd: &SignalFd) -> Result<(), SysError> {
        let timeout = self.next_timer().map_or(TICK, |t| {
            t.saturating_duration_since(Instant::now()).min(TICK)
        });
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        for w in &self.workers {
            if let Some(p) = &w.pipe {
                fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
            }
        }
        // A stream at EOF (stderr with `-v`, which stays on the console and
        // so has no writer) would make every poll return at once.
        for (f, _, _) in self.readers.iter().filter(|(_, s, _)| !s.at_eof()) {
            fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
        }
        // Round up so a timer due in 0.4 ms does not spin.
        let ms = (timeout.as_micros().div_ceil(1000)).min(i32::MAX as u128) as i32;
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                return Err(SysError {
                    op: "poll".into(),
                    source: e.into(),
                });
            }
        }
        drop(fds);
        self.read_captured();
        Ok(())
    }

    fn next_timer(&self) -> Option<Instant> {
        let mut times: Vec<Instant> = self.respawns.clone();
        times.extend(
            self.workers
                .iter()
                .filter(|w| w.state == WorkerState::Starting)
                .map(|w| w.started + WORKER_START_TIMEOUT),
        );
        times.extend(self.stale.iter().filter(|s| !s.killed).map(|s| s.deadline));
        if let Phase::Stopping { deadline, .. } = self.phase {
            times.push(deadline);
        }
        times.into_iter().min()
    }

    /// Log what workers (and the master itself) wrote to stdout and stderr,
    /// as Swift's LoggerFileObject does.
    fn read_captured(&mut self) {
        let logger = self.cfg.logger.clone();
        for (file, splitter, kind) in &mut self.readers {
            if splitter.at_eof() {
                continue;
            }
            let (lines, _) = splitter.read_lines(file);
            for line in lines {
                logger.error(format_args!("{kind}: {line}"));
            }
        }
    }

    fn on_signal(&mut self, sig: Signal, sfd: &SignalFd) {
        let stopping = matches!(self.phase, Phase::Stopping { .. });
        match sig {
            Signal::SIGCHLD => {} // reaped below
            Signal::SIGTERM => {
                self.logger()
                    .notice(format_args!("SIGTERM received ({})", self.me));
                self.cfg.notifier.notify("STOPPING=1");
                self.stop(Signal::SIGTERM, TERM_GRACE);
            }
            Signal::SIGHUP | Signal::SIGINT if !stopping => {
                if sig == Signal::SIGINT {
                    self.logger().notice(format_args!("User quit"));
                } else {
                    self.logger()
                        .notice(format_args!("SIGHUP received ({})", self.me));
                }
                self.cfg.notifier.notify("STOPPING=1");
                // Workers stop accepting at once and finish their requests;
                // they give up after stale_worker_timeout, and we kill any
                // still there a little later.
                self.stop(Signal::SIGHUP, self.cfg.stale_worker_timeout + TERM_GRACE);
            }
            Signal::SIGUSR1 if !stopping => {
                self.logger()
                    .notice(format_args!("SIGUSR1 received ({})", self.me));
                match self.phase {
                    Phase::Running | Phase::Degraded => self.reload(sfd),
                    _ => {
                        self.logger().notice(format_args!(
                            "A reload is already in progress; reloading again once it completes"
                        ));
                        self.reload_pending = true;
                    }
                }
            }
            Signal::SIGHUP | Signal::SIGINT | Signal::SIGUSR1 => {}
            other => {
                self.logger().error(format_args!(
                    "Stopping with unexpected signal {}",
                    other as i32
                ));
            }
        }
    }

    /// Enter the stopping phase: signal every worker (old ones too), stop
    /// respawning, close the master's copy of the listening socket.
    fn stop(&mut self, sig: Signal, grace: Duration) {
        let deadline = Instant::now() + grace;
        let deadline = match self.phase {
            // A SIGTERM during a graceful stop shortens it, never lengthens it.
            Phase::Stopping { deadline: d, .. } => d.min(deadline),
            _ => deadline,
        };
        self.phase = Phase::Stopping {
            deadline,
            killed: false,
        };
        self.respawns.clear();
        self.reload_pending = false;
        self.listener = None;
        let pids = self
            .workers
            .iter()
            .map(|w| w.pid)
            .chain(self.previous.iter().copied())
            .chain(self.stale.iter().map(|s| s.pid));
        for pid in pids {
            let _ = signals::kill(pid, sig);
        }
    }

    /// Reap every exited child; schedule replacements.
    fn reap(&mut self) -> Result<(), SupervisorError> {
        loop {
            let status = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => return Ok(()),
                Ok(s) => s,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    return Err(SysError {
                        op: "waitpid".into(),
                        source: e.into(),
                    }
                    .into());
                }
            };
            let Some(pid) = status.pid() else { continue };
            if !matches!(status, WaitStatus::Exited(..) | WaitStatus::Signaled(..)) {
                continue;
            }
            if let Some(i) = self.stale.iter().position(|s| s.pid == pid) {
                self.stale.swap_remove(i);
                self.logger().notice(format_args!(
                    "Removing stale child {} from parent {}",
                    pid, self.me
                ));
                continue;
            }
            if let Some(i) = self.previous.iter().position(|p| *p == pid) {
                self.previous.swap_remove(i);
                self.logger().notice(format_args!(
                    "Removing stale child {} from parent {}",
                    pid, self.me
                ));
                continue;
            }
            let Some(i) = self.workers.iter().position(|w| w.pid == pid) else {
                self.logger().warning(format_args!(
                    "Ignoring wait() result from unknown PID {pid}"
                ));
                continue;
            };
            let mut w = self.workers.swap_remove(i);
            // A last report may still be in the pipe (an error line).
            let message = w.pipe.take().and_then(|mut p| {
                let mut rest = Vec::new();
                let _ = p.read_to_end(&mut rest);
                w.buf.extend_from_slice(&rest);
                worker_error(&w.buf)
            });
            match self.phase {
                Phase::Stopping { .. } => {
                    self.logger()
                        .info(format_args!("Child {pid} exited ({})", describe(&status)));
                }
                Phase::Starting => {
                    let why = message.unwrap_or_else(|| {
                        format!(
                            "worker {pid} exited before it was ready ({})",
                            describe(&status)
                        )
                    });
                    return Err(self.fail_start(why));
                }
                Phase::Reloading => {
                    let why = message.unwrap_or_else(|| {
                        format!(
                            "worker {pid} exited before it was ready ({})",
                            describe(&status)
                        )
                    });
                    self.reload_failed_after_exec(&why);
                }
                Phase::Running | Phase::Degraded => {
                    self.logger().error(format_args!(
                        "Removing dead child {} from parent {}",
                        pid, self.me
                    ));
                    if let Some(why) = message {
                        self.logger()
                            .error(format_args!("Worker {pid} could not start: {why}"));
                    }
                    if self.phase == Phase::Running {
                        self.schedule_respawn(
                            w.started.elapsed() < QUICK_DEATH || w.state == WorkerState::Starting,
                        );
                    }
                }
            }
        }
    }

    fn schedule_respawn(&mut self, quick: bool) {
        let delay = if quick {
            self.quick_deaths += 1;
            backoff(self.quick_deaths)
        } else {
            self.quick_deaths = 0;
            Duration::ZERO
        };
        if delay > Duration::ZERO {
            self.logger().warning(format_args!(
                "Workers keep dying within {}s of starting ({} in a row); next respawn in {:.1}s",
                QUICK_DEATH.as_secs(),
                self.quick_deaths,
                delay.as_secs_f64()
            ));
        }
        self.respawns.push(Instant::now() + delay);
    }

    /// Kill and reap the workers of this generation.
    fn kill_workers(&mut self) {
        for w in &self.workers {
            let _ = signals::kill(w.pid, Signal::SIGKILL);
        }
        for w in self.workers.drain(..) {
            let _ = waitpid(w.pid, None);
        }
    }

    /// A first-start failure: stop the other workers and report.
    fn fail_start(&mut self, why: String) -> SupervisorError {
        self.logger().error(format_args!("{why}"));
        self.kill_workers();
        SupervisorError::WorkerFailed(why)
    }

    /// The re-executed image could not start its workers: the old ones keep
    /// serving; report the failure and wait for a better config.
    fn reload_failed_after_exec(&mut self, why: &str) {
        self.kill_workers();
        self.respawns.clear();
        self.phase = Phase::Degraded;
        reload_failed(self.logger(), &self.cfg.notifier, OLD_WORKERS_SERVING, why);
    }

    /// Read every worker's status reports.
    fn read_status_pipes(&mut self, sfd: &SignalFd) -> Result<(), SupervisorError> {
        let mut failed = Vec::new();
        let mut draining = Vec::new();
        for w in &mut self.workers {
            let Some(pipe) = &mut w.pipe else { continue };
            let mut buf = [0u8; 512];
            match pipe.read(&mut buf) {
                // EOF: the worker is gone or going; reap() has the details.
                Ok(0) => w.pipe = None,
                Ok(n) => w.buf.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
            while let Some(nl) = w.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = w.buf.drain(..=nl).collect();
                let line = String::from_utf8_lossy(&line[..nl]).into_owned();
                match line.as_str() {
                    "ready" => w.state = WorkerState::Running,
                    "draining" => draining.push(w.pid),
                    other => {
                        if let Some(why) = other.strip_prefix("error ") {
                            failed.push((w.pid, why.to_owned()));
                            // Keep the text for reap() to report.
                            w.buf = format!("error {why}\n").into_bytes();
                            w.pipe = None;
                            break;
                        }
                    }
                }
            }
        }
        for (pid, why) in failed {
            match self.phase {
                Phase::Starting => return Err(self.fail_start(why)),
                Phase::Reloading => self.reload_failed_after_exec(&why),
                _ => self
                    .logger()
                    .error(format_args!("Worker {pid} could not start: {why}")),
            }
        }
        for pid in draining {
            // Signalled directly (not by us): replace it now, let it finish.
            if let Some(i) = self.workers.iter().position(|w| w.pid == pid) {
                let w = self.workers.swap_remove(i);
                self.logger().notice(format_args!(
                    "Child {pid} was told to stop accepting; starting a replacement"
                ));
                self.retire(w.pid);
                if self.phase == Phase::Running
                    && let Err(e) = self.spawn(sfd)
                {
                    self.logger()
                        .error(format_args!("Cannot start a worker: {e}"));
                    self.schedule_respawn(true);
                }
            }
        }
        let all_ready = self.workers.len() == self.cfg.workers
            && self.workers.iter().all(|w| w.state == WorkerState::Running);
        if all_ready {
            match self.phase {
                Phase::Starting => self.signal_ready()?,
                Phase::Reloading => self.reload_complete(),
                _ => {}
            }
        }
        Ok(())
    }

    /// Track a worker that is finishing its requests; it is killed if it
    /// is still there after `stale_worker_timeout`.
    fn retire(&mut self, pid: Pid) {
        let now = Instant::now();
        self.stale.push(Stale {
            pid,
            deadline: now + self.cfg.stale_worker_timeout,
            since: now,
            killed: false,
        });
    }

    /// The server is up: capture our own stdio (closing swift-init's pipe)
    /// and send READY=1.
    fn signal_ready(&mut self) -> Result<(), SysError> {
        self.phase = Phase::Running;
        if let Some(capture) = self.capture.take() {
            capture.install(self.cfg.keep_stderr)?;
            if !self.cfg.keep_stderr {
                logging::mark_stderr_captured();
            }
            let (out, err) = capture.into_readers();
            self.readers.push((out, LineSplitter::default(), "STDOUT"));
            self.readers.push((err, LineSplitter::default(), "STDERR"));
        }
        self.cfg.notifier.notify("READY=1");
        Ok(())
    }

    /// A seamless reload's new workers are ready: only now do the old ones
    /// stop accepting (they finish their requests, bounded by
    /// stale_worker_timeout).
    fn reload_complete(&mut self) {
        self.phase = Phase::Running;
        let old: Vec<Pid> = std::mem::take(&mut self.previous);
        for pid in &old {
            let _ = signals::kill(*pid, Signal::SIGHUP);
            self.retire(*pid);
        }
        self.logger().notice(format_args!(
            "Reloaded ({}): {} new workers serving; {} old workers finishing their requests",
            self.me,
            self.workers.len(),
            old.len()
        ));
        self.cfg
            .notifier
            .notify("READY=1\nSTATUS=Reloaded: serving with the new configuration");
    }

    /// SIGUSR1: check the config, then re-exec in place with the listening
    /// socket; on any failure keep serving and report it.
    fn reload(&mut self, _sfd: &SignalFd) {
        let notifier = &self.cfg.notifier;
        notifier.notify(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
        if let Err(why) = run_check(self.cfg.reexec.check) {
            reload_failed(self.logger(), notifier, STILL_SERVING, &why);
            return;
        }
        let Some(listener) = &self.listener else {
            return;
        };
        // Everything serving now becomes the new image's "old workers".
        let old: Vec<String> = self
            .workers
            .iter()
            .map(|w| w.pid)
            .chain(self.previous.iter().copied())
            .map(|p| p.to_string())
            .collect();
        let now = Instant::now();
        let stale: Vec<String> = self
            .stale
            .iter()
            .filter(|s| !s.killed)
            .map(|s| {
                format!(
                    "{}:{}",
                    s.pid,
                    s.deadline.saturating_duration_since(now).as_millis()
                )
            })
            .collect();
        let mut extra: Vec<(OsString, OsString)> = vec![
            (ENV_OLD_WORKERS.into(), old.join(",").into()),
            (ENV_STALE_WORKERS.into(), stale.join(",").into()),
        ];
        let mut more = Vec::new();
        if let [(out, _, _), (err, _, _)] = self.readers.as_slice() {
            more.push(out.as_raw_fd());
            more.push(err.as_raw_fd());
            let (a, b) = (fds::LISTEN_FDS_START + 1, fds::LISTEN_FDS_START + 2);
            extra.push((ENV_CAPTURE_FDS.into(), format!("{a},{b}").into()));
        }
        let err = self
            .cfg
            .reexec
            .exec(self.logger(), listener.as_raw_fd(), &more, extra);
        reload_failed(self.logger(), notifier, STILL_SERVING, &err.to_string());
    }

    fn check_timers(&mut self, sfd: &SignalFd) -> Result<(), SupervisorError> {
        let now = Instant::now();
        // Workers that never became ready.
        for w in &self.workers {
            if w.state == WorkerState::Starting && now >= w.started + WORKER_START_TIMEOUT {
                self.logger().error(format_args!(
                    "Worker {} did not report ready within {}s; killing it",
                    w.pid,
                    WORKER_START_TIMEOUT.as_secs()
                ));
                let _ = signals::kill(w.pid, Signal::SIGKILL);
            }
        }
        // Old workers past stale_worker_timeout.
        for s in &mut self.stale {
            if !s.killed && now >= s.deadline {
                self.cfg.logger.notice(format_args!(
                    "Killing long-running stale worker {} after {}s",
                    s.pid,
                    s.since.elapsed().as_secs()
                ));
                let _ = signals::kill(s.pid, Signal::SIGKILL);
                s.killed = true;
            }
        }
        match self.phase {
            Phase::Stopping { deadline, killed } if !killed && now >= deadline => {
                let pids: Vec<Pid> = self
                    .workers
                    .iter()
                    .map(|w| w.pid)
                    .chain(self.previous.iter().copied())
                    .chain(self.stale.iter().map(|s| s.pid))
                    .collect();
                for pid in pids {
                    self.logger().warning(format_args!(
                        "Killing child {pid} that did not exit in time"
                    ));
                    let _ = signals::kill(pid, Signal::SIGKILL);
                }
                self.phase = Phase::Stopping {
                    deadline: now + TERM_GRACE,
                    killed: true,
                };
            }
            Phase::Stopping {
                deadline,
                killed: true,
            } if now >= deadline => {
                // SIGKILLed children that still have not gone (unkillable,
                // in D state): stop waiting rather than hang.
                self.logger().error(format_args!(
                    "{} children did not die after SIGKILL; exiting anyway",
                    self.workers.len() + self.stale.len() + self.previous.len()
                ));
                self.workers.clear();
                self.stale.clear();
                self.previous.clear();
            }
            Phase::Running => {
                let due = self.respawns.iter().filter(|t| **t <= now).count();
                self.respawns.retain(|t| *t > now);
                for _ in 0..due {
                    if let Err(e) = self.spawn(sfd) {
                        // fork can fail for want of memory or pids: retry later.
                        self.logger()
                            .error(format_args!("Cannot start a worker: {e}"));
                        self.schedule_respawn(true);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Run a reload's config check in a throwaway child (so whatever it builds
/// is discarded), bounded by [`RELOAD_CHECK_TIMEOUT`]. The child must not
/// use an async runtime; loading a config does not.
pub fn run_check(check: &dyn Fn() -> Result<(), String>) -> Result<(), String> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe2: {e}"))?;
    let pid = match fork() {
        Err(e) => return Err(e.to_string()),
        Ok(Forked::Child) => {
            drop(r);
            let mut w = File::from(w);
            let report = match check() {
                Ok(()) => "ok\n".to_owned(),
                Err(e) => format!("error {}\n", one_line(&e)),
            };
            let _ = w.write_all(report.as_bytes());
            std::process::exit(0)
        }
        Ok(Forked::Parent(pid)) => pid,
    };
    drop(w);
    let mut pipe = File::from(r);
    let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
    let ms = RELOAD_CHECK_TIMEOUT.as_millis() as i32;
    let ready = poll(
        &mut fds,
        PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
    )
    .unwrap_or(0)
        > 0;
    let mut out = String::new();
    if ready {
        let _ = pipe.read_to_string(&mut out);
    } else {
        let _ = signals::kill(pid, Signal::SIGKILL);
    }
    let _ = waitpid(pid, None);
    match out.trim_end() {
        "ok" => Ok(()),
        s if s.starts_with("error ") => Err(s["error ".len()..].to_owned()),
        _ if !ready => Err(format!(
            "the config check did not finish within {}s",
            RELOAD_CHECK_TIMEOUT.as_secs()
        )),
        _ => Err("the config check died".to_owned()),
    }
}

/// A message made safe for a one-line notification or report.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// The message of an `error ...` status report.
fn worker_error(buf: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(buf);
    text.lines()
        .find_map(|l| l.strip_prefix("error "))
        .map(str::to_owned)
}

fn describe(status: &WaitStatus) -> String {
    match status {
        WaitStatus::Exited(_, code) => format!("exit status {code}"),
        WaitStatus::Signaled(_, sig, _) => format!("killed by {}", signals::name(*sig)),
        other => format!("{other:?}"),
    }
}

/// The pause before the n-th quick respawn in a row: none for the first,
/// then 0.25 s doubling up to [`MAX_BACKOFF`].
fn backoff(n: u32) -> Duration {
    if n <= 1 {
        return Duration::ZERO;
    }
    let exp = (n - 2).min(16);
    (Duration::from_millis(250) * 2u32.pow(exp)).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_at_zero_doubles_and_caps() {
        assert_eq!(backoff(1), Duration::ZERO);
        assert_eq!(backoff(2), Duration::from_millis(250));
        assert_eq!(backoff(3), Duration::from_millis(500));
        assert_eq!(backoff(10), MAX_BACKOFF);
        assert_eq!(backoff(1000), MAX_BACKOFF);
    }

    #[test]
    fn worker_error_reports_are_parsed() {
        assert_eq!(
            worker_error(b"error no such user\n"),
            Some("no such user".into())
        );
        assert_eq!(worker_error(b"ready\n"), None);
        assert_eq!(one_line("a\nb\rc"), "a b c");
    }
}
