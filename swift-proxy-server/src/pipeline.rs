//! Build the served chain from `[pipeline:main]`: resolve each component's
//! `use = egg:swift#<name>` to a factory, insert the filters Swift requires
//! (`catch_errors` first, `gatekeeper` after it, `listing_formats` after
//! those and `proxy_logging`, `copy` and `dlo` after auth) when the config
//! leaves them out, and wrap the app from the inside out.
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
use crate::middleware::{
    cache, catch_errors, copy, dlo, gatekeeper, healthcheck, listing_formats, proxy_logging,
};

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
    ("copy", copy::factory),
    ("dlo", dlo::factory),
    ("gatekeeper", gatekeeper::factory),
    ("healthcheck", healthcheck::factory),
    ("listing_formats", listing_formats::factory),
    ("proxy_logging", proxy_logging::factory),
    ("memcache", cache::factory),
    ("tempauth", crate::middleware::tempauth::factory),
];

/// Swift's `required_filters` (proxy/server.py), in its order: each filter
/// goes right after the last of its "after" filters present in the
/// pipeline, or first. Those this proxy does not implement
/// (versioned_writes) are skipped.
const REQUIRED: &[(&str, AfterFn)] = &[
    ("catch_errors", |_| &[]),
    ("gatekeeper", |pipe| {
        if pipe
            .first()
            .is_some_and(|f| f.entry_point == "catch_errors")
        {
            &["catch_errors"]
        } else {
            &[]
        }
    }),
    ("listing_formats", |_| {
        &["catch_errors", "gatekeeper", "proxy_logging", "memcache"]
    }),
    ("copy", |_| {
        &[
            "staticweb",
            "tempauth",
            "keystoneauth",
            "catch_errors",
            "gatekeeper",
            "proxy_logging",
        ]
    }),
    ("dlo", |_| {
        &[
            "copy",
            "staticweb",
            "tempauth",
            "keystoneauth",
            "catch_errors",
            "gatekeeper",
            "proxy_logging",
        ]
    }),
    ("versioned_writes", |_| {
        &[
            "slo",
            "dlo",
            "copy",
            "staticweb",
            "tempauth",
            "keystoneauth",
            "catch_errors",
            "gatekeeper",
            "proxy_logging",
        ]
    }),
];

/// Which filters a required filter goes after, given the pipeline.
type AfterFn = fn(&[Filter]) -> &'static [&'static str];

/// A filter of the pipeline being built.
struct Filter {
    /// The name shown in the pipeline (as written, or the entry point of an
    /// inserted filter).
    name: String,
    entry_point: String,
    conf: Conf,
}

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
    let mut filters: Vec<Filter> = Vec::new();
    for f in &pipeline.filters {
        if f.dist != "swift" || !FILTERS.iter().any(|(n, _)| *n == f.entry_point) {
            return Err(format!(
                "{}: unknown filter '{}'; this proxy supports {}",
                describe(f),
                f.entry_point,
                supported()
            ));
        }
        filters.push(Filter {
            name: f.name.clone(),
            entry_point: f.entry_point.clone(),
            conf: f.conf.clone(),
        });
    }
    insert_required(&mut filters, &app.name, &pipeline.global_conf, ctx.logger);
    let info = Rc::new(RefCell::new(SwiftInfo::default()));
    let mut service: Rc<dyn Service> = ProxyApp::new(&app.conf, ctx, info.clone())?;
    for f in filters.iter().rev() {
        let factory = FILTERS
            .iter()
            .find(|(n, _)| *n == f.entry_point)
            .map(|(_, f)| *f)
            .ok_or_else(|| format!("unknown filter {}", f.entry_point))?;
        service = factory(
            &FilterContext {
                conf: &f.conf,
                app: ctx,
                info: &info,
            },
            service,
        )?;
    }
    Ok(service)
}

