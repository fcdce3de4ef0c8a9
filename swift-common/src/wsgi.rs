//! Swift's `run_wsgi`: the ordered bootstrap of a WSGI-style server.
//!
//! 1. Load the paste config and the app section; validate `swift.conf`.
//! 2. Open the logger (`-v` adds the console); log panics through it.
//! 3. Validate everything else before touching the system: workers,
//!    bind settings, HTTP limits, TLS files, the target user, and the
//!    pipeline itself (built once, here, and inherited by every worker).
//! 4. `-t` stops here with exit 0.
//! 5. setsid/chdir/umask; bind (with retry); then either serve in-process
//!    (`workers = 0`, after dropping privileges too: wart 17) or hand over
//!    to the [`crate::supervisor`].
//!
//! Every failure is one line on stderr (and in the log when the logger is
//! up) and exit status 1. The app itself is supplied by the binary through
//! [`AppFactory`].

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::cli::ServerOptions;
use crate::config::{Conf, ConfigError, PasteConfig, Pipeline, SwiftConf};
use crate::http::{ServerConfig, Service};
use crate::logging::{self, LogConfig, Logger};
use crate::net::{self, BindConfig, tls};
use crate::supervisor::{
    CaptureReaders, Inherited, OLD_WORKERS_SERVING, Readiness, Ready, Reexec, STILL_SERVING,
    Supervisor, WorkerArgs, reload_failed,
};
use crate::sys::notify::Notifier;
use crate::sys::privileges::TargetUser;
use crate::sys::{cpu, process, signals, stdio};

/// What the binary provides: its app section and how to build its pipeline.
pub trait AppFactory {
    /// The `[app:...]` section run_wsgi reads its settings from (`proxy-server`).
    fn app_section(&self) -> &'static str;

    /// Build the served pipeline from the resolved `[pipeline:main]`.
    /// Errors are one line naming the section or option at fault.
    fn build(&self, ctx: &AppContext<'_>) -> Result<Rc<dyn Service>, String>;
}

/// What an [`AppFactory`] gets to build from.
pub struct AppContext<'a> {
    /// The app section's conf (`[app:proxy-server]` + DEFAULT).
    pub conf: &'a Conf,
    /// `main` resolved to filters and app, each with its conf.
    pub pipeline: &'a Pipeline,
    pub swift_conf: &'a SwiftConf,
    /// The server's logger (`log_name`).
    pub logger: &'a Logger,
}

/// A bootstrap failure: the line to print, and whether it was also logged.
#[derive(Debug)]
struct Fatal(String);

impl<E: std::fmt::Display> From<E> for Fatal {
    fn from(e: E) -> Fatal {
        Fatal(e.to_string())
    }
}

/// Everything validated, ready to bind and serve.
struct Prepared {
    logger: Logger,
    workers: usize,
    bind: BindConfig,
    server: ServerConfig,
    tls: Option<tls::TlsConfig>,
    user: Option<TargetUser>,
    stale_worker_timeout: Duration,
    service: Rc<dyn Service>,
}

