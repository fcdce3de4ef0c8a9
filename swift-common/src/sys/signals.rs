//! Signals for a single-threaded master: block them and read them from a
//! signalfd (no handlers, so nothing is inherited across fork but the mask,
//! which [`reset_in_child`] clears).

use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::{OrSys, SysError};

pub use nix::sys::signal::Signal as Sig;

/// The signals the master handles.
pub const MASTER_SIGNALS: &[Signal] = &[
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGUSR1,
    Signal::SIGCHLD,
];

/// Block `signals` for this process and return a non-blocking, close-on-exec
/// signalfd that reads them.
pub fn block_and_open(signals: &[Signal]) -> Result<SignalFd, SysError> {
    let mut set = SigSet::empty();
    for s in signals {
        set.add(*s);
    }
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None).or_sys(|| "sigprocmask".into())?;
    SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .or_sys(|| "signalfd".into())
}

/// Read every pending signal from `sfd` (non-blocking).
pub fn drain(sfd: &SignalFd) -> Result<Vec<Signal>, SysError> {
    let mut out = Vec::new();
    while let Some(info) = sfd.read_signal().or_sys(|| "read signalfd".into())? {
        if let Ok(sig) = Signal::try_from(info.ssi_signo as i32) {
            out.push(sig);
        }
    }
    Ok(out)
}

/// In a freshly forked child: restore the default disposition of the
/// signals the master handles, keeping them blocked so none is lost or
/// acts too early; the worker installs its own handlers and then calls
/// [`unblock_all`]. SIGPIPE stays ignored, as Rust's runtime set it: a
/// worker must see EPIPE, not die, when a client goes away.
pub fn reset_in_child() -> Result<(), SysError> {
    use nix::sys::signal::{SigHandler, signal};
    for s in MASTER_SIGNALS {
        // SAFETY: installing SIG_DFL runs no code of ours in signal context.
        unsafe { signal(*s, SigHandler::SigDfl) }.or_sys(|| format!("signal({s}, SIG_DFL)"))?;
    }
    Ok(())
}

/// Unblock every signal (after a worker has installed its handlers).
pub fn unblock_all() -> Result<(), SysError> {
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .or_sys(|| "sigprocmask".into())
}

/// Send `sig` to `pid`; a pid that no longer exists is not an error.
pub fn kill(pid: nix::unistd::Pid, sig: Signal) -> Result<bool, SysError> {
    match nix::sys::signal::kill(pid, sig) {
        Ok(()) => Ok(true),
        Err(nix::errno::Errno::ESRCH) => Ok(false),
        Err(e) => Err(SysError {
            op: format!("kill({pid}, {sig})"),
            source: e.into(),
        }),
    }
}

/// A signal's conventional name (`SIGTERM`), as Swift logs it.
pub fn name(sig: Signal) -> &'static str {
    sig.as_str()
}
