//! The Swift proxy server: a paste-style pipeline of middleware (each built
//! from its own `[filter:...]` section) in front of the proxy app.
//!
//! [`pipeline`] turns `[pipeline:main]` into a chain of [`Service`]s, adding
//! the filters Swift requires when they are missing; [`middleware`] holds the
//! filters; [`proxy`] is the app at the end of the chain.
#![forbid(unsafe_code)]

pub mod context;
pub mod memcache;
pub mod middleware;
pub mod pipeline;
pub mod proxy;
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