/// Run the server; returns the process exit code.
pub fn run_wsgi(options: &ServerOptions, app: &dyn AppFactory) -> i32 {
    logging::install_panic_hook();
    // What a seamless reload handed over, taken before anything else can
    // open fds on those numbers.
    let inherited_socket = crate::sys::fds::listen_fds()
        .into_iter()
        .next()
        .or_else(|| {
            // swift-init's graceful reload hands the old server's socket to the
            // new one by number (it cannot know our pid for LISTEN_PID).
            crate::sys::fds::fds_from_env(ENV_INHERITED_LISTEN_FD)
                .into_iter()
                .next()
                .map(|fd| (fd, String::new()))
        });
    let inherited = Inherited::from_env();
    // The binary to re-exec on reload: the path we were started from, so
    // an upgraded binary takes effect.
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
    let console = if options.verbose {
        stdio::dup_stderr().ok()
    } else {
        None
    };
    let prepared = match prepare(options, app, console) {
        Ok(p) => p,
        Err(Fatal(msg)) if inherited.is_reload() && inherited_socket.is_some() => {
            // The config changed again between the reload's check and the
            // exec. Exiting would kill the old workers (an outage): keep
            // them serving and wait for a good config instead.
            return keep_old_workers(options, app, &exe, inherited_socket, inherited, &msg);
        }
        Err(Fatal(msg)) => return fail(&msg),
    };
    if options.test_config {
        return 0;
    }
    if let Some(e) = match process::daemon_hygiene() {
        Ok(e) => e,
        Err(e) => return fail(&e.to_string()),
    } {
        prepared
            .logger
            .debug(format_args!("{e} (already a process group leader)"));
    }
    let listener = match listen(&prepared, inherited_socket.as_ref().map(|(fd, _)| fd)) {
        Ok(l) => l,
        Err(Fatal(msg)) if inherited.is_reload() && inherited_socket.is_some() => {
            // A reload to a bind_ip/bind_port that cannot be bound: the old
            // workers keep serving on the old socket.
            return keep_old_workers(options, app, &exe, inherited_socket, inherited, &msg);
        }
        Err(Fatal(msg)) => return fail(&msg),
    };
    // Our copy of a previous socket that is no longer used must close, or
    // its port would keep queueing connections nobody accepts.
    drop(inherited_socket);
    let reload = Reload {
        exe: &exe,
        options,
        app,
        inherited,
    };
    match serve(prepared, listener, reload) {
        Ok(code) => code,
        Err(Fatal(msg)) => fail(&msg),
    }
}

/// Report a fatal startup error: logged, and one line on stderr (which may
/// be a pipe nobody reads any more; that must not become a panic).
fn fail(msg: &str) -> i32 {
    if let Some(l) = logging::global() {
        l.error(format_args!("{msg}"));
    }
    stdio::print_err(msg);
    1
}

/// The previous image's socket when it is where the config says; else a
/// new one (bind_ip or bind_port changed, or a first start).
fn listen(p: &Prepared, inherited: Option<&OwnedFd>) -> Result<std::net::TcpListener, Fatal> {
    if let Some(fd) = inherited {
        let dup = fd.try_clone()?;
        if let Some(l) = net::adopt(dup, &p.bind)? {
            return Ok(l);
        }
        p.logger.notice(format_args!(
            "bind_ip or bind_port changed; binding {}:{}",
            p.bind.bind_ip, p.bind.bind_port
        ));
    }
    Ok(net::bind(&p.bind)?)
}

/// Set by `swift-init reload` to the fd number of a listening socket taken
/// from the server being replaced: used when it is bound where the config
/// says, so no connection waiting in its queue is lost.
pub const ENV_INHERITED_LISTEN_FD: &str = "SWIFT_INHERITED_LISTEN_FD";

/// What serve() needs to support seamless reloads.
struct Reload<'a> {
    exe: &'a Path,
    options: &'a ServerOptions,
    app: &'a dyn AppFactory,
    inherited: Inherited,
}

/// Check the config as it is on disk now (for a reload), discarding what
/// it builds.
fn check(options: &ServerOptions, app: &dyn AppFactory) -> Result<(), String> {
    prepare(options, app, None).map(|_| ()).map_err(|f| f.0)
}

