//! swift-proxy-server end to end: the real binary on loopback, started the
//! way swift-init starts it, checked through HTTP, signals, /proc and a
//! syslog socket.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use swift_tests::server::{
    Server, Syslog, TEST_USER, accepted, all_gone, is_root, proc_fd, proc_ids, proxy_conf,
    test_user,
};
use swift_tests::{free_port, http, parse_response, pid_alive, scratch, wait_until};

const SEC: Duration = Duration::from_secs(1);

fn healthcheck_ok(server: &Server) -> bool {
    matches!(http(server.addr, "GET", "/healthcheck"), Ok(r) if r.status == 200 && r.body == b"OK")
}

/// Open a connection and send the first part of a request: the server now
/// has a request in flight that it cannot finish until we send the rest.
fn start_slow_request(server: &Server) -> TcpStream {
    let mut s = TcpStream::connect(server.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(b"GET /healthcheck HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    s
}

fn finish_slow_request(mut s: TcpStream) -> swift_tests::Response {
    s.write_all(b"\r\n").expect("write the end of the head");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read");
    parse_response(&buf)
        .unwrap_or_else(|| panic!("bad response {:?}", String::from_utf8_lossy(&buf)))
}

/// The listening port refuses new connections (everyone stopped accepting).
fn port_closed(server: &Server) -> bool {
    TcpStream::connect_timeout(&server.addr, SEC).is_err()
}

#[test]
fn root_start_drops_workers_to_the_user_and_serves_healthcheck() {
    if !is_root() {
        eprintln!("skipped: needs root to drop privileges");
        return;
    }
    let (uid, gid) = test_user();
    let dir = scratch();
    let port = free_port();
    let conf = proxy_conf(
        dir.path(),
        port,
        &format!("workers = 2\nuser = {TEST_USER}"),
        None,
    );
    let mut server = Server::start("swift-proxy-server", &conf, port);
    assert!(healthcheck_ok(&server));
    let workers = server.wait_workers(2, 5 * SEC).expect("two workers");
    for w in &workers {
        assert_eq!(
            proc_ids(*w),
            Some(((uid, uid), (gid, gid))),
            "worker {w} credentials"
        );
        // Supplementary groups: only the user's own (no root group left).
        let status = std::fs::read_to_string(format!("/proc/{w}/status")).unwrap();
        let groups = status.lines().find(|l| l.starts_with("Groups:")).unwrap();
        assert!(
            !groups.split_whitespace().skip(1).any(|g| g == "0"),
            "{groups}"
        );
    }
    // The master keeps root so it can rebind and fork.
    assert_eq!(proc_ids(server.master()).map(|(u, _)| u.1), Some(0));
    server.signal(Signal::SIGTERM);
    let (status, _) = server.wait_exit(5 * SEC).expect("exits");
    assert!(status.success());
    assert!(wait_until(2 * SEC, || all_gone(&workers).then_some(())).is_some());
}

#[test]
fn killed_worker_is_replaced_within_a_second_while_healthcheck_keeps_answering() {
    let dir = scratch();
    let port = free_port();
    let conf = proxy_conf(dir.path(), port, "workers = 2\nuser =", None);
    let mut server = Server::start("swift-proxy-server", &conf, port);
    let before = server.wait_workers(2, 5 * SEC).expect("two workers");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(before[0]), Signal::SIGKILL).unwrap();
    let killed_at = Instant::now();
    let after = wait_until(SEC, || {
        let w = server.workers();
        (w.len() == 2 && !w.contains(&before[0])).then_some(w)
    })
    .expect("a replacement worker within 1 s");
    assert!(killed_at.elapsed() < SEC);
    assert!(after.contains(&before[1]));
    for _ in 0..20 {
        assert!(healthcheck_ok(&server));
    }
    server.signal(Signal::SIGTERM);
    assert!(server.wait_exit(5 * SEC).expect("exits").0.success());
}

#[test]
fn sighup_lets_an_in_flight_request_finish_then_every_process_exits() {
    for workers in ["2", "0"] {
        let dir = scratch();
        let port = free_port();
        let conf = proxy_conf(
            dir.path(),
            port,
            &format!("workers = {workers}\nuser ="),
            None,
        );
        let mut server = Server::start("swift-proxy-server", &conf, port);
        let mut pids = server.workers();
        pids.push(server.master());
        let slow = start_slow_request(&server);
        assert!(wait_until(5 * SEC, || accepted(&slow).then_some(())).is_some());
        server.signal(Signal::SIGHUP);
        assert!(
            wait_until(5 * SEC, || port_closed(&server).then_some(())).is_some(),
            "workers={workers}: still accepting after SIGHUP"
        );
        assert!(
            pid_alive(server.master()),
            "workers={workers}: exited before the request finished"
        );
        let resp = finish_slow_request(slow);
        assert_eq!(resp.status, 200, "workers={workers}");
        assert_eq!(resp.body, b"OK");
        assert_eq!(resp.header("Connection"), Some("close"));
        let (status, _) = server.wait_exit(5 * SEC).expect("exits after the request");
        assert!(status.success(), "workers={workers}: {status}");
        assert!(wait_until(2 * SEC, || all_gone(&pids).then_some(())).is_some());
    }
}

#[test]
fn sigterm_stops_every_process_within_two_seconds_with_status_0() {
    for workers in ["2", "0"] {
        let dir = scratch();
        let port = free_port();
        let conf = proxy_conf(
            dir.path(),
            port,
            &format!("workers = {workers}\nuser ="),
            None,
        );
        let mut server = Server::start("swift-proxy-server", &conf, port);
        assert!(healthcheck_ok(&server));
        let mut pids = server.workers();
        assert_eq!(pids.len(), workers.parse::<usize>().unwrap());
        pids.push(server.master());
        server.signal(Signal::SIGTERM);
        let (status, took) = server.wait_exit(2 * SEC).expect("exits within 2 s");
        assert!(status.success(), "workers={workers}: {status}");
        assert!(took < 2 * SEC);
        assert!(wait_until(2 * SEC, || all_gone(&pids).then_some(())).is_some());
    }
}

#[test]
fn workers_0_drops_privileges_too() {
    if !is_root() {
        eprintln!("skipped: needs root to drop privileges");
        return;
    }
    let (uid, gid) = test_user();
    let dir = scratch();
    let port = free_port();
    let conf = proxy_conf(
        dir.path(),
        port,
        &format!("workers = 0\nuser = {TEST_USER}"),
        None,
    );
    let mut server = Server::start("swift-proxy-server", &conf, port);
    assert!(healthcheck_ok(&server));
    assert_eq!(proc_ids(server.master()), Some(((uid, uid), (gid, gid))));
    server.signal(Signal::SIGTERM);
    assert!(server.wait_exit(2 * SEC).expect("exits").0.success());
}

#[test]
fn stdio_is_captured_once_ready_and_logs_go_to_syslog() {
    let dir = scratch();
    let port = free_port();
    let mut syslog = Syslog::bind(dir.path());
    let conf = proxy_conf(
        dir.path(),
        port,
        &format!(
            "workers = 2\nuser =\nlog_address = {}\nlog_facility = LOG_LOCAL3",
            syslog.path.display()
        ),
        None,
    );
    let mut server = Server::start("swift-proxy-server", &conf, port);
    // Nothing was printed on the way up.
    assert_eq!(server.startup_output, "");
    let workers = server.wait_workers(2, 5 * SEC).unwrap();
    for pid in workers.iter().chain([server.master()].iter()) {
        assert_eq!(
            proc_fd(*pid, 0).as_deref(),
            Some("/dev/null"),
            "stdin of {pid}"
        );
        for fd in [1, 2] {
            let target = proc_fd(*pid, fd).unwrap_or_default();
            assert!(target.starts_with("pipe:"), "fd {fd} of {pid}: {target}");
        }
    }
    // LOCAL3 = 19; NOTICE = 5: <157>.
    let started = format!(
        "<157>proxy-server: Started child {} from parent {}\0",
        workers[0],
        server.master()
    );
    assert!(
        syslog.wait_for(2 * SEC, |l| l == started).is_some(),
        "{:?}",
        syslog.lines()
    );
    // An access-log line (INFO = 6: <158>) for a request that reaches proxy-logging.
    let resp = http(server.addr, "GET", "/info").unwrap();
    let txn = resp.header("X-Trans-Id").unwrap().to_owned();
    let line = syslog
        .wait_for(2 * SEC, |l| l.contains(&txn))
        .unwrap_or_else(|| panic!("no access line: {:?}", syslog.lines()));
    assert!(
        line.starts_with("<158>proxy-server: 127.0.0.1 127.0.0.1 "),
        "{line}"
    );
    assert!(line.contains(" GET /info HTTP/1.1 200 - - - - "), "{line}");
    server.signal(Signal::SIGTERM);
    assert!(server.wait_exit(5 * SEC).unwrap().0.success());
    assert!(
        syslog
            .wait_for(2 * SEC, |l| l
                .contains(&format!("SIGTERM received ({})", server.master())))
            .is_some()
    );
    assert!(
        syslog
            .wait_for(2 * SEC, |l| l
                .contains(&format!("Exited ({})", server.master())))
            .is_some()
    );
}

#[test]
fn dead_worker_is_logged_as_swift_does() {
    let dir = scratch();
    let port = free_port();
    let mut syslog = Syslog::bind(dir.path());
    let conf = proxy_conf(
        dir.path(),
        port,
        &format!(
            "workers = 1\nuser =\nlog_address = {}",
            syslog.path.display()
        ),
        None,
    );
    let mut server = Server::start("swift-proxy-server", &conf, port);
    let w = server.wait_workers(1, 5 * SEC).unwrap()[0];
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(w), Signal::SIGKILL).unwrap();
    let expected = format!("Removing dead child {w} from parent {}", server.master());
    assert!(
        syslog
            .wait_for(2 * SEC, |l| l.contains(&expected))
            .is_some(),
        "{:?}",
        syslog.lines()
    );
    server.signal(Signal::SIGTERM);
    assert!(server.wait_exit(5 * SEC).unwrap().0.success());
}

