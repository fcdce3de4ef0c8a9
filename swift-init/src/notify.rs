//! Waiting for a server to report that a reload is done: Swift's
//! notification socket, the abstract unix datagram socket
//! `\0swift-notifications\0<pid>` that a server's master sends its
//! sd_notify states to (`RELOADING=1`, `READY=1`, `STOPPING=1`).
//!
//! The socket must be bound before the signal is sent (a datagram to an
//! unbound name is lost), and only one process can bind it: a second
//! reloader waiting on the same server is refused with `EADDRINUSE`.
//!
//! Our servers add `STATUS=` to the `READY=1` that ends a reload: a status
//! starting with `Reload failed:` means the old configuration is still
//! serving. Python Swift's servers send a bare `READY=1` (success), and may
//! die while re-executing, which is noticed through the pidfd. Datagrams are
//! accepted only from the server's own pid (the kernel attaches the
//! sender's credentials), so nobody else can fake a `READY=1`.

use std::io::{self, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, UnixAddr, recvmsg, setsockopt, sockopt::PassCred,
};

use crate::process::Proc;

/// The abstract name Swift binds for `pid` (without the leading NUL).
pub fn socket_name(pid: i32) -> Vec<u8> {
    format!("swift-notifications\0{pid}").into_bytes()
}

/// How a wait for `READY=1` ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `READY=1`, with the `STATUS=` sent along, if any.
    Ready(Option<String>),
    /// `READY=1` with `STATUS=Reload failed: <reason>`: the reason.
    Failed(String),
    /// The process exited first.
    Exited,
    /// Nothing conclusive before the deadline.
    TimedOut,
}

/// What one datagram says: whether it has a `READY=1` line, and its
/// `STATUS=` line.
pub fn parse(datagram: &[u8]) -> (bool, Option<String>) {
    let mut ready = false;
    let mut status = None;
    for line in datagram.split(|b| *b == b'\n') {
        if line == b"READY=1" {
            ready = true;
        } else if let Some(s) = line.strip_prefix(b"STATUS=") {
            status = Some(String::from_utf8_lossy(s).into_owned());
        }
    }
    (ready, status)
}

/// The outcome a `READY=1` datagram with this status means.
pub fn judge(status: Option<String>) -> Outcome {
    match status {
        Some(s) if s.starts_with("Reload failed:") => {
            Outcome::Failed(s.trim_start_matches("Reload failed:").trim().to_owned())
        }
        other => Outcome::Ready(other),
    }
}

/// A bound notification socket for one server process.
#[derive(Debug)]
pub struct Listener {
    sock: UnixDatagram,
    pid: i32,
    /// Whether the kernel tells us who sent each datagram.
    creds: bool,
}

impl Listener {
    /// Bind `\0swift-notifications\0<pid>`.
    pub fn bind(pid: i32) -> io::Result<Listener> {
        let addr = SocketAddr::from_abstract_name(socket_name(pid))?;
        let sock = UnixDatagram::bind_addr(&addr)?;
        sock.set_nonblocking(true)?;
        let creds = setsockopt(&sock, PassCred, &true).is_ok();
        Ok(Listener { sock, pid, creds })
    }

    /// Receive one pending datagram from the server, if any. Datagrams from
    /// other processes are dropped.
    fn receive(&self) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 4096];
        loop {
            let mut cmsg = nix::cmsg_space!(nix::sys::socket::UnixCredentials);
            let mut iov = [IoSliceMut::new(&mut buf)];
            let (len, sender) = match recvmsg::<UnixAddr>(
                self.sock.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(msg) => {
                    let sender = msg.cmsgs().ok().and_then(|mut c| {
                        c.find_map(|m| match m {
                            ControlMessageOwned::ScmCredentials(cred) => Some(cred.pid()),
                            _ => None,
                        })
                    });
                    (msg.bytes, sender)
                }
                Err(Errno::EINTR) => continue,
                Err(_) => return None,
            };
            if self.creds && sender != Some(self.pid) {
                continue;
            }
            return Some(buf[..len].to_vec());
        }
    }

    /// Wait until the server says `READY=1`, `proc` (the server, pinned)
    /// exits, or `until` passes. Every line received from the server is
    /// passed to `on_line` first (for `-v`).
    pub fn wait_ready(
        &self,
        proc: &Proc,
        until: Instant,
        on_line: &mut dyn FnMut(&[u8]),
    ) -> Outcome {
        loop {
            while let Some(datagram) = self.receive() {
                for line in datagram.split(|b| *b == b'\n') {
                    on_line(line);
                }
                let (ready, status) = parse(&datagram);
                if ready {
                    return judge(status);
                }
            }
            if proc.has_exited() {
                // A last word sent just before exiting was read above.
                return Outcome::Exited;
            }
            let now = Instant::now();
            if now >= until {
                return Outcome::TimedOut;
            }
            // Without a pidfd the process is checked every 100 ms.
            let mut left = until - now;
            if proc.pidfd().is_none() {
                left = left.min(Duration::from_millis(100));
            }
            let mut fds = vec![PollFd::new(self.sock.as_fd(), PollFlags::POLLIN)];
            if let Some(pidfd) = proc.pidfd() {
                fds.push(PollFd::new(pidfd, PollFlags::POLLIN));
            }
            let timeout =
                PollTimeout::try_from(left.as_millis().max(1)).unwrap_or(PollTimeout::MAX);
            let _ = nix::poll::poll(&mut fds, timeout);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams() {
        assert_eq!(parse(b"READY=1"), (true, None));
        assert_eq!(parse(b"RELOADING=1\nMONOTONIC_USEC=12"), (false, None));
        assert_eq!(
            parse(b"READY=1\nSTATUS=Reloaded: serving with the new configuration"),
            (
                true,
                Some("Reloaded: serving with the new configuration".to_owned())
            )
        );
        assert_eq!(parse(b"READY=10"), (false, None));
        assert_eq!(judge(None), Outcome::Ready(None));
        assert_eq!(
            judge(Some(
                "Reload failed: /etc/swift/proxy-server.conf: bad".into()
            )),
            Outcome::Failed("/etc/swift/proxy-server.conf: bad".into())
        );
    }

    #[test]
    fn hears_the_process_itself_and_no_one_else() {
        // Pretend this test process is the server: it notifies itself.
        let me = std::process::id() as i32;
        // Another test may hold our name; use a pid of ours that cannot
        // collide: a child that lives for the test.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let proc = Proc::open(pid).unwrap();
        let l = Listener::bind(pid).unwrap();
        // The name is taken now.
        assert_eq!(
            Listener::bind(pid).unwrap_err().kind(),
            io::ErrorKind::AddrInUse
        );
        let addr = SocketAddr::from_abstract_name(socket_name(pid)).unwrap();
        let sender = UnixDatagram::unbound().unwrap();
        // From us (not the server): ignored.
        sender.send_to_addr(b"READY=1", &addr).unwrap();
        let until = Instant::now() + Duration::from_millis(200);
        let mut lines = Vec::new();
        let out = l.wait_ready(&proc, until, &mut |line| lines.push(line.to_vec()));
        assert_eq!(out, Outcome::TimedOut);
        assert!(lines.is_empty(), "{me}: {lines:?}");
        // The process exiting ends the wait.
        child.kill().unwrap();
        let until = Instant::now() + Duration::from_secs(10);
        assert_eq!(l.wait_ready(&proc, until, &mut |_| {}), Outcome::Exited);
        child.wait().unwrap();
    }
}