/// A re-executed master whose config no longer loads: supervise the old
/// workers (they keep serving) until a SIGUSR1 with a good config, or a stop.
fn keep_old_workers(
    options: &ServerOptions,
    app: &dyn AppFactory,
    exe: &Path,
    socket: Option<(OwnedFd, String)>,
    inherited: Inherited,
    why: &str,
) -> i32 {
    let Some((fd, name)) = socket else { return 1 };
    let logger = logging::global().cloned().unwrap_or_else(|| {
        let cfg = LogConfig {
            name: app.app_section().to_owned(),
            level: logging::Level::Info,
            facility: 16,
            max_line_length: 0,
            target: logging::Target::Unix(PathBuf::from("/dev/log")),
        };
        Logger::open(&cfg, None).unwrap_or_else(|_| Logger::console_only(app.app_section(), None))
    });
    let notifier = Notifier::from_env();
    reload_failed(&logger, &notifier, OLD_WORKERS_SERVING, why);
    let check = || check(options, app);
    let never = |_: WorkerArgs| 2;
    let supervisor = Supervisor {
        workers: 0,
        user: None,
        logger: logger.clone(),
        notifier,
        stale_worker_timeout: Duration::from_secs(86400),
        keep_stderr: options.verbose,
        worker_main: &never,
        reexec: Reexec {
            path: exe.to_path_buf(),
            argv: std::env::args_os().collect(),
            listen_name: name,
            check: &check,
        },
    };
    match supervisor.run_degraded(std::net::TcpListener::from(fd), inherited) {
        Ok(code) => code,
        Err(e) => {
            logger.error(format_args!("{e}"));
            1
        }
    }
}

fn prepare(
    options: &ServerOptions,
    app: &dyn AppFactory,
    console: Option<File>,
) -> Result<Prepared, Fatal> {
    let section = app.app_section();
    let paste = PasteConfig::load(&options.conf_path)?;
    let conf = paste.app_config(section, &[])?;
    let swift_dir = conf.get_nonempty("swift_dir").unwrap_or("/etc/swift");
    let swift_conf = SwiftConf::load(std::path::Path::new(swift_dir))?;
    let log_name = conf.get_nonempty("log_name").unwrap_or(section).to_owned();
    let log_config = LogConfig::from_conf(&conf, "", &log_name)?;
    let logger = Logger::open(&log_config, console)?;
    logging::set_global(&logger);

    modify_priority(&conf, &logger)?;

    let workers = conf.get_auto_int("workers", cpu::usable_cpus() as i64)?;
    if workers < 0 {
        return Err(conf
            .invalid(
                "workers",
                "must be 0 (serve in the main process), a positive number or \"auto\"",
            )
            .into());
    }
    let bind = BindConfig::from_conf(&conf)?;
    let server = ServerConfig::from_conf(&conf, &swift_conf.constraints)?;
    let tls = tls::from_conf(&conf)?;
    let user = match conf.get("user").map(str::trim) {
        // An empty `user =` keeps the current user (our extension; Swift
        // would fail to look up the user "").
        Some("") => None,
        other => Some(
            TargetUser::resolve(other.unwrap_or("swift"))
                .map_err(|e| Fatal(format!("{}: user: {e}", conf.source().display())))?,
        ),
    };
    let stale = conf.get_parsed::<f64>("stale_worker_timeout", 86400.0)?;
    if !(stale >= 0.0 && stale.is_finite()) {
        return Err(conf
            .invalid(
                "stale_worker_timeout",
                "must be a non-negative number of seconds",
            )
            .into());
    }
    if conf.get_nonempty("log_statsd_host").is_some() {
        logger.warning(format_args!(
            "log_statsd_host is set, but StatsD metrics are not implemented yet; none are sent"
        ));
    }
    let pipeline = paste.pipeline("main", &[("log_name", log_name.as_str())])?;
    let service = app
        .build(&AppContext {
            conf: &conf,
            pipeline: &pipeline,
            swift_conf: &swift_conf,
            logger: &logger,
        })
        .map_err(Fatal)?;
    Ok(Prepared {
        logger,
        workers: workers as usize,
        bind,
        server,
        tls,
        user,
        stale_worker_timeout: Duration::from_secs_f64(stale),
        service,
    })
}

