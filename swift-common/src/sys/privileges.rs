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
        let target = match from_files(name, "/etc/passwd", "/etc/group") {
            Some(t) => t,
            None => from_nss(name)?,
        };
        let euid = nix::unistd::geteuid();
        if !euid.is_root() && euid != target.uid {
            return Err(UserError::NotRoot {
                name: name.to_owned(),
                euid: euid.as_raw(),
            });
        }
        Ok(target)
    }
}

/// Look `name` up in the passwd and group files directly. The C library's
/// lookup loads its NSS modules (nss_systemd brings libm, libcap and
/// libgcc_s), about 1 MiB the master would then carry for its whole life;
/// users that exist only elsewhere (LDAP, SSSD) fall back to it.
fn from_files(name: &str, passwd: &str, group: &str) -> Option<TargetUser> {
    let passwd = std::fs::read_to_string(passwd).ok()?;
    let fields: Vec<&str> = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 7 && f[0] == name)?;
    let uid = Uid::from_raw(fields[2].parse().ok()?);
    let gid = Gid::from_raw(fields[3].parse().ok()?);
    let mut groups = vec![gid];
    if let Ok(group) = std::fs::read_to_string(group) {
        for line in group.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 4
                && f[3].split(',').any(|m| m.trim() == name)
                && let Ok(g) = f[2].parse()
            {
                let g = Gid::from_raw(g);
                if !groups.contains(&g) {
                    groups.push(g);
                }
            }
        }
    }
    Some(TargetUser {
        name: name.to_owned(),
        uid,
        gid,
        groups,
        home: std::path::PathBuf::from(fields[5]),
    })
}

/// The C library's lookup (getpwnam, getgrouplist).
fn from_nss(name: &str) -> Result<TargetUser, UserError> {
    let user = User::from_name(name)
        .map_err(|source| UserError::Lookup {
            name: name.to_owned(),
            source,
        })?
        .ok_or_else(|| UserError::Unknown(name.to_owned()))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_lookup_agrees_with_the_c_library() {
        // root is in /etc/passwd on every system this runs on.
        let files = from_files("root", "/etc/passwd", "/etc/group").expect("root in /etc/passwd");
        let nss = from_nss("root").expect("root via NSS");
        assert_eq!(
            (files.uid, files.gid, &files.home),
            (nss.uid, nss.gid, &nss.home)
        );
        let mut a: Vec<u32> = files.groups.iter().map(|g| g.as_raw()).collect();
        let mut b: Vec<u32> = nss.groups.iter().map(|g| g.as_raw()).collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
        assert!(from_files("no-such-user-here", "/etc/passwd", "/etc/group").is_none());
    }

    #[test]
    fn supplementary_groups_come_from_the_group_file() {
        let dir = tempfile::tempdir().unwrap();
        let passwd = dir.path().join("passwd");
        let group = dir.path().join("group");
        std::fs::write(
            &passwd,
            "swift:x:130:140:Swift:/var/lib/swift:/usr/sbin/nologin\n",
        )
        .unwrap();
        std::fs::write(
            &group,
            "swift:x:140:\nadm:x:4:syslog,swift\nother:x:5:alice\n",
        )
        .unwrap();
        let t = from_files("swift", passwd.to_str().unwrap(), group.to_str().unwrap()).unwrap();
        assert_eq!((t.uid.as_raw(), t.gid.as_raw()), (130, 140));
        assert_eq!(t.groups, vec![Gid::from_raw(140), Gid::from_raw(4)]);
        assert_eq!(t.home, std::path::PathBuf::from("/var/lib/swift"));
    }
}
