//! The Swift proxy server: a paste-style pipeline of middleware (each built
//! from its own `[filter:...]` section) in front of the proxy app.
//!
//! [`pipeline`] turns `[pipeline:main]` into a chain of [`Service`]s, adding
//! the filters Swift requires when they are missing; [`middleware`] holds the
//! filters; [`app`] is the app at the end of the chain, routing to the
//! [`controllers`], which talk to the storage servers through the nodes
//! [`node_iter`] picks. [`context`] holds what middleware share per request;
//! [`info`] the account and container info they look up.
#![forbid(unsafe_code)]

pub mod acl;
pub mod app;
pub mod conditional;
pub mod constraints;
pub mod context;
pub mod controllers;
pub mod cors;
pub mod info;
pub mod info_registry;
pub mod memcache;
pub mod middleware;
pub mod mimetypes;
pub mod node_iter;
pub mod pile;
pub mod pipeline;
pub mod pyjson;
pub mod swob;

use std::rc::Rc;

use swift_common::http::Service;
use swift_common::wsgi::{AppContext, AppFactory};

/// The proxy's [`AppFactory`] for `run_wsgi`.
#[derive(Debug, Clone, Copy)]
pub struct ProxyServer;

impl AppFactory for ProxyServer {
    fn app_section(&self) -> &'static str {
        "proxy-server"
    }

    fn build(&self, ctx: &AppContext<'_>) -> Result<Rc<dyn Service>, String> {
        pipeline::build(ctx)
    }
}