/// Swift's `modify_wsgi_pipeline` for the filters we have: the required
/// filters in reverse order, each missing one inserted after its "after"
/// filters, logged as Swift logs it (INFO).
fn insert_required(filters: &mut Vec<Filter>, app_name: &str, global: &Conf, logger: &Logger) {
    let mut modified = false;
    for (name, after) in REQUIRED.iter().rev() {
        if !FILTERS.iter().any(|(n, _)| n == name) || filters.iter().any(|f| f.entry_point == *name)
        {
            continue;
        }
        let at = after(filters)
            .iter()
            .filter_map(|a| filters.iter().position(|f| f.entry_point == *a))
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
        filters.insert(
            at,
            Filter {
                name: name.to_string(),
                entry_point: name.to_string(),
                conf,
            },
        );
        modified = true;
    }
    let mut names: Vec<&str> = filters.iter().map(|f| f.name.as_str()).collect();
    names.push(app_name);
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
    use std::collections::BTreeMap;

    use swift_common::logging::{Level, LogConfig, Target};

    use super::*;

    /// Insert the required filters into `pipeline` (name, entry point);
    /// the resulting names and the log lines.
    fn required(pipeline: &[(&str, &str)]) -> (Vec<String>, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let cfg = LogConfig {
            name: "proxy-server".into(),
            level: Level::Debug,
            facility: 16,
            max_line_length: 0,
            target: Target::File(path.clone()),
        };
        let logger = Logger::open(&cfg, None).unwrap();
        let global = Conf::new("/etc/swift/proxy-server.conf", "DEFAULT", BTreeMap::new());
        let mut filters: Vec<Filter> = pipeline
            .iter()
            .map(|(name, ep)| Filter {
                name: name.to_string(),
                entry_point: ep.to_string(),
                conf: global.clone(),
            })
            .collect();
        insert_required(&mut filters, "proxy-server", &global, &logger);
        let log = std::fs::read_to_string(&path).unwrap();
        let lines = log
            .lines()
            .map(|l| l.split_once("proxy-server: ").unwrap().1.to_owned())
            .collect();
        (filters.into_iter().map(|f| f.name).collect(), lines)
    }

    // The expectations are what Swift 2.38.3's modify_wsgi_pipeline logs
    // for these pipelines, with required_filters cut to the filters this
    // proxy implements.
    #[test]
    fn required_filters_go_where_swift_puts_them() {
        let (names, log) = required(&[]);
        assert_eq!(
            names,
            [
                "catch_errors",
                "gatekeeper",
                "listing_formats",
                "copy",
                "dlo"
            ]
        );
        assert_eq!(
            log,
            [
                "Adding required filter dlo to pipeline at position 0",
                "Adding required filter copy to pipeline at position 0",
                "Adding required filter listing_formats to pipeline at position 0",
                "Adding required filter gatekeeper to pipeline at position 0",
                "Adding required filter catch_errors to pipeline at position 0",
                "Pipeline was modified. New pipeline is \"catch_errors gatekeeper listing_formats copy dlo proxy-server\".",
            ]
        );
        let (names, log) = required(&[
            ("catch_errors", "catch_errors"),
            ("gatekeeper", "gatekeeper"),
            ("healthcheck", "healthcheck"),
            ("proxy-logging", "proxy_logging"),
            ("cache", "memcache"),
        ]);
        assert_eq!(
            names,
            [
                "catch_errors",
                "gatekeeper",
                "healthcheck",
                "proxy-logging",
                "copy",
                "dlo",
                "cache",
                "listing_formats"
            ]
        );
        assert_eq!(
            log,
            [
                "Adding required filter dlo to pipeline at position 4",
                "Adding required filter copy to pipeline at position 4",
                "Adding required filter listing_formats to pipeline at position 7",
                "Pipeline was modified. New pipeline is \"catch_errors gatekeeper healthcheck proxy-logging copy dlo cache listing_formats proxy-server\".",
            ]
        );
        let (_, log) = required(&[
            ("healthcheck", "healthcheck"),
            ("catch_errors", "catch_errors"),
        ]);
        assert_eq!(
            log,
            [
                "Adding required filter dlo to pipeline at position 2",
                "Adding required filter copy to pipeline at position 2",
                "Adding required filter listing_formats to pipeline at position 2",
                "Adding required filter gatekeeper to pipeline at position 0",
                "Pipeline was modified. New pipeline is \"gatekeeper healthcheck catch_errors listing_formats copy dlo proxy-server\".",
            ]
        );
        let (_, log) = required(&[
            ("proxy-logging", "proxy_logging"),
            ("healthcheck", "healthcheck"),
            ("proxy-logging", "proxy_logging"),
        ]);
        assert_eq!(
            log.last().unwrap(),
            "Pipeline was modified. New pipeline is \"catch_errors gatekeeper proxy-logging listing_formats copy dlo healthcheck proxy-logging proxy-server\"."
        );
        assert_eq!(
            log[0],
            "Adding required filter dlo to pipeline at position 1"
        );
        let (names, log) = required(&[
            ("catch_errors", "catch_errors"),
            ("gatekeeper", "gatekeeper"),
            ("formats", "listing_formats"),
        ]);
        assert_eq!(
            names,
            ["catch_errors", "gatekeeper", "copy", "dlo", "formats"]
        );
        assert_eq!(
            log,
            [
                "Adding required filter dlo to pipeline at position 2",
                "Adding required filter copy to pipeline at position 2",
                "Pipeline was modified. New pipeline is \"catch_errors gatekeeper copy dlo formats proxy-server\".",
            ]
        );
    }
}
