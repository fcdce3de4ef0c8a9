//! Processes named by pid files: is the pid still that server, and signal it
//! without racing pid reuse.
//!
//! Swift checks `/proc/<pid>/cmdline` only for signal 0, by substring, and
//! then sends real signals to whatever owns the pid. Here every signal goes
//! through the same check: a pidfd is opened first (it pins the process),
//! `/proc/<pid>/cmdline` must have an argument whose basename is
//! `swift-<server>` (Python servers run as `python3 /…/swift-object-server
//! CONF`) and an argument that is the config path, the pidfd must show the
//! process still alive after that read (so the read was of that process),
//! and the signal is sent through the pidfd. Kernels without pidfds (before
//! 5.3) fall back to comparing the process start time before `kill`.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::conf::normpath;

/// A process we have identified; holds a pidfd where the kernel has them.
#[derive(Debug)]
pub struct Proc {
    pid: i32,
    pidfd: Option<OwnedFd>,
    start_time: u64,
}

/// What a pid turned out to be.
#[derive(Debug)]
pub enum Identity {
    /// The server we are looking for.
    Ours(Proc),
    /// No such process (or a zombie, or exiting): the pid file is stale.
    Gone,
    /// Some other process has this pid now.
    Wrong,
    /// The same server, but run with another config (another swift dir
    /// sharing this run dir, or another instance): not ours to signal, and
    /// its pid file is not ours to delete either.
    OtherConfig,
    /// The process could not be inspected (e.g. `/proc` hides it).
    Unknown(io::Error),
}

/// Fields of `/proc/<pid>/stat` that matter here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub state: char,
    pub pgrp: i32,
    pub flags: u64,
    pub start_time: u64,
}

/// The kernel's PF_EXITING: set as soon as a process starts to exit.
const PF_EXITING: u64 = 0x4;

impl Stat {
    /// Exited, or on its way out (its cmdline may already be gone).
    pub fn is_gone(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x') || self.flags & PF_EXITING != 0
    }
}

/// Parse `/proc/<pid>/stat` text (the command name may hold spaces and
/// parentheses, so fields are counted after the last `)`).
pub fn parse_stat(text: &str) -> Option<Stat> {
    let (_, rest) = text.rsplit_once(')')?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state(3) ppid(4) pgrp(5) session(6) tty(7) tpgid(8) flags(9) ... starttime(22)
    Some(Stat {
        state: f.first()?.chars().next()?,
        pgrp: f.get(2)?.parse().ok()?,
        flags: f.get(6)?.parse().ok()?,
        start_time: f.get(19)?.parse().ok()?,
    })
}

/// Read `/proc/<pid>/stat`.
pub fn stat(pid: i32) -> io::Result<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&text)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unparsable /proc stat"))
}

/// How a command line compares with `swift-<server> CONF`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmdlineMatch {
    /// `swift-<server>` with this config.
    Yes,
    /// `swift-<server>`, with some other config.
    OtherConfig,
    /// Not `swift-<server>` at all.
    No,
}

/// Compare a command line (NUL-separated) with `swift-<server>` run with
/// `conf`: an argument's basename must be the binary name (Python servers
/// run as `python3 /…/swift-object-server CONF`) and an argument must be
/// the config path.
pub fn cmdline_matches(cmdline: &[u8], cmd: &str, conf: &Path) -> CmdlineMatch {
    let args: Vec<&[u8]> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .collect();
    let is_binary = args.iter().any(|a| {
        let base = a.rsplit(|b| *b == b'/').next().unwrap_or(a);
        base == cmd.as_bytes()
    });
    if !is_binary {
        return CmdlineMatch::No;
    }
    let want = normpath(conf);
    let want_real = std::fs::canonicalize(conf).ok();
    let has_conf = args.iter().any(|a| {
        use std::os::unix::ffi::OsStrExt;
        let p = Path::new(std::ffi::OsStr::from_bytes(a));
        if normpath(p) == want {
            return true;
        }
        // Spelled differently but the same file (symlinked swift dir).
        p.is_absolute() && want_real.is_some() && std::fs::canonicalize(p).ok() == want_real
    });
    if has_conf {
        CmdlineMatch::Yes
    } else {
        CmdlineMatch::OtherConfig
    }
}

fn errno_of(e: &io::Error) -> Option<Errno> {
    e.raw_os_error().map(Errno::from_raw)
}

fn open_pidfd(pid: i32) -> Result<Option<OwnedFd>, Errno> {
    let Some(rpid) = rustix::process::Pid::from_raw(pid) else {
        return Err(Errno::ESRCH);
    };
    match rustix::process::pidfd_open(rpid, rustix::process::PidfdFlags::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if e == rustix::io::Errno::NOSYS => Ok(None),
        Err(e) => Err(Errno::from_raw(e.raw_os_error())),
    }
}

