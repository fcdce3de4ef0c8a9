//! Differential tests of `swift_common::storage_policy`: a corpus of
//! `swift.conf` variants parsed by Python Swift's `parse_storage_policies`
//! (through `tests/data/storage_policy/reference.py`, with the Python of
//! `$SWIFT_VENV`, default `<workspace>/target/swift-venv`) and by us: the
//! same policies and `/info` list when Swift accepts the file, Swift's exact
//! message when it refuses it.

#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use swift_common::config::SwiftConf;
use swift_common::storage_policy::{PolicyInfo, StoragePolicies};

fn python() -> PathBuf {
    let venv = std::env::var_os("SWIFT_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/swift-venv"));
    let py = venv.join("bin/python");
    assert!(
        py.exists(),
        "{} is missing: run ./test.sh once, or point SWIFT_VENV at a venv with Python Swift",
        py.display()
    );
    py
}

/// Python Swift's view of each file.
fn reference(paths: &[PathBuf]) -> Vec<Value> {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/storage_policy/reference.py");
    let mut child = Command::new(python())
        .arg(script)
        .env("PYTHONWARNINGS", "ignore")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the Python reference");
    let input = serde_json::to_vec(&paths).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "reference.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results.len(), paths.len());
    results
}

const HASH: &str = "[swift-hash]\nswift_hash_path_suffix = changeme\n\n";

/// `(what, swift.conf after [swift-hash])`.
const CASES: &[(&str, &str)] = &[
    ("no policies", ""),
    ("one policy", "[storage-policy:0]\nname = gold\n"),
    (
        "three policies",
        "[storage-policy:0]\nname = gold\naliases = yellow, orange, gold\n\
         [storage-policy:2]\nname = silver\ndefault = yes\n\
         [storage-policy:1]\nname = bronze\ndeprecated = true\ndiskfile_module = egg:swift#replication.fs\n",
    ),
    (
        "index with spaces",
        "[storage-policy:0]\nname = a\n[storage-policy: 3 ]\nname = b\ndefault = true\n",
    ),
    (
        "policy_type given",
        "[storage-policy:0]\nname = a\npolicy_type = replication\n",
    ),
    ("Policy-0 by name", "[storage-policy:0]\nname = policy-0\n"),
    // Refused.
    ("no policy 0", "[storage-policy:1]\nname = a\n"),
    (
        "duplicate names",
        "[storage-policy:0]\nname = gold\n[storage-policy:1]\nname = GOLD\n",
    ),
    (
        "alias taken",
        "[storage-policy:0]\nname = gold\naliases = silver\ndefault = yes\n[storage-policy:1]\nname = silver\n",
    ),
    (
        "duplicate alias",
        "[storage-policy:0]\nname = gold\naliases = ab, AB\n",
    ),
    ("invalid name", "[storage-policy:0]\nname = gold star\n"),
    ("non-ASCII name", "[storage-policy:0]\nname = g\u{f8}ld\n"),
    ("empty name", "[storage-policy:0]\nname =\n"),
    ("no name", "[storage-policy:0]\ndefault = yes\n"),
    (
        "Policy-0 elsewhere",
        "[storage-policy:0]\nname = a\n[storage-policy:1]\nname = Policy-0\n",
    ),
    (
        "no default",
        "[storage-policy:0]\nname = a\n[storage-policy:1]\nname = b\n",
    ),
    (
        "two defaults",
        "[storage-policy:0]\nname = a\ndefault = yes\n[storage-policy:1]\nname = b\ndefault = true\n",
    ),
    (
        "default deprecated",
        "[storage-policy:0]\nname = a\ndefault = yes\ndeprecated = yes\n",
    ),
    (
        "all deprecated",
        "[storage-policy:0]\nname = a\ndeprecated = yes\n",
    ),
    ("index not an int", "[storage-policy:x]\nname = a\n"),
    ("negative index", "[storage-policy:-1]\nname = a\n"),
    ("empty index", "[storage-policy:]\nname = a\n"),
    (
        "duplicate index",
        "[storage-policy:1]\nname = a\ndefault = yes\n[storage-policy:01]\nname = b\n",
    ),
    (
        "unknown option",
        "[storage-policy:0]\nname = a\ncolour = red\n",
    ),
    (
        "option from DEFAULT",
        "[DEFAULT]\nfoo = bar\n[storage-policy:0]\nname = a\n",
    ),
    (
        "unknown policy type",
        "[storage-policy:0]\nname = a\npolicy_type = mirrored\n",
    ),
];

#[test]
fn policies_match_python_swift() {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = (0..CASES.len())
        .map(|i| {
            let path = dir.path().join(format!("swift-{i}.conf"));
            std::fs::write(&path, format!("{HASH}{}", CASES[i].1)).unwrap();
            path
        })
        .collect();
    let want = reference(&paths);
    let mut refused = 0;
    for ((what, _), (path, want)) in CASES.iter().zip(paths.iter().zip(&want)) {
        let got = SwiftConf::load_file(path)
            .map_err(|e| e.to_string())
            .and_then(|conf| {
                StoragePolicies::from_swift_conf(&conf).map_err(|e| {
                    assert_eq!(e.path, path.as_path());
                    assert!(
                        e.to_string()
                            .starts_with("ERROR: Invalid Storage Policy Configuration in ")
                    );
                    e.message
                })
            });
        match (&got, want.get("ok")) {
            (Ok(policies), Some(ok)) => {
                assert_eq!(rust_policies(policies), *ok, "{what}");
                assert_eq!(rust_info(policies), want["info"], "{what}");
            }
            (Err(message), None) if want["error"] == "PolicyError" => {
                assert_eq!(message, want["message"].as_str().unwrap(), "{what}");
                refused += 1;
            }
            // Swift fails with something else than a PolicyError (a
            // KeyError for an unknown policy_type): we refuse it clearly.
            (Err(message), None) => {
                assert!(
                    message.contains("policy_type"),
                    "{what}: {message} / {want}"
                );
            }
            _ => panic!("{what}: we say {got:?}, Python Swift {want}"),
        }
    }
    assert_eq!(refused, 19);
}

fn rust_policies(policies: &StoragePolicies) -> Value {
    policies
        .iter()
        .map(|p| {
            json!({
                "index": p.index(),
                "name": p.name(),
                "aliases": p.alias_list(),
                "default": p.is_default(),
                "deprecated": p.is_deprecated(),
                "ring_name": p.ring_name(),
            })
        })
        .collect()
}

fn rust_info(policies: &StoragePolicies) -> Value {
    policies
        .get_policy_info()
        .iter()
        .map(|i: &PolicyInfo| serde_json::from_str::<Value>(&i.to_json()).unwrap())
        .collect()
}

#[test]
fn the_reference_sees_no_host_swift_conf() {
    // reference.py must not depend on /etc/swift: an empty file gives Policy-0.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("swift.conf");
    std::fs::write(&path, HASH).unwrap();
    let want = reference(std::slice::from_ref(&path));
    assert_eq!(want[0]["ok"][0]["name"], "Policy-0");
}