#[test]
fn a_crash_loop_backs_off_and_keeps_respawning() {
    let dir = scratch();
    let port = free_port();
    let mut syslog = Syslog::bind(dir.path());
    let conf = proxy_conf(
        dir.path(),
        port,
        &format!(
            "workers = 1\nuser =\nlog_address = {}",
            syslog.path.display()
        ),
        None,
    );
    let mut server = Server::start("swift-proxy-server", &conf, port);
    // Kill each new worker as soon as it appears: every death is "quick".
    let mut killed = Vec::new();
    for _ in 0..3 {
        let w = wait_until(5 * SEC, || {
            server.workers().into_iter().find(|w| !killed.contains(w))
        })
        .expect("a (re)spawned worker");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(w), Signal::SIGKILL).unwrap();
        killed.push(w);
    }
    assert!(
        syslog
            .wait_for(5 * SEC, |l| l.contains(
                "Workers keep dying within 5s of starting (3 in a row); next respawn in 0.5s"
            ))
            .is_some(),
        "{:?}",
        syslog.lines()
    );
    // The master is still there and a worker comes back after the pause.
    assert!(pid_alive(server.master()));
    let back = wait_until(5 * SEC, || {
        server.workers().into_iter().find(|w| !killed.contains(w))
    });
    assert!(back.is_some(), "no worker after the back-off");
    assert!(wait_until(5 * SEC, || healthcheck_ok(&server).then_some(())).is_some());
    server.signal(Signal::SIGTERM);
    assert!(server.wait_exit(5 * SEC).unwrap().0.success());
}