/// Decide whether `pid` is `cmd` (`swift-object-server`) running with `conf`.
pub fn identify(pid: i32, cmd: &str, conf: &Path) -> Identity {
    let pidfd = match open_pidfd(pid) {
        Ok(fd) => fd,
        Err(Errno::ESRCH) => return Identity::Gone,
        // A thread id, not a process: not a server's pid.
        Err(Errno::EINVAL) => return Identity::Wrong,
        Err(e) => return Identity::Unknown(io::Error::from(e)),
    };
    let st = match stat(pid) {
        Ok(st) => st,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Identity::Gone,
        Err(e) => return Identity::Unknown(e),
    };
    if st.is_gone() {
        return Identity::Gone;
    }
    let cmdline = match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Identity::Gone,
        Err(e) => return Identity::Unknown(e),
    };
    let proc = Proc {
        pid,
        pidfd,
        start_time: st.start_time,
    };
    // Only now is it known that what was read belonged to the pinned process.
    if proc.has_exited() {
        return Identity::Gone;
    }
    match cmdline_matches(&cmdline, cmd, conf) {
        CmdlineMatch::Yes => Identity::Ours(proc),
        CmdlineMatch::OtherConfig => Identity::OtherConfig,
        CmdlineMatch::No => Identity::Wrong,
    }
}

impl Proc {
    /// A process we just spawned ourselves (not yet reaped, so its pid
    /// cannot have been reused).
    pub fn from_child(pid: u32) -> Proc {
        let pid = i32::try_from(pid).unwrap_or(i32::MAX);
        let pidfd = open_pidfd(pid).ok().flatten();
        let start_time = stat(pid).map(|s| s.start_time).unwrap_or(0);
        Proc {
            pid,
            pidfd,
            start_time,
        }
    }

    /// Pin `pid` without judging what it is (`swift-reload` checks the
    /// command line itself). `ESRCH` when there is no such process.
    pub fn open(pid: i32) -> Result<Proc, Errno> {
        let pidfd = open_pidfd(pid)?;
        let st = stat(pid).map_err(|e| errno_of(&e).unwrap_or(Errno::ESRCH))?;
        let proc = Proc {
            pid,
            pidfd,
            start_time: st.start_time,
        };
        if st.is_gone() || proc.has_exited() {
            return Err(Errno::ESRCH);
        }
        Ok(proc)
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The pidfd pinning this process, where the kernel has them (it polls
    /// readable once the process has exited).
    pub fn pidfd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.pidfd.as_ref().map(|fd| fd.as_fd())
    }

    /// A duplicate of this process's fd `target` (`pidfd_getfd`, Linux 5.6+,
    /// allowed where ptrace would be). Close-on-exec, as the kernel makes it.
    pub fn take_fd(&self, target: std::os::fd::RawFd) -> Result<OwnedFd, Errno> {
        let Some(fd) = &self.pidfd else {
            return Err(Errno::ENOSYS);
        };
        rustix::process::pidfd_getfd(fd, target, rustix::process::PidfdGetfdFlags::empty())
            .map_err(|e| Errno::from_raw(e.raw_os_error()))
    }

    /// Send `sig` to this very process. `ESRCH` means it is gone, `EPERM`
    /// that it is not ours to signal.
    pub fn signal(&self, sig: Signal) -> Result<(), Errno> {
        match &self.pidfd {
            Some(fd) => {
                let rsig = match sig {
                    Signal::SIGHUP => rustix::process::Signal::HUP,
                    Signal::SIGUSR1 => rustix::process::Signal::USR1,
                    Signal::SIGKILL => rustix::process::Signal::KILL,
                    _ => rustix::process::Signal::TERM,
                };
                rustix::process::pidfd_send_signal(fd, rsig)
                    .map_err(|e| Errno::from_raw(e.raw_os_error()))
            }
            None => {
                if self.has_exited() {
                    return Err(Errno::ESRCH);
                }
                nix::sys::signal::kill(Pid::from_raw(self.pid), sig)
            }
        }
    }

    /// Whether the process has exited (a zombie counts as exited).
    pub fn has_exited(&self) -> bool {
        match &self.pidfd {
            Some(fd) => {
                let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                matches!(nix::poll::poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
            }
            None => match stat(self.pid) {
                Ok(st) => st.start_time != self.start_time || matches!(st.state, 'Z' | 'X' | 'x'),
                Err(_) => true,
            },
        }
    }

    /// Whether the process is exiting or has exited (for a process that just
    /// closed its stdout: did it close it by exiting?).
    pub fn is_exiting(&self) -> bool {
        self.has_exited() || stat(self.pid).map_or(true, |st| st.is_gone())
    }

    /// The process group, when this process leads one (servers call setsid).
    pub fn group(&self) -> Option<i32> {
        stat(self.pid)
            .ok()
            .filter(|st| st.pgrp == self.pid)
            .map(|st| st.pgrp)
    }

    /// Reap it if it is our child (no-daemon mode); others are init's.
    pub fn reap_if_child(&self) {
        let _ = nix::sys::wait::waitpid(
            Pid::from_raw(self.pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        );
    }
}

/// Wait until at least one of `procs` exits or `until` passes.
pub fn wait_any(procs: &[&Proc], until: Instant) {
    let now = Instant::now();
    if now >= until {
        return;
    }
    let left = until - now;
    let fds: Vec<_> = procs.iter().filter_map(|p| p.pidfd.as_ref()).collect();
    if fds.len() != procs.len() || fds.is_empty() {
        // No pidfds: poll as Swift does, every 0.1 s.
        std::thread::sleep(left.min(Duration::from_millis(100)));
        return;
    }
    let mut pfds: Vec<PollFd<'_>> = fds
        .iter()
        .map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN))
        .collect();
    let timeout = PollTimeout::try_from(left.as_millis().max(1)).unwrap_or(PollTimeout::MAX);
    let _ = nix::poll::poll(&mut pfds, timeout);
}

/// Wait up to `wait` for `proc` to exit.
pub fn wait_exit(proc: &Proc, wait: Duration) -> bool {
    let until = Instant::now() + wait;
    loop {
        // Not reaped here: a spawned child's status belongs to its `Child`.
        if proc.has_exited() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        wait_any(&[proc], until);
    }
}

/// Whether a live (not zombie) process is left in process group `pgrp`.
/// Zombies are not counted: who reaps them (init, or a container's pid 1
/// that may never do it) is out of our hands.
pub fn group_has_live_members(pgrp: i32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            return false;
        };
        stat(pid).is_ok_and(|st| st.pgrp == pgrp && !st.is_gone())
    })
}

