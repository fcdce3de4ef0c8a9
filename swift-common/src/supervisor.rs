//! The master process: fork `workers` children on the shared listening
//! socket, wait (bounded) for each to report ready, then tell swift-init and
//! systemd; replace dead workers (with back-off in a crash loop); and handle
//! SIGTERM (stop now), SIGHUP and SIGINT (stop accepting, let requests
//! finish, bounded by `stale_worker_timeout`).
//!
//! The master is a single-threaded loop over `poll(2)`: a signalfd, the
//! workers' readiness pipes and the pipes that capture stdout and stderr. It
//! never starts a thread or a runtime, so forking from it is sound. A worker
//! that cannot start never takes the master down once the server is up
//! (Swift's does: warts 18 and 19); during the first start it fails the
//! start with the worker's own error, because nothing is serving yet.
//!
//! What a worker does is not this module's business: it calls the
//! `worker_main` it is given.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::logging::{self, Logger};
use crate::sys::notify::Notifier;
use crate::sys::privileges::{TargetUser, drop_privileges};
use crate::sys::process::{Forked, die_with_parent, fork};
use crate::sys::stdio::{CapturePipes, LineSplitter};
use crate::sys::{SysError, signals};

/// How long a new worker may take to report ready before it is killed.
pub const WORKER_START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long workers get to exit after SIGTERM before SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_secs(5);
/// A worker that dies sooner than this after its start counts toward a crash loop.
const QUICK_DEATH: Duration = Duration::from_secs(5);
/// The longest pause between respawns in a crash loop.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often the master wakes up when nothing happens.
const TICK: Duration = Duration::from_secs(1);

