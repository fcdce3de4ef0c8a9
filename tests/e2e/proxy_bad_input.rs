//! Bad input to swift-proxy-server: every case exits 1 with one line that
//! names the file, option or value at fault, within a bound, and never with
//! a panic or a backtrace (RUST_BACKTRACE is set in CI, so one would show).

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use swift_tests::server::{TEST_USER, is_root, test_user};
use swift_tests::{bin, run, scratch, write_file};

/// A config with `default` lines in [DEFAULT] and `extra` sections appended.
fn conf(dir: &Path, default: &str, pipeline: &str, extra: &str) -> std::path::PathBuf {
    write_file(
        dir,
        "swift.conf",
        "[swift-hash]\nswift_hash_path_suffix = x\nswift_hash_path_prefix = x\n",
    );
    swift_tests::server::make_rings(dir);
    let text = format!(
        "[DEFAULT]\nbind_ip = 127.0.0.1\nswift_dir = {}\nuser =\nbind_timeout = 1\n{default}\n\n\
         [pipeline:main]\npipeline = {pipeline}\n\n\
         [app:proxy-server]\nuse = egg:swift#proxy\n\n\
         [filter:healthcheck]\nuse = egg:swift#healthcheck\n{extra}",
        dir.display()
    );
    write_file(dir, "proxy-server.conf", &text)
}

/// Run the server (not `-t`: the real start path) and check the failure.
fn fails_with(conf: &Path, expect: &[&str]) {
    fails_with_cmd(Command::new(bin("swift-proxy-server")).arg(conf), expect)
}

fn fails_with_cmd(cmd: &mut Command, expect: &[&str]) {
    let started = Instant::now();
    let out = run(cmd, Duration::from_secs(15));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "exit status; output: {text}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected, got: {text}");
    for e in expect {
        assert!(lines[0].contains(e), "{e:?} not in {:?}", lines[0]);
    }
    for bad in ["panicked", "backtrace", "RUST_BACKTRACE", "thread 'main'"] {
        assert!(!text.contains(bad), "{bad} in {text}");
    }
}

const PIPE: &str = "healthcheck proxy-server";

#[test]
fn missing_config_gives_swifts_usage_error() {
    let out = run(
        Command::new(bin("swift-proxy-server")).arg("/nonexistent/proxy-server.conf"),
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Usage: swift-proxy-server CONFIG [options]\n\nError: unable to locate /nonexistent/proxy-server.conf\n"
    );
    let out = run(
        &mut Command::new(bin("swift-proxy-server")),
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).ends_with("Error: missing config path argument\n")
    );
}

#[test]
fn unreadable_config_names_the_file() {
    let dir = scratch();
    let path = conf(dir.path(), "bind_port = 8080", PIPE, "");
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o000);
    std::fs::set_permissions(&path, perms).unwrap();
    let mut cmd = Command::new(bin("swift-proxy-server"));
    cmd.arg(&path);
    if is_root() {
        // Root reads anything: run as the unprivileged test user instead.
        let (uid, gid) = test_user();
        std::os::unix::process::CommandExt::uid(&mut cmd, uid);
        std::os::unix::process::CommandExt::gid(&mut cmd, gid);
        let mut d = std::fs::metadata(dir.path()).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut d, 0o755);
        std::fs::set_permissions(dir.path(), d).unwrap();
    }
    fails_with_cmd(&mut cmd, &[&path.display().to_string(), "ermission denied"]);
}

#[test]
fn bind_port_missing_zero_too_big_or_not_a_number() {
    let msg = "bind_port wasn't properly set in the config file. It must be explicitly set to a valid port number.";
    let dir = scratch();
    let path = conf(dir.path(), "", PIPE, "");
    fails_with(
        &path,
        &[msg, "bind_port is not set", &path.display().to_string()],
    );
    for bad in ["0", "99999", "abc"] {
        let path = conf(dir.path(), &format!("bind_port = {bad}"), PIPE, "");
        fails_with(&path, &[msg, &format!("bind_port = \"{bad}\""), "line 6"]);
    }
}

#[test]
fn unknown_user_is_reported_before_any_fork() {
    let dir = scratch();
    let path = conf(dir.path(), "bind_port = 8080\nworkers = 2", PIPE, "");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("user =\n", "user = no-such-user-x\n");
    std::fs::write(&path, text).unwrap();
    fails_with(&path, &["unknown user \"no-such-user-x\"", "user"]);
}

#[test]
fn duplicate_key_names_both_lines() {
    let dir = scratch();
    let path = conf(dir.path(), "bind_port = 8080\nbind_port = 8081", PIPE, "");
    fails_with(
        &path,
        &[
            "'bind_port'",
            "line 7",
            "line 6",
            &path.display().to_string(),
        ],
    );
}

