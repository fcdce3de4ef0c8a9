//! The docs cannot drift from the code: every config key the code reads is
//! in the sample config and the man page, every server option is in its man
//! page, and every man page renders without warnings.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use swift_tests::{bin, run, workspace_root};

/// Methods through which the code reads a config key.
const GETTERS: &[&str] = &[
    "get",
    "get_or",
    "get_bool",
    "get_parsed",
    "get_nonempty",
    "get_auto_int",
    "get_with",
    "invalid",
];

/// Keys found as the first string argument of a getter, in the non-test
/// part of `path` (a `.rs` file, or every one under a directory).
fn keys_read(path: &Path, out: &mut Vec<String>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path)
            .expect("read a source directory")
            .flatten()
        {
            keys_read(&entry.path(), out);
        }
        return;
    }
    {
        if path.extension().is_none_or(|e| e != "rs") {
            return;
        }
        let text = std::fs::read_to_string(path).expect("read a source file");
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for getter in GETTERS {
            // `conf.get(...)`, or logging's `get(...)` closure.
            for pat in [format!(".{getter}("), format!(" {getter}(")] {
                let pat = &pat[..pat.len() - 1];
                let mut rest = code;
                while let Some(i) = rest.find(pat) {
                    // Header lookups (`headers.get("connection")`) are not config.
                    let receiver = &rest[..i];
                    rest = &rest[i + pat.len()..];
                    if receiver.trim_end().ends_with("headers") {
                        continue;
                    }
                    // A plain `.get(` is a config read only on a conf
                    // (`conf.get`, `self.conf.get`), not on a listing entry
                    // or a map; the named getters are config reads anywhere.
                    if pat == ".get" {
                        let ident: String = receiver
                            .chars()
                            .rev()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect();
                        if !ident.contains("fnoc") {
                            continue;
                        }
                    }
                    // Optional turbofish, then `(`, whitespace, a string literal.
                    let mut s = rest;
                    if s.starts_with("::<") {
                        s = &s[s.find('>').map_or(s.len(), |j| j + 1)..];
                    }
                    let Some(s) = s.strip_prefix('(') else {
                        continue;
                    };
                    let s = s.trim_start();
                    let Some(s) = s.strip_prefix('"') else {
                        continue;
                    };
                    let key: String = s
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .collect();
                    if s[key.len()..].starts_with('"') && key.len() > 2 && !out.contains(&key) {
                        out.push(key);
                    }
                }
            }
        }
    }
}

#[test]
fn every_config_key_read_is_documented() {
    let root = workspace_root();
    let mut keys = Vec::new();
    keys_read(&root.join("swift-common/src/wsgi.rs"), &mut keys);
    for dir in [
        "swift-common/src/net",
        "swift-common/src/http",
        "swift-proxy-server/src",
    ] {
        keys_read(&root.join(dir), &mut keys);
    }
    keys_read(&root.join("swift-common/src/logging.rs"), &mut keys);
    // Paste's own keys, not options.
    keys.retain(|k| !matches!(k.as_str(), "here" | "__file__" | "__name__"));
    // The access log reads every log_* key with an access_ prefix first.
    let access: Vec<String> = keys
        .iter()
        .filter(|k| k.starts_with("log_") && *k != "log_max_line_length" && *k != "log_headers")
        .filter(|k| *k != "log_file" && *k != "log_statsd_host" && *k != "log_msg_template")
        .filter(|k| *k != "log_handoffs")
        .map(|k| format!("access_{k}"))
        .collect();
    keys.extend(access);
    assert!(keys.len() > 30, "the scan found too few keys: {keys:?}");
    for must in [
        "bind_port",
        "workers",
        "log_level",
        "disable_path",
        "stale_worker_timeout",
        "key_file",
    ] {
        assert!(
            keys.iter().any(|k| k == must),
            "scan missed {must}: {keys:?}"
        );
    }
    let sample = std::fs::read_to_string(root.join("etc/proxy-server.conf-sample")).unwrap();
    let man = std::fs::read_to_string(root.join("man/proxy-server.conf.5"))
        .unwrap()
        .replace("\\-", "-");
    let missing_sample: Vec<&String> = keys
        .iter()
        .filter(|k| !sample.contains(k.as_str()))
        .collect();
    let missing_man: Vec<&String> = keys.iter().filter(|k| !man.contains(k.as_str())).collect();
    assert!(
        missing_sample.is_empty(),
        "not in etc/proxy-server.conf-sample: {missing_sample:?}"
    );
    assert!(
        missing_man.is_empty(),
        "not in man/proxy-server.conf.5: {missing_man:?}"
    );
}

#[test]
fn every_server_option_is_in_its_man_page() {
    let help = run(
        Command::new(bin("swift-proxy-server")).arg("--help"),
        Duration::from_secs(10),
    );
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let man = std::fs::read_to_string(workspace_root().join("man/swift-proxy-server.1"))
        .unwrap()
        .replace("\\-", "-");
    let options: Vec<&str> = help
        .split_whitespace()
        .map(|w| w.trim_end_matches(','))
        .filter(|w| w.starts_with('-') && w.len() > 1)
        .collect();
    assert!(options.len() >= 5, "{help}");
    for o in options {
        assert!(
            man.contains(o),
            "{o} is in --help but not in man/swift-proxy-server.1"
        );
    }
}

#[test]
fn man_pages_render_without_warnings() {
    let dir = workspace_root().join("man");
    let pages: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| {
                e.len() == 1 && e.to_string_lossy().chars().all(|c| c.is_ascii_digit())
            })
        })
        .collect();
    assert!(pages.len() >= 3, "{pages:?}");
    for page in pages {
        // mandoc's lint when present (test.sh installs it), else groff's warnings.
        let out = if Command::new("mandoc").arg("-V").output().is_ok() {
            run(
                Command::new("mandoc")
                    .args(["-T", "lint", "-W", "warning"])
                    .arg(&page),
                Duration::from_secs(20),
            )
        } else {
            run(
                Command::new("groff").args(["-man", "-ww", "-z"]).arg(&page),
                Duration::from_secs(20),
            )
        };
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && text.trim().is_empty(),
            "{}: {text}",
            page.display()
        );
    }
}
