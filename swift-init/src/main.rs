//! `swift-init`: Swift's service manager, a drop-in for the Python one.
//!
//! `swift-init <server>[.<config>] [<server>[.<config>] ...] <command> [options]`
//! starts, stops, reloads and reports Swift servers (ours and Python's alike:
//! it runs `swift-<server> CONF`, found next to swift-init or on `PATH`). The
//! commands, options, server names, config discovery, pid files, messages and
//! exit statuses are Swift's; where Swift has known flaws we differ:
//!
//! - A pid is signalled only after checking it is still that server with that
//!   config (pidfd, then `/proc/<pid>/cmdline`); a pid file naming some other
//!   process is reported ("with wrong pid", always, not only with `-v`) and
//!   removed, and that process is left alone.
//! - A lock on the run dir makes two racing `start`s start one server; pid
//!   files are written atomically, and only `*.pid`/`*.pid.d` files count.
//! - `start` waits for a server to close its stdout for at most
//!   `--start-timeout` seconds (60) and reports a server that exited with an
//!   error, even a silent one; `once` runs count their exit status.
//! - `--kill-after-timeout` checks that the killed processes are gone and then
//!   succeeds.
//! - Names are reported when unknown or not installed; output is in a stable
//!   order (servers sorted by name); signals print as numbers.
//! - `reload` starts the new server first, handing it the running server's
//!   listening socket when it is one of ours, and stops the old one
//!   gracefully only once the new one is up: no connection is refused, and
//!   a new server that cannot start leaves the old one serving. It honours
//!   `-r`.
//! - `reload-seamless` waits (up to `--start-timeout`) for each main server
//!   to report the reload done or failed, and leaves the other servers
//!   running.
//! - Servers inherit only stdin, stdout and stderr (Swift's `close_fds`),
//!   plus the socket a graceful reload hands over.
//! - Resource limits are raised, never lowered; `--swift-dir`/`SWIFT_DIR`.
//!
//! The modules live in the crate's library (shared with `swift-reload`):
//! `cli` (arguments, usage), `servers` (names), `conf` (config discovery,
//! pid↔config paths), `pidfile`, `process` (identity and signals), `env`
//! (limits), `handover` (inherited fds, the listening socket a graceful
//! reload hands over), `notify` (readiness notifications), `manager` (the
//! commands).
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use swift_init::manager::{Entry, Kw, Manager, Settings, say};
use swift_init::{cli, conf, env, handover, pidfile, servers};

fn main() {
    // Before anything else opens an fd: nothing we inherited reaches the
    // servers we start.
    handover::close_inherited_fds();
    let code = run();
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

fn run() -> i32 {
    let args: Vec<OsString> = std::env::args_os().collect();
    let prog = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map_or_else(
            || "swift-init".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
    let rest = args.get(1..).unwrap_or(&[]);
    let (options, mut positional) = match cli::parse(rest) {
        cli::Parsed::Help => {
            print_help(&prog);
            return 0;
        }
        cli::Parsed::Error(msg) => {
            let _ = std::io::stderr().write_all(cli::error_text(&prog, &msg).as_bytes());
            return 2;
        }
        cli::Parsed::Run(o, p) => (o, p),
    };
    if positional.len() < 2 {
        print_help(&prog);
        say("ERROR: specify server(s) and command");
        return 1;
    }
    let mut command = positional.pop().unwrap_or_default();
    // `swift-init start proxy` works too (Swift's "silly swap").
    if !cli::is_listed_command(&command) && cli::is_listed_command(&positional[0]) {
        positional.push(command);
        command = positional.remove(0);
    }
    let Some(command) = cli::find_command(&command) else {
        print_help(&prog);
        say(format!("ERROR: unknown command, {command}"));
        return 1;
    };

    let settings = settings(&options);
    let own_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let path_var = std::env::var_os("PATH");
    let find = |cmd: &str| servers::find_binary(cmd, own_dir.as_deref(), path_var.as_deref());
    let expanded = servers::expand(&positional, &find);
    for (name, cmd) in &expanded.missing {
        let (server, _) = servers::format_server_name(name);
        if servers::ALL_SERVERS.contains(&server.as_str()) {
            say(format!(
                "Unable to find {cmd} next to swift-init or on PATH"
            ));
        } else {
            say(format!(
                "Unknown server {name} (no {cmd} next to swift-init or on PATH)"
            ));
        }
    }
    if options.verbose {
        for name in &expanded.skipped {
            let (_, cmd) = servers::format_server_name(name);
            say(format!("Skipping {name}: {cmd} not found"));
        }
    }
    let entries = expanded
        .servers
        .into_iter()
        .map(|(server, binary)| Entry { server, binary })
        .collect();
    let manager = Manager::new(entries, expanded.default_strict, &settings);
    let status = manager.run(command, &Kw::from_options(&options));

    let strict = options.strict.unwrap_or(expanded.default_strict);
    let starting = matches!(command, "start" | "no-wait" | "no-daemon" | "once");
    // Swift drops such names silently; they fail the command unless a
    // non-strict start was asked for.
    let missing_fails = !expanded.missing.is_empty() && (strict || !starting);
    if status != 0 || manager.had_hard_error() || missing_fails {
        1
    } else {
        0
    }
}

fn print_help(prog: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(cli::help(prog).as_bytes());
    let _ = out.flush();
}

/// The swift dir (`--swift-dir`, else `$SWIFT_DIR`, else /etc/swift, made
/// absolute) and the run dir (`-r`, normalised as Swift's paths are).
fn settings(o: &cli::Options) -> Settings {
    let swift_dir = o
        .swift_dir
        .clone()
        .or_else(|| std::env::var_os("SWIFT_DIR").filter(|v| !v.is_empty()))
        .map_or_else(|| PathBuf::from(cli::SWIFT_DIR), PathBuf::from);
    let swift_dir = if swift_dir.is_absolute() {
        swift_dir
    } else {
        std::env::current_dir().map_or(swift_dir.clone(), |cwd| cwd.join(&swift_dir))
    };
    Settings {
        swift_dir: conf::normpath(&swift_dir),
        run_dir: pidfile::RunDir::new(conf::normpath(Path::new(&o.run_dir))),
        start_timeout: Duration::from_secs(u64::try_from(o.start_timeout).unwrap_or(0)),
        egg_cache: env::egg_cache(),
    }
}