/// Swift's `modify_priority`: `nice_priority`, `ionice_class`, `ionice_priority`.
/// A value that does not parse is a config error; a failed syscall is the
/// warning Swift prints.
fn modify_priority(conf: &Conf, logger: &Logger) -> Result<(), ConfigError> {
    if let Some(v) = conf.get_nonempty("nice_priority") {
        let nice: i32 = v
            .parse()
            .map_err(|_| conf.invalid("nice_priority", "must be an integer"))?;
        if let Err(e) = process::set_nice(nice) {
            stdio::print_out(
                "WARNING: Unable to modify scheduling priority of process. Keeping unchanged! Check logs for more info. ",
            );
            logger.error(format_args!("Unable to modify nice priority: {e}"));
        }
    }
    if let Some(v) = conf.get_nonempty("ionice_class") {
        let class = match v {
            "IOPRIO_CLASS_RT" => process::IoClass::RealTime,
            "IOPRIO_CLASS_BE" => process::IoClass::BestEffort,
            "IOPRIO_CLASS_IDLE" => process::IoClass::Idle,
            _ => {
                return Err(conf.invalid(
                    "ionice_class",
                    "must be IOPRIO_CLASS_RT, IOPRIO_CLASS_BE or IOPRIO_CLASS_IDLE",
                ));
            }
        };
        let prio: u8 = conf.get_parsed("ionice_priority", 0u8)?;
        if prio > 7 {
            return Err(conf.invalid("ionice_priority", "must be between 0 and 7"));
        }
        if let Err(e) = process::set_ionice(class, prio) {
            stdio::print_out(
                "WARNING: Unable to modify I/O scheduling class and priority of process. Keeping unchanged! Check logs for more info.",
            );
            logger.error(format_args!("Unable to modify ionice priority: {e}"));
        }
    }
    Ok(())
}

fn serve(p: Prepared, listener: std::net::TcpListener, reload: Reload<'_>) -> Result<i32, Fatal> {
    let options = reload.options;
    if p.tls.is_some() {
        p.logger.warning(format_args!("{}", tls::SSL_WARNING));
        if !reload.inherited.is_reload() {
            stdio::print_out(tls::SSL_WARNING);
        }
    }
    let notifier = Notifier::from_env();
    let keep_stderr = options.verbose;
    let check = || check(options, reload.app);
    let reexec = Reexec {
        path: reload.exe.to_path_buf(),
        argv: std::env::args_os().collect(),
        listen_name: format!("{}:{}", p.bind.bind_ip, p.bind.bind_port),
        check: &check,
    };
    if p.workers == 0 {
        if let Some(user) = &p.user {
            crate::sys::privileges::drop_privileges(user)
                .map_err(|e| Fatal(format!("cannot drop privileges to user {}: {e}", user.name)))?;
        }
        let capture = stdio::CapturePipes::new()?;
        let code = in_process_main(
            WorkerArgs {
                listener,
                readiness: Readiness::InProcess {
                    notifier,
                    capture,
                    keep_stderr,
                },
            },
            &p,
            &reexec,
        );
        return Ok(code);
    }
    let worker = |args: WorkerArgs| worker_main(args, &p, None);
    let supervisor = Supervisor {
        workers: p.workers,
        user: p.user.clone(),
        logger: p.logger.clone(),
        notifier,
        stale_worker_timeout: p.stale_worker_timeout,
        keep_stderr,
        worker_main: &worker,
        reexec,
    };
    supervisor
        .run(listener, reload.inherited)
        .map_err(Fatal::from)
}

/// `workers = 0`: serve in this process. A SIGUSR1 checks the new config,
/// drains, and re-executes with the listening socket kept open, so new
/// connections wait in its queue instead of being refused.
fn in_process_main(args: WorkerArgs, p: &Prepared, reexec: &Reexec<'_>) -> i32 {
    // A copy of the socket that stays open across the drain for the
    // re-exec; dropped at once on any other stop, so the port closes.
    let mut keep = args.listener.try_clone().ok();
    let code = worker_main(args, p, Some((reexec, &mut keep)));
    if code != RELOAD_REQUESTED {
        return code;
    }
    let Some(listener) = keep else { return 1 };
    let err = reexec.exec(&p.logger, listener.as_raw_fd(), &[], Vec::new());
    p.logger.error(format_args!("Reload failed: {err}"));
    1
}

