//! The library behind `swift-init` and `swift-reload`: Swift's server names,
//! config discovery, pid files, process identity checks, readiness
//! notifications, and the commands themselves.
//!
//! Modules: [`cli`] (swift-init's arguments, usage), [`servers`] (names),
//! [`conf`] (config discovery, pid↔config paths), [`pidfile`], [`process`]
//! (identity and signals), [`env`] (limits), [`handover`] (inherited fds and
//! the listening socket a graceful reload hands over), [`notify`] (waiting
//! for a server's `READY=1`), [`manager`] (swift-init's commands),
//! [`reload`] (`swift-reload`).
#![forbid(unsafe_code)]

pub mod cli;
pub mod conf;
pub mod env;
pub mod handover;
pub mod manager;
pub mod notify;
pub mod pidfile;
pub mod process;
pub mod reload;
pub mod servers;
