//! swift-init end to end: our binary against stand-in servers (see
//! `swift_tests::init`) in a scratch swift dir and run dir, one test per
//! behaviour of issue 3: the command line, server names, config discovery,
//! pid files, each command, and the places where we deliberately do better
//! than Swift (each says why in a comment).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use swift_tests::init::{Layout, RUN_LIMIT, spawn};
use swift_tests::{Proc, pid_alive, wait_until};

/// Wait (bounded) for a process to be gone.
fn gone(pid: i32) -> bool {
    wait_until(Duration::from_secs(10), || (!pid_alive(pid)).then_some(())).is_some()
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// Whether every directory above `p` lets other users through (a private
/// TMPDIR would keep `nobody` out of the scratch dirs).
fn others_can_reach(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.ancestors()
        .skip(1)
        .all(|a| std::fs::metadata(a).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
}

// ----- 1. command line -----

#[test]
fn usage_and_argument_errors() {
    let l = Layout::new(&["proxy-server"]);
    for args in [&[][..], &["proxy"][..]] {
        let o = l.ours(args);
        assert_eq!(o.code, 1, "{o}");
        assert!(o.stdout.starts_with(
            "Usage: swift-init <server>[.<config>] [<server>[.<config>] ...] <command> [options]\n"
        ));
        assert_eq!(
            o.lines().last(),
            Some(&"ERROR: specify server(s) and command")
        );
    }
    let o = l.ours(&["proxy", "foo"]);
    assert_eq!(o.code, 1, "{o}");
    assert_eq!(o.lines().last(), Some(&"ERROR: unknown command, foo"));
    for line in [
        "Commands:",
        "    force-reload: alias for reload",
        "            kill: stop a server (no error if not running)",
        " reload-seamless: seamlessly re-exec, then shutdown of old listen sockets on",
        "           supporting servers",
        "            stop: stops a server",
        "  -c N, --config-num=N  send command to the Nth server only",
        "  --kill-after-timeout  Kill daemon and all children after kill-wait period.",
        "  --swift-dir=SWIFT_DIR",
        "  --start-timeout=N     wait N seconds for a start or reload (default 60)",
    ] {
        assert!(o.has(line), "missing {line:?} in\n{o}");
    }
    let o = swift_tests::init::run_out(&mut l.ours_cmd(&["-h"]));
    assert_eq!(o.code, 0, "{o}");
    assert!(o.has("Options:") && o.has("  -h, --help            show this help message and exit"));

    // optparse's errors: usage on stderr, then the error, exit 2.
    for (args, err) in [
        (
            &["-x", "proxy", "status"][..],
            "swift-init: error: no such option: -x",
        ),
        (
            &["proxy", "status", "-c", "abc"][..],
            "swift-init: error: option -c: invalid integer value: 'abc'",
        ),
        (
            &["proxy", "status", "-c"][..],
            "swift-init: error: -c option requires 1 argument",
        ),
        (
            &["proxy", "status", "--kill"][..],
            "swift-init: error: ambiguous option: --kill (--kill-after-timeout, --kill-wait?)",
        ),
        (
            &["proxy", "status", "--verbose=1"][..],
            "swift-init: error: --verbose option does not take a value",
        ),
    ] {
        let o = swift_tests::init::run_out(&mut l.ours_cmd(args));
        assert_eq!(o.code, 2, "{args:?}: {o}");
        assert!(o.stdout.is_empty(), "{o}");
        assert!(o.stderr.starts_with("Usage: swift-init <server>"), "{o}");
        assert_eq!(o.stderr.lines().last(), Some(err), "{o}");
    }
}

#[test]
fn command_first_or_last_and_options_anywhere() {
    let l = Layout::new(&["proxy-server"]);
    let conf = l.conf("proxy-server.conf", "");
    // `start proxy`: the command first.
    let o = l.ours(&["start", "proxy"]);
    assert_eq!(o.code, 0, "{o}");
    assert!(
        o.has(&format!("Starting proxy-server...({})", path(&conf))),
        "{o}"
    );
    let pid = l.pid("proxy-server.pid").expect("pid file");
    // Options before, between and after; the command in any case.
    let o = l.ours(&["-v", "proxy", "STATUS"]);
    assert_eq!(o.code, 0, "{o}");
    assert!(
        o.has(&format!("proxy-server running ({pid} - {})", path(&conf))),
        "{o}"
    );
    let o = l.ours(&["stop", "-k", "5", "proxy-server"]);
    assert_eq!(o.code, 0, "{o}");
    assert!(
        o.has(&format!("proxy-server ({pid}) appears to have stopped")),
        "{o}"
    );
    assert!(gone(pid));
}

#[test]
fn swift_dir_from_option_or_environment() {
    let l = Layout::new(&["proxy-server"]);
    let conf = l.conf("proxy-server.conf", "");
    let run = path(&l.run);
    let other = l.root.join("other");
    std::fs::create_dir_all(&other).unwrap();
    // SWIFT_DIR in the environment.
    let mut cmd = l.ours_cmd(&["proxy", "start", "-r", &run]);
    cmd.env("SWIFT_DIR", &l.etc);
    let o = swift_tests::init::run_out(&mut cmd);
    assert_eq!(o.code, 0, "{o}");
    assert!(
        o.has(&format!("Starting proxy-server...({})", path(&conf))),
        "{o}"
    );
    // --swift-dir wins over SWIFT_DIR.
    let run2 = path(&l.root.join("run2"));
    let mut cmd = l.ours_cmd(&["proxy", "start", "-r", &run2, "--swift-dir", &path(&other)]);
    cmd.env("SWIFT_DIR", &l.etc);
    let o = swift_tests::init::run_out(&mut cmd);
    assert_eq!(o.code, 1, "{o}");
    assert!(o.has("Unable to locate config for proxy-server"), "{o}");
    let mut cmd = l.ours_cmd(&["proxy", "stop", "-r", &run]);
    cmd.env("SWIFT_DIR", &l.etc);
    assert_eq!(swift_tests::init::run_out(&mut cmd).code, 0);
}

// ----- 2. server names -----

#[test]
fn aliases_globs_types_and_sorted_output() {
    let l = Layout::new(&["proxy-server", "object-server", "object-replicator"]);
    let proxy_conf = l.conf("proxy-server.conf", "");
    let object_conf = l.conf("object-server.conf", "");
    // `main`: only the installed main servers, in name order; account and
    // container are not installed and (being from an alias) skipped quietly.
    let o = l.ours(&["main", "start"]);
    assert_eq!(o.code, 0, "{o}");
    let starts: Vec<&str> = o
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("Starting"))
        .collect();
    assert_eq!(
        starts,
        [
            format!("Starting object-server...({})", path(&object_conf)),
            format!("Starting proxy-server...({})", path(&proxy_conf)),
        ]
    );
    // The type mapping: object-replicator runs with the object-server config.
    let o = l.ours(&["object-rep*", "start"]);
    assert_eq!(o.code, 0, "{o}");
    assert!(
        o.has(&format!(
            "Starting object-replicator...({})",
            path(&object_conf)
        )),
        "{o}"
    );
    let rep = l.pid("object-replicator.pid").expect("replicator pid file");
    let o = l.ours(&["all", "status", "-v"]);
    assert_eq!(o.code, 0, "{o}");
    let running: Vec<&str> = o
        .lines()
        .into_iter()
        .filter(|l| l.contains(" running ("))
        .collect();
    assert_eq!(running.len(), 3, "{o}");
    assert!(running[0].starts_with("object-replicator running"), "{o}");
    assert!(running[1].starts_with("object-server running"), "{o}");
    assert!(running[2].starts_with("proxy-server running"), "{o}");
    assert!(
        o.has("Skipping account-server: swift-account-server not found"),
        "{o}"
    );
    assert!(
        l.events_of("start")
            .iter()
            .any(|e| e.pid == rep && e.rest == [path(&object_conf)]),
        "{:?}",
        l.events()
    );
    let o = l.ours(&["object-*", "stop"]);
    assert_eq!(o.code, 0, "{o}");
    assert!(
        o.has(&format!(
            "object-replicator ({rep}) appears to have stopped"
        )),
        "{o}"
    );
    // `proxy` and `proxy-server` are the same server.
    let o = l.ours(&["proxy", "proxy-server", "stop"]);
    assert_eq!(o.code, 0, "{o}");
    assert_eq!(
        o.lines()
            .into_iter()
            .filter(|l| l.starts_with("Signal"))
            .count(),
        1,
        "{o}"
    );
}

#[test]
fn unknown_and_uninstalled_names_are_reported() {
    // Swift drops such names without a word (and exits 1 only when none is
    // left); we name them and fail the command.
    let l = Layout::new(&["proxy-server"]);
    l.conf("proxy-server.conf", "");
    let o = l.ours(&["foo", "status"]);
    assert_eq!(o.code, 1, "{o}");
    assert!(
        o.has("Unknown server foo (no swift-foo-server next to swift-init or on PATH)"),
        "{o}"
    );
    let o = l.ours(&["account", "status"]);
    assert_eq!(o.code, 1, "{o}");
    assert!(
        o.has("Unable to find swift-account-server next to swift-init or on PATH"),
        "{o}"
    );
    // Case-sensitive, like Swift's binary lookup.
    let o = l.ours(&["Proxy", "status"]);
    assert!(o.has_prefix("Unknown server Proxy"), "{o}");
    assert_eq!(o.code, 1, "{o}");
    assert_eq!(l.ours(&["proxy", "start"]).code, 0);
    let o = l.ours(&["proxy", "foo", "status"]);
    assert_eq!(o.code, 1, "{o}");
    assert!(o.has_prefix("proxy-server running ("), "{o}");
    assert!(o.has_prefix("Unknown server foo"), "{o}");
    assert_eq!(l.ours(&["proxy", "stop"]).code, 0);
}

#[test]
fn named_configs_and_config_number() {
    let l = Layout::new(&["proxy-server"]);
    let c1 = l.conf("proxy-server/1.conf", "");
    let c2 = l.conf("proxy-server/2.conf", "");
    let o = l.ours(&["proxy.1", "start"]);
    assert_eq!(o.code, 0, "{o}");
    assert!(
        o.has(&format!("Starting proxy-server...({})", path(&c1))),
        "{o}"
    );
    let p1 = l.pid("proxy-server/1.pid").expect("1.pid");
    let o = l.ours(&["proxy", "status", "-c", "2"]);
    assert_eq!(o.code, 1, "{o}");
    assert!(
        o.has(&format!("proxy-server #2 not running ({})", path(&c2))),
        "{o}"
    );
    let o = l.ours(&["proxy", "start", "-c", "2"]);
    assert_eq!(o.code, 0, "{o}");
    let p2 = l.pid("proxy-server/2.pid").expect("2.pid");
    let o = l.ours(&["proxy", "status"]);
    assert_eq!(
        o.lines(),
        [
            format!("proxy-server running ({p1} - {})", path(&c1)),
            format!("proxy-server running ({p2} - {})", path(&c2)),
        ],
        "{o}"
    );
    let o = l.ours(&["proxy", "status", "-c", "3", "-v"]);
    assert_eq!(o.code, 1, "{o}");
    assert_eq!(
        o.lines(),
        [
            "Unable to locate config number 3 for proxy-server".to_owned(),
            "Found configs:".to_owned(),
            format!("  1) {}", path(&c1)),
            format!("  2) {}", path(&c2)),
        ],
        "{o}"
    );
    // Starting all while one runs: Swift's "already started" rule.
    let o = l.ours(&["proxy", "start"]);
    assert_eq!(o.code, 1, "{o}");
    assert!(o.has("proxy-server already started..."), "{o}");
    let o = l.ours(&["proxy.2", "stop"]);
    assert_eq!(o.code, 0, "{o}");
    assert!(gone(p2) && pid_alive(p1));
    let o = l.ours(&["proxy", "stop", "-c", "1"]);
    assert_eq!(o.code, 0, "{o}");
    assert!(gone(p1));
}

// ----- 3. config discovery -----

#[test]
fn config_discovery_dirs_and_missing_configs() {
    let l = Layout::new(&["proxy-server", "container-server", "object-server"]);
    // A .conf.d directory is one config; its pid file is `.pid.d`.
    let d = l.conf("proxy-server.conf.d/00.conf", "");
    let dir = d.parent().unwrap().to_path_buf();
    let o = l.ours(&["proxy", "start"]);
    assert_eq!(o.code, 0, "{o}");
    assert!(
        o.has(&format!("Starting proxy-server...({})", path(&dir))),
        "{o}"
    );
    assert!(l.pid("proxy-server.pid.d").is_some());
    assert_eq!(l.ours(&["proxy", "stop"]).code, 0);
    // Configs anywhere under `object-server/`, and `object-server*.conf`.
    let a = l.conf("object-server/deep/er/a.conf", "");
    let b = l.conf("object-server2.conf", "");
    l.conf("object-server/notes.txt", "");
    let o = l.ours(&["object", "start"]);
    assert_eq!(o.code, 0, "{o}");
    assert!(
        o.has(&format!("Starting object-server...({})", path(&a))),
        "{o}"
    );
    assert!(
        o.has(&format!("Starting object-server...({})", path(&b))),
        "{o}"
    );
    assert!(
        l.pid("object-server/deep/er/a.pid").is_some() && l.pid("object-server2.pid").is_some()
    );
    assert_eq!(l.ours(&["object", "stop"]).code, 0);
    // Missing config: exit 1 when named, 0 with --non-strict or an alias.
    let o = l.ours(&["container", "start"]);
    assert_eq!(o.code, 1, "{o}");
    assert!(o.has("Unable to locate config for container-server"), "{o}");
    assert_eq!(l.ours(&["container", "start", "--non-strict"]).code, 0);
    assert_eq!(l.ours(&["container*", "start"]).code, 0);
    assert_eq!(l.ours(&["container*", "start", "--strict"]).code, 1);
}

// ----- 4. pid files -----

#[test]
fn pid_file_holds_the_decimal_pid_written_atomically() {
    let l = Layout::new(&["proxy-server"]);
    l.conf("proxy-server.conf", "");
    assert_eq!(l.ours(&["proxy", "start"]).code, 0);
    let text = std::fs::read_to_string(l.run.join("proxy-server.pid")).unwrap();
    let started = l.events_of("start");
    assert_eq!(started.len(), 1);
    assert_eq!(
        text,
        started[0].pid.to_string(),
        "no newline, the server's own pid"
    );
    // Nothing else left in the run dir (no temporary or lock files).
    let names: Vec<String> = std::fs::read_dir(&l.run)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["proxy-server.pid"]);
    assert_eq!(l.ours(&["proxy", "stop"]).code, 0);
    assert!(
        !l.run.join("proxy-server.pid").exists(),
        "a stopped server's pid file is removed"
    );
}

