//! Server-side copy (`egg:swift#copy`) on a real cluster: Python Swift's
//! account, container and object servers (three replicas), with our proxy
//! and Python's proxy in front of the same servers. The same copy requests
//! go to both (each in its own account), and what clients read is compared:
//! status, reason, headers (values that are times or ids masked), bodies,
//! and the access-log lines of each copy and of its `SSC` source GET.
//!
//! The cluster is set up here until the shared cluster harness lands; then
//! only the setup moves.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use swift_tests::server::Server;
use swift_tests::{
    Response, free_port, python_swift, raw_request, run, scratch, wait_until, write_file,
};

const SEC: Duration = Duration::from_secs(1);

/// A Python storage server, killed by its pid when dropped.
struct Storage(Child);

impl Drop for Storage {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn current_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .expect("current user has a name")
}

/// Where the object servers keep their data: tmpfs when there is one.
fn devices_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(d) = tempfile::Builder::new()
            .prefix("swift-e2e-copy-")
            .tempdir_in(shm)
    {
        return d;
    }
    scratch()
}

/// Rings of three replicas, one device per zone, all on one server per
/// ring (`ports`: object, container, account).
fn make_rings(dir: &Path, ports: [u16; 3]) {
    for (ring, port) in ["object", "container", "account"].iter().zip(ports) {
        let builder = dir.join(format!("{ring}.builder"));
        let mut steps = vec![vec![
            "create".to_owned(),
            "8".into(),
            "3".into(),
            "0".into(),
        ]];
        for z in 1..=3 {
            steps.push(vec![
                "add".into(),
                format!("r1z{z}-127.0.0.1:{port}/d{z}"),
                "100".into(),
            ]);
        }
        steps.push(vec!["rebalance".into()]);
        for args in steps {
            let out = run(
                python_swift("swift-ring-builder").arg(&builder).args(&args),
                60 * SEC,
            );
            assert!(
                out.status.code().is_some_and(|c| c <= 1),
                "swift-ring-builder {args:?}: {out:?}"
            );
        }
    }
}

/// Start `swift-<server>-server` from the venv on `port`; ready once it
/// answers HTTP.
fn start_storage(dir: &Path, devices: &Path, server: &str, port: u16) -> Storage {
    let conf = write_file(
        dir,
        &format!("{server}-server.conf"),
        &format!(
            "[DEFAULT]\ndevices = {}\nmount_check = false\nbind_ip = 127.0.0.1\n\
             bind_port = {port}\nworkers = 0\nswift_dir = {}\ndisable_fallocate = true\n\
             user = {}\n[pipeline:main]\npipeline = {server}-server\n\
             [app:{server}-server]\nuse = egg:swift#{server}\n",
            devices.display(),
            dir.display(),
            current_user(),
        ),
    );
    let log = std::fs::File::create(dir.join(format!("{server}.log"))).expect("log file");
    let child = python_swift(&format!("swift-{server}-server"))
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("dup log"))
        .stderr(log)
        .spawn()
        .expect("spawn a storage server");
    let storage = Storage(child);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let ready = wait_until(60 * SEC, || {
        swift_tests::http(addr, "GET", "/").ok().map(|_| ())
    });
    assert!(
        ready.is_some(),
        "{server} server did not answer: {}",
        std::fs::read_to_string(dir.join(format!("{server}.log"))).unwrap_or_default()
    );
    storage
}

/// A proxy config with copy between two proxy-loggings (the access log of
/// the client's request and of its subrequests), the access log sent to
/// UDP port `access_log` (Python's goes to /dev/log or UDP, never to
/// `log_address`).
fn proxy_conf(dir: &Path, name: &str, port: u16, user: &str, access_log: u16) -> PathBuf {
    let filters = [
        ("catch_errors", "catch_errors"),
        ("gatekeeper", "gatekeeper"),
        ("healthcheck", "healthcheck"),
        ("proxy-logging", "proxy_logging"),
        ("copy", "copy"),
    ]
    .iter()
    .map(|(n, e)| format!("[filter:{n}]\nuse = egg:swift#{e}\n"))
    .collect::<String>();
    write_file(
        dir,
        &format!("proxy-{name}.conf"),
        &format!(
            "[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = {port}\nworkers = 1\nuser = {user}\n\
             swift_dir = {}\naccess_log_udp_host = 127.0.0.1\naccess_log_udp_port = {log}\n\
             [pipeline:main]\npipeline = catch_errors gatekeeper healthcheck proxy-logging copy \
             proxy-logging proxy-server\n\
             [app:proxy-server]\nuse = egg:swift#proxy\naccount_autocreate = true\n{filters}",
            dir.display(),
            log = access_log,
        ),
    )
}