#[test]
fn verbose_logs_to_the_console_and_sigint_is_user_quit() {
    use std::io::BufRead;
    let dir = scratch();
    let port = free_port();
    let conf = proxy_conf(dir.path(), port, "workers = 1\nuser =", None);
    // stderr stays on the console with -v, so read it line by line rather
    // than waiting for it to close.
    let mut proc = swift_tests::Proc::spawn(
        std::process::Command::new(swift_tests::bin("swift-proxy-server"))
            .arg(&conf)
            .arg("-v"),
    );
    let stderr = proc.child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next_matching = |pred: &dyn Fn(&str) -> bool| -> Option<String> {
        let deadline = Instant::now() + 10 * SEC;
        while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            if pred(&line) {
                return Some(line);
            }
        }
        None
    };
    let started =
        next_matching(&|l| l.starts_with("proxy-server: Started child ")).expect("console line");
    assert!(
        started.ends_with(&format!("from parent {}", proc.pid())),
        "{started}"
    );
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    assert!(
        wait_until(5 * SEC, || http(addr, "GET", "/healthcheck")
            .ok()
            .filter(|r| r.status == 200))
        .is_some()
    );
    // The master waits for events rather than spinning: its stderr pipe
    // has no writer with -v, and a poll on it would return at once.
    let ticks = || {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", proc.pid())).expect("stat");
        let after_comm = stat.rsplit_once(')').expect("stat format").1;
        let f: Vec<&str> = after_comm.split_whitespace().collect();
        // utime and stime, fields 14 and 15 of stat(5)
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    };
    let before = ticks();
    std::thread::sleep(SEC);
    let used = ticks() - before;
    assert!(
        used < 30,
        "the idle master used {used} ticks of CPU in a second"
    );
    proc.signal(Signal::SIGINT);
    assert!(next_matching(&|l| l == "proxy-server: User quit").is_some());
    let status = proc.wait_timeout(5 * SEC).expect("exits after SIGINT");
    assert!(status.success());
}
