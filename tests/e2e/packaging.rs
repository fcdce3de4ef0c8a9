//! The Debian package (issue 5). `packaging/build-deb.sh` builds it once per
//! test run; then: `dpkg-deb -c` lists every file it must ship and nothing
//! else, with the control fields we chose; lintian reports no error, and no
//! warning that the README does not list; the packaged swift-init starts,
//! checks and stops the packaged proxy from the packaged sample config
//! (`dpkg -x` into a scratch root); a real `apt-get install` and `dpkg
//! --purge`, in a throwaway overlay of this machine's root, creates the
//! swift user and /etc/swift, runs the proxy as that user, and keeps both on
//! purge, and dpkg refuses to install the package beside Debian's
//! swift-proxy or over another package's swift-init; the bash completion
//! offers every server, alias, command and option of swift-init.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use swift_tests::server::{Syslog, is_root, proc_ids};
use swift_tests::{
    bin, children_of, free_port, http, pid_alive, run, scratch, wait_until, workspace_root,
    write_file,
};

const PACKAGE: &str = "swift-rs";

/// The release build may run here when ./test.sh has not built it first.
const BUILD_TIMEOUT: Duration = Duration::from_secs(20 * 60);

static DEB: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// The .deb, built by `packaging/build-deb.sh` on first use in this test run
/// (into `target/tmp/deb-<pid>/`; those of finished runs are removed).
fn deb() -> PathBuf {
    DEB.get_or_init(build_deb)
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn build_deb() -> Result<PathBuf, String> {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("deb-").and_then(|p| p.parse().ok())
                && !pid_alive(pid)
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let out_dir = tmp.join(format!("deb-{}", std::process::id()));
    let mut cmd = Command::new(workspace_root().join("packaging/build-deb.sh"));
    cmd.arg("--out-dir").arg(&out_dir);
    // What `cargo test` sets for this test binary is not the build's
    // business, and build scripts that track such a variable (ring's tracks
    // CARGO_MANIFEST_DIR) would rebuild, here and again in the next shell build.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("CARGO_MANIFEST_")
            || k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_BIN_")
            || matches!(
                &*k,
                "CARGO_CRATE_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "CARGO_RUSTC_CURRENT_DIR"
                    | "OUT_DIR"
            )
        {
            cmd.env_remove(&*k);
        }
    }
    let out = run(&mut cmd, BUILD_TIMEOUT);
    if !out.status.success() {
        return Err(format!("packaging/build-deb.sh failed: {}", text(&out)));
    }
    let debs: Vec<PathBuf> = std::fs::read_dir(&out_dir)
        .map_err(|e| format!("{}: {e}", out_dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    match debs.as_slice() {
        [deb] => Ok(deb.clone()),
        _ => Err(format!(
            "expected one .deb in {}: {debs:?}",
            out_dir.display()
        )),
    }
}

/// stdout and stderr of a finished command, for messages.
fn text(out: &Output) -> String {
    format!(
        "{}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Run and require success; returns stdout.
fn check(cmd: &mut Command, timeout: Duration) -> String {
    let desc = format!("{cmd:?}");
    let out = run(cmd, timeout);
    assert!(out.status.success(), "{desc}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `[workspace.package] version` of Cargo.toml.
fn workspace_version() -> String {
    let toml = std::fs::read_to_string(workspace_root().join("Cargo.toml")).expect("Cargo.toml");
    let section = toml
        .split("[workspace.package]")
        .nth(1)
        .expect("Cargo.toml has [workspace.package]");
    let line = section
        .lines()
        .find(|l| l.trim_start().starts_with("version"))
        .expect("[workspace.package] has a version");
    line.split('"').nth(1).expect("a quoted version").to_owned()
}

/// The binary targets of the workspace (swift-init, swift-proxy-server,
/// and swift-reload once it exists), from `cargo metadata`.
fn workspace_bins() -> Vec<String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let meta = check(
        Command::new(cargo)
            .args([
                "metadata",
                "--no-deps",
                "--format-version",
                "1",
                "--offline",
            ])
            .current_dir(workspace_root()),
        Duration::from_secs(60),
    );
    let marker = r#""kind":["bin"],"crate_types":["bin"],"name":""#;
    let mut bins: Vec<String> = meta
        .match_indices(marker)
        .filter_map(|(i, _)| meta[i + marker.len()..].split('"').next())
        .map(str::to_owned)
        .collect();
    bins.sort();
    bins.dedup();
    assert!(
        bins.iter().any(|b| b == "swift-init") && bins.iter().any(|b| b == "swift-proxy-server"),
        "cargo metadata lists no swift-init/swift-proxy-server bins: {bins:?}"
    );
    bins
}

/// One entry of `dpkg-deb -c`.
#[derive(Debug)]
struct Entry {
    mode: String,
    owner: String,
}

/// `dpkg-deb -c`, by path (without the leading `.`; directories end in `/`).
fn contents(deb: &Path) -> BTreeMap<String, Entry> {
    let listing = check(
        Command::new("dpkg-deb").arg("-c").arg(deb),
        Duration::from_secs(30),
    );
    listing
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert!(f.len() >= 6, "odd dpkg-deb -c line: {l}");
            let path = f[5].trim_start_matches('.').to_owned();
            (
                path,
                Entry {
                    mode: f[0].to_owned(),
                    owner: f[1].to_owned(),
                },
            )
        })
        .collect()
}

/// The package's files unpacked with `dpkg -x` into `dir`.
fn extract(deb: &Path, dir: &Path) {
    check(
        Command::new("dpkg-deb").arg("-x").arg(deb).arg(dir),
        Duration::from_secs(60),
    );
}

fn gunzip(path: &Path) -> String {
    check(
        Command::new("gzip").arg("-dc").arg(path),
        Duration::from_secs(10),
    )
}

/// A control field of the package.
fn field(deb: &Path, name: &str) -> Option<String> {
    let out = run(
        Command::new("dpkg-deb").args(["-f"]).arg(deb).arg(name),
        Duration::from_secs(10),
    );
    let value = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !value.is_empty()).then_some(value)
}

#[test]
fn package_ships_every_file_and_nothing_else() {
    let deb = deb();
    let root = workspace_root();
    let listing = contents(&deb);
    let doc = format!("/usr/share/doc/{PACKAGE}");

    // path -> mode; directories are checked separately.
    let mut want: BTreeMap<String, &str> = BTreeMap::new();
    let bins = workspace_bins();
    for b in &bins {
        want.insert(format!("/usr/bin/{b}"), "-rwxr-xr-x");
    }
    let mut pages = Vec::new();
    for e in std::fs::read_dir(root.join("man")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some((_, section)) = name.rsplit_once('.')
            && section.len() == 1
            && section.chars().all(|c| c.is_ascii_digit())
        {
            want.insert(
                format!("/usr/share/man/man{section}/{name}.gz"),
                "-rw-r--r--",
            );
            pages.push((e.path(), format!("usr/share/man/man{section}/{name}.gz")));
        }
    }
    for b in &bins {
        assert!(
            want.contains_key(&format!("/usr/share/man/man1/{b}.1.gz")),
            "/usr/bin/{b} has no man page: write man/{b}.1"
        );
    }
    assert!(want.contains_key("/usr/share/man/man5/proxy-server.conf.5.gz"));
    for f in [
        "examples/proxy-server.conf-sample",
        "examples/swift.conf-sample",
        "copyright",
        "changelog.gz",
        "README.Debian",
    ] {
        want.insert(format!("{doc}/{f}"), "-rw-r--r--");
    }
    want.insert(
        "/usr/share/bash-completion/completions/swift-init".into(),
        "-rw-r--r--",
    );
    want.insert("/usr/lib/tmpfiles.d/swift-rs.conf".into(), "-rw-r--r--");
    let unit_src = root.join("etc/systemd/swift-proxy.service");
    if unit_src.exists() {
        want.insert(
            "/usr/lib/systemd/system/swift-proxy.service".into(),
            "-rw-r--r--",
        );
    }

    for (path, mode) in &want {
        let e = listing
            .get(path)
            .unwrap_or_else(|| panic!("{path} is not in the package: {listing:#?}"));
        assert_eq!(&e.mode, mode, "{path}");
    }
    for (path, e) in &listing {
        assert_eq!(e.owner, "root/root", "{path}");
        if path.ends_with('/') {
            assert_eq!(e.mode, "drwxr-xr-x", "{path}");
        } else {
            assert!(
                want.contains_key(path),
                "unexpected file {path} in the package"
            );
        }
    }

    // The files are the checked-in ones; man pages decompress to the source.
    let x = scratch();
    extract(&deb, x.path());
    for (src, dst) in &pages {
        assert_eq!(
            gunzip(&x.path().join(dst)),
            std::fs::read_to_string(src).unwrap(),
            "{dst}"
        );
    }
    for (src, dst) in [
        (
            "etc/proxy-server.conf-sample",
            format!("{doc}/examples/proxy-server.conf-sample"),
        ),
        (
            "etc/swift.conf-sample",
            format!("{doc}/examples/swift.conf-sample"),
        ),
        (
            "packaging/bash-completion/swift-init",
            "/usr/share/bash-completion/completions/swift-init".into(),
        ),
        (
            "packaging/deb/tmpfiles.conf",
            "/usr/lib/tmpfiles.d/swift-rs.conf".into(),
        ),
        (
            "etc/systemd/swift-proxy.service",
            "/usr/lib/systemd/system/swift-proxy.service".into(),
        ),
    ] {
        if !root.join(src).exists() {
            continue;
        }
        assert_eq!(
            std::fs::read(x.path().join(&dst[1..])).unwrap(),
            std::fs::read(root.join(src)).unwrap(),
            "{dst} differs from {src}"
        );
    }
    let tmpfiles = std::fs::read_to_string(root.join("packaging/deb/tmpfiles.conf")).unwrap();
    assert!(
        tmpfiles
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["d", "/run/swift", "0755", "swift", "swift", "-"]),
        "{tmpfiles}"
    );
    // What the unit runs is in the package.
    if unit_src.exists() {
        let unit = std::fs::read_to_string(&unit_src).unwrap();
        for line in unit.lines().filter(|l| l.starts_with("Exec")) {
            for word in line
                .split(['=', ' '])
                .filter(|w| w.starts_with("/usr/bin/"))
            {
                assert!(
                    listing.contains_key(word.trim_start_matches(['-', '@', '+', '!'])),
                    "the unit runs {word}, which the package does not ship"
                );
            }
        }
    }
    let copyright = std::fs::read_to_string(x.path().join(&doc[1..]).join("copyright")).unwrap();
    assert!(copyright.contains("/usr/share/common-licenses/Apache-2.0"));
    assert!(copyright.contains(" tokio "), "linked crates are listed");
    let changelog = gunzip(&x.path().join(&doc[1..]).join("changelog.gz"));
    assert!(
        changelog.starts_with(&format!("{PACKAGE} ({}) ", workspace_version())),
        "{changelog}"
    );

    // Control fields: what we decided (README, "Packaging").
    assert_eq!(field(&deb, "Package").as_deref(), Some(PACKAGE));
    assert_eq!(field(&deb, "Version"), Some(workspace_version()));
    let arch = check(
        Command::new("dpkg").arg("--print-architecture"),
        Duration::from_secs(10),
    );
    assert_eq!(field(&deb, "Architecture").as_deref(), Some(arch.trim()));
    let depends = field(&deb, "Depends").unwrap_or_default();
    for d in ["libc6 (>= ", "adduser"] {
        assert!(depends.contains(d), "Depends: {depends}");
    }
    assert_eq!(field(&deb, "Conflicts").as_deref(), Some("swift-proxy"));
    // Without Replaces, dpkg refuses to overwrite another package's file.
    assert_eq!(field(&deb, "Replaces"), None);
    assert_eq!(field(&deb, "Provides"), None);
    let md5sums = check(
        Command::new("sh").arg("-c").arg(format!(
            "dpkg-deb --ctrl-tarfile '{}' | tar -xO ./md5sums",
            deb.display()
        )),
        Duration::from_secs(10),
    );
    for path in want.keys() {
        assert!(
            md5sums.contains(&format!("  {}\n", &path[1..])),
            "md5sums lacks {path}"
        );
    }
}

#[test]
fn maintainer_scripts_never_remove_the_user_or_etc_swift() {
    for script in ["postinst", "prerm", "postrm"] {
        let path = workspace_root().join("packaging/deb").join(script);
        check(
            Command::new("sh").arg("-n").arg(&path),
            Duration::from_secs(10),
        );
        let text = std::fs::read_to_string(&path).unwrap();
        for bad in ["deluser", "delgroup", "userdel", "groupdel", "rm "] {
            let code: Vec<&str> = text
                .lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .filter(|l| l.contains(bad))
                .collect();
            assert!(code.is_empty(), "{script} runs {bad}: {code:?}");
        }
    }
}

#[test]
fn lintian_reports_no_errors_and_only_the_warnings_the_readme_lists() {
    let deb = deb();
    if Command::new("lintian").arg("--version").output().is_err() {
        panic!(
            "lintian is not installed: ./test.sh installs it (as root, with apt-get); \
             or run `apt-get install lintian`. The package cannot be checked without it."
        );
    }
    let out = run(
        Command::new("lintian")
            .args(["--tag-display-limit", "0"])
            .arg(&deb),
        Duration::from_secs(300),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let errors: Vec<&str> = stdout.lines().filter(|l| l.starts_with("E: ")).collect();
    assert!(errors.is_empty(), "lintian errors:\n{}", errors.join("\n"));
    // Exit status 0 unless a tag of severity error was emitted (or lintian
    // itself failed).
    assert!(out.status.success(), "lintian failed: {}", text(&out));
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    for line in stdout.lines().filter(|l| l.starts_with("W: ")) {
        let tag = line.split_whitespace().nth(2).unwrap_or(line);
        assert!(
            readme.contains(&format!("`{tag}`")),
            "lintian warns {line:?}: fix it, or list `{tag}` and why in README.md (Packaging)"
        );
    }
}

/// Kills (SIGKILL, by pid) the processes `pids` names, and their children,
/// on drop, unless they are gone already: a failed test leaves no server
/// behind.
struct KillOnDrop<F: Fn() -> Vec<i32>>(F);

impl<F: Fn() -> Vec<i32>> Drop for KillOnDrop<F> {
    fn drop(&mut self) {
        for pid in (self.0)() {
            let mut pids = children_of(pid);
            pids.push(pid);
            for p in pids {
                if pid_alive(p) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(p),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
    }
}

/// The pids in the pid files under `run_dir` whose process runs `exe`.
fn pids_running(run_dir: &Path, exe: &Path) -> Vec<i32> {
    let mut pids = Vec::new();
    let mut dirs = vec![run_dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                dirs.push(path);
            } else if let Some(pid) = std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| t.trim().parse::<i32>().ok())
                && std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e == exe)
            {
                pids.push(pid);
            }
        }
    }
    pids
}