/// How a worker tells whoever started it that it is serving.
pub enum Readiness {
    /// A forked worker: write to the master's pipe.
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

impl Readiness {
    /// Report ready. For an in-process server this is when stdout closes
    /// (what swift-init waits for) and READY=1 is sent; it returns the
    /// readers of the captured streams, which the caller must drain.
    pub fn ready(self) -> Result<Option<CaptureReaders>, SysError> {
        match self {
            Readiness::Pipe(mut f) => {
                let _ = f.write_all(b"ready\n");
                Ok(None)
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
                Ok(Some(CaptureReaders { stdout, stderr }))
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

/// The master's settings.
pub struct Supervisor<'a> {
    /// How many workers (at least 1; `workers = 0` never gets here).
    pub workers: usize,
    pub listener: TcpListener,
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
    ready_pipe: Option<File>,
    ready_buf: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The first workers are starting; nothing is serving yet.
    Starting,
    Running,
    /// Stopping; workers still alive at the deadline get SIGKILL.
    Stopping {
        deadline: Instant,
        killed: bool,
    },
}

/// The supervisor's settings without the socket, which the master owns.
struct Settings<'a> {
    workers: usize,
    user: Option<TargetUser>,
    logger: Logger,
    notifier: Notifier,
    stale_worker_timeout: Duration,
    keep_stderr: bool,
    worker_main: &'a dyn Fn(WorkerArgs) -> i32,
}

struct Master<'a, 'b> {
    cfg: &'b Settings<'a>,
    me: Pid,
    workers: Vec<Worker>,
    phase: Phase,
    /// When each missing worker may be forked again.
    respawns: Vec<Instant>,
    quick_deaths: u32,
    capture: Option<CapturePipes>,
    readers: Vec<(File, LineSplitter, &'static str)>,
    listener: Option<TcpListener>,
}

impl<'a> Supervisor<'a> {
    /// Run the master until it stops. Returns the exit code (0 after a
    /// signal-driven stop); an error means the server never became ready.
    pub fn run(self) -> Result<i32, SupervisorError> {
        let Supervisor {
            workers,
            listener,
            user,
            logger,
            notifier,
            stale_worker_timeout,
            keep_stderr,
            worker_main,
        } = self;
        let cfg = Settings {
            workers,
            user,
            logger,
            notifier,
            stale_worker_timeout,
            keep_stderr,
            worker_main,
        };
        let sfd = signals::block_and_open(signals::MASTER_SIGNALS)?;
        let capture = CapturePipes::new()?;
        let mut master = Master {
            cfg: &cfg,
            me: nix::unistd::getpid(),
            workers: Vec::new(),
            phase: Phase::Starting,
            respawns: Vec::new(),
            quick_deaths: 0,
            capture: Some(capture),
            readers: Vec::new(),
            // The master keeps the socket open so respawned workers inherit
            // it; it is the only copy besides the workers' own.
            listener: Some(listener),
        };
        for _ in 0..cfg.workers {
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
    fn spawn(&mut self, sfd: &nix::sys::signalfd::SignalFd) -> Result<(), SysError> {
        let (ready_r, ready_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| SysError {
            op: "pipe2".into(),
            source: e.into(),
        })?;
        let Some(listener) = &self.listener else {
            return Ok(());
        };
        match fork()? {
            Forked::Child => {
                // Never returns.
                self.child(sfd, ready_r, ready_w, listener)
            }
            Forked::Parent(pid) => {
                drop(ready_w);
                let pipe = File::from(ready_r);
                let _ = crate::sys::stdio::set_nonblocking(&pipe);
                self.logger().notice(format_args!(
                    "Started child {} from parent {}",
                    pid, self.me
                ));
                self.workers.push(Worker {
                    pid,
                    state: WorkerState::Starting,
                    started: Instant::now(),
                    ready_pipe: Some(pipe),
                    ready_buf: Vec::new(),
                });
                Ok(())
            }
        }
    }

    /// The forked worker: shed the master's state, become the target user,
    /// and run `worker_main`.
    fn child(
        &self,
        sfd: &nix::sys::signalfd::SignalFd,
        ready_r: OwnedFd,
        ready_w: OwnedFd,
        listener: &TcpListener,
    ) -> ! {
        // The master's fds this process must not hold: the signalfd, the
        // other workers' readiness pipes and the capture readers.
        // The listening socket: the worker gets its own duplicate below and
        // must hold no other copy, or it would keep the port open after it
        // stops accepting.
        let listener = match listener.try_clone() {
            Ok(l) => l,
            Err(e) => {
                let mut ready = File::from(ready_w);
                let _ = ready.write_all(
                    format!("error cannot duplicate the listening socket: {e}\n").as_bytes(),
                );
                std::process::exit(2)
            }
        };
        let mut close = vec![sfd.as_fd().as_raw_fd(), ready_r.as_raw_fd()];
        close.extend(self.listener.as_ref().map(|l| l.as_raw_fd()));
        close.extend(
            self.workers
                .iter()
                .filter_map(|w| w.ready_pipe.as_ref().map(|p| p.as_raw_fd())),
        );
        close.extend(self.readers.iter().map(|(f, _, _)| f.as_raw_fd()));
        if let Some(c) = &self.capture {
            close.push(c.stdout_read.as_raw_fd());
            close.push(c.stderr_read.as_raw_fd());
        }
        for fd in close {
            let _ = nix::unistd::close(fd);
        }
        std::mem::forget(ready_r);
        let mut ready = File::from(ready_w);
        let fail = |ready: &mut File, msg: String| -> ! {
            let _ = ready.write_all(format!("error {msg}\n").as_bytes());
            std::process::exit(2)
        };
        if let Err(e) = signals::reset_in_child() {
            fail(&mut ready, e.to_string());
        }
        // First-generation workers stop holding swift-init's pipe; later
        // ones inherited the master's already-captured fds.
        if let Some(capture) = &self.capture
            && let Err(e) = capture.install(self.cfg.keep_stderr)
        {
            fail(&mut ready, e.to_string());
        }
        if !self.cfg.keep_stderr {
            logging::mark_stderr_captured();
        }
        if let Some(user) = &self.cfg.user
            && let Err(e) = drop_privileges(user)
        {
            fail(
                &mut ready,
                format!("cannot drop privileges to user {}: {e}", user.name),
            );
        }
        match die_with_parent(self.me) {
            Ok(true) => {}
            Ok(false) => std::process::exit(0), // the master is already gone
            Err(e) => fail(&mut ready, e.to_string()),
        }
        let code = (self.cfg.worker_main)(WorkerArgs {
            listener,
            readiness: Readiness::Pipe(ready),
        });
        std::process::exit(code)
    }

    fn run(&mut self, sfd: &nix::sys::signalfd::SignalFd) -> Result<i32, SupervisorError> {
        loop {
            if let Phase::Stopping { .. } = self.phase
                && self.workers.is_empty()
            {
                self.read_captured();
                self.logger().notice(format_args!("Exited ({})", self.me));
                return Ok(0);
            }
            self.wait_for_events(sfd)?;
            for sig in signals::drain(sfd)? {
                self.on_signal(sig);
            }
            self.reap()?;
            self.check_ready_pipes()?;
            self.check_timers(sfd)?;
        }
    }

    /// Block in poll(2) until a signal, a readiness report, captured output
    /// or the next timer.
    fn wait_for_events(&mut self, sfd: &nix::sys::signalfd::SignalFd) -> Result<(), SysError> {
        let timeout = self.next_timer().map_or(TICK, |t| {
            t.saturating_duration_since(Instant::now()).min(TICK)
        });
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        for w in &self.workers {
            if let Some(p) = &w.ready_pipe {
                fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
            }
        }
        for (f, _, _) in &self.readers {
            fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
        }
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
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
        self.read_captured();
        Ok(())
    }

    fn next_timer(&self) -> Option<Instant> {
        let mut next = self.respawns.iter().min().copied();
        for w in &self.workers {
            if w.state == WorkerState::Starting {
                let t = w.started + WORKER_START_TIMEOUT;
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        if let Phase::Stopping { deadline, .. } = self.phase {
            next = Some(next.map_or(deadline, |n| n.min(deadline)));
        }
        next
    }

    /// Log what workers (and the master itself) wrote to stdout and stderr,
    /// as Swift's LoggerFileObject does.
    fn read_captured(&mut self) {
        let logger = self.cfg.logger.clone();
        for (file, splitter, kind) in &mut self.readers {
            let (lines, _) = splitter.read_lines(file);
            for line in lines {
                logger.error(format_args!("{kind}: {line}"));
            }
        }
    }

    fn on_signal(&mut self, sig: Signal) {
        match sig {
            Signal::SIGCHLD => {} // reaped below
            Signal::SIGTERM => {
                if matches!(
                    self.phase,
                    Phase::Stopping { killed: false, .. } | Phase::Starting | Phase::Running
                ) {
                    self.logger()
                        .notice(format_args!("SIGTERM received ({})", self.me));
                    self.cfg.notifier.notify("STOPPING=1");
                    self.stop(Signal::SIGTERM, TERM_GRACE);
                }
            }
            Signal::SIGHUP | Signal::SIGINT => {
                if matches!(self.phase, Phase::Stopping { .. }) {
                    return;
                }
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
            Signal::SIGUSR1 => {
                self.logger().warning(format_args!(
                    "SIGUSR1 received ({}): seamless reload is not available in this build; ignored",
                    self.me
                ));
            }
            other => {
                self.logger().error(format_args!(
                    "Stopping with unexpected signal {}",
                    other as i32
                ));
            }
        }
    }

    /// Enter the stopping phase: signal every worker, stop respawning, close
    /// the master's copy of the listening socket.
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
        self.listener = None;
        for w in &self.workers {
            let _ = signals::kill(w.pid, sig);
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
            let Some(i) = self.workers.iter().position(|w| w.pid == pid) else {
                self.logger().warning(format_args!(
                    "Ignoring wait() result from unknown PID {pid}"
                ));
                continue;
            };
            let mut w = self.workers.swap_remove(i);
            // A last report may still be in the pipe (an error line).
            let message = w.ready_pipe.take().map(|mut p| {
                let mut rest = Vec::new();
                let _ = p.read_to_end(&mut rest);
                w.ready_buf.extend_from_slice(&rest);
                worker_error(&w.ready_buf)
            });
            match self.phase {
                Phase::Stopping { .. } => {
                    self.logger()
                        .info(format_args!("Child {pid} exited ({})", describe(&status)));
                }
                Phase::Starting => {
                    let why = message.flatten().unwrap_or_else(|| {
                        format!(
                            "worker {pid} exited before it was ready ({})",
                            describe(&status)
                        )
                    });
                    return Err(self.fail_start(why));
                }
                Phase::Running => {
                    self.logger().error(format_args!(
                        "Removing dead child {} from parent {}",
                        pid, self.me
                    ));
                    if let Some(Some(why)) = message {
                        self.logger()
                            .error(format_args!("Worker {pid} could not start: {why}"));
                    }
                    self.schedule_respawn(
                        w.started.elapsed() < QUICK_DEATH || w.state == WorkerState::Starting,
                    );
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

    /// A first-start failure: stop the other workers and report.
    fn fail_start(&mut self, why: String) -> SupervisorError {
        self.logger().error(format_args!("{why}"));
        for w in &self.workers {
            let _ = signals::kill(w.pid, Signal::SIGKILL);
        }
        for w in self.workers.drain(..) {
            let _ = waitpid(w.pid, None);
        }
        SupervisorError::WorkerFailed(why)
    }

    /// Read readiness reports; when every first-generation worker is ready,
    /// the server is up.
    fn check_ready_pipes(&mut self) -> Result<(), SupervisorError> {
        let mut failed = None;
        for w in &mut self.workers {
            let Some(pipe) = &mut w.ready_pipe else {
                continue;
            };
            let mut buf = [0u8; 512];
            match pipe.read(&mut buf) {
                Ok(0) => {
                    // EOF without a report: the worker is dying; reap() has
                    // the details once it is gone.
                    w.ready_pipe = None;
                }
                Ok(n) => {
                    w.ready_buf.extend_from_slice(&buf[..n]);
                    if w.ready_buf.starts_with(b"ready\n") {
                        w.state = WorkerState::Running;
                        w.ready_pipe = None;
                    } else if w.ready_buf.ends_with(b"\n") {
                        failed = worker_error(&w.ready_buf).map(|m| (w.pid, m));
                        w.ready_pipe = None;
                    }
                }
                Err(_) => {}
            }
        }
        if let Some((pid, why)) = failed {
            if self.phase == Phase::Starting {
                return Err(self.fail_start(why));
            }
            self.logger()
                .error(format_args!("Worker {pid} could not start: {why}"));
        }
        if self.phase == Phase::Starting
            && self.workers.len() == self.cfg.workers
            && self.workers.iter().all(|w| w.state == WorkerState::Running)
        {
            self.signal_ready()?;
        }
        Ok(())
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

    fn check_timers(&mut self, sfd: &nix::sys::signalfd::SignalFd) -> Result<(), SupervisorError> {
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
        match self.phase {
            Phase::Stopping { deadline, killed } if !killed && now >= deadline => {
                for w in &self.workers {
                    self.logger().warning(format_args!(
                        "Killing child {} that did not exit in time",
                        w.pid
                    ));
                    let _ = signals::kill(w.pid, Signal::SIGKILL);
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
                    self.workers.len()
                ));
                self.workers.clear();
            }
            Phase::Running => {
                let due: Vec<Instant> = self
                    .respawns
                    .iter()
                    .copied()
                    .filter(|t| *t <= now)
                    .collect();
                self.respawns.retain(|t| *t > now);
                for _ in due {
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

/// The message of an `error ...` readiness report.
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
    }
}