#[test]
fn stale_and_invalid_pid_files() {
    let l = Layout::new(&["proxy-server"]);
    l.conf("proxy-server.conf", "");
    std::fs::create_dir_all(&l.run).unwrap();
    let pid_file = l.run.join("proxy-server.pid");
    std::fs::write(&pid_file, "Forty-Two").unwrap();
    // Not a pid file by its name: Swift would read and delete it too.
    std::fs::write(l.run.join("proxy-server.notes"), "keep me").unwrap();
    let o = l.ours(&["proxy", "status"]);
    assert_eq!(o.code, 1, "{o}");
    assert_eq!(
        o.lines(),
        [
            format!("Removing pid file {} with invalid pid", path(&pid_file)),
            "No proxy-server running".to_owned()
        ]
    );
    assert!(!pid_file.exists());
    assert!(l.run.join("proxy-server.notes").exists());
    // A dead pid: stale, removed quietly (with -v, said).
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    std::fs::write(&pid_file, dead_pid.to_string()).unwrap();
    let o = l.ours(&["proxy", "status", "-v"]);
    assert_eq!(
        o.lines(),
        [
            format!("Removing stale pid file {}", path(&pid_file)),
            "No proxy-server running".to_owned()
        ]
    );
    assert!(!pid_file.exists());
    // A stale pid file does not stop a start.
    std::fs::write(&pid_file, dead_pid.to_string()).unwrap();
    let o = l.ours(&["proxy", "start"]);
    assert_eq!(o.code, 0, "{o}");
    assert_ne!(l.pid("proxy-server.pid"), Some(dead_pid as i32));
    assert_eq!(l.ours(&["proxy", "stop"]).code, 0);
}

