//! The listening socket: Swift's `get_socket`, with its options validated
//! before anything is bound, and TLS ([`tls`]).
//!
//! This module binds and configures; it never accepts (that is [`crate::http`]).

pub mod tls;

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, TcpKeepalive, Type};

use crate::config::{Conf, ConfigError};

/// Swift's exact message for a bad or missing `bind_port`.
pub const BIND_PORT_MESSAGE: &str = "bind_port wasn't properly set in the config file. It must be explicitly set to a valid port number.";

/// Everything wrong with the listening socket's settings or binding it.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// `bind_port` missing or not in 1..=65535: Swift's message, then where
    /// and what (`/etc/swift/proxy-server.conf line 3: bind_port = "0"`).
    #[error("{BIND_PORT_MESSAGE} ({detail})")]
    BindPort { detail: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot resolve bind_ip {ip:?}: {reason}")]
    Resolve { ip: String, reason: String },
    /// Swift's message when the port stays busy.
    #[error("Could not bind to {ip}:{port} after trying for {timeout} seconds")]
    Busy { ip: String, port: u16, timeout: u64 },
    #[error("cannot {op} on {addr}: {source}")]
    Socket {
        op: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The listening socket's settings (`bind_ip`, `bind_port`, `backlog`,
/// `bind_timeout`, `keep_idle`), validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindConfig {
    pub bind_ip: String,
    pub bind_port: u16,
    pub backlog: i32,
    pub bind_timeout: Duration,
    pub keep_idle: Duration,
}

impl BindConfig {
    /// Read and validate the options; Swift's defaults.
    pub fn from_conf(conf: &Conf) -> Result<BindConfig, NetError> {
        let raw_port = conf.get("bind_port").unwrap_or("");
        let bind_port = raw_port
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|p| (1..=65535).contains(p))
            .ok_or_else(|| NetError::BindPort {
                detail: match (conf.get("bind_port"), conf.origin("bind_port")) {
                    (Some(v), Some((path, line))) => {
                        format!("{} line {line}: bind_port = {v:?}", path.display())
                    }
                    (Some(v), None) => format!("{}: bind_port = {v:?}", conf.source().display()),
                    (None, _) => format!("{}: bind_port is not set", conf.source().display()),
                },
            })? as u16;
        let keep_idle: i64 = conf.get_parsed("keep_idle", 600)?;
        if keep_idle <= 0 || keep_idle >= (1 << 15) - 1 {
            return Err(conf
                .invalid(
                    "keep_idle",
                    "must be an integer between 1 and 32766 (seconds)",
                )
                .into());
        }
        let bind_timeout: i64 = conf.get_parsed("bind_timeout", 30)?;
        if bind_timeout < 0 {
            return Err(conf.invalid("bind_timeout", "must not be negative").into());
        }
        let backlog: i32 = conf.get_parsed("backlog", 4096)?;
        if backlog < 1 {
            return Err(conf.invalid("backlog", "must be a positive integer").into());
        }
        Ok(BindConfig {
            bind_ip: conf.get_or("bind_ip", "0.0.0.0").trim().to_owned(),
            bind_port,
            backlog,
            bind_timeout: Duration::from_secs(bind_timeout as u64),
            keep_idle: Duration::from_secs(keep_idle as u64),
        })
    }

    /// The first IPv4 or IPv6 address `bind_ip` resolves to (hostnames allowed).
    pub fn resolve(&self) -> Result<SocketAddr, NetError> {
        let ip = self.bind_ip.trim_start_matches('[').trim_end_matches(']');
        let mut addrs = (ip, self.bind_port)
            .to_socket_addrs()
            .map_err(|e| NetError::Resolve {
                ip: self.bind_ip.clone(),
                reason: e.to_string(),
            })?;
        addrs.next().ok_or_else(|| NetError::Resolve {
            ip: self.bind_ip.clone(),
            reason: "no address".into(),
        })
    }
}

/// Bind and listen, retrying every 0.1 s while the port is in use, for up to
/// `bind_timeout` (that retry is what lets a restart overlap the old server's
/// exit). SO_REUSEADDR and SO_REUSEPORT are set, as eventlet does, so a
/// graceful reload's new server can bind beside the old one; then
/// SO_KEEPALIVE, TCP_NODELAY and TCP_KEEPIDLE, which accepted sockets inherit.
pub fn bind(cfg: &BindConfig) -> Result<TcpListener, NetError> {
    let addr = cfg.resolve()?;
    let deadline = Instant::now() + cfg.bind_timeout;
    loop {
        match bind_once(addr, cfg) {
            Ok(l) => return Ok(l),
            Err(NetError::Socket { source, .. })
                if source.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(NetError::Socket { source, .. })
                if source.kind() == std::io::ErrorKind::AddrInUse =>
            {
                return Err(NetError::Busy {
                    ip: cfg.bind_ip.clone(),
                    port: cfg.bind_port,
                    timeout: cfg.bind_timeout.as_secs(),
                });
            }
            Err(e) => return Err(e),
        }
    }
}

