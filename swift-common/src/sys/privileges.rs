//! Dropping root: Swift's `drop_privileges(user)`.

use std::ffi::CString;

use nix::unistd::{Gid, Uid, User, getgrouplist, setgid, setgroups, setuid};

use super::{OrSys, SysError};

/// A user resolved before any fork, so an unknown user is reported once, up
/// front, and workers only make syscalls that cannot fail for lookup reasons.
#[derive(Clone, Debug)]
pub struct TargetUser {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
    pub groups: Vec<Gid>,
    pub home: std::path::PathBuf,
}

/// Why a user cannot be the target of [`drop_privileges`].
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("unknown user {0:?}")]
    Unknown(String),
    #[error("cannot look up user {name:?}: {source}")]
    Lookup { name: String, source: nix::Error },
    #[error("cannot run as user {name:?} when not started as root (running as uid {euid})")]
    NotRoot { name: String, euid: u32 },
}

impl TargetUser {
    /// Resolve `name` with its supplementary groups (getgrouplist).
    ///
    /// When not root, only the current user is acceptable: setuid to anyone
    /// else would fail in every worker (Swift finds that out in the workers,
    /// and hides why: wart 37).
    pub fn resolve(name: &str) -> Result<TargetUser, UserError> {
        let user = User::from_name(name)
            .map_err(|source| UserError::Lookup {
                name: name.to_owned(),
                source,
            })?
            .ok_or_else(|| UserError::Unknown(name.to_owned()))?;
        let euid = nix::unistd::geteuid();
        if !euid.is_root() && euid != user.uid {
            return Err(UserError::NotRoot {
                name: name.to_owned(),
                euid: euid.as_raw(),
            });
        }
        let groups = CString::new(name)
            .ok()
            .and_then(|c| getgrouplist(&c, user.gid).ok())
            .unwrap_or_else(|| vec![user.gid]);
        Ok(TargetUser {
            name: user.name,
            uid: user.uid,
            gid: user.gid,
            groups,
            home: user.dir,
        })
    }
}

/// Become `user`: supplementary groups, then gid, then uid, then `HOME`, in
/// that order (groups and gid can only be changed while still root).
///
/// Without root only the current user is possible (checked by
/// [`TargetUser::resolve`]); then nothing needs changing but `HOME`.
/// Call only while the process is single-threaded (right after fork, or
/// before any runtime exists): it sets an environment variable.
pub fn drop_privileges(user: &TargetUser) -> Result<(), SysError> {
    if nix::unistd::geteuid().is_root() {
        setgroups(&user.groups).or_sys(|| format!("setgroups for user {}", user.name))?;
        setgid(user.gid).or_sys(|| format!("setgid({})", user.gid))?;
        setuid(user.uid).or_sys(|| format!("setuid({})", user.uid))?;
    }
    // SAFETY: callers guarantee the process is single-threaded here, so no
    // other thread can read the environment concurrently.
    #[allow(clippy::disallowed_methods)]
    unsafe {
        std::env::set_var("HOME", &user.home)
    };
    Ok(())
}