#[test]
fn unrelated_process_in_pid_file_is_never_signalled() {
    // Swift sends SIGTERM to whatever holds the pid (its name check is for
    // signal 0 only): a recycled pid gets an innocent process killed.
    let l = Layout::new(&["proxy-server", "object-server"]);
    l.conf("proxy-server.conf", "");
    l.conf("object-server.conf", "");
    std::fs::create_dir_all(&l.run).unwrap();
    let pid_file = l.run.join("proxy-server.pid");
    let sleeper = Proc::spawn(Command::new("sleep").arg("600"));
    std::fs::write(&pid_file, sleeper.pid().to_string()).unwrap();
    let o = l.ours(&["proxy", "stop", "--kill-after-timeout", "-k", "1"]);
    assert_eq!(o.code, 1, "{o}");
    assert_eq!(
        o.lines(),
        [
            format!(
                "Removing pid file {} with wrong pid {}",
                path(&pid_file),
                sleeper.pid()
            ),
            "No proxy-server running".to_owned()
        ],
        "{o}"
    );
    assert!(pid_alive(sleeper.pid()), "the unrelated process must live");
    assert!(!pid_file.exists());
    // Another Swift server's pid is not this server's either.
    assert_eq!(l.ours(&["object", "start"]).code, 0);
    let object = l.pid("object-server.pid").unwrap();
    std::fs::write(&pid_file, object.to_string()).unwrap();
    let o = l.ours(&["proxy", "shutdown"]);
    assert_eq!(o.code, 1, "{o}");
    assert!(
        o.has(&format!(
            "Removing pid file {} with wrong pid {object}",
            path(&pid_file)
        )),
        "{o}"
    );
    assert!(pid_alive(object));
    assert!(l.events_of("signal").is_empty(), "{:?}", l.events());
    // The same server with another config (say, another swift dir sharing
    // this run dir) is left alone, pid file and all. (That pid file sorts
    // before object-server.pid: looked at after the SIGTERM, the process
    // could already be gone.)
    std::fs::write(&pid_file, object.to_string()).unwrap();
    std::fs::copy(
        l.run.join("object-server.pid"),
        l.run.join("object-server-other.pid"),
    )
    .unwrap();
    let o = l.ours(&["object", "stop", "-k", "5"]);
    assert!(
        o.has(&format!(
            "Leaving PID {object} alone ({}): it is swift-object-server with another config",
            path(&l.run.join("object-server-other.pid"))
        )),
        "{o}"
    );
    assert!(gone(object));
}

