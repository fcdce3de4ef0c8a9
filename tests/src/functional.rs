//! Running Swift's own functional tests (`test/functional` of the sdist in
//! the venv, `$SWIFT_VENV/src/swift-<version>/`) against a [`Cluster`]'s
//! proxy, with the venv's pytest, and reading the outcome back: how many
//! passed, were skipped and failed, and which failed.
//!
//! It writes the suite's `test.conf` and runs it; it judges nothing (the
//! tests in `tests/e2e/functional.rs` do). The run is bounded in time and
//! serial (the tests share accounts and delete each other's containers).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::{swift_venv, wait_until};

/// The core selection: the account, container and object API, the
/// protocol corner cases and dynamic large objects (342 tests collected).
pub const CORE_SELECTION: &[&str] = &[
    "tests.py",
    "test_object.py",
    "test_container.py",
    "test_account.py",
    "test_protocol.py",
    "test_dlo.py",
];

/// The sdist's root (`$SWIFT_VENV/src/swift-<version>`), which holds
/// `test/functional`.
pub fn swift_source() -> PathBuf {
    let src = swift_venv().join("src");
    let found = std::fs::read_dir(&src).ok().and_then(|entries| {
        entries
            .flatten()
            .map(|e| e.path())
            .find(|p| p.join("test/functional/__init__.py").exists())
    });
    found.unwrap_or_else(|| {
        panic!(
            "no Swift sdist with test/functional under {}: tests/swift-venv.sh fetches it",
            src.display()
        )
    })
}

/// What a run of the functional tests came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunctionalRun {
    pub passed: u32,
    pub skipped: u32,
    pub failed: u32,
    /// Errors in setup or teardown (pytest counts them apart from failures).
    pub errors: u32,
    pub deselected: u32,
    /// The ids of the failed and erroring tests (`test/functional/x.py::C::t`).
    pub failures: Vec<String>,
    /// pytest's last line, `=== 311 passed, 31 skipped in 229.9s ===`.
    pub summary: String,
    /// Where pytest's whole output is (inside the cluster's scratch dir).
    pub output: PathBuf,
    pub elapsed: Duration,
}

impl FunctionalRun {
    /// The last `n` lines of pytest's output, for a failure message.
    pub fn output_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.output).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// Write the suite's `test.conf` for `cluster` to `path`: tempauth v1 with
