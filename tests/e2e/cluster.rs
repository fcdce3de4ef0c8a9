//! The cluster harness itself (tests/src/cluster.rs, functional.rs): a
//! real cluster stores an object three times, survives a dead object
//! server, restarts it, logs, and leaves no process or directory behind;
//! the functional-test runner runs and counts a small file of Swift's suite.

use std::path::{Path, PathBuf};
use std::time::Duration;

use swift_tests::cluster::{Cluster, ClusterOptions, Node, python_proxy, request};
use swift_tests::functional::run_functional;
use swift_tests::pid_alive;

/// Every `.data` file (an object replica) below `dir`.
fn data_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "data") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Store and read objects through `proxy`, with one object server down for
/// a while; check the replicas on disk, the logs, and the teardown.
fn stores_and_serves(proxy: PathBuf) {
    let mut cluster = Cluster::start(ClusterOptions::new(proxy).object_servers(3));
    assert!(cluster.devices_on_tmpfs(), "/dev/shm should be usable here");
    let proxy = cluster.proxy_addr();

    let (url, token) = cluster.auth("test", "tester", "testing").expect("log in");
    assert_eq!(url, format!("http://{proxy}/v1/AUTH_test"));
    let auth = [("X-Auth-Token", token.as_str())];
    let put = |path: &str, body: &[u8]| {
        request(proxy, "PUT", path, &auth, body)
            .unwrap_or_else(|e| panic!("PUT {path}: {e}"))
            .status
    };
    let get = |path: &str| request(proxy, "GET", path, &auth, b"").expect("GET");

    assert_eq!(put("/v1/AUTH_test/c", b""), 201);
    assert_eq!(put("/v1/AUTH_test/c/o1", b"first object"), 201);
    let resp = get("/v1/AUTH_test/c/o1");
    assert_eq!(
        (resp.status, resp.body_str().as_str()),
        (200, "first object")
    );
    // Three replicas, one per device, each on its own object server.
    let replicas = data_files(cluster.devices_dir());
    assert_eq!(replicas.len(), 3, "{replicas:?}");
    for n in 1..=3 {
        let dev = cluster
            .devices_dir()
            .join(format!("object-server-{n}/d{n}"));
        assert_eq!(
            data_files(&dev).len(),
            1,
            "one replica on {}",
            dev.display()
        );
    }
    // Without a token: tempauth says 401.
    let anon = request(proxy, "GET", "/v1/AUTH_test/c/o1", &[], b"").expect("GET");
    assert_eq!(anon.status, 401);

    // One object server dies: reads go to the others, writes still have
    // a quorum (2 of 3).
    let dead = cluster.pid(Node::Object(2)).expect("running");
    cluster.kill_server(Node::Object(2));
    assert!(!pid_alive(dead));
    assert_eq!(cluster.pid(Node::Object(2)), None);
    let resp = get("/v1/AUTH_test/c/o1");
    assert_eq!(
        (resp.status, resp.body_str().as_str()),
        (200, "first object")
    );
    assert_eq!(put("/v1/AUTH_test/c/o2", b"second"), 201);
    assert_eq!(data_files(cluster.devices_dir()).len(), 5);

    cluster.start_server(Node::Object(2));
    let back = cluster.pid(Node::Object(2)).expect("running again");
    assert_ne!(back, dead);
    assert_eq!(put("/v1/AUTH_test/c/o3", b"third"), 201);
    assert_eq!(data_files(cluster.devices_dir()).len(), 8);
    cluster.restart_server(Node::Container);
    let listing = get("/v1/AUTH_test/c?format=json");
    assert_eq!(listing.status, 200, "{}", listing.body_str());
    // o2's container update went only to the container replicas named to
    // the two live object servers (the dead one's share waits for the
    // replicator, as in Swift): a listing read from one replica may not
    // have it yet. The object itself is there.
    assert_eq!(get("/v1/AUTH_test/c/o2").body_str(), "second");
    for name in ["o1", "o3"] {
        assert!(
            listing.body_str().contains(&format!("\"{name}\"")),
            "{}",
            listing.body_str()
        );
    }

    // Logs: the proxy's access lines, the object server's, both starts.
    let proxy_log = cluster.log(Node::Proxy);
    assert!(proxy_log.contains("PUT /v1/AUTH_test/c/o1"), "{proxy_log}");
    let object_log = cluster.log(Node::Object(2));
    assert_eq!(
        object_log
            .matches("--- e2e cluster: starting object-server-2")
            .count(),
        2,
        "{object_log}"
    );
    assert!(object_log.contains("\"PUT /d2/"), "{object_log}");

    // Teardown: every process and the devices are gone.
    let pids: Vec<i32> = cluster
        .nodes()
        .into_iter()
        .filter_map(|n| cluster.pid(n))
        .collect();
    assert_eq!(pids.len(), 6);
    let memcached = cluster.memcached_addr();
    let devices = cluster.devices_dir().to_path_buf();
    let scratch = cluster.swift_dir().to_path_buf();
    drop(cluster);
    for pid in pids {
        assert!(!pid_alive(pid), "pid {pid} outlived the cluster");
    }
    assert!(
        std::net::TcpStream::connect(memcached).is_err(),
        "memcached still answers"
    );
    assert!(!devices.exists() && !scratch.exists());
}