#[test]
fn racing_starts_start_one_server() {
    // Swift checks "running?" and writes the pid file with nothing in
    // between holding others off; we hold a lock on the run dir.
    let l = Layout::new(&["proxy-server"]);
    l.conf("proxy-server.conf", "standin_delay = 0.3");
    let (etc, run) = (path(&l.etc), path(&l.run));
    let racers: Vec<Proc> = (0..4)
        .map(|_| spawn(&mut l.ours_cmd(&["proxy", "start", "--swift-dir", &etc, "-r", &run])))
        .collect();
    let outs: Vec<_> = racers.into_iter().map(|p| p.output(RUN_LIMIT)).collect();
    let codes: Vec<i32> = outs.iter().map(|o| o.status.code().unwrap_or(-1)).collect();
    let texts: Vec<String> = outs
        .iter()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .collect();
    assert_eq!(
        codes.iter().filter(|c| **c == 0).count(),
        1,
        "{codes:?} {texts:#?}"
    );
    assert_eq!(
        texts
            .iter()
            .filter(|t| t.contains("Starting proxy-server"))
            .count(),
        1,
        "{texts:#?}"
    );
    assert_eq!(
        texts
            .iter()
            .filter(|t| t.contains("proxy-server already started..."))
            .count(),
        3,
        "{texts:#?}"
    );
    assert_eq!(l.events_of("start").len(), 1, "{:?}", l.events());
    assert_eq!(l.ours(&["proxy", "stop"]).code, 0);
}