fn bind_once(addr: SocketAddr, cfg: &BindConfig) -> Result<TcpListener, NetError> {
    let err = |op: &'static str| move |source| NetError::Socket { op, addr, source };
    let sock = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.cloexec(),
        Some(Protocol::TCP),
    )
    .map_err(err("create a socket"))?;
    sock.set_reuse_address(true)
        .map_err(err("set SO_REUSEADDR"))?;
    sock.set_reuse_port(true).map_err(err("set SO_REUSEPORT"))?;
    sock.bind(&addr.into()).map_err(err("bind"))?;
    sock.listen(cfg.backlog).map_err(err("listen"))?;
    configure_listener(&sock, cfg.keep_idle).map_err(err("set socket options"))?;
    Ok(sock.into())
}

/// Use an inherited listening socket (a seamless reload's, or systemd's)
/// when it is bound where `cfg` says; `None` means bind anew. Its backlog
/// and options are set again from `cfg`.
pub fn adopt(fd: std::os::fd::OwnedFd, cfg: &BindConfig) -> Result<Option<TcpListener>, NetError> {
    let want = cfg.resolve()?;
    let sock = Socket::from(fd);
    let same = sock
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .is_some_and(|have| have == want);
    if !same || !sock.is_listener().unwrap_or(false) {
        return Ok(None);
    }
    let err = |op: &'static str| {
        move |source| NetError::Socket {
            op,
            addr: want,
            source,
        }
    };
    sock.listen(cfg.backlog).map_err(err("listen"))?;
    configure_listener(&sock, cfg.keep_idle).map_err(err("set socket options"))?;
    Ok(Some(sock.into()))
}

/// The options accepted connections inherit from the listening socket.
fn configure_listener(sock: &Socket, keep_idle: Duration) -> std::io::Result<()> {
    sock.set_tcp_nodelay(true)?;
    sock.set_tcp_keepalive(&TcpKeepalive::new().with_time(keep_idle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(pairs: &[(&str, &str)]) -> Conf {
        Conf::from_pairs("/x.conf", "app:proxy-server", pairs)
    }

    #[test]
    fn bind_port_must_be_set_and_in_range() {
        for bad in [None, Some("0"), Some("99999"), Some("abc"), Some("")] {
            let c = match bad {
                Some(v) => conf(&[("bind_port", v)]),
                None => conf(&[]),
            };
            let err = BindConfig::from_conf(&c).unwrap_err();
            assert!(err.to_string().starts_with(BIND_PORT_MESSAGE), "{err}");
        }
        assert_eq!(
            BindConfig::from_conf(&conf(&[("bind_port", "65535")]))
                .unwrap()
                .bind_port,
            65535
        );
    }

    #[test]
    fn keep_idle_is_validated_like_swift() {
        for bad in ["0", "-600", "32767", "foobar"] {
            let err = BindConfig::from_conf(&conf(&[("bind_port", "80"), ("keep_idle", bad)]))
                .unwrap_err();
            assert!(err.to_string().contains("keep_idle"), "{err}");
        }
        let ok =
            BindConfig::from_conf(&conf(&[("bind_port", "80"), ("keep_idle", "700")])).unwrap();
        assert_eq!(ok.keep_idle, Duration::from_secs(700));
    }

    #[test]
    fn busy_port_gives_swifts_message_after_bind_timeout() {
        let holder = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = holder.local_addr().unwrap().port();
        let cfg = BindConfig {
            bind_ip: "127.0.0.1".into(),
            bind_port: port,
            backlog: 16,
            bind_timeout: Duration::from_millis(300),
            keep_idle: Duration::from_secs(600),
        };
        let started = Instant::now();
        let err = bind(&cfg).unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(
            err.to_string(),
            format!("Could not bind to 127.0.0.1:{port} after trying for 0 seconds")
        );
    }

    #[test]
    fn binds_ipv6_loopback_and_sets_options() {
        let cfg = BindConfig {
            bind_ip: "::1".into(),
            bind_port: 0,
            backlog: 16,
            bind_timeout: Duration::from_secs(1),
            keep_idle: Duration::from_secs(123),
        };
        // bind_port 0 cannot come from a conf, but exercises the socket setup.
        let l = bind(&cfg).unwrap();
        assert!(l.local_addr().unwrap().is_ipv6());
        let s = Socket::from(l);
        assert!(s.tcp_nodelay().unwrap());
        assert!(s.keepalive().unwrap());
        assert_eq!(s.tcp_keepalive_time().unwrap(), Duration::from_secs(123));
    }

    #[test]
    fn bind_ip_may_be_a_host_name() {
        let cfg = BindConfig {
            bind_ip: "localhost".into(),
            bind_port: 0,
            backlog: 16,
            bind_timeout: Duration::from_secs(1),
            keep_idle: Duration::from_secs(600),
        };
        let l = bind(&cfg).unwrap();
        assert!(l.local_addr().unwrap().ip().is_loopback());
        let bad = BindConfig {
            bind_ip: "no-such-host.invalid".into(),
            ..cfg
        };
        assert!(
            bind(&bad)
                .unwrap_err()
                .to_string()
                .contains("no-such-host.invalid")
        );
    }
}
