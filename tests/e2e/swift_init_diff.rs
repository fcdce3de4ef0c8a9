//! Differential tests: each scenario runs once with Python Swift's
//! swift-init (from the venv, its SWIFT_DIR patched to the scratch swift
//! dir) and once with ours, each on a fresh identical layout with the same
//! stand-in servers; every step must give the same exit status and the same
//! stdout and stderr lines once paths and pids are normalised.
//!
//! Where we differ on purpose (Swift's warts), the last tests here assert
//! both behaviours and say why.

use swift_tests::init::{Layout, Out};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Impl {
    Python,
    Ours,
}

/// One step's result, normalised.
#[derive(Debug, PartialEq, Eq)]
struct Step {
    args: String,
    code: i32,
    stdout: Vec<String>,
    stderr: Vec<String>,
}

fn exec(l: &Layout, imp: Impl, args: &[&str]) -> Out {
    match imp {
        Impl::Python => l.python(args),
        Impl::Ours => l.ours(args),
    }
}

fn step(l: &Layout, imp: Impl, args: &[&str]) -> Step {
    let out = exec(l, imp, args);
    Step {
        args: args.join(" "),
        code: out.code,
        stdout: l.normalise(&out.stdout),
        stderr: l.normalise(&out.stderr),
    }
}

/// The same step with stdout lines sorted (Swift's order is Python set
/// order, which varies from run to run).
fn step_sorted(l: &Layout, imp: Impl, args: &[&str]) -> Step {
    let mut s = step(l, imp, args);
    s.stdout.sort();
    s
}

/// Run `scenario` with both implementations and compare step by step.
fn differential(servers: &[&str], scenario: impl Fn(&Layout, Impl) -> Vec<Step>) {
    let run = |imp| {
        let l = Layout::new(servers);
        let steps = scenario(&l, imp);
        // Nothing the scenario started may outlive it.
        l.kill_all();
        steps
    };
    let python = run(Impl::Python);
    let ours = run(Impl::Ours);
    assert_eq!(python.len(), ours.len());
    for (p, o) in python.iter().zip(&ours) {
        assert_eq!(
            p, o,
            "\nstep `{}`: Python (left) and ours (right) differ",
            p.args
        );
    }
}

/// A pid that no process has (a child that has been reaped).
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true")
        .spawn()
        .expect("spawn true");
    let pid = child.id();
    child.wait().expect("wait");
    pid
}

fn write_run(l: &Layout, rel: &str, text: &str) {
    swift_tests::write_file(&l.run, rel, text);
}

#[test]
fn start_start_status_stop_stop_status() {
    differential(&["proxy-server"], |l, imp| {
        l.conf("proxy-server.conf", "");
        vec![
            step(l, imp, &["proxy", "start"]),
            step(l, imp, &["proxy", "start"]),
            step(l, imp, &["proxy", "status"]),
            step(l, imp, &["proxy", "stop"]),
            step(l, imp, &["proxy", "stop"]),
            step(l, imp, &["proxy", "status"]),
        ]
    });
}

#[test]
fn command_first() {
    differential(&["proxy-server"], |l, imp| {
        l.conf("proxy-server.conf", "");
        vec![
            step(l, imp, &["start", "proxy"]),
            step(l, imp, &["status", "proxy-server"]),
            step(l, imp, &["stop", "proxy"]),
        ]
    });
}

#[test]
fn named_config_and_config_number() {
    differential(&["proxy-server"], |l, imp| {
        l.conf("proxy-server/1.conf", "");
        l.conf("proxy-server/2.conf", "");
        vec![
            step(l, imp, &["proxy.1", "start"]),
            step(l, imp, &["proxy", "status"]),
            step(l, imp, &["proxy", "status", "-c", "2"]),
            step(l, imp, &["proxy", "start", "-c", "2"]),
            step(l, imp, &["proxy", "status"]),
            step(l, imp, &["proxy", "status", "-c", "2"]),
            step(l, imp, &["proxy", "status", "-c", "3", "-v"]),
            step(l, imp, &["proxy", "start"]),
            step(l, imp, &["proxy.2", "stop"]),
            step(l, imp, &["proxy", "status", "-c", "2"]),
            step(l, imp, &["proxy", "stop", "-c", "1"]),
            step(l, imp, &["proxy", "status"]),
        ]
    });
}

#[test]
fn missing_config_strict_and_non_strict() {
    differential(&["object-server", "proxy-server"], |l, imp| {
        l.conf("proxy-server.conf", "");
        vec![
            step(l, imp, &["object", "start"]),
            step(l, imp, &["object", "start", "--non-strict"]),
            step(l, imp, &["object", "start", "--strict"]),
            step(l, imp, &["object-*", "start"]),
            step(l, imp, &["object-*", "start", "--strict"]),
            step(l, imp, &["object", "status"]),
            step_sorted(l, imp, &["object", "proxy", "start", "-v"]),
            step(l, imp, &["proxy", "stop"]),
        ]
    });
}