// ----- 5. commands -----

#[test]
fn start_waits_for_ready_and_reports_failures() {
    let l = Layout::new(&["proxy-server"]);
    let conf = l.conf("proxy-server.conf", "standin_mode = fail");
    let o = l.ours(&["proxy", "start"]);
    assert_eq!(o.code, 1, "{o}");
    let pid = l.events_of("start")[0].pid;
    assert!(
        o.has(&format!("standin: cannot use config {}", path(&conf))),
        "{o}"
    );
    assert!(
        o.has(&format!("proxy-server ({pid}) exited with status 1")),
        "{o}"
    );
    assert!(
        !l.run.join("proxy-server.pid").exists(),
        "no pid file for a server that died"
    );
    // A silent crash: Swift calls this a success.
    l.conf("proxy-server.conf", "standin_mode = silent-fail");
    let o = l.ours(&["proxy", "start"]);
    let pid = l.events_of("start")[1].pid;
    assert_eq!(o.code, 1, "{o}");
    assert!(
        o.has(&format!("proxy-server ({pid}) exited with status 3")),
        "{o}"
    );
    // A warning is printed and the server runs on.
    l.conf("proxy-server.conf", "standin_mode = warn");
    let o = l.ours(&["proxy", "start"]);
    assert_eq!(o.code, 0, "{o}");
    assert!(o.has("standin: warning: this is only a warning"), "{o}");
    let pid = l.pid("proxy-server.pid").unwrap();
    assert!(pid_alive(pid));
    // `start` returned only once the server was ready.
    assert!(l.events().iter().any(|e| e.kind == "ready" && e.pid == pid));
    assert_eq!(l.ours(&["proxy", "stop"]).code, 0);
}

#[test]
fn start_wait_is_bounded() {
    // Swift waits forever for a server that never closes its stdout.
    let l = Layout::new(&["proxy-server"]);
    l.conf("proxy-server.conf", "standin_mode = hang");
    let t = Instant::now();
    let o = l.ours(&["proxy", "start", "--start-timeout", "1"]);
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_eq!(o.code, 1, "{o}");
    let pid = l.pid("proxy-server.pid").unwrap();
    assert!(
        o.has(&format!(
            "Waited 1 seconds for proxy-server ({pid}) to start; giving up"
        )),
        "{o}"
    );
    assert!(pid_alive(pid), "the server is left running");
    assert_eq!(l.ours(&["proxy", "stop"]).code, 0);
    assert!(gone(pid));
}

#[test]
fn no_wait_returns_at_once() {
    let l = Layout::new(&["proxy-server"]);
    l.conf("proxy-server.conf", "standin_mode = hang");
    for args in [&["proxy", "start", "-w"][..], &["proxy", "no-wait"][..]] {
        let t = Instant::now();
        let o = l.ours(args);
        assert!(t.elapsed() < Duration::from_secs(10));
        assert_eq!(o.code, 0, "{o}");
        let pid = l.pid("proxy-server.pid").unwrap();
        assert!(pid_alive(pid));
        assert_eq!(l.ours(&["proxy", "stop"]).code, 0);
        assert!(gone(pid));
    }
}

#[test]
fn once_runs_a_pass_and_counts_its_exit() {
    let l = Layout::new(&["proxy-server", "object-replicator"]);
    let conf = l.conf("object-server.conf", "standin_once_exit = 0");
    l.conf("proxy-server.conf", "");
    let o = l.ours(&["object-replicator", "once"]);
    assert_eq!(o.code, 0, "{o}");
    assert!(
        o.has(&format!(
            "Running object-replicator once...({})",
            path(&conf)
        )),
        "{o}"
    );
    let run = &l.events_of("start")[0];
    assert_eq!(run.rest, [path(&conf), "once".to_owned()]);
    // It waited for the pass to end.
    assert!(l.events_of("exit").iter().any(|e| e.pid == run.pid));
    assert!(!l.run.join("object-replicator.pid").exists());
    l.conf("object-server.conf", "standin_once_exit = 2");
    let o = l.ours(&["object-replicator", "start", "-o"]);
    assert_eq!(o.code, 1, "{o}");
    let pid = l.events_of("start")[1].pid;
    assert!(
        o.has(&format!("object-replicator ({pid}) exited with status 2")),
        "{o}"
    );
    // Main servers take no `once` (and, unlike Swift, `start` does not then
    // wait for the proxy to exit).
    let o = l.ours(&["proxy", "once"]);
    assert_eq!(o.code, 0, "{o}");
    assert!(o.has_prefix("Starting proxy-server...("), "{o}");
    let proxy = &l.events_of("start")[2];
    assert_eq!(proxy.rest.len(), 1, "{proxy:?}");
    assert_eq!(l.ours(&["proxy", "stop"]).code, 0);
}

