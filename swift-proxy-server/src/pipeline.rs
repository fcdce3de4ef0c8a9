//! Build the served chain from `[pipeline:main]`: resolve each component's
//! `use = egg:swift#<name>` to a factory, insert the filters Swift requires
//! (`catch_errors` first, `gatekeeper` after it) when the config leaves them
//! out, and wrap the app from the inside out.
//!
//! An unknown entry point is an error that names the section and lists what
//! this proxy supports.

use std::cell::RefCell;
use std::rc::Rc;

use swift_common::config::{Component, Conf};
use swift_common::http::Service;
use swift_common::logging::{LogConfig, Logger};
use swift_common::wsgi::AppContext;

use crate::app::ProxyApp;
use crate::info_registry::SwiftInfo;
use crate::middleware::{catch_errors, gatekeeper, healthcheck, proxy_logging};

/// A filter factory: builds the filter around the next service.
type FilterFactory = fn(&FilterContext<'_>, Rc<dyn Service>) -> Result<Rc<dyn Service>, String>;

/// What a filter is built from.
pub struct FilterContext<'a> {
    /// The filter's section conf (DEFAULT, the section, `set` overrides).
    pub conf: &'a Conf,
    pub app: &'a AppContext<'a>,
    /// `/info`: a filter registers what it serves here.
    pub info: &'a Rc<RefCell<SwiftInfo>>,
}

impl FilterContext<'_> {
    /// A logger for this filter: the server's own when the filter's log
    /// settings are the same (the usual case), else one from its section.
    pub fn logger(&self, prefix: &str) -> Result<Logger, String> {
        logger_for(self.conf, prefix, self.app)
    }
}

/// A logger configured from `conf` (keys with `prefix` first).
pub fn logger_for(conf: &Conf, prefix: &str, app: &AppContext<'_>) -> Result<Logger, String> {
    let server = app.logger;
    let cfg = LogConfig::from_conf(conf, prefix, server.name()).map_err(|e| e.to_string())?;
    let server_cfg =
        LogConfig::from_conf(app.conf, "", server.name()).map_err(|e| e.to_string())?;
    if cfg == server_cfg {
        return Ok(server.clone());
    }
    let console = if server.has_console() {
        swift_common::sys::stdio::dup_stderr().ok()
    } else {
        None
    };
    Logger::open(&cfg, console).map_err(|e| e.to_string())
}

/// The filters this proxy implements, by entry point name.
const FILTERS: &[(&str, FilterFactory)] = &[
    ("catch_errors", catch_errors::factory),
    ("gatekeeper", gatekeeper::factory),
    ("healthcheck", healthcheck::factory),
    ("proxy_logging", proxy_logging::factory),
    ("tempauth", crate::middleware::tempauth::factory),
];

/// Filters Swift's proxy inserts when missing (`required_filters`), that we
/// implement: catch_errors at the front, gatekeeper right after it.
const REQUIRED: &[&str] = &["catch_errors", "gatekeeper"];

fn supported() -> String {
    FILTERS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe(c: &Component) -> String {
    format!(
        "{}: [{}] use = egg:{}#{}",
        c.conf.source().display(),
        c.conf.section(),
        c.dist,
        c.entry_point
    )
}

/// Build the chain for `ctx.pipeline`.
pub fn build(ctx: &AppContext<'_>) -> Result<Rc<dyn Service>, String> {
    let pipeline = ctx.pipeline;
    let app = &pipeline.app;
    if app.dist != "swift" || app.entry_point != "proxy" {
        return Err(format!(
            "{}: unknown app; this server runs egg:swift#proxy",
            describe(app)
        ));
    }
    let mut filters: Vec<(String, Conf)> = Vec::new();
    for f in &pipeline.filters {
        if f.dist != "swift" || !FILTERS.iter().any(|(n, _)| *n == f.entry_point) {
            return Err(format!(
                "{}: unknown filter '{}'; this proxy supports {}",
                describe(f),
                f.entry_point,
                supported()
            ));
        }
        filters.push((f.entry_point.clone(), f.conf.clone()));
    }
    insert_required(&mut filters, &pipeline.global_conf, ctx.logger);
    let info = Rc::new(RefCell::new(SwiftInfo::default()));
    let mut service: Rc<dyn Service> = ProxyApp::new(&app.conf, ctx, info.clone())?;
    for (name, conf) in filters.iter().rev() {
        let factory = FILTERS
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, f)| *f)
            .ok_or_else(|| format!("unknown filter {name}"))?;
        service = factory(
            &FilterContext {
                conf,
                app: ctx,
                info: &info,
            },
            service,
        )?;
    }
    Ok(service)
}

/// Swift's `modify_wsgi_pipeline` for the filters we have.
fn insert_required(filters: &mut Vec<(String, Conf)>, global: &Conf, logger: &Logger) {
    let before: Vec<String> = filters.iter().map(|(n, _)| n.clone()).collect();
    for name in REQUIRED {
        if filters.iter().any(|(n, _)| n == name) {
            continue;
        }
        let at = match *name {
            "gatekeeper" if filters.first().is_some_and(|(n, _)| n == "catch_errors") => 1,
            _ => 0,
        };
        logger.notice(format_args!(
            "Adding required filter {name} to pipeline at position {at}"
        ));
        // Paste configures an inserted filter from the global conf alone.
        let values = global
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let conf = Conf::new(global.source(), format!("filter:{name}"), values);
        filters.insert(at, (name.to_string(), conf));
    }
    let after: Vec<String> = filters.iter().map(|(n, _)| n.clone()).collect();
    if after != before {
        let mut names = after;
        names.push("proxy".into());
        logger.notice(format_args!(
            "Pipeline was modified. New pipeline is \"{}\".",
            names.join(" ")
        ));
    }
}