#[test]
fn stale_pid_file() {
    differential(&["proxy-server"], |l, imp| {
        l.conf("proxy-server.conf", "");
        let dead = dead_pid().to_string();
        let mut steps = Vec::new();
        write_run(l, "proxy-server.pid", &dead);
        steps.push(step(l, imp, &["proxy", "status"]));
        write_run(l, "proxy-server.pid", &dead);
        steps.push(step(l, imp, &["proxy", "status", "-v"]));
        write_run(l, "proxy-server.pid", "Forty-Two");
        steps.push(step(l, imp, &["proxy", "status"]));
        write_run(l, "proxy-server.pid", &dead);
        steps.push(step(l, imp, &["proxy", "start"]));
        steps.push(step(l, imp, &["proxy", "status"]));
        steps.push(step(l, imp, &["proxy", "stop"]));
        steps
    });
}

/// `reload-seamless` of a running server: ours also waits for the server
/// to report the reload and says so in one more line, which is dropped here.
fn reload_seamless_step(l: &Layout, imp: Impl) -> Step {
    let mut s = step(l, imp, &["proxy", "reload-seamless"]);
    if imp == Impl::Ours {
        let reloaded = "proxy-server (<PID>) reloaded";
        assert_eq!(s.stdout.last().map(String::as_str), Some(reloaded), "{s:?}");
        s.stdout.pop();
    }
    s
}

#[test]
fn shutdown_restart_kill_and_reload_seamless() {
    differential(&["proxy-server"], |l, imp| {
        l.conf("proxy-server.conf", "");
        vec![
            step(l, imp, &["proxy", "start"]),
            step(l, imp, &["proxy", "shutdown"]),
            step(l, imp, &["proxy", "status"]),
            step(l, imp, &["proxy", "restart"]),
            step(l, imp, &["proxy", "restart"]),
            step(l, imp, &["proxy", "status"]),
            reload_seamless_step(l, imp),
            step(l, imp, &["proxy", "status"]),
            step(l, imp, &["proxy", "kill"]),
            step(l, imp, &["proxy", "kill"]),
            step(l, imp, &["proxy", "reload-seamless"]),
        ]
    });
}

#[test]
fn several_servers() {
    differential(
        &["proxy-server", "object-server", "object-replicator"],
        |l, imp| {
            l.conf("proxy-server.conf", "");
            l.conf("object-server.conf", "");
            vec![
                step_sorted(l, imp, &["main", "start"]),
                step_sorted(l, imp, &["object-replicator", "start"]),
                step_sorted(l, imp, &["all", "status"]),
                step_sorted(l, imp, &["main", "object-replicator", "stop"]),
                step_sorted(l, imp, &["all", "status"]),
            ]
        },
    );
}

#[test]
fn usage_and_errors() {
    differential(&["proxy-server"], |l, imp| {
        let mut steps = vec![
            step(l, imp, &["-x", "proxy", "status"]),
            step(l, imp, &["proxy", "status", "-c", "abc"]),
            step(l, imp, &["proxy", "status", "--kill"]),
            step(l, imp, &["proxy", "status", "--verbose=1"]),
            step(l, imp, &["proxy", "--verb", "status", "-vc0x1"]),
        ];
        for args in [
            &["proxy"][..],
            &["proxy", "foo"][..],
            &["START", "proxy"][..],
        ] {
            let mut s = step(l, imp, args);
            // Our help lists two more options (--start-timeout, --swift-dir).
            if imp == Impl::Ours {
                let ours_only = ["  --start-timeout=N", "  --swift-dir=SWIFT_DIR"];
                let mut kept = Vec::new();
                let mut skipping = false;
                for line in s.stdout {
                    if ours_only.iter().any(|p| line.starts_with(p)) {
                        skipping = true;
                        continue;
                    }
                    if skipping && line.starts_with("                        ") {
                        continue;
                    }
                    skipping = false;
                    kept.push(line);
                }
                s.stdout = kept;
            }
            steps.push(s);
        }
        steps
    });
}

// ----- where we differ on purpose -----

#[test]
fn differs_stop_with_stale_pid_file() {
    // Swift prints a "Signal" line for a pid it only then finds dead; we
    // check the pid before signalling and signal nothing.
    for imp in [Impl::Python, Impl::Ours] {
        let l = Layout::new(&["proxy-server"]);
        l.conf("proxy-server.conf", "");
        write_run(&l, "proxy-server.pid", &dead_pid().to_string());
        let s = step(&l, imp, &["proxy", "stop"]);
        let expected: Vec<&str> = match imp {
            Impl::Python => vec![
                "Signal proxy-server  pid: <PID>  signal: 15",
                "No proxy-server running",
            ],
            Impl::Ours => vec!["No proxy-server running"],
        };
        assert_eq!(
            (s.code, s.stdout.clone()),
            (1, expected.iter().map(|x| x.to_string()).collect()),
            "{imp:?}"
        );
    }
}