/// Syslog datagrams on a UDP port.
struct UdpLog {
    sock: UdpSocket,
    seen: Vec<String>,
}

impl UdpLog {
    fn bind() -> UdpLog {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("set timeout");
        UdpLog {
            sock,
            seen: Vec::new(),
        }
    }

    fn port(&self) -> u16 {
        self.sock.local_addr().expect("local_addr").port()
    }

    /// Everything received so far.
    fn lines(&mut self) -> &[String] {
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = self.sock.recv(&mut buf) {
            self.seen
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        &self.seen
    }
}

/// One proxy under comparison, with its own account.
struct Proxy {
    addr: SocketAddr,
    account: String,
    syslog: UdpLog,
    _server: Server,
}

impl Proxy {
    /// `method path` with `headers` and `body`; `ACCT` in the path and in
    /// header values stands for this proxy's account.
    fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        let path = path.replace("ACCT", &self.account);
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {}\r\n", v.replace("ACCT", &self.account)));
        }
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        raw_request(self.addr, &bytes, 60 * SEC).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// The access-log lines of transaction `tx` made by the client's
    /// request (source `-`) and by copy (`SSC`), once both are in.
    fn copy_log(&mut self, tx: &str, want: usize) -> Vec<Vec<String>> {
        let pick = |lines: &[String]| -> Vec<Vec<String>> {
            lines
                .iter()
                .filter_map(|l| l.split_once("proxy-server: ").map(|(_, m)| m))
                .map(|m| {
                    m.trim_end_matches(['\0', '\n'])
                        .split(' ')
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .filter(|f| f.len() > 16 && f[13] == tx && (f[16] == "-" || f[16] == "SSC"))
                .collect()
        };
        let found = wait_until(10 * SEC, || {
            let lines = pick(self.syslog.lines());
            (lines.len() >= want).then_some(lines)
        });
        found.unwrap_or_else(|| {
            panic!(
                "{want} access-log lines for {tx}; have {:?} of {:?}",
                pick(self.syslog.lines()),
                self.syslog.lines()
            )
        })
    }
}

/// What a client reads, comparable across the two proxies: the account
/// names replaced, times and transaction ids masked, the `Allow` list
/// sorted (Python's comes from a set). The headers of a successful copy
/// keep their order (copy appends its own after the PUT's); others are
/// sorted (their order is the object controller's business).
fn view(p: &Proxy, r: &Response, ordered: bool) -> String {
    let mask = [
        "date",
        "last-modified",
        "x-copied-from-last-modified",
        "x-timestamp",
        "x-trans-id",
        "x-openstack-request-id",
    ];
    let mut headers: Vec<String> = r
        .headers
        .iter()
        .map(|(k, v)| {
            let lk = k.to_ascii_lowercase();
            let v = if mask.contains(&lk.as_str()) {
                "*".to_owned()
            } else if lk == "allow" {
                let mut m: Vec<&str> = v.split(", ").collect();
                m.sort_unstable();
                m.join(", ")
            } else {
                v.replace(&p.account, "ACCT")
            };
            format!("{lk}: {v}\n")
        })
        .collect();
    if !ordered {
        headers.sort();
    }
    let mut out = format!("{} {}\n{}", r.status, r.reason, headers.concat());
    if r.body.len() > 4096 {
        out.push_str(&format!("<{} bytes>", r.body.len()));
        return out;
    }
    let mut body = r.body_str().replace(&p.account, "ACCT");
    // Times inside a heartbeat's JSON or text.
    for (key, end) in [
        ("\"Last-Modified\": \"", '"'),
        ("\"X-Copied-From-Last-Modified\": \"", '"'),
        ("\nLast-Modified: ", '\n'),
        ("\nX-Copied-From-Last-Modified: ", '\n'),
    ] {
        if let Some(i) = body.find(key) {
            let start = i + key.len();
            if let Some(len) = body[start..].find(end) {
                body.replace_range(start..start + len, "*");
            }
        }
    }
    out.push_str(&body);
    out
}

/// The access-log fields that copy decides: method, path, status,
/// user agent, bytes received and sent, client ETag, source, log info.
fn log_view(p: &Proxy, fields: &[String]) -> String {
    [3, 4, 6, 8, 10, 11, 12, 16, 17]
        .iter()
        .map(|i| fields[*i].replace(&p.account, "ACCT"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A body that is not all one byte, for a copy that takes several reads.
fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x2545_f491;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[test]
fn copies_as_python_swifts_proxy() {
    let dir = scratch();
    let devices = devices_dir();
    for d in ["d1", "d2", "d3"] {
        std::fs::create_dir_all(devices.path().join(d)).expect("device dir");
    }
    write_file(
        dir.path(),
        "swift.conf",
        "[swift-hash]\nswift_hash_path_suffix = e2e-copy\nswift_hash_path_prefix = e2e-copy\n",
    );
    let ports = [free_port(), free_port(), free_port()];
    make_rings(dir.path(), ports);
    let _storage: Vec<Storage> = ["object", "container", "account"]
        .iter()
        .zip(ports)
        .map(|(s, port)| start_storage(dir.path(), devices.path(), s, port))
        .collect();

    let start = |name: &str, user: &str, python: bool| {
        let port = free_port();
        let syslog = UdpLog::bind();
        let conf = proxy_conf(dir.path(), name, port, user, syslog.port());
        let server = if python {
            Server::start_python("swift-proxy-server", &conf, port)
        } else {
            Server::start("swift-proxy-server", &conf, port)
        };
        Proxy {
            addr: server.addr,
            account: format!("AUTH_{name}"),
            syslog,
            _server: server,
        }
    };
    let mut py = start("py", &current_user(), true);
    let mut rs = start("rs", "", false);

    let big = pattern(300_000 + 7);
    for p in [&py, &rs] {
        for (path, headers, body) in [
            ("/v1/ACCT/c", &[][..], &b""[..]),
            ("/v1/ACCT/c2", &[], b""),
            (
                "/v1/ACCT/c/src",
                &[
                    ("X-Object-Meta-Color", "red"),
                    ("Content-Type", "text/x-foo"),
                    ("X-Delete-At", "9999999999"),
                    ("Content-Disposition", "inline"),
                ],
                b"hello world",
            ),
            ("/v1/ACCT/c/big", &[("Content-Type", "a/b")], &big),
            ("/v1/ACCT/c/empty", &[], b""),
            ("/v1/ACCT/c/dlo", &[("X-Object-Manifest", "c/seg")], b""),
        ] {
            let r = p.send("PUT", path, headers, body);
            assert_eq!(r.status, 201, "PUT {path}: {}", r.body_str());
        }
    }

    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a [u8]);
    let cases: &[Case<'_>] = &[
        (
            "COPY",
            "/v1/ACCT/c/src",
            &[("Destination", "c/d1"), ("X-Object-Meta-Size", "big")],
            b"",
        ),
        ("GET", "/v1/ACCT/c/d1", &[], b""),
        ("COPY", "/v1/ACCT/c/src", &[], b""),
        ("COPY", "/v1/ACCT/c/src", &[("Destination", "conly")], b""),
        (
            "COPY",
            "/v1/ACCT/c/src",
            &[("Destination", "c/x"), ("Destination-Account", "")],
            b"",
        ),
        ("COPY", "/v1/ACCT/c/src", &[("Destination", "nope/x")], b""),
        ("COPY", "/v1/ACCT/c/missing", &[("Destination", "c/x")], b""),
        (
            "COPY",
            "/v1/ACCT/c/src",
            &[("Destination", "c2/a%20b%E2%98%83")],
            b"abc",
        ),
        ("GET", "/v1/ACCT/c2/a%20b%E2%98%83", &[], b""),
        (
            "COPY",
            "/v1/ACCT/c/src",
            &[("Destination", "c/d2"), ("Destination-Account", "ACCT")],
            b"",
        ),
        ("COPY", "/v1/ACCT/c/big", &[("Destination", "c/big2")], b""),
        ("GET", "/v1/ACCT/c/big2", &[], b""),
        (
            "PUT",
            "/v1/ACCT/c/p1",
            &[("X-Copy-From", "c/src")],
            b"12345",
        ),
        ("PUT", "/v1/ACCT/c/p1", &[("X-Copy-From", "justc")], b""),
        (
            "PUT",
            "/v1/ACCT/c/p2",
            &[("X-Copy-From", "/c/big"), ("Range", "bytes=1000-200000")],
            b"",
        ),
        ("GET", "/v1/ACCT/c/p2", &[], b""),
        (
            "PUT",
            "/v1/ACCT/c/p3",
            &[("X-Copy-From", "c/src"), ("If-Match", "nope")],
            b"",
        ),
        (
            "PUT",
            "/v1/ACCT/c/p3",
            &[("X-Copy-From", "c/src"), ("If-None-Match", "*")],
            b"",
        ),
        (
            "PUT",
            "/v1/ACCT/c/p4",
            &[
                ("X-Copy-From", "c/src"),
                ("X-Fresh-Metadata", "true"),
                ("X-Object-Meta-New", "n"),
            ],
            b"",
        ),
        ("HEAD", "/v1/ACCT/c/p4", &[], b""),
        ("PUT", "/v1/ACCT/c/p5", &[("X-Copy-From", "c/empty")], b""),
        (
            "PUT",
            "/v1/ACCT/c/p6?multipart-manifest=get",
            &[("X-Copy-From", "c/dlo")],
            b"",
        ),
        ("HEAD", "/v1/ACCT/c/p6?multipart-manifest=get", &[], b""),
        ("OPTIONS", "/v1/ACCT/c/src", &[], b""),
        (
            "PUT",
            "/v1/ACCT/c/h1?heartbeat=on",
            &[("X-Copy-From", "c/src"), ("Accept", "application/json")],
            b"",
        ),
        (
            "PUT",
            "/v1/ACCT/nope/h2?heartbeat=on",
            &[("X-Copy-From", "c/src")],
            b"",
        ),
    ];
    let mut diffs = Vec::new();
    for (method, path, headers, body) in cases {
        let a = py.send(method, path, headers, body);
        let b = rs.send(method, path, headers, body);
        let copying = *method == "COPY" || headers.iter().any(|(k, _)| *k == "X-Copy-From");
        let ordered = copying && a.status == 201;
        let (va, vb) = (view(&py, &a, ordered), view(&rs, &b, ordered));
        if va != vb {
            diffs.push(format!(
                "{method} {path} {headers:?}\n--- python\n{va}\n--- ours\n{vb}"
            ));
        }
        // The copy and its source GET, as each proxy logged them.
        if copying && (a.status == 201 || a.status == 404) {
            let want = 2;
            let tx = |r: &Response| r.header("x-trans-id").unwrap_or_default().to_owned();
            let la: Vec<String> = py
                .copy_log(&tx(&a), want)
                .iter()
                .map(|f| log_view(&py, f))
                .collect();
            let lb: Vec<String> = rs
                .copy_log(&tx(&b), want)
                .iter()
                .map(|f| log_view(&rs, f))
                .collect();
            if la != lb {
                diffs.push(format!(
                    "access log of {method} {path}\n--- python\n{la:#?}\n--- ours\n{lb:#?}"
                ));
            }
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n\n"));

    // The copies hold what their sources held.
    let got = rs.send("GET", "/v1/ACCT/c/big2", &[], b"");
    assert!(got.body == big, "the whole copy");
    let got = rs.send("GET", "/v1/ACCT/c/p2", &[], b"");
    assert!(got.body == big[1000..=200_000], "the ranged copy");
}