#[test]
fn a_cluster_with_pythons_proxy_stores_and_serves_objects() {
    stores_and_serves(python_proxy());
}

#[test]
fn a_cluster_with_our_proxy_stores_and_serves_objects() {
    stores_and_serves(swift_tests::cluster::our_proxy());
}

/// The runner on the smallest file of the suite, against Python's proxy:
/// it finds the sdist, writes test.conf, runs pytest and counts.
#[test]
fn the_functional_test_runner_counts_a_run() {
    let cluster = Cluster::start(ClusterOptions::new(python_proxy()));
    let run = run_functional(
        &cluster,
        &["test_protocol.py"],
        &["test/functional/test_protocol.py::TestHttpProtocol::test_invalid_path_info"],
        Duration::from_secs(300),
    );
    assert_eq!(
        (run.passed, run.failed, run.errors, run.deselected),
        (3, 0, 0, 1),
        "{}\n{}",
        run.summary,
        run.output_tail(40)
    );
}

/// What an operator sees when one proxy's `[swift-hash]` differs from the
/// storage servers': nothing complains (nothing in the protocol carries the
/// salt), objects written through that proxy read back through it, and a
/// correctly configured proxy answers 404 for them: they sit in partitions
/// no one else looks in. The README's Swift API section says so.
#[test]
fn a_proxy_with_another_hash_prefix_writes_where_no_one_else_reads() {
    let cluster = Cluster::start(ClusterOptions::new(swift_tests::cluster::our_proxy()));
    let good = cluster.proxy_addr();

    // The same config and rings, another prefix.
    let dir = swift_tests::scratch();
    for ring in ["account", "container", "object"] {
        let name = format!("{ring}.ring.gz");
        std::fs::copy(cluster.swift_dir().join(&name), dir.path().join(&name)).expect("copy ring");
    }
    swift_tests::write_file(
        dir.path(),
        "swift.conf",
        "[swift-hash]\nswift_hash_path_prefix = another-prefix\nswift_hash_path_suffix = another-suffix\n",
    );
    let port = swift_tests::free_port();
    let conf_text = std::fs::read_to_string(cluster.conf_path(Node::Proxy)).expect("proxy conf");
    let conf_text: String = conf_text
        .lines()
        .map(|l| {
            if l.starts_with("swift_dir = ") {
                format!("swift_dir = {}", dir.path().display())
            } else if l.starts_with("bind_port = ") {
                format!("bind_port = {port}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let conf = swift_tests::write_file(dir.path(), "proxy-server.conf", &conf_text);
    let bad = swift_tests::server::Server::start("swift-proxy-server", &conf, port);

    let (_, token) = cluster.auth("test", "tester", "testing").expect("log in");
    let auth = [("X-Auth-Token", token.as_str())];
    let req = |addr, method: &str, path: &str, body: &[u8]| {
        request(addr, method, path, &auth, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    };
    assert_eq!(req(good, "PUT", "/v1/AUTH_test/salt", b"").status, 201);
    assert_eq!(
        req(good, "PUT", "/v1/AUTH_test/salt/first", b"1").status,
        201
    );
    // The mismatched proxy looks elsewhere: what exists is not found, and a
    // container it creates fails (its account is not where it looks).
    assert_eq!(
        req(bad.addr, "GET", "/v1/AUTH_test/salt/first", b"").status,
        404
    );
    assert_eq!(req(bad.addr, "PUT", "/v1/AUTH_test/other", b"").status, 404);
    // Worse, once the container's info is in the shared memcache (the good
    // proxy's HEAD puts it there), writes through it succeed, to places
    // no one else reads.
    assert_eq!(req(good, "HEAD", "/v1/AUTH_test/salt", b"").status, 204);
    let names = ["one", "two", "three"];
    for name in names {
        let path = format!("/v1/AUTH_test/salt/{name}");
        assert_eq!(req(bad.addr, "PUT", &path, name.as_bytes()).status, 201);
        let back = req(bad.addr, "GET", &path, b"");
        assert_eq!((back.status, back.body_str().as_str()), (200, name));
    }
    // Through the correctly configured proxy: not found.
    let found: Vec<&str> = names
        .into_iter()
        .filter(|n| req(good, "GET", &format!("/v1/AUTH_test/salt/{n}"), b"").status != 404)
        .collect();
    assert!(found.is_empty(), "the good proxy found {found:?}");
    let listing = req(good, "GET", "/v1/AUTH_test/salt?format=json", b"").body_str();
    assert!(listing.contains("\"first\""), "{listing}");
    for name in names {
        assert!(!listing.contains(&format!("\"{name}\"")), "{listing}");
    }
}

/// memcached down: tempauth answers at once, 503 for a token (none could
/// be kept) and 401 for a token it cannot check; nothing hangs. Once
/// memcached is back (empty), a new token works.
#[test]
fn tempauth_answers_quickly_while_memcached_is_down() {
    let mut cluster = Cluster::start(ClusterOptions::new(swift_tests::cluster::our_proxy()));
    let proxy = cluster.proxy_addr();
    let (_, token) = cluster.auth("test", "tester", "testing").expect("log in");
    let auth = [("X-Auth-Token", token.as_str())];
    assert_eq!(
        request(proxy, "PUT", "/v1/AUTH_test/c", &auth, b"")
            .expect("PUT")
            .status,
        201
    );

    cluster.kill_memcached();
    let timed = |f: &dyn Fn() -> u16| {
        let started = std::time::Instant::now();
        let status = f();
        (status, started.elapsed())
    };
    let login = [("X-Auth-User", "test:tester"), ("X-Auth-Key", "testing")];
    let (status, took) = timed(&|| {
        request(proxy, "GET", "/auth/v1.0", &login, b"")
            .expect("GET /auth/v1.0")
            .status
    });
    assert_eq!(status, 503, "a token that cannot be kept is not handed out");
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    let (status, took) = timed(&|| {
        request(proxy, "GET", "/v1/AUTH_test/c", &auth, b"")
            .expect("GET")
            .status
    });
    assert_eq!(status, 401, "a token that cannot be checked is refused");
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    assert!(
        cluster.log(Node::Proxy).contains("memcache"),
        "the proxy's log says what is wrong"
    );

    cluster.restart_memcached();
    let ok = swift_tests::wait_until(std::time::Duration::from_secs(30), || {
        cluster.auth("test", "tester", "testing").ok()
    });
    let (_, token) = ok.expect("a new token once memcached is back");
    let auth = [("X-Auth-Token", token.as_str())];
    assert_eq!(
        request(proxy, "GET", "/v1/AUTH_test/c", &auth, b"")
            .expect("GET")
            .status,
        204
    );
}

/// Storage servers that do not answer (their ports closed): the proxy says
/// 503 at once, logs each node it tried by address and device, and after
/// `error_suppression_limit` errors stops trying a node for a while.
#[test]
fn unreachable_devices_are_503_at_once_and_named_in_the_log() {
    let mut cluster = Cluster::start(ClusterOptions::new(swift_tests::cluster::our_proxy()));
    let proxy = cluster.proxy_addr();
    let (_, token) = cluster.auth("test", "tester", "testing").expect("log in");
    let auth = [("X-Auth-Token", token.as_str())];
    assert_eq!(
        request(proxy, "PUT", "/v1/AUTH_test/c", &auth, b"")
            .expect("PUT")
            .status,
        201
    );
    cluster.kill_server(Node::Object(1));
    let object_port = cluster.port(Node::Object(1));
    for i in 0..12 {
        let started = std::time::Instant::now();
        let put =
            request(proxy, "PUT", &format!("/v1/AUTH_test/c/o{i}"), &auth, b"x").expect("PUT");
        assert_eq!(put.status, 503, "{}", put.body_str());
        let get = request(proxy, "GET", &format!("/v1/AUTH_test/c/o{i}"), &auth, b"").expect("GET");
        assert_eq!(get.status, 503);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
    }
    let log = cluster.log(Node::Proxy);
    let refused = format!("ERROR with Object server 127.0.0.1:{object_port}/d1 re: ");
    assert!(log.contains(&refused), "{log}");
    assert!(log.contains("Connection refused"), "{log}");
    assert!(
        log.contains(&format!(
            "Node will be error limited for 60.00s: 127.0.0.1:{object_port}/d1"
        )),
        "{log}"
    );
    assert!(log.contains("Object PUT returning 503"), "{log}");
}

/// A large object goes through the proxy both ways as a stream: the
/// worker's peak memory stays far below the object's size, and the bytes
/// and ETag come back as sent.
#[test]
fn a_large_object_streams_through_with_bounded_memory() {
    use md5::{Digest, Md5};
    use std::io::{Read, Write};

    const SIZE: u64 = 256 << 20;
    const LIMIT_KIB: u64 = 64 << 10;
    let cluster = Cluster::start(ClusterOptions::new(swift_tests::cluster::our_proxy()));
    let proxy = cluster.proxy_addr();
    let (_, token) = cluster.auth("test", "tester", "testing").expect("log in");
    let auth = [("X-Auth-Token", token.as_str())];
    assert_eq!(
        request(proxy, "PUT", "/v1/AUTH_test/big", &auth, b"")
            .expect("PUT")
            .status,
        201
    );
    // The body: 1 MiB blocks, each stamped with its number.
    let block = |i: u64| -> Vec<u8> {
        let mut b = vec![(i % 251) as u8; 1 << 20];
        b[..8].copy_from_slice(&i.to_be_bytes());
        b
    };
    let timeout = Some(std::time::Duration::from_secs(120));
    let mut s = std::net::TcpStream::connect(proxy).expect("connect");
    s.set_read_timeout(timeout).unwrap();
    s.set_write_timeout(timeout).unwrap();
    write!(
        s,
        "PUT /v1/AUTH_test/big/object HTTP/1.1\r\nHost: {proxy}\r\nX-Auth-Token: {token}\r\n\
         Content-Length: {SIZE}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut sent = Md5::new();
    for i in 0..SIZE >> 20 {
        let b = block(i);
        sent.update(&b);
        s.write_all(&b).expect("send the body");
    }
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).expect("PUT answer");
    let answer = swift_tests::parse_response(&answer).expect("an HTTP answer");
    let etag: String = sent.finalize().iter().map(|x| format!("{x:02x}")).collect();
    assert_eq!(answer.status, 201, "{}", answer.body_str());
    assert_eq!(answer.header("etag"), Some(etag.as_str()));

    // Read it back, hashing as it comes.
    let mut s = std::net::TcpStream::connect(proxy).expect("connect");
    s.set_read_timeout(timeout).unwrap();
    write!(
        s,
        "GET /v1/AUTH_test/big/object HTTP/1.1\r\nHost: {proxy}\r\nX-Auth-Token: {token}\r\n\
         Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut got = Md5::new();
    let mut head = Vec::new();
    let mut in_body = false;
    let mut buf = vec![0u8; 1 << 16];
    let mut body_len = 0u64;
    loop {
        let n = s.read(&mut buf).expect("GET body");
        if n == 0 {
            break;
        }
        let mut piece = &buf[..n];
        if !in_body {
            head.extend_from_slice(piece);
            let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            in_body = true;
            let rest = head.split_off(end + 4);
            body_len += rest.len() as u64;
            got.update(&rest);
            piece = &[];
        }
        body_len += piece.len() as u64;
        got.update(piece);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains(&format!("Etag: {etag}")), "{head}");
    assert_eq!(body_len, SIZE);
    let got: String = got.finalize().iter().map(|x| format!("{x:02x}")).collect();
    assert_eq!(got, etag, "the bytes that came back");

    // Peak memory of each worker (VmHWM), far below the object's size.
    let master = cluster.pid(Node::Proxy).expect("proxy running");
    let workers = swift_tests::children_of(master);
    assert!(!workers.is_empty());
    for w in workers {
        let status = std::fs::read_to_string(format!("/proc/{w}/status")).expect("status");
        let hwm: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM");
        eprintln!(
            "worker {w}: peak RSS {hwm} KiB for a {} MiB object",
            SIZE >> 20
        );
        assert!(hwm < LIMIT_KIB, "worker {w} peaked at {hwm} KiB");
    }
}

/// The local ports of `pid`'s established TCP connections to `port` (from
/// /proc: its socket inodes, matched in the TCP tables of this network
/// namespace, which the cluster shares; a worker's own /proc/PID/net is
/// empty once it is not dumpable).
fn connections_to(pid: i32, port: u16) -> std::collections::BTreeSet<u16> {
    let inodes: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the worker's fds")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let mut ports = std::collections::BTreeSet::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let port_of = |a: &str| {
                a.rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
            };
            // local, remote, state (01: established), ..., inode (field 9)
            if f.len() > 9
                && f[3] == "01"
                && port_of(f[2]) == Some(port)
                && inodes.contains(f[9])
                && let Some(local) = port_of(f[1])
            {
                ports.insert(local);
            }
        }
    }
    ports
}

#[test]
fn backend_connections_are_kept_and_reused_unless_turned_off() {
    for keepalive in [true, false] {
        let mut options = ClusterOptions::new(swift_tests::cluster::our_proxy());
        if !keepalive {
            options = options.proxy_app_option("backend_keepalive_connections", "0");
        }
        let cluster = Cluster::start(options);
        let proxy = cluster.proxy_addr();
        let (_, token) = cluster.auth("test", "tester", "testing").expect("log in");
        let auth = [("X-Auth-Token", token.as_str())];
        let put = |path: &str, body: &[u8]| {
            request(proxy, "PUT", path, &auth, body)
                .expect("PUT")
                .status
        };
        assert_eq!(put("/v1/AUTH_test/keep", b""), 201);
        assert_eq!(put("/v1/AUTH_test/keep/o", b"kept or not"), 201);
        let get = || {
            let r = request(proxy, "GET", "/v1/AUTH_test/keep/o", &auth, b"").expect("GET");
            assert_eq!((r.status, r.body_str()), (200, "kept or not".into()));
        };
        let master = cluster.pid(Node::Proxy).expect("proxy running");
        let workers = swift_tests::children_of(master);
        assert_eq!(workers.len(), 1, "one worker");
        let object_port = cluster.port(Node::Object(1));
        get();
        let before = connections_to(workers[0], object_port);
        for _ in 0..20 {
            get();
        }
        let after = connections_to(workers[0], object_port);
        eprintln!(
            "keep-alive {keepalive}: connections to the object server {before:?} then {after:?}"
        );
        if keepalive {
            // The GETs went over connections that were already open.
            assert!(!after.is_empty(), "no connection kept");
            assert!(after.is_subset(&before), "20 GETs opened new connections");
        } else {
            assert!(before.is_empty() && after.is_empty());
        }
    }
}