#[test]
fn differs_silent_crash_at_start() {
    // Swift counts a server that exits with an error but printed nothing
    // as started; we report it and fail.
    for imp in [Impl::Python, Impl::Ours] {
        let l = Layout::new(&["proxy-server"]);
        l.conf("proxy-server.conf", "standin_mode = silent-fail");
        let s = step(&l, imp, &["proxy", "start"]);
        match imp {
            Impl::Python => assert_eq!(s.code, 0, "{s:?}"),
            Impl::Ours => {
                assert_eq!(s.code, 1, "{s:?}");
                assert_eq!(
                    s.stdout.last().map(String::as_str),
                    Some("proxy-server (<PID>) exited with status 3")
                );
            }
        }
    }
}

#[test]
fn differs_unknown_server_name() {
    // Swift drops a name whose binary it cannot find without a word.
    for imp in [Impl::Python, Impl::Ours] {
        let l = Layout::new(&["proxy-server"]);
        let s = step(&l, imp, &["foo", "status"]);
        assert_eq!(s.code, 1);
        match imp {
            Impl::Python => assert!(s.stdout.is_empty(), "{s:?}"),
            Impl::Ours => assert_eq!(
                s.stdout,
                ["Unknown server foo (no swift-foo-server next to swift-init or on PATH)"]
            ),
        }
    }
}

#[test]
fn differs_wrong_pid_is_not_signalled() {
    // A pid file naming some other process: Swift sends it SIGTERM (its
    // name check is for signal 0 only). Python is run on a process of our
    // own that is meant to be killed here; ours must leave it alive.
    for imp in [Impl::Python, Impl::Ours] {
        let l = Layout::new(&["proxy-server"]);
        l.conf("proxy-server.conf", "");
        let victim = swift_tests::Proc::spawn(std::process::Command::new("sleep").arg("600"));
        write_run(&l, "proxy-server.pid", &victim.pid().to_string());
        let s = step(&l, imp, &["proxy", "stop", "-k", "2"]);
        match imp {
            Impl::Python => {
                assert!(
                    s.stdout
                        .contains(&"Signal proxy-server  pid: <PID>  signal: 15".to_owned()),
                    "{s:?}"
                );
                let dead = swift_tests::wait_until(std::time::Duration::from_secs(10), || {
                    (!swift_tests::pid_alive(victim.pid())).then_some(())
                });
                assert!(
                    dead.is_some(),
                    "Python's swift-init kills the unrelated process"
                );
            }
            Impl::Ours => {
                assert_eq!(s.code, 1);
                assert_eq!(
                    s.stdout,
                    [
                        "Removing pid file <ROOT>/run/proxy-server.pid with wrong pid <PID>",
                        "No proxy-server running"
                    ]
                );
                assert!(swift_tests::pid_alive(victim.pid()));
            }
        }
    }
}

#[test]
fn object_expirer_reads_object_server_config() {
    differential(&["object-expirer", "object-server"], |l, imp| {
        l.conf("object-server.conf", "[object-expirer]\ninterval = 300");
        l.conf("object-server/2.conf", "[app:object-server]");
        vec![
            step(l, imp, &["object-expirer", "start"]),
            step(l, imp, &["object-expirer", "status"]),
            step(l, imp, &["object-expirer", "stop"]),
        ]
    });
}

#[test]
fn differs_deprecated_object_expirer_conf() {
    // The deprecated object-expirer.conf: both start it with Swift's
    // warning, but Swift maps its pid file back to object-server.conf
    // (which does not exist) and reports that; we report the real one.
    for imp in [Impl::Python, Impl::Ours] {
        let l = Layout::new(&["object-expirer"]);
        l.conf("object-expirer.conf", "[object-expirer]");
        let s = step(&l, imp, &["object-expirer", "start"]);
        assert_eq!(s.code, 0, "{s:?}");
        assert!(
            s.stdout.ends_with(&[
                "WARNING: object-expirer.conf is deprecated. Move object-expirers' configuration into object-server.conf.".to_owned(),
                "Starting object-expirer...(<ROOT>/etc/object-expirer.conf)".to_owned(),
            ]),
            "{s:?}"
        );
        let s = step(&l, imp, &["object-expirer", "status"]);
        let conf = match imp {
            Impl::Python => "object-server.conf",
            Impl::Ours => "object-expirer.conf",
        };
        assert_eq!(
            s.stdout,
            [format!(
                "object-expirer running (<PID> - <ROOT>/etc/{conf})"
            )],
            "{imp:?}"
        );
        assert_eq!(step(&l, imp, &["object-expirer", "stop"]).code, 0);
    }
}