/// The pid in swift-init's "proxy-server running (PID - CONF)".
fn running_pid(status: &str) -> i32 {
    status
        .split("proxy-server running (")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no running proxy-server in {status:?}"))
}

/// `proxy-server.conf.d/` in `etc`: the packaged sample verbatim, then our
/// overrides (paste.deploy reads the directory's files in order, later
/// values win).
fn sample_conf_d(etc: &Path, sample: &Path, overrides: &str) {
    let d = etc.join("proxy-server.conf.d");
    std::fs::create_dir_all(&d).expect("create proxy-server.conf.d");
    std::fs::copy(sample, d.join("00-sample.conf")).expect("copy the sample config");
    write_file(&d, "50-test.conf", &format!("[DEFAULT]\n{overrides}"));
}

#[test]
fn packaged_swift_init_runs_the_packaged_proxy_from_the_sample_config() {
    let deb = deb();
    let s = scratch();
    let root = s.path().join("root");
    extract(&deb, &root);
    let examples = root.join(format!("usr/share/doc/{PACKAGE}/examples"));
    let etc = s.path().join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::copy(examples.join("swift.conf-sample"), etc.join("swift.conf")).unwrap();
    // The rings an operator builds with swift-ring-builder.
    swift_tests::server::make_rings(&etc);
    let mut syslog = Syslog::bind(s.path());
    let port = free_port();
    sample_conf_d(
        &etc,
        &examples.join("proxy-server.conf-sample"),
        &format!(
            "bind_ip = 127.0.0.1\nbind_port = {port}\nuser =\nworkers = 1\n\
             swift_dir = {}\nlog_address = {}\n",
            etc.display(),
            syslog.path.display()
        ),
    );
    let run_dir = s.path().join("run");
    let swift_init = root.join("usr/bin/swift-init");
    let init = |cmd: &str| {
        let mut c = Command::new(&swift_init);
        c.arg("--swift-dir")
            .arg(&etc)
            .arg("-r")
            .arg(&run_dir)
            .args(["proxy", cmd])
            // Nothing of this workspace on PATH: swift-init must find the
            // packaged swift-proxy-server next to itself.
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        run(&mut c, Duration::from_secs(90))
    };

    let proxy = root.join("usr/bin/swift-proxy-server");
    let _guard = KillOnDrop(|| pids_running(&run_dir, &proxy));
    let start = init("start");
    assert!(start.status.success(), "start: {}", text(&start));
    let status = init("status");
    assert!(status.status.success(), "status: {}", text(&status));
    let pid = running_pid(&String::from_utf8_lossy(&status.stdout));
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/exe")).unwrap(),
        proxy,
        "the running proxy is the packaged binary"
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let r = http(addr, "GET", "/healthcheck").expect("GET /healthcheck");
    assert_eq!((r.status, r.body_str().as_str()), (200, "OK"));
    // healthcheck answers before proxy-logging in the sample pipeline.
    let r = http(addr, "GET", "/info").expect("GET /info");
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert!(
        syslog
            .wait_for(Duration::from_secs(10), |l| l.contains("GET /info"))
            .is_some(),
        "no access log line: {:?}",
        syslog.lines()
    );

    let stop = init("stop");
    assert!(stop.status.success(), "stop: {}", text(&stop));
    assert!(
        wait_until(Duration::from_secs(30), || (!pid_alive(pid)).then_some(())).is_some(),
        "the proxy ({pid}) is still running after stop"
    );
    let status = init("status");
    assert_eq!(
        status.status.code(),
        Some(1),
        "status after stop: {}",
        text(&status)
    );
}

