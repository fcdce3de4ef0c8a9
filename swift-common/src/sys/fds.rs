//! File descriptors that cross exec: the listening socket handed to a
//! re-executed master (the `LISTEN_FDS`/`LISTEN_PID` convention of
//! `sd_listen_fds(3)`, so systemd socket activation works too), other fds
//! named in the environment, and exec itself.

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use nix::fcntl::{FcntlArg, FdFlag, fcntl};

use super::{OrSys, SysError};

/// The first inherited fd (`SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: RawFd = 3;

/// Take ownership of an fd number that the environment says was handed to
/// us, if it is open. It is made close-on-exec at once.
fn adopt(raw: RawFd) -> Option<OwnedFd> {
    // SAFETY: F_GETFD only reads the flags of an fd number; an fd that is
    // not open gives EBADF and we do not adopt it.
    let flags = fcntl(
        unsafe { std::os::fd::BorrowedFd::borrow_raw(raw) },
        FcntlArg::F_GETFD,
    )
    .ok()?;
    // SAFETY: the fd is open, and the protocol that named it (LISTEN_FDS or
    // our own reload variables) hands it to this process alone; nothing
    // else in this process owns this number.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let _ = fcntl(
        &fd,
        FcntlArg::F_SETFD(FdFlag::from_bits_truncate(flags) | FdFlag::FD_CLOEXEC),
    );
    Some(fd)
}

/// The listening sockets passed by `LISTEN_PID`/`LISTEN_FDS`/`LISTEN_FDNAMES`
/// when `LISTEN_PID` is this process, with their names (empty when unnamed).
pub fn listen_fds() -> Vec<(OwnedFd, String)> {
    let pid_ok = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
        == Some(std::process::id());
    if !pid_ok {
        return Vec::new();
    }
    let count = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.trim().parse::<i32>().ok())
        .unwrap_or(0)
        .clamp(0, 64);
    let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
        .unwrap_or_default()
        .split(':')
        .map(str::to_owned)
        .collect();
    (0..count)
        .filter_map(|i| {
            adopt(LISTEN_FDS_START + i)
                .map(|fd| (fd, names.get(i as usize).cloned().unwrap_or_default()))
        })
        .collect()
}

/// Take the fds named by a comma-separated environment variable.
pub fn fds_from_env(var: &str) -> Vec<OwnedFd> {
    std::env::var(var)
        .unwrap_or_default()
        .split(',')
        .filter_map(|n| n.trim().parse::<RawFd>().ok())
        .filter(|n| *n > 2)
        .filter_map(adopt)
        .collect()
}

/// Replace this process's image with `path`, keeping `keep` open (they are
/// moved to consecutive fds from [`LISTEN_FDS_START`] in order: the first
/// is the listening socket) and setting exactly `env`. Returns only on
/// failure, after putting every fd back as it was.
pub fn exec_with_fds(
    path: &std::path::Path,
    argv: &[OsString],
    env: &[(OsString, OsString)],
    keep: &[RawFd],
) -> SysError {
    let to_cstring = |s: &[u8]| CString::new(s).ok();
    let Some(cpath) = to_cstring(path.as_os_str().as_bytes()) else {
        return SysError {
            op: format!("exec {}", path.display()),
            source: std::io::ErrorKind::InvalidInput.into(),
        };
    };
    let cargs: Vec<CString> = argv
        .iter()
        .filter_map(|a| to_cstring(a.as_bytes()))
        .collect();
    let cenv: Vec<CString> = env
        .iter()
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            to_cstring(&kv)
        })
        .collect();
    // Move the kept fds out of the way first (they may sit on the target
    // numbers), then onto their targets; remember what the targets held.
    let mut staged = Vec::new();
    for fd in keep {
        match dup_high(*fd) {
            Ok(dup) => staged.push(dup),
            Err(e) => {
                return SysError {
                    op: format!("dup fd {fd} for exec"),
                    source: e,
                };
            }
        }
    }
    let mut saved: Vec<(RawFd, Option<OwnedFd>, Option<FdFlag>)> = Vec::new();
    for (i, src) in staged.iter().enumerate() {
        let target = LISTEN_FDS_START + i as RawFd;
        // SAFETY: only reads the flags of the target number.
        let flags = fcntl(
            unsafe { std::os::fd::BorrowedFd::borrow_raw(target) },
            FcntlArg::F_GETFD,
        )
        .ok()
        .map(FdFlag::from_bits_truncate);
        // The target is open when F_GETFD succeeded: keep a copy to restore.
        let backup = flags.and_then(|_| dup_high(target).ok());
        saved.push((target, backup, flags));
        // SAFETY: dup2 onto a number we either own (saved above) or that is
        // unused; dup2 clears FD_CLOEXEC on the target, so it survives exec.
        let rc = unsafe { libc::dup2(src.as_raw_fd(), target) };
        if rc < 0 {
            let source = std::io::Error::last_os_error();
            restore(&saved);
            return SysError {
                op: format!("dup2 onto fd {target}"),
                source,
            };
        }
    }
    let err = nix::unistd::execve(&cpath, &cargs, &cenv);
    restore(&saved);
    drop(staged);
    SysError {
        op: format!("exec {}", path.display()),
        source: std::io::Error::from(err.err().unwrap_or(nix::errno::Errno::EINVAL)),
    }
}

/// A close-on-exec duplicate of `fd` numbered 100 or above, clear of the
/// low numbers exec hands over.
fn dup_high(fd: RawFd) -> std::io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on an fd number the caller owns.
    let new = fcntl(
        unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
        FcntlArg::F_DUPFD_CLOEXEC(100),
    )
    .map_err(std::io::Error::from)?;
    // SAFETY: `new` was just created by fcntl and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Put back what the target fds held before a failed exec.
fn restore(saved: &[(RawFd, Option<OwnedFd>, Option<FdFlag>)]) {
    for (target, backup, flags) in saved {
        match (backup, flags) {
            (Some(b), Some(f)) => {
                // SAFETY: restoring the duplicate of what `target` held.
                unsafe { libc::dup2(b.as_raw_fd(), *target) };
                // SAFETY: sets flags on a number we just restored.
                let _ = fcntl(
                    unsafe { std::os::fd::BorrowedFd::borrow_raw(*target) },
                    FcntlArg::F_SETFD(*f),
                );
            }
            _ => {
                // SAFETY: the target was unused before; close our copy.
                unsafe { libc::close(*target) };
            }
        }
    }
}

/// Make `fd` close-on-exec (or not).
pub fn set_cloexec(fd: RawFd, cloexec: bool) -> Result<(), SysError> {
    let flags = if cloexec {
        FdFlag::FD_CLOEXEC
    } else {
        FdFlag::empty()
    };
    // SAFETY: only changes the flags of an fd number the caller owns.
    fcntl(
        unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
        FcntlArg::F_SETFD(flags),
    )
    .map(|_| ())
    .or_sys(|| format!("fcntl(F_SETFD) on fd {fd}"))
}
