//! `gatekeeper`: strips headers only Swift itself may set (sysmeta,
//! `X-Backend-*`, the legacy update headers) from requests and from
//! responses, and moves a client's `X-Timestamp` aside
//! (`shunt_inbound_x_timestamp`, default on).

use std::rc::Rc;

use swift_common::http::{Headers, Reply, Request, Service};
use swift_common::logging::Logger;

use crate::pipeline::FilterContext;

/// Prefixes (case-insensitive) of internal headers.
const PREFIXES: &[&str] = &[
    "x-account-sysmeta-",
    "x-container-sysmeta-",
    "x-object-sysmeta-",
    "x-object-transient-sysmeta-",
    "x-backend",
];

/// Whole names (case-insensitive) of the update headers that predate X-Backend.
const NAMES: &[&str] = &[
    "x-account-host",
    "x-account-device",
    "x-account-partition",
    "x-container-host",
    "x-container-device",
    "x-container-partition",
    "x-container-root-db-state",
    "x-delete-at-host",
    "x-delete-at-device",
    "x-delete-at-partition",
    "x-delete-at-container",
];

/// Whether `name` must never cross the proxy's edge.
pub fn is_internal(name: &str) -> bool {
    // Every internal name starts with "x-": most headers are out at once.
    let b = name.as_bytes();
    if b.len() < 7 || !b[0].eq_ignore_ascii_case(&b'x') || b[1] != b'-' {
        return false;
    }
    let starts = |p: &str| {
        name.len() >= p.len() && name.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
    };
    PREFIXES.iter().any(|p| starts(p)) || NAMES.iter().any(|n| name.eq_ignore_ascii_case(n))
}

pub struct Gatekeeper {
    next: Rc<dyn Service>,
    logger: Logger,
    shunt_x_timestamp: bool,
    allow_reserved_names_header: bool,
}

/// `egg:swift#gatekeeper`; reads `shunt_inbound_x_timestamp` (true) and
/// `allow_reserved_names_header` (false).
pub fn factory(ctx: &FilterContext<'_>, next: Rc<dyn Service>) -> Result<Rc<dyn Service>, String> {
    Ok(Rc::new(Gatekeeper {
        next,
        logger: ctx.logger("")?,
        shunt_x_timestamp: ctx.conf.get_bool("shunt_inbound_x_timestamp", true),
        allow_reserved_names_header: ctx.conf.get_bool("allow_reserved_names_header", false),
    }))
}

fn strip(headers: &mut Headers) -> Vec<String> {
    let mut removed = Vec::new();
    headers.retain(|name| {
        let internal = is_internal(name);
        if internal {
            removed.push(name.to_owned());
        }
        !internal
    });
    removed
}

impl Service for Gatekeeper {
    fn call(&self, mut req: Request) -> Reply<'_> {
        let removed = strip(&mut req.headers);
        if !removed.is_empty() {
            self.logger
                .debug(format_args!("removed request headers: {removed:?}"));
        }
        if self.shunt_x_timestamp
            && let Some(ts) = req.headers.get("x-timestamp").map(str::to_owned)
        {
            req.headers.remove("x-timestamp");
            req.headers.set("X-Backend-Inbound-X-Timestamp", ts.clone());
            self.logger.debug(format_args!(
                "shunted request headers: [('X-Timestamp', {ts:?})]"
            ));
        }
        if self.allow_reserved_names_header
            && let Some(v) = req.headers.get("x-allow-reserved-names").map(str::to_owned)
        {
            req.headers.remove("x-allow-reserved-names");
            req.headers.set("X-Backend-Allow-Reserved-Names", v);
        }
        self.next.call(req).map(move |mut resp| {
            let removed = strip(&mut resp.headers);
            if !removed.is_empty() {
                self.logger
                    .debug(format_args!("removed response headers: {removed:?}"));
            }
            resp
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::tests::{Echo, block_on, test_logger};

    #[test]
    fn internal_header_names_match_swifts_patterns() {
        for yes in [
            "X-Backend-Foo",
            "x-backendx",
            "X-Object-Sysmeta-A",
            "X-Account-Host",
            "x-delete-at-container",
        ] {
            assert!(is_internal(yes), "{yes}");
        }
        for no in [
            "X-Account-Hosts",
            "X-Object-Meta-A",
            "X-Container-Read",
            "Content-Type",
            "X-Back",
        ] {
            assert!(!is_internal(no), "{no}");
        }
    }

    #[test]
    fn strips_requests_and_responses_and_shunts_x_timestamp() {
        let g = Gatekeeper {
            next: Rc::new(Echo),
            logger: test_logger(),
            shunt_x_timestamp: true,
            allow_reserved_names_header: false,
        };
        let mut req = Request::new("PUT", "/v1/a/c/o");
        req.headers.append("X-Backend-Storage-Policy-Index", "1");
        req.headers.append("X-Object-Sysmeta-Secret", "s");
        req.headers.append("X-Timestamp", "123.45");
        req.headers.append("X-Object-Meta-Ok", "y");
        let resp = block_on(g.call(req).resolve());
        // Echo copies request headers into the response, then adds an
        // internal one that must be stripped on the way out too.
        let names: Vec<&str> = resp.headers.iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["X-Object-Meta-Ok"], "{names:?}");
        let g2 = Gatekeeper {
            next: Rc::new(crate::middleware::tests::Inspect),
            logger: test_logger(),
            shunt_x_timestamp: true,
            allow_reserved_names_header: false,
        };
        let mut req = Request::new("PUT", "/v1/a/c/o");
        req.headers.append("X-Timestamp", "123.45");
        let resp = block_on(g2.call(req).resolve());
        assert_eq!(
            resp.headers.get("Seen-X-Backend-Inbound-X-Timestamp"),
            Some("123.45")
        );
        assert_eq!(resp.headers.get("Seen-X-Timestamp"), None);
    }
}