/// A throwaway copy of this machine: an overlay of `/` whose writes go to a
/// tmpfs, in a private mount namespace (`unshare -m`), chrooted into. dpkg
/// and apt run there for real; nothing reaches the machine.
const OVERLAY_SETUP: &str = r#"
set -eu
mount -t tmpfs tmpfs "$OV"
mkdir "$OV/upper" "$OV/work" "$OV/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$OV/upper,workdir=$OV/work" "$OV/root"
R=$OV/root
# Whatever the host has at /etc/swift (a directory, a symlink to a folder
# outside the overlay) is not this test's: the package meets none.
rm -rf "$R/etc/swift"
mount --rbind /dev "$R/dev"
mount -t proc proc "$R/proc"
mount -t tmpfs tmpfs "$R/run"
mount -t tmpfs tmpfs "$R/tmp"
mkdir -p "$R$SHARED"
mount --bind "$SHARED" "$R$SHARED"
exec chroot "$R" /bin/sh -c "$STEP"
"#;

/// In the overlay: install with apt (the README's command), check what the
/// maintainer scripts made, install again (idempotent), and start the proxy
/// from the sample config as an operator would, with the default
/// `user = swift`.
const INSTALL_AND_START: &str = r#"
set -eu
fail() { echo "FAIL: $*"; exit 1; }
cd "$SHARED"
# man-db's trigger would rebuild its whole index.
rm -f /var/lib/man-db/auto-update
had_user=$(getent passwd swift >/dev/null && echo yes || echo no)
echo "swift user before install: $had_user"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$DEB" </dev/null || fail "apt-get install"
getent group swift >/dev/null || fail "no swift group"
entry=$(getent passwd swift) || fail "no swift user"
echo "passwd: $entry"
if [ "$had_user" = no ]; then
    [ "$(echo "$entry" | cut -d: -f6)" = /var/lib/swift ] || fail "home: $entry"
    [ "$(echo "$entry" | cut -d: -f7)" = /usr/sbin/nologin ] || fail "shell: $entry"
    [ "$(id -u swift)" -lt 1000 ] || fail "not a system user: $entry"
    [ "$(id -gn swift)" = swift ] || fail "group: $(id -gn swift)"