#[test]
fn bad_interpolation_names_the_key() {
    let dir = scratch();
    let path = conf(
        dir.path(),
        "bind_port = 8080\nlog_name = %(nope)s",
        PIPE,
        "",
    );
    fails_with(&path, &["log_name", "nope", "line 7"]);
}

#[test]
fn unknown_filter_names_it_and_the_supported_ones() {
    let dir = scratch();
    let path = conf(
        dir.path(),
        "bind_port = 8080",
        "no_such_filter healthcheck proxy-server",
        "\n[filter:no_such_filter]\nuse = egg:swift#no_such_filter\n",
    );
    fails_with(
        &path,
        &[
            "[filter:no_such_filter]",
            "unknown filter 'no_such_filter'",
            "healthcheck, ",
            ", proxy_logging",
        ],
    );
}

#[test]
fn bad_tempauth_settings_name_the_key() {
    // Filters are built after the app, which needs its rings.
    let dir = scratch();
    swift_tests::server::make_rings(dir.path());
    for (setting, expect) in [
        ("user_test_tester =", "user_test_tester = \"\": no key set"),
        ("user_testtester = k", "user_testtester"),
        ("token_life = 1d", "token_life = \"1d\""),
        ("fernet_key_1 = short", "fernet_key_1"),
        ("active_fernet_key_id = 9", "key_id \"9\" not found"),
    ] {
        let path = conf(
            dir.path(),
            "bind_port = 8080",
            "healthcheck tempauth proxy-server",
            &format!("\n[filter:tempauth]\nuse = egg:swift#tempauth\n{setting}\n"),
        );
        fails_with(&path, &["proxy-server.conf", "[filter:tempauth]", expect]);
    }
}

#[test]
fn missing_pipeline_section_is_pastes_error() {
    let dir = scratch();
    let path = conf(dir.path(), "bind_port = 8080", PIPE, "");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("[pipeline:main]\npipeline = healthcheck proxy-server\n", "");
    std::fs::write(&path, text).unwrap();
    fails_with(&path, &["No section 'main'", &path.display().to_string()]);
}

#[test]
fn unknown_log_level_is_an_error_not_info() {
    let dir = scratch();
    let path = conf(dir.path(), "bind_port = 8080\nlog_level = LOUD", PIPE, "");
    fails_with(&path, &["log_level = \"LOUD\"", "unknown log level"]);
}

#[test]
fn bad_workers_and_limits_are_errors() {
    let dir = scratch();
    for (line, expect) in [
        ("workers = -1", "workers = \"-1\""),
        ("workers = lots", "not \"lots\""),
        ("max_clients = 0", "max_clients"),
        ("client_timeout = soon", "client_timeout"),
        ("keep_idle = 40000", "keep_idle"),
        ("stale_worker_timeout = -5", "stale_worker_timeout"),
    ] {
        let path = conf(dir.path(), &format!("bind_port = 8080\n{line}"), PIPE, "");
        fails_with(&path, &[expect]);
    }
}

#[test]
fn bad_memcache_settings_name_the_file_section_and_key() {
    let dir = scratch();
    let pipe = "cache healthcheck proxy-server";
    for (line, expect) in [
        ("io_timeout = soon", "[filter:cache] io_timeout = \"soon\""),
        ("memcache_servers = ::1", "between '[]'"),
        ("memcache_serialization_support = 0", "only 2 (JSON"),
        ("tls_enabled = true", "TLS to memcached is not supported"),
    ] {
        let extra = format!("\n[filter:cache]\nuse = egg:swift#memcache\n{line}\n");
        let path = conf(dir.path(), "bind_port = 8080", pipe, &extra);
        fails_with(&path, &[expect, &path.display().to_string()]);
    }
    // memcache.conf, read when the filter names no servers.
    let extra = "\n[filter:cache]\nuse = egg:swift#memcache\n";
    let path = conf(dir.path(), "bind_port = 8080", pipe, extra);
    let mc = write_file(
        dir.path(),
        "memcache.conf",
        "[memcache]\nmemcache_servers = 127.0.0.1:11211\ntries = none\n",
    );
    fails_with(
        &path,
        &[&format!(
            "{}: line 3: [memcache] tries = \"none\"",
            mc.display()
        )],
    );
}

#[test]
fn missing_or_hashless_swift_conf_is_reported() {
    let dir = scratch();
    let path = conf(dir.path(), "bind_port = 8080", PIPE, "");
    std::fs::write(dir.path().join("swift.conf"), "[swift-hash]\n").unwrap();
    fails_with(
        &path,
        &[
            "Error: [swift-hash]: both swift_hash_path_suffix and swift_hash_path_prefix are missing from",
        ],
    );
    std::fs::remove_file(dir.path().join("swift.conf")).unwrap();
    fails_with(&path, &["swift.conf"]);
}

