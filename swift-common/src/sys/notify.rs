//! Readiness notifications: systemd's `$NOTIFY_SOCKET` and Swift's own
//! abstract socket `\0swift-notifications\0<pid>` (what `swift-reload` and
//! our `swift-init` listen on). Only the master notifies; workers get a
//! disabled [`Notifier`].

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Where notifications go.
#[derive(Debug)]
pub struct Notifier {
    socket: Option<UnixDatagram>,
    systemd: Option<SocketAddr>,
}

/// The abstract socket name Swift uses for `pid`.
pub fn swift_socket_name(pid: u32) -> Vec<u8> {
    format!("swift-notifications\0{pid}").into_bytes()
}

impl Notifier {
    /// Read `$NOTIFY_SOCKET` once (a path, or `@name` for an abstract socket).
    pub fn from_env() -> Notifier {
        let systemd = std::env::var_os("NOTIFY_SOCKET").and_then(|v| {
            let bytes = v.as_encoded_bytes();
            match bytes.strip_prefix(b"@") {
                Some(name) => SocketAddr::from_abstract_name(name).ok(),
                None => SocketAddr::from_pathname(std::path::Path::new(&v)).ok(),
            }
        });
        Notifier {
            socket: UnixDatagram::unbound().ok(),
            systemd,
        }
    }

    /// A notifier that sends nothing (for workers).
    pub fn disabled() -> Notifier {
        Notifier {
            socket: None,
            systemd: None,
        }
    }

    /// Whether systemd asked for notifications.
    pub fn has_systemd(&self) -> bool {
        self.systemd.is_some()
    }

    /// Send `state` (e.g. `READY=1`) to systemd and to Swift's per-pid
    /// socket. Nobody listening is normal and not an error; the return value
    /// says whether systemd (if configured) got it.
    pub fn notify(&self, state: &str) -> bool {
        let Some(sock) = &self.socket else {
            return false;
        };
        if let Ok(addr) = SocketAddr::from_abstract_name(swift_socket_name(std::process::id())) {
            let _ = sock.send_to_addr(state.as_bytes(), &addr);
        }
        match &self.systemd {
            Some(addr) => sock.send_to_addr(state.as_bytes(), addr).is_ok(),
            None => true,
        }
    }
}

/// `CLOCK_MONOTONIC` in microseconds, for `MONOTONIC_USEC=` with `RELOADING=1`.
pub fn monotonic_usec() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|ts| ts.tv_sec() as u64 * 1_000_000 + ts.tv_nsec() as u64 / 1_000)
        .unwrap_or(0)
}
