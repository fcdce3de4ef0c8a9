//! A real one-machine Swift cluster for the end-to-end tests: Python Swift's
//! account, container and object servers from the venv, a memcached, and a
//! proxy under test (ours or Python's, given by its binary path), each on a
//! free loopback port, configured in a scratch directory, with the storage
//! devices on tmpfs. More proxies may join, in front of the same servers
//! ([`Cluster::start_extra_proxy`]), to compare two proxies request by
//! request.
//!
//! It owns the processes it starts and nothing else: every one is ended by
//! its pid (and its process group, which a Swift server makes its own with
//! `setsid`) when the [`Cluster`] drops, and single storage servers can be
//! stopped and started again for fault tests. It does not implement or
//! check Swift behaviour; tests do.
//!
//! Storage policies: the Python servers (and Python's proxy) read policies
//! and constraints from `/etc/swift/swift.conf` when they are imported,
//! whatever `swift_dir` says (`swift_dir` only re-reads the hash prefix and
//! suffix). The cluster therefore uses policy 0 alone: the storage servers
//! treat a request without `X-Backend-Storage-Policy-Index` as policy 0, so
//! the proxy and the servers agree on the only index there is, whether
//! `/etc/swift/swift.conf` exists or not. Its name, `gold`, is what our proxy
//! reads from the scratch swift.conf; Python's proxy calls it `Policy-0`
//! unless `/etc/swift/swift.conf` says otherwise.
//!
//! Every wait is bounded; readiness is an answer from the server (`GET
//! /healthcheck` returning 200, memcached's `version`), never a sleep.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::{Response, bin, pid_alive, python_swift, raw_request, swift_venv, wait_until};

/// How long a server may take from spawn to answering `/healthcheck`.
/// Python's servers import all of Swift first: about a second each, more
/// on a loaded 2-core machine.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a SIGTERMed server may take to exit before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// A bound for one `swift-ring-builder` command.
const RING_BUILDER_TIMEOUT: Duration = Duration::from_secs(60);

/// Set (to anything) to keep the scratch and devices directories after the
/// cluster ends, to read the logs of a failed run.
pub const KEEP_ENV: &str = "SWIFT_CLUSTER_KEEP";

/// The hash prefix and suffix of the cluster's swift.conf.
pub const HASH_PATH_PREFIX: &str = "e2e-cluster-prefix";
pub const HASH_PATH_SUFFIX: &str = "e2e-cluster-suffix";

/// The tempauth users of Swift's sample proxy config, which Swift's
/// functional tests log in as (`test/sample.conf`): (account, user, key,
/// groups).
pub const TEMPAUTH_USERS: &[(&str, &str, &str, &str)] = &[
    ("admin", "admin", "admin", ".admin .reseller_admin"),
    ("test", "tester", "testing", ".admin"),
    ("test", "tester2", "testing2", ".admin"),
    ("test", "tester3", "testing3", ""),
    ("test2", "tester2", "testing2", ".admin"),
];

/// One server of the cluster. Object servers are numbered from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Node {
    Proxy,
    Account,
    Container,
    /// Object server `n` (1-based). With one object server it holds all
    /// three devices; with three or four, server `n` holds device `d<n>`.
    Object(usize),
    /// Another proxy `n` (1-based), from [`Cluster::start_extra_proxy`]:
    /// the same config but its port, in front of the same servers.
    ExtraProxy(usize),
}

impl Node {
    /// The name of its config and log files: `proxy-server`,
    /// `account-server`, `container-server`, `object-server-<n>`.
    pub fn name(&self) -> String {
        match self {
            Node::Proxy => "proxy-server".to_owned(),
            Node::Account => "account-server".to_owned(),
            Node::Container => "container-server".to_owned(),
            Node::Object(n) => format!("object-server-{n}"),
            Node::ExtraProxy(n) => format!("proxy-server-extra-{n}"),
        }
    }

    /// Swift's server type: `proxy`, `account`, `container`, `object`.
    pub fn server_type(&self) -> &'static str {
        match self {
            Node::Proxy | Node::ExtraProxy(_) => "proxy",
            Node::Account => "account",
            Node::Container => "container",
            Node::Object(_) => "object",
        }
    }
}

impl std::fmt::Display for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// The venv's Python proxy, `swift-proxy-server`.
pub fn python_proxy() -> PathBuf {
    swift_venv().join("bin/swift-proxy-server")
}