/// Wait until process group `pgrp` has no live member, or `until` passes.
pub fn wait_group_gone(pgrp: i32, until: Instant) -> bool {
    loop {
        if !group_has_live_members(pgrp) {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether an io error is "no such file".
pub fn is_enoent(e: &io::Error) -> bool {
    errno_of(e) == Some(Errno::ENOENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing() {
        let text = "1234 (swift proxy (x)) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 2 0 98765 1000 10\n";
        let st = parse_stat(text).unwrap();
        assert_eq!(st.state, 'S');
        assert_eq!(st.pgrp, 1234);
        assert_eq!(st.flags, 4194560);
        assert_eq!(st.start_time, 98765);
        assert!(!st.is_gone());
        let exiting = text.replace("4194560", "4194564");
        assert!(parse_stat(&exiting).unwrap().is_gone());
        let zombie = text.replace(") S ", ") Z ");
        assert!(parse_stat(&zombie).unwrap().is_gone());
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn cmdline_identity() {
        let conf = Path::new("/etc/swift/proxy-server.conf");
        let m = |c: &[u8]| cmdline_matches(c, "swift-proxy-server", conf);
        let py = b"/venv/bin/python3\0/venv/bin/swift-proxy-server\0/etc/swift/proxy-server.conf\0";
        assert_eq!(m(py), CmdlineMatch::Yes);
        let rust = b"/usr/bin/swift-proxy-server\0/etc/swift//proxy-server.conf\0";
        assert_eq!(m(rust), CmdlineMatch::Yes);
        let bare = b"swift-proxy-server\0/etc/swift/proxy-server.conf\0verbose\0";
        assert_eq!(m(bare), CmdlineMatch::Yes);
        // The same server with another config.
        let other_conf = b"/usr/bin/swift-proxy-server\0/etc/swift/proxy-server/2.conf\0";
        assert_eq!(m(other_conf), CmdlineMatch::OtherConfig);
        // Another server, a substring only, or something else: not ours.
        let other = b"/usr/bin/swift-object-server\0/etc/swift/proxy-server.conf\0";
        assert_eq!(m(other), CmdlineMatch::No);
        let substring = b"/usr/bin/swift-proxy-server-old\0/etc/swift/proxy-server.conf\0";
        assert_eq!(m(substring), CmdlineMatch::No);
        let editor = b"vi\0/etc/swift/proxy-server.conf\0";
        assert_eq!(m(editor), CmdlineMatch::No);
        assert_eq!(m(b""), CmdlineMatch::No);
    }

    #[test]
    fn identify_this_process_and_a_dead_one() {
        let me = std::process::id() as i32;
        // The test binary is not a swift server.
        assert!(matches!(
            identify(me, "swift-proxy-server", Path::new("/x.conf")),
            Identity::Wrong
        ));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        assert!(matches!(
            identify(pid, "swift-proxy-server", Path::new("/x.conf")),
            Identity::Gone
        ));
    }
}
