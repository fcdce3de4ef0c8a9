//! The reference venv is what tests/swift-venv-constraints.txt pins, package
//! for package: an unpinned dependency once broke the differential tests
//! with a deprecation warning, and must not again unnoticed.

use std::process::Command;
use std::time::Duration;

use swift_tests::{run, scratch, swift_venv, workspace_root, write_file};

fn check(constraints: Option<&std::path::Path>) -> (Option<i32>, String) {
    let mut cmd = Command::new(workspace_root().join("tests/swift-venv.sh"));
    cmd.arg("--check").env("SWIFT_VENV_DIR", swift_venv());
    if let Some(c) = constraints {
        cmd.env("SWIFT_VENV_CONSTRAINTS", c);
    }
    let out = run(&mut cmd, Duration::from_secs(60));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

#[test]
fn the_venv_holds_exactly_the_pinned_versions() {
    let (code, text) = check(None);
    assert_eq!(code, Some(0), "{text}");
}

#[test]
fn a_version_other_than_the_pinned_one_is_reported() {
    let pins = std::fs::read_to_string(workspace_root().join("tests/swift-venv-constraints.txt"))
        .expect("read the constraints file");
    let line = pins
        .lines()
        .find(|l| l.starts_with("cryptography=="))
        .expect("cryptography is pinned");
    let s = scratch();
    let changed = write_file(
        s.path(),
        "constraints.txt",
        &pins.replace(line, "cryptography==0.0.1"),
    );
    let (code, text) = check(Some(&changed));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("pinned:    cryptography==0.0.1"), "{text}");
    assert!(text.contains(&format!("installed: {line}")), "{text}");

    // A package the pins do not name is a difference too.
    let missing = write_file(
        s.path(),
        "missing.txt",
        &pins.replace(&format!("{line}\n"), ""),
    );
    let (code, text) = check(Some(&missing));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains(&format!("installed: {line}")), "{text}");
}
