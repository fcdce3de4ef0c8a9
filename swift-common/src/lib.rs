//! What every Swift server process shares: Swift's `run_wsgi`, done right.
//!
//! A server binary (`swift-proxy-server`, later the account, container and
//! object servers) is a thin `main` over this crate:
//!
//! - [`config`]: paste.deploy configuration files and `swift.conf`, with
//!   Python `ConfigParser` semantics.
//! - [`logging`]: Swift's logger (syslog over a unix datagram socket or UDP,
//!   console with `-v`), its line format and levels.
//! - [`net`]: the listening socket (bind retry, IPv6, socket options, TLS).
//! - [`http`]: the HTTP/1.1 server each worker runs, with Swift's limits.
//! - [`ring`]: the rings (`*.ring.gz`): partitions, primaries, handoffs, reload.
//! - [`storage_policy`]: the storage policies of `swift.conf`.
//! - [`sys`]: the operating-system edge (fork, signals, privileges, stdio,
//!   sd_notify); the only module with `unsafe`.
//! - [`supervisor`]: the master process: forks, watches and replaces workers,
//!   and handles stop and reload signals.
//! - [`wsgi`]: the ordered bootstrap that ties these together.
//!
//! The master process never starts a thread or an async runtime: workers are
//! forked from it, and each worker builds its own single-threaded runtime.

pub mod cli;
pub mod config;
pub mod http;
pub mod logging;
pub mod net;
pub mod ring;
pub mod storage_policy;
pub mod supervisor;
pub mod sys;
pub mod time;
pub mod wsgi;