#[test]
fn no_daemon_runs_in_the_foreground() {
    let l = Layout::new(&["proxy-server", "object-replicator"]);
    let conf = l.conf("object-server.conf", "standin_once_exit = 2");
    l.conf("proxy-server.conf", "");
    // `-n -o`: `CONF once verbose`, output on our stdout, its status counts.
    let o = l.ours(&["object-replicator", "no-daemon", "-o"]);
    assert_eq!(o.code, 1, "{o}");
    assert!(o.has("standin: running in the foreground"), "{o}");
    assert_eq!(
        l.events_of("start")[0].rest,
        [path(&conf), "once".into(), "verbose".into()]
    );
    // ^C stops the servers ("user quit").
    let mut cmd = l.ours_cmd(&[
        "proxy",
        "no-daemon",
        "--swift-dir",
        &path(&l.etc),
        "-r",
        &path(&l.run),
    ]);
    let fg = spawn(&mut cmd);
    let pid = wait_until(RUN_LIMIT, || {
        l.events().iter().find(|e| e.kind == "ready").map(|e| e.pid)
    })
    .expect("proxy ready");
    fg.signal(Signal::SIGINT);
    let out = fg.output(RUN_LIMIT);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("\nuser quit\n"), "{text}");
    assert!(
        text.contains(&format!("Signal proxy-server  pid: {pid}  signal: 15")),
        "{text}"
    );
    assert!(gone(pid));
}

#[test]
fn stop_shutdown_and_graceful_signals() {
    let l = Layout::new(&["proxy-server", "object-replicator"]);
    l.conf("proxy-server.conf", "");
    l.conf("object-server.conf", "");
    for stop in [
        &["proxy", "object-replicator", "shutdown"][..],
        &["proxy", "object-replicator", "stop", "-g"][..],
    ] {
        assert_eq!(l.ours(&["proxy", "object-replicator", "start"]).code, 0);
        let proxy = l.pid("proxy-server.pid").unwrap();
        let rep = l.pid("object-replicator.pid").unwrap();
        let o = l.ours(stop);
        assert_eq!(o.code, 0, "{o}");
        // SIGHUP for a main server, SIGTERM for the rest, in name order.
        let signals: Vec<&str> = o
            .lines()
            .into_iter()
            .filter(|l| l.starts_with("Signal"))
            .collect();
        assert_eq!(
            signals,
            [
                format!("Signal object-replicator  pid: {rep}  signal: 15"),
                format!("Signal proxy-server  pid: {proxy}  signal: 1"),
            ],
            "{o}"
        );
        assert!(
            o.has(&format!("proxy-server ({proxy}) appears to have stopped")),
            "{o}"
        );
        assert!(
            o.has(&format!(
                "object-replicator ({rep}) appears to have stopped"
            )),
            "{o}"
        );
        let sig_of = |pid| {
            l.events_of("signal")
                .into_iter()
                .find(|e| e.pid == pid)
                .map(|e| e.rest[0].clone())
        };
        assert_eq!(sig_of(proxy).as_deref(), Some("HUP"));
        assert_eq!(sig_of(rep).as_deref(), Some("TERM"));
    }
    // Stopping what is stopped: Swift's exit 1 (`kill` is the idempotent one).
    let o = l.ours(&["proxy", "stop"]);
    assert_eq!(
        (o.code, o.lines()),
        (1, vec!["No proxy-server running"]),
        "{o}"
    );
    let o = l.ours(&["proxy", "kill"]);
    assert_eq!(
        (o.code, o.lines()),
        (
            0,
            vec!["No proxy-server running", "No proxy-server running"]
        ),
        "{o}"
    );
}

#[test]
fn stop_waits_then_gives_up_or_kills_the_group() {
    let l = Layout::new(&["proxy-server"]);
    l.conf(
        "proxy-server.conf",
        "standin_mode = ignore-term\nstandin_workers = 1",
    );
    assert_eq!(l.ours(&["proxy", "start"]).code, 0);
    let pid = l.pid("proxy-server.pid").unwrap();
    let worker: i32 = l.events_of("worker")[0].rest[0].parse().unwrap();
    let o = l.ours(&["proxy", "stop", "-k", "1"]);
    assert_eq!(o.code, 1, "{o}");
    assert!(
        o.has("Waited 1 seconds for proxy-server to die; giving up"),
        "{o}"
    );
    assert!(pid_alive(pid) && pid_alive(worker));
    let o = l.ours(&["proxy", "stop", "-k", "1", "--kill-after-timeout"]);
    assert!(
        o.has("Waited 1 seconds for proxy-server to die; killing"),
        "{o}"
    );
    assert!(
        o.has(&format!("Signal proxy-server  pid: {pid}  signal: 9")),
        "{o}"
    );
    // Swift exits 1 here even after the kill and never checks it worked;
    // we check that the server and its workers are gone, then succeed.
    assert!(
        o.has(&format!("proxy-server ({pid}) appears to have stopped")),
        "{o}"
    );
    assert_eq!(o.code, 0, "{o}");
    assert!(!pid_alive(pid) && gone(worker));
    assert!(!l.run.join("proxy-server.pid").exists());
}

