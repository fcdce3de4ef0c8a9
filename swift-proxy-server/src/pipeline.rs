//! Build the served chain from `[pipeline:main]`: resolve each component's
//! `use = egg:swift#<name>` to a factory, insert the filters Swift requires
//! (`catch_errors` first, `gatekeeper` after it, `dlo` after auth) when the
//! config leaves them out, and wrap the app from the inside out.
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
use crate::middleware::{catch_errors, dlo, gatekeeper, healthcheck, proxy_logging};

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
    ("dlo", dlo::factory),
    ("gatekeeper", gatekeeper::factory),
    ("healthcheck", healthcheck::factory),
    ("proxy_logging", proxy_logging::factory),
];

/// Swift's `required_filters` that we implement, in Swift's order (they are
/// inserted in reverse): each goes right after the last of its `after`
/// filters present in the pipeline, else first.
const REQUIRED: &[(&str, &[&str])] = &[
    ("catch_errors", &[]),
    // Only when the pipeline starts with catch_errors (see `afters`).
    ("gatekeeper", &["catch_errors"]),
    (
        "dlo",
        &[
            "copy",
            "staticweb",
            "tempauth",
            "keystoneauth",
            "catch_errors",
            "gatekeeper",
            "proxy_logging",
        ],
    ),
];

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
    let app_name = app.conf.section().strip_prefix("app:").unwrap_or("proxy");
    insert_required(&mut filters, &pipeline.global_conf, ctx.logger, app_name);
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

/// A required filter's `after_fn` applied to the pipeline as it is now.
fn afters<'a>(name: &str, after: &'a [&'a str], filters: &[(String, Conf)]) -> &'a [&'a str] {
    match name {
        "gatekeeper" if filters.first().is_none_or(|(n, _)| n != "catch_errors") => &[],
        _ => after,
    }
}

/// A filter as `str(pipeline)` shows it: the name it has in the pipeline
/// line (its section's), the entry point for an inserted one.
fn display_name(name: &str, conf: &Conf) -> String {
    conf.section()
        .strip_prefix("filter:")
        .unwrap_or(name)
        .to_owned()
}

/// Swift's `modify_wsgi_pipeline` for the filters we have.
fn insert_required(filters: &mut Vec<(String, Conf)>, global: &Conf, logger: &Logger, app: &str) {
    let mut modified = false;
    for (name, after) in REQUIRED.iter().rev() {
        if filters.iter().any(|(n, _)| n == name) {
            continue;
        }
        let at = afters(name, after, filters)
            .iter()
            .filter_map(|a| filters.iter().position(|(n, _)| n == a))
            .map(|i| i + 1)
            .max()
            .unwrap_or(0);
        logger.info(format_args!(
            "Adding required filter {name} to pipeline at position {at}"
        ));
        // Paste configures an inserted filter from the global conf alone.
        let values = global
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let conf = Conf::new(global.source(), format!("filter:{name}"), values);
        filters.insert(at, (name.to_string(), conf));
        modified = true;
    }
    let mut names: Vec<String> = filters.iter().map(|(n, c)| display_name(n, c)).collect();
    names.push(app.to_owned());
    if modified {
        logger.info(format_args!(
            "Pipeline was modified. New pipeline is \"{}\".",
            names.join(" ")
        ));
    } else {
        logger.debug(format_args!("Pipeline is \"{}\"", names.join(" ")));
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    /// Insert the required filters into `pipeline` (section names; the
    /// entry point is the name with `-` as `_`): the names after, and the
    /// lines logged.
    fn insert(pipeline: &str) -> (String, Vec<String>) {
        let log = tempfile::NamedTempFile::new().expect("temp file");
        let logger = Logger::console_only("proxy-server", Some(log.reopen().expect("reopen")));
        let mut filters: Vec<(String, Conf)> = pipeline
            .split_whitespace()
            .map(|n| {
                let conf = Conf::from_pairs("p.conf", format!("filter:{n}"), &[]);
                (n.replace('-', "_"), conf)
            })
            .collect();
        let global = Conf::from_pairs("p.conf", "DEFAULT", &[]);
        insert_required(&mut filters, &global, &logger, "proxy-server");
        let mut text = String::new();
        log.reopen()
            .expect("reopen")
            .read_to_string(&mut text)
            .expect("read");
        let names: Vec<String> = filters.iter().map(|(n, c)| display_name(n, c)).collect();
        (names.join(" "), text.lines().map(str::to_owned).collect())
    }

    #[test]
    fn required_filters_go_where_swift_puts_them() {
        let (names, log) = insert("catch_errors gatekeeper healthcheck proxy-logging");
        assert_eq!(
            names,
            "catch_errors gatekeeper healthcheck proxy-logging dlo"
        );
        assert_eq!(
            log,
            [
                "proxy-server: Adding required filter dlo to pipeline at position 4",
                "proxy-server: Pipeline was modified. New pipeline is \"catch_errors gatekeeper healthcheck proxy-logging dlo proxy-server\".",
            ]
        );
        // Reversed order: dlo first (nothing to follow), then gatekeeper
        // (the pipeline does not start with catch_errors), then catch_errors.
        let (names, log) = insert("healthcheck");
        assert_eq!(names, "catch_errors gatekeeper dlo healthcheck");
        assert_eq!(
            &log[..3],
            [
                "proxy-server: Adding required filter dlo to pipeline at position 0",
                "proxy-server: Adding required filter gatekeeper to pipeline at position 0",
                "proxy-server: Adding required filter catch_errors to pipeline at position 0",
            ]
        );
        let (names, _) = insert("gatekeeper healthcheck");
        assert_eq!(names, "catch_errors gatekeeper dlo healthcheck");
        let (names, log) = insert("catch_errors proxy-logging dlo");
        assert_eq!(names, "catch_errors gatekeeper proxy-logging dlo");
        assert_eq!(
            log[0],
            "proxy-server: Adding required filter gatekeeper to pipeline at position 1"
        );
        // Nothing missing: nothing said above debug.
        let (_, log) = insert("catch_errors gatekeeper dlo");
        assert!(log.is_empty(), "{log:?}");
    }
}
