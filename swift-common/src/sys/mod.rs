//! The operating-system edge: processes, signals, privileges, stdio and
//! notifications. This is the only module of the workspace allowed to use
//! `unsafe`; every block says why it is sound.
//!
//! It owns thin, typed wrappers over syscalls and nothing else: no policy
//! (when to fork, what to log) lives here. Errors name the syscall and its
//! argument so the caller can print one line.

#![allow(unsafe_code)]

pub mod cpu;
pub mod fds;
pub mod notify;
pub mod privileges;
pub mod process;
pub mod signals;
pub mod stdio;

use std::fmt;

/// A failed system call, with what was being attempted.
#[derive(Debug, thiserror::Error)]
pub struct SysError {
    /// What was attempted, e.g. `setgid(1000)` or `open /dev/null`.
    pub op: String,
    #[source]
    pub source: std::io::Error,
}

impl fmt::Display for SysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.op, self.source)
    }
}

/// Attach the operation to an error from nix or std.
pub(crate) trait OrSys<T> {
    fn or_sys(self, op: impl FnOnce() -> String) -> Result<T, SysError>;
}

impl<T> OrSys<T> for Result<T, nix::Error> {
    fn or_sys(self, op: impl FnOnce() -> String) -> Result<T, SysError> {
        self.map_err(|e| SysError {
            op: op(),
            source: std::io::Error::from(e),
        })
    }
}

impl<T> OrSys<T> for Result<T, std::io::Error> {
    fn or_sys(self, op: impl FnOnce() -> String) -> Result<T, SysError> {
        self.map_err(|source| SysError { op: op(), source })
    }
}