/// Our proxy, the workspace's `swift-proxy-server`.
pub fn our_proxy() -> PathBuf {
    bin("swift-proxy-server")
}

/// The proxy pipeline of [`ClusterOptions::new`]: the functional tests'
/// (Swift's `test/sample.conf`, without the filters the cluster does not
/// configure).
pub const FULL_PIPELINE: &str = "catch_errors gatekeeper healthcheck proxy-logging cache \
                                 listing_formats tempauth copy dlo proxy-logging proxy-server";

/// How to build a [`Cluster`].
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The proxy binary: [`our_proxy`] or [`python_proxy`].
    pub proxy: PathBuf,
    /// 1 (one process with devices d1 d2 d3), 3 (one device each, so a
    /// single device's server can be stopped) or 4 (one device each: every
    /// partition has three primaries and one handoff, for tests of writes
    /// that lose a primary).
    pub object_servers: usize,
    /// The proxy's `workers` (the storage servers always run 0).
    pub proxy_workers: u32,
    /// Extra `[app:proxy-server]` options, e.g. shorter `node_timeout`s.
    pub proxy_app_options: Vec<(String, String)>,
    /// The proxy's `[pipeline:main]` (every filter of [`FULL_PIPELINE`]
    /// has its section whatever the pipeline names).
    pub pipeline: String,
}

impl ClusterOptions {
    /// One object server, one proxy worker, the proxy at `proxy`.
    pub fn new(proxy: impl Into<PathBuf>) -> ClusterOptions {
        ClusterOptions {
            proxy: proxy.into(),
            object_servers: 1,
            proxy_workers: 1,
            proxy_app_options: Vec::new(),
            pipeline: FULL_PIPELINE.to_owned(),
        }
    }

    pub fn object_servers(mut self, n: usize) -> ClusterOptions {
        self.object_servers = n;
        self
    }

    pub fn proxy_workers(mut self, n: u32) -> ClusterOptions {
        self.proxy_workers = n;
        self
    }

    pub fn proxy_app_option(mut self, key: &str, value: &str) -> ClusterOptions {
        self.proxy_app_options
            .push((key.to_owned(), value.to_owned()));
        self
    }

    /// Another `[pipeline:main]`, for a proxy without some of the filters.
    pub fn pipeline(mut self, pipeline: &str) -> ClusterOptions {
        self.pipeline = pipeline.to_owned();
        self
    }
}

/// A server process the cluster started, and how to start it again.
struct Managed {
    program: PathBuf,
    conf: PathBuf,
    port: u16,
    log: PathBuf,
    child: Option<Child>,
}

/// The running cluster; everything it started ends when it drops.
pub struct Cluster {
    dir: tempfile::TempDir,
    devices: tempfile::TempDir,
    devices_on_tmpfs: bool,
    object_servers: usize,
    servers: BTreeMap<Node, Managed>,
    memcached: Option<Child>,
    memcached_port: u16,
    options: ClusterOptions,
}