#[test]
fn restart_reload_and_kill() {
    let l = Layout::new(&["proxy-server"]);
    l.conf("proxy-server.conf", "");
    // restart of a stopped server: stop fails (1), start runs.
    let o = l.ours(&["proxy", "restart"]);
    assert_eq!(o.code, 1, "{o}");
    let first = l.pid("proxy-server.pid").unwrap();
    let o = l.ours(&["proxy", "restart"]);
    assert_eq!(o.code, 0, "{o}");
    let second = l.pid("proxy-server.pid").unwrap();
    assert_ne!(first, second);
    assert!(gone(first));
    // reload: SIGHUP, then a new server, with its pid file in *our* run dir
    // (Swift's reload forgets -r and uses /var/run/swift).
    let o = l.ours(&["proxy", "reload"]);
    assert_eq!(o.code, 0, "{o}");
    assert!(
        o.has(&format!("Signal proxy-server  pid: {second}  signal: 1")),
        "{o}"
    );
    let third = l.pid("proxy-server.pid").expect("pid file under -r");
    assert_ne!(third, second);
    let o = l.ours(&["proxy", "force-reload"]);
    assert_eq!(o.code, 0, "{o}");
    let fourth = l.pid("proxy-server.pid").unwrap();
    assert_ne!(fourth, third);
    let o = l.ours(&["proxy", "kill"]);
    assert_eq!(o.code, 0, "{o}");
    assert!(gone(fourth));
}

#[test]
fn reload_seamless_signals_main_servers_only() {
    let l = Layout::new(&["proxy-server", "object-replicator"]);
    l.conf("proxy-server.conf", "");
    l.conf("object-server.conf", "");
    assert_eq!(l.ours(&["proxy", "object-replicator", "start"]).code, 0);
    let proxy = l.pid("proxy-server.pid").unwrap();
    let rep = l.pid("object-replicator.pid").unwrap();
    let o = l.ours(&["proxy", "object-replicator", "reload-seamless"]);
    assert_eq!(o.code, 0, "{o}");
    assert!(
        o.has(&format!("Signal proxy-server  pid: {proxy}  signal: 10")),
        "{o}"
    );
    // Swift SIGTERMs the replicator here and never starts it again.
    assert!(
        o.has("Skipping object-replicator: only proxy, account, container and object servers reload seamlessly"),
        "{o}"
    );
    wait_until(RUN_LIMIT, || {
        l.events_of("signal")
            .iter()
            .any(|e| e.pid == proxy)
            .then_some(())
    })
    .expect("proxy got its signal");
    let signals = l.events_of("signal");
    assert_eq!(signals.len(), 1, "{signals:?}");
    assert_eq!(signals[0].rest, ["USR1"]);
    assert!(pid_alive(proxy) && pid_alive(rep));
    assert_eq!(l.ours(&["proxy", "object-replicator", "stop"]).code, 0);
    let o = l.ours(&["proxy", "reload-seamless"]);
    assert_eq!(
        (o.code, o.lines()),
        (1, vec!["No proxy-server running"]),
        "{o}"
    );
}

#[test]
fn limits_raised_never_lowered_and_egg_cache_set() {
    use nix::sys::resource::{Resource, getrlimit};
    let l = Layout::new(&["proxy-server"]);
    l.conf("proxy-server.conf", "");
    let tmp = path(&l.root.join("tmp"));
    let mut cmd = l.ours_cmd(&[
        "proxy",
        "start",
        "--swift-dir",
        &path(&l.etc),
        "-r",
        &path(&l.run),
    ]);
    cmd.env("TMPDIR", &tmp);
    let o = swift_tests::init::run_out(&mut cmd);
    assert_eq!(o.code, 0, "{o}");
    let limits = &l.events_of("limits")[0].rest;
    let v = |i: usize| -> u64 {
        let n: i64 = limits[i].parse().unwrap();
        if n < 0 { u64::MAX } else { n as u64 }
    };
    for (i, (res, target)) in [
        (Resource::RLIMIT_NOFILE, 32768u64),
        (Resource::RLIMIT_DATA, 2 << 30),
        (Resource::RLIMIT_NPROC, 8192),
    ]
    .into_iter()
    .enumerate()
    {
        let (soft, hard) = getrlimit(res).unwrap();
        let (child_soft, child_hard) = (v(2 * i), v(2 * i + 1));
        assert!(
            child_hard >= hard,
            "{res:?}: hard {hard} lowered to {child_hard}"
        );
        assert!(
            child_soft >= soft,
            "{res:?}: soft {soft} lowered to {child_soft}"
        );
        assert!(
            child_soft >= target.min(hard),
            "{res:?}: soft {child_soft} not raised"
        );
        if soft >= target {
            // Swift would set it to the target (2 GiB for data).
            assert_eq!(child_soft, soft, "{res:?}");
        }
    }
    assert_eq!(limits[6], tmp, "PYTHON_EGG_CACHE from TMPDIR");
    assert_eq!(l.ours(&["proxy", "stop"]).code, 0);
}