fi
[ "$(stat -c '%U:%G %a' /etc/swift)" = "root:swift 750" ] || fail "/etc/swift: $(stat -c '%U:%G %a' /etc/swift)"
[ "$(stat -c '%U:%G %a' /run/swift)" = "swift:swift 755" ] || fail "/run/swift: $(stat -c '%U:%G %a' /run/swift)"
[ -x /usr/bin/swift-init ] && [ -x /usr/bin/swift-proxy-server ] || fail "binaries"
man -w swift-init >/dev/null 2>&1 || [ ! -x /usr/bin/man ] || fail "man -w swift-init"

# Again: the maintainer scripts are idempotent.
dpkg -i "$DEB" >/dev/null || fail "second dpkg -i"
[ "$(getent passwd swift)" = "$entry" ] || fail "the swift user changed: $(getent passwd swift)"
[ "$(dpkg-query -W -f '${Status}' swift-rs)" = "install ok installed" ] || fail "status"

ex=/usr/share/doc/swift-rs/examples
install -m 0640 -g swift $ex/swift.conf-sample /etc/swift/swift.conf
# The rings an operator builds with swift-ring-builder (made by the test).
install -m 0640 -g swift "$SHARED"/rings/*.ring.gz /etc/swift/
mkdir -p /etc/swift/proxy-server.conf.d
install -m 0640 -g swift $ex/proxy-server.conf-sample /etc/swift/proxy-server.conf.d/00-sample.conf
printf '[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = %s\nworkers = 1\nlog_address = %s\n' \
    "$PORT" "$SHARED/log.sock" >/etc/swift/proxy-server.conf.d/50-test.conf
swift-proxy-server -t /etc/swift/proxy-server.conf.d || fail "swift-proxy-server -t"
swift-init proxy start || fail "swift-init proxy start"
swift-init proxy status || fail "swift-init proxy status"
echo "swift uid: $(id -u swift)"
"#;

/// Entered (nsenter) into the running proxy's namespace and root: stop it,
/// remove and purge the package, check what must stay, then check that dpkg
/// refuses to install beside Debian's swift-proxy or over another
/// package's /usr/bin/swift-init.
const STOP_PURGE_AND_CONFLICTS: &str = r#"
set -eu
fail() { echo "FAIL: $*"; exit 1; }
cd "$SHARED"
swift-init proxy stop || fail "swift-init proxy stop"
dpkg -r swift-rs >/dev/null || fail "dpkg -r"
[ ! -e /usr/bin/swift-init ] || fail "/usr/bin/swift-init is still there after remove"
getent passwd swift >/dev/null || fail "remove deleted the swift user"
[ -f /etc/swift/swift.conf ] || fail "remove deleted /etc/swift/swift.conf"
dpkg --purge swift-rs >/dev/null || fail "dpkg --purge"
getent passwd swift >/dev/null || fail "purge deleted the swift user"
getent group swift >/dev/null || fail "purge deleted the swift group"
[ -f /etc/swift/swift.conf ] || fail "purge deleted /etc/swift/swift.conf"
[ "$(dpkg-query -W -f '${db:Status-Status}' swift-rs 2>/dev/null || true)" != installed ] || fail "still installed"

# /etc/swift as a symlink to a folder that is not there: installed and
# configured all the same, with one line saying what the operator must do.
rm -rf /etc/swift
ln -s /srv/not-mounted/swift /etc/swift
out=$(dpkg -i "$DEB" 2>&1) || fail "install over a dangling /etc/swift: $out"
echo "$out" | grep -q "swift-rs: /etc/swift is a symlink to /srv/not-mounted/swift, which does not exist" \
    || fail "no message for the dangling /etc/swift: $out"
[ "$(dpkg-query -W -f '${Status}' swift-rs)" = "install ok installed" ] || fail "dangling /etc/swift: $(dpkg-query -W -f '${Status}' swift-rs)"
[ "$(readlink /etc/swift)" = /srv/not-mounted/swift ] || fail "the /etc/swift symlink was changed"
dpkg --purge swift-rs >/dev/null || fail "dpkg --purge after the dangling /etc/swift"
echo "dangling /etc/swift: reported"

# Stand-ins for the packages we must not overwrite, with their paths.
fake() {
    name=$1; shift
    d=$(mktemp -d)
    mkdir -p "$d/DEBIAN"
    printf 'Package: %s\nVersion: 99\nArchitecture: all\nMaintainer: test <t@example.invalid>\nDescription: stand-in\n' "$name" >"$d/DEBIAN/control"
    for f in "$@"; do
        mkdir -p "$d$(dirname "$f")"
        echo "stand-in $name" >"$d$f"
    done
    dpkg-deb --root-owner-group -b "$d" "/tmp/$name.deb" >/dev/null
    dpkg -i "/tmp/$name.deb" >/dev/null || fail "installing the stand-in $name"
}

# Debian's swift-proxy: the same binary, man pages, and a unit of the same
# name under /lib, which dpkg cannot see is our /usr/lib path.
fake swift-proxy /usr/bin/swift-proxy-server /lib/systemd/system/swift-proxy.service
if out=$(dpkg -i "$DEB" 2>&1); then fail "installed beside swift-proxy: $out"; fi
echo "$out" | grep -q "conflicts with swift-proxy" || fail "no conflict reported: $out"
[ "$(cat /usr/bin/swift-proxy-server)" = "stand-in swift-proxy" ] || fail "swift-proxy's binary was overwritten"
[ "$(cat /lib/systemd/system/swift-proxy.service)" = "stand-in swift-proxy" ] || fail "swift-proxy's unit was overwritten"
dpkg --purge swift-proxy >/dev/null
echo "beside swift-proxy: refused"

# A package that ships /usr/bin/swift-init (Python Swift's swift-init in
# Ubuntu's and older Debian's swift package): no Replaces, so dpkg refuses.
fake swift-old /usr/bin/swift-init
if out=$(dpkg -i "$DEB" 2>&1); then fail "overwrote another package's swift-init: $out"; fi
echo "$out" | grep -q "trying to overwrite '/usr/bin/swift-init'" || fail "no overwrite error: $out"
[ "$(cat /usr/bin/swift-init)" = "stand-in swift-old" ] || fail "swift-old's swift-init was overwritten"
echo "over another swift-init: refused"
"#;

/// What a real install on this machine would change.
fn host_state() -> (String, bool, String, bool) {
    let status = Command::new("dpkg-query")
        .args(["-W", "-f", "${db:Status-Status}", PACKAGE])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let user = Command::new("getent")
        .args(["passwd", "swift"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    (
        status,
        Path::new("/usr/bin/swift-init").exists(),
        user,
        Path::new("/etc/swift").exists(),
    )
}

#[test]
fn real_install_remove_and_purge_in_a_throwaway_overlay() {
    if !is_root() {
        eprintln!("skipped: needs root (dpkg in a private mount namespace)");
        return;
    }
    for tool in ["unshare", "nsenter", "chroot", "apt-get"] {
        if Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            eprintln!("skipped: {tool} is not installed");
            return;
        }
    }
    let probe = run(
        Command::new("unshare").args(["-m", "true"]),
        Duration::from_secs(10),
    );
    if !probe.status.success() {
        eprintln!(
            "skipped: no private mount namespace here (unshare -m: {})",
            text(&probe)
        );
        return;
    }
    let deb = deb();
    let host_before = host_state();
    let s = scratch();
    let shared = s.path().join("shared");
    let ov = s.path().join("ov");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::create_dir_all(&ov).unwrap();
    swift_tests::server::make_rings(&shared.join("rings"));
    let deb_in = shared.join(deb.file_name().unwrap());
    std::fs::copy(&deb, &deb_in).unwrap();
    let mut syslog = Syslog::bind(&shared);
    // The workers log as the swift user: the socket must take their lines.
    std::fs::set_permissions(&syslog.path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let port = free_port();
    let env = |c: &mut Command| {
        c.env("SHARED", &shared)
            .env("DEB", &deb_in)
            .env("PORT", port.to_string())
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LC_ALL", "C");
    };

    let mut c = Command::new("unshare");
    c.args(["-m", "--propagation", "private", "sh", "-c", OVERLAY_SETUP])
        .env("OV", &ov)
        .env("STEP", INSTALL_AND_START);
    env(&mut c);
    let out = run(&mut c, Duration::from_secs(180));
    let log = text(&out);
    // The proxy keeps the namespace (and its overlay) alive; find it first
    // so that it is killed if anything below fails.
    let pid = log
        .split("proxy-server running (")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|p| p.parse::<i32>().ok());
    let _guard = KillOnDrop(|| pid.into_iter().collect());
    assert!(out.status.success(), "install and start: {log}");
    let pid = pid.unwrap_or_else(|| panic!("no proxy pid in: {log}"));
    let uid: u32 = log
        .split("swift uid: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|u| u.parse().ok())
        .unwrap_or_else(|| panic!("no swift uid in: {log}"));

    // The workers run as the swift user the package created.
    let workers = wait_until(Duration::from_secs(10), || {
        let w = children_of(pid);
        (!w.is_empty()).then_some(w)
    })
    .unwrap_or_else(|| panic!("the proxy {pid} has no workers"));
    for w in &workers {
        let ((ruid, euid), _) = proc_ids(*w).expect("worker ids");
        assert_eq!(
            (ruid, euid),
            (uid, uid),
            "worker {w} runs as the swift user"
        );
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let r = http(addr, "GET", "/healthcheck").expect("GET /healthcheck");
    assert_eq!((r.status, r.body_str().as_str()), (200, "OK"));
    // healthcheck answers before proxy-logging in the sample pipeline.
    let r = http(addr, "GET", "/info").expect("GET /info");
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert!(
        syslog
            .wait_for(Duration::from_secs(10), |l| l.contains("GET /info"))
            .is_some(),
        "no access log line: {:?}",
        syslog.lines()
    );

    let mut c = Command::new("nsenter");
    c.arg("--target").arg(pid.to_string()).args([
        "--mount",
        "--root",
        "--wd=/",
        "sh",
        "-c",
        STOP_PURGE_AND_CONFLICTS,
    ]);
    env(&mut c);
    let out = run(&mut c, Duration::from_secs(180));
    assert!(
        out.status.success(),
        "stop, purge, conflicts: {}",
        text(&out)
    );
    assert!(
        wait_until(Duration::from_secs(30), || (!pid_alive(pid)).then_some(())).is_some(),
        "the proxy ({pid}) is still running after stop"
    );
    assert_eq!(
        host_state(),
        host_before,
        "the throwaway install reached this machine"
    );
}

/// The commands and options `swift-init --help` prints.
fn help_words() -> (Vec<String>, Vec<String>) {
    let help = check(
        Command::new(bin("swift-init")).arg("--help"),
        Duration::from_secs(10),
    );
    let (usage, options) = help
        .split_once("\nOptions:\n")
        .expect("an Options: section");
    let commands_text = usage
        .split_once("\nCommands:\n")
        .expect("a Commands: section")
        .1;
    let commands: Vec<String> = commands_text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(c, _)| c.trim().to_owned())
        .filter(|c| !c.is_empty() && !c.contains(' '))
        .collect();
    let opts: Vec<String> = options
        .split([' ', ',', '=', '\n'])
        .filter(|w| w.len() > 1 && w.starts_with('-') && !w.starts_with("---"))
        .filter(|w| {
            w.chars()
                .skip(1)
                .all(|c| c.is_ascii_lowercase() || c == '-')
        })
        .map(str::to_owned)
        .collect();
    assert!(commands.len() >= 12, "{commands:?}");
    assert!(opts.len() >= 20, "{opts:?}");
    (commands, opts)
}

/// `ALL_SERVERS` of swift-init/src/servers.rs.
fn all_servers() -> Vec<String> {
    let src = std::fs::read_to_string(workspace_root().join("swift-init/src/servers.rs"))
        .expect("swift-init/src/servers.rs");
    let list = src
        .split("pub const ALL_SERVERS")
        .nth(1)
        .and_then(|s| s.split_once("= ["))
        .and_then(|(_, s)| s.split_once("];"))
        .expect("ALL_SERVERS in servers.rs")
        .0;
    let servers: Vec<String> = list
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    assert!(servers.len() >= 18, "{servers:?}");
    servers
}

/// What the completion offers for the command line `words` (the last one
/// being completed), as bash would ask it.
fn complete(words: &[&str], env: &[(&str, &str)]) -> Vec<String> {
    let script = workspace_root().join("packaging/bash-completion/swift-init");
    let quoted: Vec<String> = words
        .iter()
        .map(|w| format!("'{}'", w.replace('\'', r"'\''")))
        .collect();
    let program = format!(
        "source '{}' || exit 3\n\
         complete -p swift-init >/dev/null || exit 4\n\
         COMP_WORDS=({})\nCOMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))\n\
         COMP_LINE=\"${{COMP_WORDS[*]}}\"\nCOMP_POINT=${{#COMP_LINE}}\n\
         _swift_init\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        quoted.join(" ")
    );
    let mut c = Command::new("bash");
    c.arg("--norc").arg("-c").arg(program);
    for (k, v) in env {
        c.env(k, v);
    }
    check(&mut c, Duration::from_secs(20))
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completion_offers_every_server_alias_command_and_option() {
    let (commands, options) = help_words();
    let servers = all_servers();
    let script =
        std::fs::read_to_string(workspace_root().join("packaging/bash-completion/swift-init"))
            .unwrap();
    let words_in_script: Vec<&str> = script
        .split(|c: char| c.is_whitespace() || c == '"')
        .collect();
    let aliases = ["all", "main", "rest"];
    for w in servers
        .iter()
        .map(String::as_str)
        .chain(commands.iter().map(String::as_str))
        .chain(options.iter().map(String::as_str))
        .chain(aliases)
    {
        assert!(
            words_in_script.contains(&w),
            "{w} is not in the completion script"
        );
    }

    // Nothing typed yet: servers, their short forms, aliases, commands.
    let first = complete(&["swift-init", ""], &[]);
    for w in servers
        .iter()
        .map(String::as_str)
        .chain(commands.iter().map(String::as_str))
        .chain(aliases)
        .chain(["proxy", "object", "container", "account"])
    {
        assert!(
            first.iter().any(|c| c == w),
            "swift-init <TAB> lacks {w}: {first:?}"
        );
    }
    // Every option, anywhere.
    let opts = complete(&["swift-init", "proxy", "-"], &[]);
    for o in &options {
        assert!(
            opts.contains(o),
            "swift-init proxy -<TAB> lacks {o}: {opts:?}"
        );
    }
    assert_eq!(
        complete(&["swift-init", "--kill-a"], &[]),
        ["--kill-after-timeout"]
    );
    // Server then command: done; command first: servers follow.
    assert_eq!(
        complete(&["swift-init", "proxy", "st"], &[]),
        ["start", "status", "stop"]
    );
    assert!(complete(&["swift-init", "proxy", "start", ""], &[]).is_empty());
    let after_command = complete(&["swift-init", "start", ""], &[]);
    assert!(after_command.iter().any(|c| c == "proxy-server"));
    assert!(
        !after_command.iter().any(|c| c == "stop"),
        "{after_command:?}"
    );
    assert_eq!(
        complete(&["swift-init", "-v", "pro"], &[]),
        ["proxy-server", "proxy"]
    );

    // Option values: numbers and directories, in every spelling.
    for words in [
        &["swift-init", "-c", ""][..],
        &["swift-init", "--config-num", ""],
        &["swift-init", "-vc", ""],
        &["swift-init", "--config-num", "=", ""],
    ] {
        let got = complete(words, &[]);
        assert!(!got.is_empty(), "{words:?}");
        assert!(
            got.iter().all(|n| n.parse::<u32>().is_ok()),
            "{words:?}: {got:?}"
        );
    }
    for words in [
        &["swift-init", "-k", ""][..],
        &["swift-init", "--start-timeout", ""],
    ] {
        let got = complete(words, &[]);
        assert!(
            !got.is_empty() && got.iter().all(|n| n.parse::<u32>().is_ok()),
            "{got:?}"
        );
    }
    let s = scratch();
    let dir = s.path().join("swift");
    for f in [
        "object-server/1.conf",
        "object-server/x/2.conf",
        "proxy-server.conf",
    ] {
        write_file(&dir, f, "");
    }
    let d = dir.display().to_string();
    let under = format!("{d}/o");
    for words in [
        vec!["swift-init", "-r", &under],
        vec!["swift-init", "--run-dir", &under],
        vec!["swift-init", "--swift-dir", "=", &under],
        vec!["swift-init", "proxy", "--swift-d", &under],
    ] {
        assert_eq!(
            complete(&words, &[]),
            [format!("{d}/object-server")],
            "{words:?}"
        );
    }
    let joined = format!("--swift-dir={d}/o");
    assert_eq!(
        complete(&["swift-init", &joined], &[]),
        [format!("--swift-dir={d}/object-server")]
    );
    // Named configs (object.1) from the swift dir on the line or $SWIFT_DIR.
    let mut named = complete(&["swift-init", "--swift-dir", &d, "object."], &[]);
    named.sort();
    assert_eq!(named, ["object.1", "object.2"]);
    let mut named = complete(&["swift-init", "object-replicator."], &[("SWIFT_DIR", &d)]);
    named.sort();
    assert_eq!(named, ["object-replicator.1", "object-replicator.2"]);
}

#[test]
fn man_page_names_every_server() {
    let man = std::fs::read_to_string(workspace_root().join("man/swift-init.1")).unwrap();
    for s in all_servers() {
        assert!(man.contains(&s), "{s} is not in man/swift-init.1");
    }
}