impl Cluster {
    /// Write the configs and rings, start memcached, the storage servers
    /// and the proxy, and wait (bounded) until each answers. Panics with
    /// the server's log when one does not come up.
    pub fn start(options: ClusterOptions) -> Cluster {
        assert!(
            matches!(options.object_servers, 1 | 3 | 4),
            "object_servers must be 1, 3 or 4, not {}",
            options.object_servers
        );
        if Path::new("/etc/swift/swift.conf").exists() {
            eprintln!(
                "note: /etc/swift/swift.conf exists; Python's servers take their storage \
                 policies and constraints from it (the cluster uses policy 0 only)"
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("swift-cluster-")
            .tempdir()
            .expect("create the cluster's scratch dir");
        let (devices, devices_on_tmpfs) = devices_dir();
        std::fs::create_dir_all(dir.path().join("log")).expect("create log dir");

        let mut nodes = vec![Node::Proxy, Node::Account, Node::Container];
        nodes.extend((1..=options.object_servers).map(Node::Object));
        let ports = free_ports(nodes.len() + 1);
        let memcached_port = ports[nodes.len()];
        let port_of: BTreeMap<Node, u16> = nodes.iter().copied().zip(ports).collect();

        let mut cluster = Cluster {
            dir,
            devices,
            devices_on_tmpfs,
            object_servers: options.object_servers,
            servers: BTreeMap::new(),
            memcached: None,
            memcached_port,
            options: options.clone(),
        };
        // memcached first: the proxy config names its port, which may
        // change if the one picked was taken meanwhile.
        cluster.start_memcached();
        cluster.write_swift_conf();
        cluster.build_rings(&port_of);
        for node in &nodes {
            let port = port_of[node];
            let (program, conf) = match node {
                Node::Proxy => (options.proxy.clone(), cluster.write_proxy_conf(*node, port)),
                _ => (
                    swift_venv().join(format!("bin/swift-{}-server", node.server_type())),
                    cluster.write_storage_conf(*node, port),
                ),
            };
            cluster.servers.insert(
                *node,
                Managed {
                    program,
                    conf,
                    port,
                    log: cluster.dir.path().join(format!("log/{node}.log")),
                    child: None,
                },
            );
        }

        // The storage servers start together (each spends a second of CPU
        // importing Swift), then the proxy, which needs them for nothing at
        // start but is more useful once they answer.
        let storage: Vec<Node> = nodes[1..].to_vec();
        for node in &storage {
            cluster.spawn(*node);
        }
        for node in &storage {
            cluster.wait_ready(*node);
        }
        cluster.spawn(Node::Proxy);
        cluster.wait_ready(Node::Proxy);
        cluster
    }

    /// Start another proxy, `binary` (ours or Python's), with the first
    /// one's config on its own free port, in front of the same storage
    /// servers, rings and memcached, and wait until it answers; it is
    /// [`Node::ExtraProxy`] `n` (numbered from 1 in start order) and ends
    /// with the cluster. For differential tests: the same requests to two
    /// proxies over the same storage.
    pub fn start_extra_proxy(&mut self, binary: impl Into<PathBuf>) -> SocketAddr {
        let n = 1 + self
            .servers
            .keys()
            .filter(|k| matches!(k, Node::ExtraProxy(_)))
            .count();
        let node = Node::ExtraProxy(n);
        let port = free_ports(1)[0];
        let conf = self.write_proxy_conf(node, port);
        self.servers.insert(
            node,
            Managed {
                program: binary.into(),
                conf,
                port,
                log: self.dir.path().join(format!("log/{node}.log")),
                child: None,
            },
        );
        self.spawn(node);
        self.wait_ready(node);
        self.addr(node)
    }

    /// The scratch directory: swift.conf, rings, `<node>.conf`, `log/`.
    pub fn swift_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The devices root: `<devices>/<node>/d<k>`.
    pub fn devices_dir(&self) -> &Path {
        self.devices.path()
    }

    /// The directory of device `d<n>` of object server `n` (with 3 or 4
    /// object servers, one device each). Renaming it away is a device that
    /// is not mounted: the server answers 507 for it (`mount_check` is
    /// off, so Swift's `check_dir` looks for the directory).
    pub fn object_device_dir(&self, n: usize) -> PathBuf {
        assert!(
            self.object_servers > 1 && (1..=self.object_servers).contains(&n),
            "object server {n} has no device of its own in a cluster of {}",
            self.object_servers
        );
        self.devices
            .path()
            .join(Node::Object(n).name())
            .join(format!("d{n}"))
    }

    /// Whether the devices are on tmpfs (`/dev/shm`), which takes the large
    /// xattrs of metadata-heavy tests; elsewhere (ext4) they may get 507s.
    pub fn devices_on_tmpfs(&self) -> bool {
        self.devices_on_tmpfs
    }

    /// Every server of the cluster, proxy first, extra proxies last.
    pub fn nodes(&self) -> Vec<Node> {
        self.servers.keys().copied().collect()
    }

    /// How many object servers there are (1, 3 or 4).
    pub fn object_servers(&self) -> usize {
        self.object_servers
    }

    /// The port a server listens on (it stays the same across restarts).
    pub fn port(&self, node: Node) -> u16 {
        self.managed(node).port
    }

    /// The address a server listens on.
    pub fn addr(&self, node: Node) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port(node)))
    }

    /// The proxy's address.
    pub fn proxy_addr(&self) -> SocketAddr {
        self.addr(Node::Proxy)
    }

    /// `http://127.0.0.1:<port>/auth/v1.0`, tempauth's v1 endpoint.
    pub fn auth_url(&self) -> String {
        format!("http://{}/auth/v1.0", self.proxy_addr())
    }

    /// memcached's address (the proxy's `memcache_servers`).
    pub fn memcached_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.memcached_port))
    }

    /// A server's config file.
    pub fn conf_path(&self, node: Node) -> &Path {
        &self.managed(node).conf
    }

    /// The file a server's log lines go to (its console output: every
    /// server runs with `-v`, stdout and stderr appended here).
    pub fn log_path(&self, node: Node) -> &Path {
        &self.managed(node).log
    }

    /// Everything a server has logged so far, across restarts.
    pub fn log(&self, node: Node) -> String {
        std::fs::read(self.log_path(node))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The pid of a running server, `None` when stopped.
    pub fn pid(&self, node: Node) -> Option<i32> {
        self.managed(node).child.as_ref().map(|c| c.id() as i32)
    }

    /// Stop a server: SIGTERM, then SIGKILL if it has not exited within
    /// 10 s. A no-op when it is stopped already.
    pub fn stop_server(&mut self, node: Node) {
        let m = self.managed_mut(node);
        if let Some(mut child) = m.child.take() {
            let pid = child.id() as i32;
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            let exited = wait_until(STOP_TIMEOUT, || child.try_wait().ok().flatten()).is_some();
            if !exited {
                eprintln!("{node} (pid {pid}) ignored SIGTERM for {STOP_TIMEOUT:?}; killing it");
            }
            end_process(&mut child);
        }
    }

    /// Kill a server at once (SIGKILL to it and its process group), as a
    /// crashed node. A no-op when it is stopped already.
    pub fn kill_server(&mut self, node: Node) {
        if let Some(mut child) = self.managed_mut(node).child.take() {
            end_process(&mut child);
        }
    }

    /// Start a stopped server again, on the same port with the same
    /// config, and wait until it answers. Panics when it is running.
    pub fn start_server(&mut self, node: Node) {
        assert!(self.pid(node).is_none(), "{node} is running already");
        self.spawn(node);
        self.wait_ready(node);
    }

    /// Stop and start a server.
    pub fn restart_server(&mut self, node: Node) {
        self.stop_server(node);
        self.start_server(node);
    }

    /// Log in with tempauth (`GET /auth/v1.0`): the storage URL and the
    /// token, or what went wrong.
    pub fn auth(&self, account: &str, user: &str, key: &str) -> Result<(String, String), String> {
        let resp = request(
            self.proxy_addr(),
            "GET",
            "/auth/v1.0",
            &[
                ("X-Auth-User", &format!("{account}:{user}")),
                ("X-Auth-Key", key),
            ],
            b"",
        )
        .map_err(|e| format!("GET /auth/v1.0: {e}"))?;
        match (
            resp.status,
            resp.header("X-Storage-Url"),
            resp.header("X-Auth-Token"),
        ) {
            (200, Some(url), Some(token)) => Ok((url.to_owned(), token.to_owned())),
            _ => Err(format!(
                "GET /auth/v1.0 as {account}:{user}: {} {} {:?}",
                resp.status, resp.reason, resp.headers
            )),
        }
    }

    fn managed(&self, node: Node) -> &Managed {
        self.servers
            .get(&node)
            .unwrap_or_else(|| panic!("the cluster has no {node}"))
    }

    fn managed_mut(&mut self, node: Node) -> &mut Managed {
        self.servers
            .get_mut(&node)
            .unwrap_or_else(|| panic!("the cluster has no {node}"))
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        crate::write_file(self.dir.path(), name, text)
    }

    fn write_swift_conf(&self) {
        self.write(
            "swift.conf",
            &format!(
                "# Written by the e2e cluster harness (tests/src/cluster.rs).\n\
                 [swift-hash]\n\
                 swift_hash_path_prefix = {HASH_PATH_PREFIX}\n\
                 swift_hash_path_suffix = {HASH_PATH_SUFFIX}\n\n\
                 # Policy 0 only: Python's servers read policies from\n\
                 # /etc/swift/swift.conf, not from here (see cluster.rs).\n\
                 [storage-policy:0]\n\
                 name = gold\n\
                 default = yes\n"
            ),
        );
    }

    /// The account, container and object rings: part power 8, 3 replicas,
    /// devices d1 d2 d3 in zones 1 2 3 on 127.0.0.1 (the object ring of
    /// four object servers: d1 to d4 in zones 1 to 4), built by the venv's
    /// swift-ring-builder (the three rings in parallel).
    fn build_rings(&self, port_of: &BTreeMap<Node, u16>) {
        let devs = |ring: &str| -> Vec<String> {
            let count = if ring == "object" {
                self.object_servers.max(3)
            } else {
                3
            };
            (1..=count)
                .map(|z| {
                    let node = match ring {
                        "account" => Node::Account,
                        "container" => Node::Container,
                        _ if self.object_servers == 1 => Node::Object(1),
                        _ => Node::Object(z),
                    };
                    format!("r1z{z}-127.0.0.1:{}/d{z}", port_of[&node])
                })
                .collect()
        };
        let rings = ["account", "container", "object"];
        // create, add the three devices, rebalance.
        let step_args = |step: usize, ring: &str| -> Vec<String> {
            match step {
                0 => ["create", "8", "3", "0"].map(String::from).to_vec(),
                1 => std::iter::once("add".to_owned())
                    .chain(devs(ring).into_iter().flat_map(|d| [d, "100".to_owned()]))
                    .collect(),
                _ => vec!["rebalance".to_owned()],
            }
        };
        for step in 0..3 {
            let procs: Vec<(String, crate::Proc)> = rings
                .iter()
                .map(|ring| {
                    let args = step_args(step, ring);
                    let mut cmd = python_swift("swift-ring-builder");
                    cmd.arg(self.dir.path().join(format!("{ring}.builder")))
                        .args(&args);
                    (
                        format!("swift-ring-builder {ring}.builder {}", args.join(" ")),
                        crate::Proc::spawn(&mut cmd),
                    )
                })
                .collect();
            for (what, proc) in procs {
                let out = proc.output(RING_BUILDER_TIMEOUT);
                // 1 is a warning (such as balance), 2 an error.
                assert!(
                    out.status.code().is_some_and(|c| c <= 1),
                    "{what}: {}\n{}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        for ring in rings {
            assert!(
                self.dir.path().join(format!("{ring}.ring.gz")).exists(),
                "{ring}.ring.gz was not written"
            );
        }
    }

    /// The user the servers run as: the current one (no privilege change;
    /// Python's servers need a name, our `user =` would do too).
    fn user() -> String {
        nix::unistd::User::from_uid(nix::unistd::geteuid())
            .ok()
            .flatten()
            .map(|u| u.name)
            .expect("the current user has a name in /etc/passwd")
    }

    fn write_storage_conf(&self, node: Node, port: u16) -> PathBuf {
        let devices = self.devices.path().join(node.name());
        let device_numbers: Vec<usize> = match node {
            Node::Object(n) if self.object_servers > 1 => vec![n],
            _ => vec![1, 2, 3],
        };
        for k in device_numbers {
            std::fs::create_dir_all(devices.join(format!("d{k}"))).expect("create device dir");
        }
        let kind = node.server_type();
        // fallocate would reserve max_file_size (5 GiB) for the functional
        // tests' size-limit PUTs, fail with 507, and the proxy would then
        // error-limit the device for a minute.
        let object_only = if kind == "object" {
            "disable_fallocate = true\n"
        } else {
            ""
        };
        self.write(
            &format!("{}.conf", node.name()),
            &format!(
                "[DEFAULT]\n\
                 bind_ip = 127.0.0.1\n\
                 bind_port = {port}\n\
                 workers = 0\n\
                 user = {user}\n\
                 swift_dir = {swift_dir}\n\
                 devices = {devices}\n\
                 mount_check = false\n\
                 log_name = {name}\n\
                 {object_only}\n\
                 [pipeline:main]\n\
                 pipeline = healthcheck {kind}-server\n\n\
                 [app:{kind}-server]\n\
                 use = egg:swift#{kind}\n\n\
                 [filter:healthcheck]\n\
                 use = egg:swift#healthcheck\n",
                user = Self::user(),
                swift_dir = self.dir.path().display(),
                devices = devices.display(),
                name = node.name(),
            ),
        )
    }

    /// The proxy config `<node>.conf`: the options' pipeline (by default
    /// the functional tests') and tempauth users. The same file serves ours
    /// and Python's proxy. Log lines go to the console (`-v`), which the
    /// cluster appends to `log/<node>.log`.
    fn write_proxy_conf(&self, node: Node, port: u16) -> PathBuf {
        let options = &self.options;
        let users: String = TEMPAUTH_USERS
            .iter()
            .map(|(account, user, key, groups)| {
                format!("user_{account}_{user} = {key} {groups}\n").replace(" \n", "\n")
            })
            .collect();
        let extra: String = options
            .proxy_app_options
            .iter()
            .map(|(k, v)| format!("{k} = {v}\n"))
            .collect();
        self.write(
            &format!("{}.conf", node.name()),
            &format!(
                "[DEFAULT]\n\
                 bind_ip = 127.0.0.1\n\
                 bind_port = {port}\n\
                 workers = {workers}\n\
                 user = {user}\n\
                 swift_dir = {swift_dir}\n\
                 log_name = proxy-server\n\n\
                 [pipeline:main]\n\
                 pipeline = {pipeline}\n\n\
                 [app:proxy-server]\n\
                 use = egg:swift#proxy\n\
                 account_autocreate = true\n\
                 # As Swift's SAIO and in-process functional tests have it.\n\
                 allow_account_management = true\n\
                 {extra}\n\
                 [filter:catch_errors]\n\
                 use = egg:swift#catch_errors\n\n\
                 [filter:gatekeeper]\n\
                 use = egg:swift#gatekeeper\n\n\
                 [filter:healthcheck]\n\
                 use = egg:swift#healthcheck\n\n\
                 [filter:proxy-logging]\n\
                 use = egg:swift#proxy_logging\n\n\
                 [filter:cache]\n\
                 use = egg:swift#memcache\n\
                 memcache_servers = {memcached}\n\n\
                 [filter:listing_formats]\n\
                 use = egg:swift#listing_formats\n\n\
                 [filter:tempauth]\n\
                 use = egg:swift#tempauth\n\
                 {users}\n\
                 [filter:copy]\n\
                 use = egg:swift#copy\n\n\
                 [filter:dlo]\n\
                 use = egg:swift#dlo\n",
                workers = options.proxy_workers,
                pipeline = options.pipeline,
                user = Self::user(),
                swift_dir = self.dir.path().display(),
                memcached = self.memcached_addr(),
            ),
        )
    }

    fn start_memcached(&mut self) {
        self.spawn_memcached(3);
    }

    /// Kill memcached (SIGKILL, by its pid): a cache that is down.
    pub fn kill_memcached(&mut self) {
        if let Some(mut child) = self.memcached.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start memcached again on its port (empty: a restarted cache).
    pub fn restart_memcached(&mut self) {
        self.kill_memcached();
        self.spawn_memcached(1);
    }

    /// Start memcached, trying up to `attempts` ports (the first is the
    /// current one; the proxy's config names it).
    fn spawn_memcached(&mut self, attempts: usize) {
        let program = ["/usr/bin/memcached", "/usr/local/bin/memcached"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .unwrap_or_else(|| {
                panic!(
                    "memcached is not installed: `apt-get install memcached` \
                     (./test.sh installs it when run as root)"
                )
            });
        let log_path = self.dir.path().join("log/memcached.log");
        // The port was free a moment ago; another process may take it in
        // between, so a memcached that exits at start gets another port.
        for attempt in 0..attempts {
            if attempt > 0 {
                self.memcached_port = free_ports(1)[0];
            }
            let log = append(&log_path);
            let mut cmd = Command::new(&program);
            cmd.args([
                "-l",
                "127.0.0.1",
                "-p",
                &self.memcached_port.to_string(),
                "-U",
                "0",
            ])
            .args(["-m", "64", "-v"]);
            if nix::unistd::geteuid().is_root() {
                // memcached refuses to run as root unless told which user.
                cmd.args(["-u", "root"]);
            }
            let mut child = cmd
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("dup log fd"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
            let addr = self.memcached_addr();
            let ready = wait_until(Duration::from_secs(10), || {
                if let Ok(Some(status)) = child.try_wait() {
                    return Some(Err(status));
                }
                memcached_answers(addr).then_some(Ok(()))
            });
            match ready {
                Some(Ok(())) => {
                    self.memcached = Some(child);
                    return;
                }
                Some(Err(status)) => eprintln!(
                    "memcached on port {} exited ({status}); trying another port",
                    self.memcached_port
                ),
                None => {
                    end_process(&mut child);
                    panic!(
                        "memcached did not answer on {addr} within 10s:\n{}",
                        std::fs::read_to_string(&log_path).unwrap_or_default()
                    );
                }
            }
        }
        panic!(
            "memcached did not start:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
    }

    /// Spawn a server with `-v`, its stdout and stderr appended to its log.
    fn spawn(&mut self, node: Node) {
        let m = self.managed_mut(node);
        let log = append(&m.log);
        let _ = writeln!(&log, "--- e2e cluster: starting {node}");
        let mut cmd = Command::new(&m.program);
        crate::quiet_python(&mut cmd);
        cmd.arg(&m.conf)
            .arg("-v")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log fd"))
            .stderr(log);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {} for {node}: {e}", m.program.display()));
        m.child = Some(child);
    }

    /// Wait until `GET /healthcheck` answers 200; panic with the log when
    /// the server exits or does not answer within [`START_TIMEOUT`].
    fn wait_ready(&mut self, node: Node) {
        let addr = self.addr(node);
        let started = Instant::now();
        let m = self.managed_mut(node);
        let child = m.child.as_mut().expect("spawned");
        let ready = wait_until(START_TIMEOUT, || {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(Err(format!("exited ({status})")));
            }
            let resp = request(addr, "GET", "/healthcheck", &[], b"").ok()?;
            (resp.status == 200).then_some(Ok(()))
        });
        let problem = match ready {
            Some(Ok(())) => return,
            Some(Err(e)) => e,
            None => format!("did not answer GET /healthcheck within {START_TIMEOUT:?}"),
        };
        let log = self.log(node);
        self.kill_server(node);
        panic!(
            "{node} on {addr} {problem} (after {:?}); its log:\n{log}",
            started.elapsed()
        );
    }
}

impl Drop for Cluster {
    /// Kill every process the cluster started, by pid and process group;
    /// the scratch and tmpfs directories go with their TempDirs.
    fn drop(&mut self) {
        for m in self.servers.values_mut() {
            if let Some(mut child) = m.child.take() {
                end_process(&mut child);
            }
        }
        if let Some(mut child) = self.memcached.take() {
            end_process(&mut child);
        }
        if std::env::var_os(KEEP_ENV).is_some() {
            self.dir.disable_cleanup(true);
            self.devices.disable_cleanup(true);
            eprintln!(
                "{KEEP_ENV} is set: keeping {} (configs, rings, logs) and {} (devices)",
                self.dir.path().display(),
                self.devices.path().display()
            );
        }
    }
}

/// SIGKILL a child, its workers and its process group (a Swift server
/// calls `setsid`, so a group with its pid is its own), and reap it
/// (bounded).
fn end_process(child: &mut Child) {
    let pid = child.id() as i32;
    if matches!(child.try_wait(), Ok(None)) {
        // Workers first: once the master is gone they would be reparented
        // and out of our sight.
        for worker in crate::children_of(pid) {
            let _ = kill(Pid::from_raw(worker), Signal::SIGKILL);
        }
        // The group, only when the child leads it: the group is then ours.
        if nix::unistd::getpgid(Some(Pid::from_raw(pid))).ok() == Some(Pid::from_raw(pid)) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = child.kill();
    }
    if wait_until(STOP_TIMEOUT, || child.try_wait().ok().flatten()).is_none() && pid_alive(pid) {
        eprintln!("process {pid} did not exit within {STOP_TIMEOUT:?} of SIGKILL");
    }
}

/// The devices root: a fresh directory in `/dev/shm` (tmpfs: large xattrs,
/// no fsync cost), else in the temp dir with a note.
fn devices_dir() -> (tempfile::TempDir, bool) {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::Builder::new()
            .prefix("swift-cluster-devices-")
            .tempdir_in(shm)
    {
        return (dir, true);
    }
    eprintln!(
        "note: /dev/shm is not usable; the cluster's devices go to the temp dir, where \
         ext4's xattr limit can fail metadata-heavy tests with 507"
    );
    let dir = tempfile::Builder::new()
        .prefix("swift-cluster-devices-")
        .tempdir()
        .expect("create the devices dir");
    (dir, false)
}

/// `n` distinct loopback ports that were free a moment ago (all listeners
/// are held until every port is picked, so they differ).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local_addr").port())
        .collect()
}

fn append(path: &Path) -> std::fs::File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

/// Whether memcached answers `version` on `addr`.
fn memcached_answers(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"version\r\n").is_err() {
        return false;
    }
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).is_ok() && line.starts_with("VERSION ")
}

/// One request with headers and a body (`Content-Length` is added for a
/// body or a PUT/POST) on a new connection, `Connection: close`.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || matches!(method, "PUT" | "POST") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    raw_request(addr, &bytes, Duration::from_secs(30))
}