#[test]
fn foreign_user_process_is_running_not_stale() {
    // Swift treats EPERM on its signal-0 probe as "not running": run as
    // another user, `status` lies and `stop` says "No proxy-server running".
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    if !nix::unistd::getuid().is_root() {
        eprintln!("skipped: needs root to run swift-init as another user");
        return;
    }
    let l = Layout::new(&["proxy-server"]);
    if !others_can_reach(&l.root) {
        eprintln!(
            "skipped: {} is not reachable by other users",
            l.root.display()
        );
        return;
    }
    l.conf("proxy-server.conf", "");
    assert_eq!(l.ours(&["proxy", "start"]).code, 0);
    let pid = l.pid("proxy-server.pid").unwrap();
    // The scratch dir is private (0700): let `nobody` in to read it.
    for d in [&l.root, &l.bin, &l.etc, &l.run] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let as_nobody = |args: &[&str]| {
        let mut cmd = l.ours_cmd(args);
        cmd.args(["--swift-dir", &path(&l.etc), "-r", &path(&l.run)])
            .uid(65534)
            .gid(65534);
        swift_tests::init::run_out(&mut cmd)
    };
    let o = as_nobody(&["proxy", "status"]);
    assert_eq!(o.code, 0, "{o}");
    assert!(
        o.has_prefix(&format!("proxy-server running ({pid} - ")),
        "{o}"
    );
    let o = as_nobody(&["proxy", "stop"]);
    assert_eq!(o.code, 1, "{o}");
    assert!(o.has(&format!("No permission to signal PID {pid}")), "{o}");
    assert!(!o.has("No proxy-server running"), "{o}");
    assert!(pid_alive(pid));
    assert_eq!(l.pid("proxy-server.pid"), Some(pid), "the pid file is kept");
    assert_eq!(l.ours(&["proxy", "stop"]).code, 0);
}

#[test]
fn man_page_lists_every_command_and_option() {
    let man =
        std::fs::read_to_string(swift_tests::workspace_root().join("man/swift-init.1")).unwrap();
    // troff escapes dashes as `\-`.
    let man = man.replace("\\-", "-");
    let l = Layout::new(&[]);
    let help = swift_tests::init::run_out(&mut l.ours_cmd(&["-h"])).stdout;
    let mut after_commands = false;
    for line in help.lines() {
        if line == "Commands:" {
            after_commands = true;
            continue;
        }
        if line == "Options:" {
            after_commands = false;
        }
        let command = line.split_once(':').map(|(n, _)| n.trim());
        match command {
            Some(name) if after_commands && !name.is_empty() && !name.contains(' ') => {
                let listed = man
                    .lines()
                    .any(|l| l.starts_with(".B") && l.split([' ', '"', ',']).any(|w| w == name));
                assert!(listed, "command {name} missing from the man page");
            }
            _ => {}
        }
        for word in line.split([' ', ',', '=']) {
            if word.starts_with("--") && word.len() > 2 {
                assert!(
                    man.contains(word),
                    "option {word} missing from the man page"
                );
            }
        }
    }
}

#[test]
fn pid_dir_that_cannot_be_created_starts_nothing() {
    // Swift spawns the server first and only then fails to write its pid
    // file (exiting with this message), leaving an untracked server.
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    if !nix::unistd::getuid().is_root() {
        eprintln!("skipped: needs root to run swift-init as another user");
        return;
    }
    let l = Layout::new(&["proxy-server"]);
    if !others_can_reach(&l.root) {
        eprintln!(
            "skipped: {} is not reachable by other users",
            l.root.display()
        );
        return;
    }
    l.conf("proxy-server.conf", "");
    for d in [&l.root, &l.bin, &l.etc] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let run = l.root.join("run");
    let mut cmd = l.ours_cmd(&[
        "proxy",
        "start",
        "--swift-dir",
        &path(&l.etc),
        "-r",
        &path(&run),
    ]);
    cmd.uid(65534).gid(65534);
    let o = swift_tests::init::run_out(&mut cmd);
    assert_eq!(o.code, 1, "{o}");
    assert_eq!(
        o.stderr,
        format!("Unable to create {}.  Running as non-root?\n", path(&run)),
        "{o}"
    );
    assert!(l.events_of("start").is_empty(), "nothing may be started");
}