/// worker_main's exit code asking the in-process server to re-exec.
const RELOAD_REQUESTED: i32 = -1;

/// What every worker (or the in-process server) runs: a single-threaded
/// runtime serving the pipeline until a signal says stop. `reexec` is set
/// for the in-process server, which reloads itself.
fn worker_main(args: WorkerArgs, p: &Prepared, reexec: InProcessReload<'_, '_>) -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            args.readiness
                .fail(&format!("cannot start the runtime: {e}"));
            return 2;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        match run_worker(args, p, reexec).await {
            Ok(code) => code,
            Err((readiness, msg)) => {
                match readiness {
                    Some(r) => r.fail(&msg),
                    None => p.logger.error(format_args!("{msg}")),
                }
                2
            }
        }
    })
}

/// The signals that stop a worker, in the order `wait_for_stop` reports them.
const STOP_SIGNALS: [&str; 3] = ["SIGHUP", "SIGUSR1", "SIGINT"];

/// Wait for SIGHUP, SIGUSR1 or SIGINT (`Some(index)`), or SIGTERM (`None`).
async fn wait_for_stop(
    stops: &mut [tokio::signal::unix::Signal],
    term: &mut Option<tokio::signal::unix::Signal>,
) -> Option<usize> {
    let any_stop = std::future::poll_fn(|cx| {
        for (i, s) in stops.iter_mut().enumerate() {
            if s.poll_recv(cx).is_ready() {
                return std::task::Poll::Ready(i);
            }
        }
        std::task::Poll::Pending
    });
    let terminate = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        i = any_stop => Some(i),
        _ = terminate => None,
    }
}

type WorkerError = (Option<Readiness>, String);

