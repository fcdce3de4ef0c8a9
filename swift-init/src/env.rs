//! The environment `start` gives servers (Swift's `setup_env`): higher
//! resource limits, inherited by every server, and `PYTHON_EGG_CACHE` for
//! the Python ones.
//!
//! Swift sets soft and hard limits both to its targets, which lowers a
//! higher hard limit and caps the soft one (a 2 GiB `RLIMIT_DATA` also caps
//! anonymous memory on Linux 4.7+). Here a limit is only ever raised: the
//! soft limit goes up to the target when it is below it, the hard limit is
//! raised only when it is below the target, and nothing is lowered.

use std::ffi::OsString;

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Swift's `MAX_DESCRIPTORS`, `MAX_MEMORY`, `MAX_PROCS` and the warnings it
/// prints when a limit cannot be set.
const LIMITS: [(Resource, u64, &str); 3] = [
    (
        Resource::RLIMIT_NOFILE,
        32768,
        "WARNING: Unable to modify file descriptor limit.  Running as non-root?",
    ),
    (
        Resource::RLIMIT_DATA,
        2 * 1024 * 1024 * 1024,
        "WARNING: Unable to modify memory limit.  Running as non-root?",
    ),
    (
        Resource::RLIMIT_NPROC,
        8192,
        "WARNING: Unable to modify max process limit.  Running as non-root?",
    ),
];

/// The new (soft, hard) for a limit, or `None` when it is high enough.
/// `RLIM_INFINITY` is the largest value, so plain comparisons work.
pub fn raised(soft: u64, hard: u64, target: u64) -> Option<(u64, u64)> {
    if soft >= target {
        None
    } else {
        Some((target, hard.max(target)))
    }
}

/// Raise this process's limits (servers inherit them); returns the
/// warnings to print, in Swift's order.
pub fn raise_limits() -> Vec<&'static str> {
    let mut warnings = Vec::new();
    for (resource, target, warning) in LIMITS {
        let Ok((soft, hard)) = getrlimit(resource) else {
            warnings.push(warning);
            continue;
        };
        let Some((new_soft, new_hard)) = raised(soft, hard, target) else {
            continue;
        };
        if setrlimit(resource, new_soft, new_hard).is_err() {
            warnings.push(warning);
            // Raising the hard limit needs privilege; at least use all of
            // the hard limit there is.
            if soft < hard {
                let _ = setrlimit(resource, hard, hard);
            }
        }
    }
    warnings
}

/// `PYTHON_EGG_CACHE` for the servers when it is not set already: Python's
/// `tempfile.gettempdir()` (TMPDIR, TEMP, TMP, else /tmp).
pub fn egg_cache() -> Option<OsString> {
    if std::env::var_os("PYTHON_EGG_CACHE").is_some() {
        return None;
    }
    for var in ["TMPDIR", "TEMP", "TMP"] {
        if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            return Some(v);
        }
    }
    Some(OsString::from("/tmp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INF: u64 = u64::MAX;

    #[test]
    fn only_ever_raises() {
        // Soft below, hard above the target: raise soft, keep hard.
        assert_eq!(raised(1024, 1_048_576, 32768), Some((32768, 1_048_576)));
        // Already high enough (Swift would lower both to the target).
        assert_eq!(raised(65536, 65536, 32768), None);
        assert_eq!(raised(INF, INF, 2 << 30), None);
        // Hard below the target: both go up (needs privilege).
        assert_eq!(raised(1024, 20000, 32768), Some((32768, 32768)));
        assert_eq!(raised(1024, INF, 8192), Some((8192, INF)));
    }
}
