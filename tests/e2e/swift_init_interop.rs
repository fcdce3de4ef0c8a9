//! swift-init with real servers: our `swift-proxy-server` (built next to
//! swift-init) and Python Swift's `swift-object-server` (from the venv, on
//! `PATH`) started, checked and stopped together by one `swift-init main
//! start` / `status` / `stop`; and the same object server under Python's
//! swift-init and ours, compared line by line.

use std::net::SocketAddr;
use std::time::Duration;

use swift_tests::init::Layout;
use swift_tests::{children_of, free_port, http, pid_alive, swift_venv, wait_until};

const SWIFT_CONF: &str = "[swift-hash]\n\
swift_hash_path_suffix = swift-init-tests\n\
swift_hash_path_prefix = swift-init-tests\n";

/// The user the servers keep (no privilege drop to a `swift` user that the
/// machine may not have).
fn current_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map_or_else(|| "root".to_owned(), |u| u.name)
}

/// A Python object server config (with healthcheck) on `port`.
fn object_conf(l: &Layout, port: u16) {
    let devices = l.root.join("devices");
    std::fs::create_dir_all(devices.join("sda1")).expect("devices");
    let text = format!(
        "[DEFAULT]\n\
         swift_dir = {etc}\n\
         devices = {devices}\n\
         mount_check = false\n\
         bind_ip = 127.0.0.1\n\
         bind_port = {port}\n\
         workers = 1\n\
         user = {user}\n\
         log_facility = LOG_LOCAL0\n\
         \n\
         [pipeline:main]\n\
         pipeline = healthcheck object-server\n\
         \n\
         [app:object-server]\n\
         use = egg:swift#object\n\
         \n\
         [filter:healthcheck]\n\
         use = egg:swift#healthcheck\n",
        etc = l.etc.display(),
        devices = devices.display(),
        user = current_user(),
    );
    swift_tests::write_file(&l.etc, "object-server.conf", &text);
}

/// Our proxy's config (healthcheck in its pipeline) on `port`.
fn proxy_conf(l: &Layout, port: u16) {
    let text = format!(
        "[DEFAULT]\n\
         bind_ip = 127.0.0.1\n\
         bind_port = {port}\n\
         workers = 1\n\
         user =\n\
         swift_dir = {etc}\n\
         log_file = {log}\n\
         \n\
         [pipeline:main]\n\
         pipeline = catch_errors gatekeeper healthcheck proxy-server\n\
         \n\
         [app:proxy-server]\n\
         use = egg:swift#proxy\n\
         \n\
         [filter:catch_errors]\n\
         use = egg:swift#catch_errors\n\
         \n\
         [filter:gatekeeper]\n\
         use = egg:swift#gatekeeper\n\
         \n\
         [filter:healthcheck]\n\
         use = egg:swift#healthcheck\n",
        etc = l.etc.display(),
        log = l.root.join("proxy-server.log").display(),
    );
    swift_tests::write_file(&l.etc, "proxy-server.conf", &text);
}

fn healthy(port: u16) -> bool {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    matches!(http(addr, "GET", "/healthcheck"), Ok(r) if r.status == 200 && r.body_str() == "OK")
}

fn cmdline(pid: i32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&raw).replace('\0', " ")
}

/// A layout whose `bin/` holds only the venv's object server.
fn layout_with_python_object_server() -> Layout {
    let l = Layout::new(&[]);
    l.link(
        "swift-object-server",
        &swift_venv().join("bin/swift-object-server"),
    );
    swift_tests::write_file(&l.etc, "swift.conf", SWIFT_CONF);
    swift_tests::server::make_rings(&l.etc);
    l
}

#[test]
fn main_start_status_stop_with_our_proxy_and_python_object_server() {
    let l = layout_with_python_object_server();
    let (proxy_port, object_port) = (free_port(), free_port());
    proxy_conf(&l, proxy_port);
    object_conf(&l, object_port);
    let etc = |f: &str| l.etc.join(f).display().to_string();

    let o = l.built(&["main", "start"]);
    assert_eq!(o.code, 0, "{o}");
    let starts: Vec<&str> = o
        .lines()
        .into_iter()
        .filter(|x| x.starts_with("Starting"))
        .collect();
    assert_eq!(
        starts,
        [
            format!("Starting object-server...({})", etc("object-server.conf")),
            format!("Starting proxy-server...({})", etc("proxy-server.conf")),
        ],
        "{o}"
    );
    // `start` returned once both were ready: they answer at once.
    assert!(healthy(proxy_port), "our proxy is not answering\n{o}");
    assert!(
        healthy(object_port),
        "the object server is not answering\n{o}"
    );
    let proxy = l.pid("proxy-server.pid").expect("proxy pid file");
    let object = l.pid("object-server.pid").expect("object pid file");
    // Ours, found next to swift-init.
    let ours = swift_tests::bin("swift-proxy-server");
    assert!(
        cmdline(proxy).starts_with(&format!("{} ", ours.display())),
        "{}",
        cmdline(proxy)
    );
    // Python's server runs as `python3 …/swift-object-server CONF`.
    assert!(cmdline(object).contains("python"), "{}", cmdline(object));
    let workers: Vec<i32> = children_of(proxy)
        .into_iter()
        .chain(children_of(object))
        .collect();
    assert!(!workers.is_empty());

    let o = l.built(&["main", "status"]);
    assert_eq!(o.code, 0, "{o}");
    assert_eq!(
        o.lines(),
        [
            format!(
                "object-server running ({object} - {})",
                etc("object-server.conf")
            ),
            format!(
                "proxy-server running ({proxy} - {})",
                etc("proxy-server.conf")
            ),
        ],
        "{o}"
    );

    let o = l.built(&["main", "stop"]);
    assert_eq!(o.code, 0, "{o}");
    assert!(
        o.has(&format!("object-server ({object}) appears to have stopped")),
        "{o}"
    );
    assert!(
        o.has(&format!("proxy-server ({proxy}) appears to have stopped")),
        "{o}"
    );
    assert!(!pid_alive(proxy) && !pid_alive(object));
    let all_gone = wait_until(Duration::from_secs(15), || {
        workers.iter().all(|w| !pid_alive(*w)).then_some(())
    });
    assert!(all_gone.is_some(), "workers left: {workers:?}");
    assert!(!healthy(proxy_port) && !healthy(object_port));
    let o = l.built(&["main", "status"]);
    assert_eq!(o.code, 1, "{o}");
    assert_eq!(
        o.lines(),
        ["No object-server running", "No proxy-server running"],
        "{o}"
    );
}

#[test]
fn python_object_server_same_under_both_swift_inits() {
    let run = |python: bool| {
        let l = layout_with_python_object_server();
        let port = free_port();
        object_conf(&l, port);
        let exec = |args: &[&str]| if python { l.python(args) } else { l.ours(args) };
        let mut seen = Vec::new();
        for args in [
            &["object", "start"][..],
            &["object", "start"][..],
            &["object", "status"][..],
            &["object", "stop"][..],
            &["object", "status"][..],
        ] {
            let o = exec(args);
            seen.push((args.join(" "), o.code, l.normalise(&o.stdout)));
            if args == ["object", "status"] && o.code == 0 {
                assert!(healthy(port), "{o}");
            }
        }
        seen
    };
    let python = run(true);
    let ours = run(false);
    for (p, o) in python.iter().zip(&ours) {
        assert_eq!(p, o, "Python (left) and ours (right) differ");
    }
    assert!(
        python[0]
            .2
            .iter()
            .any(|x| x == "Starting object-server...(<ROOT>/etc/object-server.conf)")
    );
}
