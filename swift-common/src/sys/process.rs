//! Process-level calls: fork, daemon hygiene, parent-death signal, priority,
//! and reading other processes' state from /proc.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::stat::{Mode, umask};
use nix::unistd::{ForkResult, Pid};

use super::{OrSys, SysError};

/// Which side of a [`fork`] we are on.
pub enum Forked {
    Parent(Pid),
    Child,
}

/// fork(2).
///
/// Callers must only fork from a single-threaded process: the master process
/// never starts a thread or an async runtime (see the crate doc), which is
/// what makes it safe for the child to allocate, log and build a runtime.
pub fn fork() -> Result<Forked, SysError> {
    debug_assert!(
        thread_count().is_none_or(|n| n <= 1),
        "fork from a multi-threaded process"
    );
    // SAFETY: the process is single-threaded (asserted above in debug
    // builds, guaranteed by the supervisor's design), so the child inherits
    // no lock held by another thread and may run arbitrary code.
    match unsafe { nix::unistd::fork() }.or_sys(|| "fork".into())? {
        ForkResult::Parent { child } => Ok(Forked::Parent(child)),
        ForkResult::Child => Ok(Forked::Child),
    }
}

/// The number of threads of this process, from /proc (None if unreadable).
pub fn thread_count() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

/// Swift's `clean_up_daemon_hygiene`: setsid, chdir /, umask 022.
///
/// setsid fails when the process already leads a process group (started by
/// hand from an interactive shell); Swift ignores that, and so do we, but we
/// return it so the caller can log it (wart 36).
pub fn daemon_hygiene() -> Result<Option<SysError>, SysError> {
    let setsid = nix::unistd::setsid()
        .map(|_| ())
        .or_sys(|| "setsid".into())
        .err();
    std::env::set_current_dir("/").or_sys(|| "chdir /".into())?;
    umask(Mode::from_bits_truncate(0o022));
    Ok(setsid)
}

/// Ask the kernel to send `SIGKILL` to this process when its parent dies,
/// and close the race where the parent already died: returns false if the
/// parent is no longer `expected_parent`.
///
/// Must be called after any credential change: setuid clears the setting.
pub fn die_with_parent(expected_parent: Pid) -> Result<bool, SysError> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .or_sys(|| "prctl(PR_SET_PDEATHSIG)".into())?;
    Ok(nix::unistd::getppid() == expected_parent)
}

/// `setpriority(PRIO_PROCESS, 0, nice)` (Swift's `nice_priority`).
pub fn set_nice(nice: i32) -> Result<(), SysError> {
    // SAFETY: setpriority takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
    if rc == 0 {
        Ok(())
    } else {
        Err(SysError {
            op: format!("setpriority({nice})"),
            source: std::io::Error::last_os_error(),
        })
    }
}

/// I/O scheduling classes for [`set_ionice`] (Swift's `ionice_class`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoClass {
    RealTime = 1,
    BestEffort = 2,
    Idle = 3,
}

/// `ioprio_set(IOPRIO_WHO_PROCESS, 0, class << 13 | priority)`.
pub fn set_ionice(class: IoClass, priority: u8) -> Result<(), SysError> {
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    const IOPRIO_CLASS_SHIFT: libc::c_long = 13;
    let prio = ((class as libc::c_long) << IOPRIO_CLASS_SHIFT) | libc::c_long::from(priority);
    // SAFETY: ioprio_set takes three integers and touches no memory of ours.
    let rc = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) };
    if rc == 0 {
        Ok(())
    } else {
        Err(SysError {
            op: format!("ioprio_set({class:?}, {priority})"),
            source: std::io::Error::last_os_error(),
        })
    }
}

/// The fields of `/proc/<pid>/stat` that supervisors need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcStat {
    pub comm: String,
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    /// Start time in clock ticks after boot: with the pid, a process identity
    /// that survives pid reuse.
    pub starttime: u64,
}

/// Parse `/proc/<pid>/stat`. The command name may contain spaces and
/// parentheses, so fields are counted from the last `)` (Swift splits on
/// whitespace and gets it wrong: wart 23).
pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_proc_stat(&text)
}

fn parse_proc_stat(text: &str) -> Option<ProcStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    let mut fields = text.get(close + 1..)?.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    let session = fields.next()?.parse().ok()?;
    // After session: tty_nr tpgid flags minflt cminflt majflt cmajflt utime
    // stime cutime cstime priority nice num_threads itrealvalue starttime.
    let starttime = fields.nth(15)?.parse().ok()?;
    Some(ProcStat {
        comm,
        state,
        ppid,
        pgrp,
        session,
        starttime,
    })
}

/// The argv of a process from `/proc/<pid>/cmdline`.
pub fn proc_cmdline(pid: i32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// Clear FD_CLOEXEC on `fd` so it survives exec (used on the listening
/// socket handed to a re-exec'ed master).
pub fn set_inheritable(fd: &OwnedFd, inheritable: bool) -> Result<(), SysError> {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    let flags = if inheritable {
        FdFlag::empty()
    } else {
        FdFlag::FD_CLOEXEC
    };
    fcntl(fd, FcntlArg::F_SETFD(flags))
        .map(|_| ())
        .or_sys(|| format!("fcntl(F_SETFD) on fd {}", fd.as_raw_fd()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_survives_spaces_and_parens_in_comm() {
        let line = "42 (a) b (c)) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 123456 0 0";
        let st = parse_proc_stat(line).expect("parse");
        assert_eq!(st.comm, "a) b (c)");
        assert_eq!(st.state, 'S');
        assert_eq!((st.ppid, st.pgrp, st.session), (1, 42, 42));
        assert_eq!(st.starttime, 123456);
    }

    #[test]
    fn own_stat_is_readable() {
        let st = proc_stat(std::process::id() as i32).expect("own stat");
        assert_eq!(st.ppid, nix::unistd::getppid().as_raw());
    }
}