#[test]
fn port_busy_past_bind_timeout() {
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let dir = scratch();
    let path = conf(dir.path(), &format!("bind_port = {port}"), PIPE, "");
    fails_with(
        &path,
        &[&format!(
            "Could not bind to 127.0.0.1:{port} after trying for 1 seconds"
        )],
    );
}

#[test]
fn tls_with_a_missing_key_names_the_key_file() {
    let dir = scratch();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_path = write_file(dir.path(), "cert.pem", &cert.cert.pem());
    let key_path = dir.path().join("missing-key.pem");
    let path = conf(
        dir.path(),
        &format!(
            "bind_port = 8080\ncert_file = {}\nkey_file = {}",
            cert_path.display(),
            key_path.display()
        ),
        PIPE,
        "",
    );
    fails_with(&path, &["key_file", &key_path.display().to_string()]);
    // cert_file without key_file at all.
    let path = conf(
        dir.path(),
        &format!("bind_port = 8080\ncert_file = {}", cert_path.display()),
        PIPE,
        "",
    );
    fails_with(&path, &["key_file is not"]);
}

#[test]
fn not_root_cannot_switch_to_another_user() {
    if !is_root() {
        eprintln!("skipped: needs root to start as the test user");
        return;
    }
    let (uid, gid) = test_user();
    let dir = scratch();
    let path = conf(dir.path(), "bind_port = 8080", PIPE, "");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("user =\n", "user = root\n");
    std::fs::write(&path, text).unwrap();
    let mut d = std::fs::metadata(dir.path()).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut d, 0o755);
    std::fs::set_permissions(dir.path(), d).unwrap();
    let mut cmd = Command::new(bin("swift-proxy-server"));
    cmd.arg(&path);
    std::os::unix::process::CommandExt::uid(&mut cmd, uid);
    std::os::unix::process::CommandExt::gid(&mut cmd, gid);
    fails_with_cmd(
        &mut cmd,
        &["cannot run as user \"root\" when not started as root"],
    );
    let _ = TEST_USER;
}

#[test]
fn missing_truncated_or_foreign_rings_name_the_file() {
    let dir = scratch();
    let path = conf(dir.path(), "bind_port = 1", PIPE, "");
    let ring = dir.path().join("container.ring.gz");
    let good = std::fs::read(&ring).expect("read the container ring");

    std::fs::remove_file(&ring).unwrap();
    fails_with(&path, &[&ring.display().to_string(), "No such file"]);

    // Cut short: gzip says so.
    std::fs::write(&ring, &good[..good.len() / 2]).unwrap();
    fails_with(&path, &[&ring.display().to_string()]);

    // Not a ring at all.
    std::fs::write(&ring, "[swift-hash]\nswift_hash_path_suffix = x\n").unwrap();
    fails_with(&path, &[&ring.display().to_string(), "gzip"]);

    // A gzip file of something else.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, b"not a ring, but compressed").unwrap();
    std::fs::write(&ring, gz.finish().unwrap()).unwrap();
    fails_with(&path, &[&ring.display().to_string()]);

    // An object ring for a policy swift.conf names but nobody built.
    std::fs::write(&ring, &good).unwrap();
    std::fs::write(
        dir.path().join("swift.conf"),
        "[swift-hash]\nswift_hash_path_suffix = x\n\n[storage-policy:0]\nname = gold\n\n\
         [storage-policy:1]\nname = silver\ndefault = yes\n",
    )
    .unwrap();
    fails_with(
        &path,
        &[&dir.path().join("object-1.ring.gz").display().to_string()],
    );
}

#[test]
fn bad_storage_policies_are_swifts_message() {
    let dir = scratch();
    let path = conf(dir.path(), "bind_port = 1", PIPE, "");
    std::fs::write(
        dir.path().join("swift.conf"),
        "[swift-hash]\nswift_hash_path_suffix = x\n\n[storage-policy:0]\nname = gold\n\n\
         [storage-policy:1]\nname = Gold\n",
    )
    .unwrap();
    fails_with(&path, &["swift.conf", "Duplicate name"]);
    std::fs::write(
        dir.path().join("swift.conf"),
        "[swift-hash]\nswift_hash_path_suffix = x\n\n[storage-policy:0]\nname = ec\n\
         policy_type = erasure_coding\n",
    )
    .unwrap();
    fails_with(&path, &["swift.conf", "erasure_coding"]);
}

#[test]
fn proxy_options_we_do_not_implement_are_refused() {
    let dir = scratch();
    for (key, value) in [
        ("sorting_method", "timing"),
        ("write_affinity", "r1"),
        ("concurrent_gets", "true"),
        ("node_timeout", "soon"),
        ("request_node_count", "many"),
    ] {
        let path = conf(
            dir.path(),
            &format!("bind_port = 1\n{key} = {value}"),
            PIPE,
            "",
        );
        fails_with(&path, &["proxy-server.conf", key]);
    }
}