/// For the in-process server: how to reload, and the socket copy kept for it.
type InProcessReload<'a, 'b> = Option<(&'a Reexec<'b>, &'a mut Option<std::net::TcpListener>)>;

async fn run_worker(
    args: WorkerArgs,
    p: &Prepared,
    mut reexec: InProcessReload<'_, '_>,
) -> Result<i32, WorkerError> {
    let in_process = matches!(args.readiness, Readiness::InProcess { .. });
    let WorkerArgs {
        listener,
        readiness,
    } = args;
    // Handlers first, then unblock: no stop signal can be lost or take the
    // default action between here and serving.
    let mut stops = Vec::new();
    for kind in [
        SignalKind::hangup(),
        SignalKind::user_defined1(),
        SignalKind::interrupt(),
    ] {
        match signal(kind) {
            Ok(s) => stops.push(s),
            Err(e) => return Err((Some(readiness), format!("cannot handle signals: {e}"))),
        }
    }
    let mut term = if in_process {
        match signal(SignalKind::terminate()) {
            Ok(s) => Some(s),
            Err(e) => return Err((Some(readiness), format!("cannot handle signals: {e}"))),
        }
    } else {
        None // a worker dies on SIGTERM, as Swift's do
    };
    if let Err(e) = signals::unblock_all() {
        return Err((Some(readiness), e.to_string()));
    }
    let listener = match listener
        .set_nonblocking(true)
        .and_then(|()| tokio::net::TcpListener::from_std(listener))
    {
        Ok(l) => l,
        Err(e) => {
            return Err((
                Some(readiness),
                format!("cannot use the listening socket: {e}"),
            ));
        }
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = tokio::task::spawn_local(crate::http::serve(
        listener,
        p.tls.clone(),
        p.service.clone(),
        p.server.clone(),
        p.logger.clone(),
        stop_rx,
        p.stale_worker_timeout,
    ));
    let mut status = match readiness.ready().map_err(|e| (None, e.to_string()))? {
        Ready::Worker(status) => Some(status),
        Ready::InProcess(readers) => {
            spawn_capture_logger(readers, p.logger.clone());
            None
        }
    };
    let me = std::process::id();
    // Signals are awaited in their own task: the root future of the
    // LocalSet is polled on every I/O event, and polling the signal
    // streams there would cost every request.
    let (sig_tx, mut signals) = tokio::sync::mpsc::unbounded_channel();
    tokio::task::spawn_local(async move {
        loop {
            let stop = wait_for_stop(&mut stops, &mut term).await;
            if sig_tx.send(stop).is_err() {
                break;
            }
        }
    });
    let mut code = 0;
    loop {
        let Some(received) = signals.recv().await else {
            return Ok(0);
        };
        let Some(i) = received else {
            // In-process SIGTERM: stop now, as the master does for its workers.
            p.logger.notice(format_args!("SIGTERM received ({me})"));
            Notifier::from_env().notify("STOPPING=1");
            p.logger.notice(format_args!("Exited ({me})"));
            return Ok(0);
        };
        if let Some(status) = &mut status {
            // Tell the master, so a worker signalled directly is replaced
            // at once (the master ignores this when it asked us itself).
            status.draining();
            break;
        }
        let name = STOP_SIGNALS[i];
        if name == "SIGINT" {
            p.logger.notice(format_args!("User quit"));
        } else {
            p.logger.notice(format_args!("{name} received ({me})"));
        }
        let notifier = Notifier::from_env();
        if name == "SIGUSR1"
            && let Some((reexec, _)) = &reexec
        {
            notifier.notify(&format!(
                "RELOADING=1\nMONOTONIC_USEC={}",
                crate::sys::notify::monotonic_usec()
            ));
            match crate::supervisor::run_check(reexec.check) {
                Ok(()) => {
                    code = RELOAD_REQUESTED;
                    break;
                }
                Err(why) => {
                    reload_failed(&p.logger, &notifier, STILL_SERVING, &why);
                    continue;
                }
            }
        }
        notifier.notify("STOPPING=1");
        break;
    }
    if code != RELOAD_REQUESTED
        && let Some((_, keep)) = &mut reexec
    {
        // Not reloading: let the port close as soon as we stop accepting.
        keep.take();
    }
    let _ = stop_tx.send(true);
    let outcome = server.await;
    if let Ok(o) = &outcome
        && o.abandoned > 0
    {
        p.logger.warning(format_args!(
            "{} connections still busy after stale_worker_timeout ({}s); closing them",
            o.abandoned,
            p.stale_worker_timeout.as_secs()
        ));
    }
    if code == RELOAD_REQUESTED {
        // in_process_main re-executes.
    } else if in_process {
        p.logger.notice(format_args!("Exited ({me})"));
    } else {
        p.logger.notice(format_args!("Child {me} exiting normally"));
    }
    Ok(code)
}

/// For the in-process server: log what is written to our own stdout and
/// stderr, as the master does for its workers.
fn spawn_capture_logger(readers: CaptureReaders, logger: Logger) {
    for (file, kind) in [(readers.stdout, "STDOUT"), (readers.stderr, "STDERR")] {
        let logger = logger.clone();
        let Ok(pipe) = tokio::net::unix::pipe::Receiver::from_file(file) else {
            continue;
        };
        tokio::task::spawn_local(async move {
            let mut pipe = pipe;
            let mut splitter = stdio::LineSplitter::default();
            let mut buf = vec![0u8; 4096];
            loop {
                match pipe.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        for line in splitter.push(&buf[..n]) {
                            logger.error(format_args!("{kind}: {line}"));
                        }
                    }
                }
            }
        });
    }
}