/// the users of [`crate::cluster::TEMPAUTH_USERS`] (test:tester admin of
/// AUTH_test, test2:tester2 admin of AUTH_test2, test:tester3 not an admin).
pub fn write_test_conf(cluster: &Cluster, path: &Path) {
    let text = format!(
        "[func_test]\n\
         auth_uri = {auth}\n\
         account = test\n\
         username = tester\n\
         password = testing\n\
         account2 = test2\n\
         username2 = tester2\n\
         password2 = testing2\n\
         username3 = tester3\n\
         password3 = testing3\n\
         collate = C\n",
        auth = cluster.auth_url()
    );
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Run the functional test `files` (names under `test/functional`) against
/// `cluster`'s proxy, leaving out the `deselect`ed test ids, for at most
/// `timeout`. Panics when pytest runs out of time or prints no summary.
pub fn run_functional(
    cluster: &Cluster,
    files: &[&str],
    deselect: &[&str],
    timeout: Duration,
) -> FunctionalRun {
    let source = swift_source();
    let conf = cluster.swift_dir().join("test.conf");
    write_test_conf(cluster, &conf);
    let output = cluster.swift_dir().join("log/functional-tests.out");
    let out_file = std::fs::File::create(&output).expect("create the pytest output file");

    let mut cmd = Command::new(swift_venv().join("bin/python3"));
    crate::quiet_python(&mut cmd);
    cmd.current_dir(&source)
        .args(["-m", "pytest", "-p", "no:cacheprovider", "-rfEs"])
        .args(files.iter().map(|f| format!("test/functional/{f}")))
        .args(deselect.iter().flat_map(|id| ["--deselect", id]))
        // A missing or unusable config must fail, not quietly test an
        // in-process Python proxy instead of ours.
        .env("SWIFT_TEST_IN_PROCESS", "0")
        .env("SWIFT_TEST_CONFIG_FILE", &conf)
        // The venv is shared and read-only to us: no __pycache__ in it.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(out_file.try_clone().expect("dup output fd"))
        .stderr(out_file);
    let started = Instant::now();
    let mut child = cmd.spawn().expect("spawn the venv's python3 -m pytest");
    let status = wait_until(timeout, || child.try_wait().ok().flatten());
    let elapsed = started.elapsed();
    let text = std::fs::read_to_string(&output).unwrap_or_default();
    if status.is_none() {
        let _ = child.kill();
        let _ = wait_until(Duration::from_secs(10), || child.try_wait().ok().flatten());
        panic!(
            "the functional tests did not finish within {timeout:?}; the end of their output:\n{}",
            tail(&text, 40)
        );
    }
    let mut run = parse_pytest_output(&text).unwrap_or_else(|| {
        panic!(
            "pytest ({status:?}) printed no summary line; the end of its output:\n{}",
            tail(&text, 40)
        )
    });
    run.output = output;
    run.elapsed = elapsed;
    run
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Read the counts from pytest's summary line (`== 3 failed, 308 passed,
/// 31 skipped in 1.23s ==`, the last line that looks like one) and the
/// failed test ids from its short summary (`FAILED id - reason`, `ERROR
/// id`). `None` when there is no summary line.
pub fn parse_pytest_output(text: &str) -> Option<FunctionalRun> {
    let mut run = FunctionalRun::default();
    let summary = text.lines().rev().find(|l| {
        let l = l.trim();
        l.starts_with('=')
            && l.ends_with('=')
            && l.contains(" in ")
            && (l.contains(" passed")
                || l.contains(" failed")
                || l.contains(" error")
                || l.contains(" skipped")
                || l.contains("no tests ran"))
    })?;
    run.summary = summary.trim().to_owned();
    let inner = summary.trim().trim_matches('=').trim();
    let counts = inner.rsplit_once(" in ").map_or(inner, |(c, _)| c);
    for part in counts.split(", ") {
        let mut words = part.split_whitespace();
        let (Some(n), Some(what)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(n) = n.parse::<u32>() else { continue };
        match what {
            "passed" => run.passed = n,
            "skipped" => run.skipped = n,
            "failed" => run.failed = n,
            "error" | "errors" => run.errors = n,
            "deselected" => run.deselected = n,
            _ => {}
        }
    }
    for line in text.lines() {
        let rest = line
            .strip_prefix("FAILED ")
            .or_else(|| line.strip_prefix("ERROR "));
        if let Some(rest) = rest {
            let id = rest.split_once(" - ").map_or(rest, |(id, _)| id).trim();
            if !id.is_empty() && !run.failures.iter().any(|f| f == id) {
                run.failures.push(id.to_owned());
            }
        }
    }
    Some(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_failures_from_a_summary() {
        let text = "\
test/functional/tests.py::TestAccount::testA PASSED                   [  1%]
=========================== short test summary info ============================
SKIPPED [5] test/functional/tests.py:123: no service user
FAILED test/functional/tests.py::TestFile::testCopy - AssertionError: 503 != 201
FAILED test/functional/test_object.py::TestObject::test_x
ERROR test/functional/test_dlo.py::TestDlo::test_get - ConnectionRefusedError
==== 2 failed, 308 passed, 31 skipped, 1 deselected, 1 error in 229.89s (0:03:49) ====
";
        let run = parse_pytest_output(text).expect("a summary");
        assert_eq!(
            (
                run.passed,
                run.skipped,
                run.failed,
                run.errors,
                run.deselected
            ),
            (308, 31, 2, 1, 1)
        );
        assert_eq!(
            run.failures,
            [
                "test/functional/tests.py::TestFile::testCopy",
                "test/functional/test_object.py::TestObject::test_x",
                "test/functional/test_dlo.py::TestDlo::test_get",
            ]
        );
        assert!(run.summary.starts_with("==== 2 failed"));
    }

    #[test]
    fn a_clean_run() {
        let run = parse_pytest_output("x\n===== 4 passed in 1.02s =====\n").expect("a summary");
        assert_eq!((run.passed, run.skipped, run.failed), (4, 0, 0));
        assert!(run.failures.is_empty());
    }

    #[test]
    fn no_summary_is_none() {
        assert_eq!(
            parse_pytest_output("ImportError: no module named swift\n"),
            None
        );
        // A separator that is not a summary.
        assert_eq!(
            parse_pytest_output("===== short test summary info =====\n"),
            None
        );
    }
}
