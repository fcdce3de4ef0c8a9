//! The proxy app at the end of the pipeline (`egg:swift#proxy`).
//!
//! It serves `/info` (Swift's capabilities document, listing only what this
//! proxy implements; `expose_info`, `disallowed_sections`) and answers every
//! other path the way Swift's proxy routes it: 404 for a path that cannot be
//! split, 412 `Bad URL` without an account, 400 for an unknown API version,
//! 412 for a path that is not UTF-8 or holds NUL. Account, container and
//! object requests get a clear 503 until the storage API is implemented.

use std::rc::Rc;

use swift_common::config::Conf;
use swift_common::config::swift_conf::json_string;
use swift_common::http::{Reply, Request, Response, Service};
use swift_common::wsgi::AppContext;

pub struct Proxy {
    info: String,
    expose_info: bool,
}

const HTML: &str = "text/html; charset=UTF-8";

/// The body swob gives an error response of this status.
fn swob_error(status: u16) -> Response {
    let (title, text) = match status {
        400 => (
            "Bad Request",
            "The server could not comply with the request since it is either malformed or otherwise incorrect.",
        ),
        403 => ("Forbidden", "Access was denied to this resource."),
        404 => ("Not Found", "The resource could not be found."),
        _ => (
            "Service Unavailable",
            "The server is currently unavailable. Please try again at a later time.",
        ),
    };
    Response::with_body(
        status,
        HTML,
        format!("<html><h1>{title}</h1><p>{text}</p></html>"),
    )
}

impl Proxy {
    /// Build from `[app:proxy-server]`: `expose_info` (true),
    /// `disallowed_sections` (comma-separated, `section` or `section.key`).
    pub fn new(conf: &Conf, ctx: &AppContext<'_>) -> Result<Rc<Proxy>, String> {
        let disallowed: Vec<String> = conf
            .get_or("disallowed_sections", "")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let c = &ctx.swift_conf.constraints;
        // What this proxy really enforces or is: its version and the two
        // request limits its HTTP server applies.
        let swift: Vec<(&str, String)> = vec![
            ("version", json_string(env!("CARGO_PKG_VERSION"))),
            ("max_header_size", c.max_header_size.to_string()),
            ("max_request_line", c.max_request_line.to_string()),
        ];
        let allowed = |key: &str| {
            !disallowed
                .iter()
                .any(|d| d == "swift" || d == &format!("swift.{key}"))
        };
        let mut info = String::from("{");
        if !disallowed.iter().any(|d| d == "swift") {
            info.push_str("\"swift\": {");
            let body: Vec<String> = swift
                .iter()
                .filter(|(k, _)| allowed(k))
                .map(|(k, v)| format!("{}: {v}", json_string(k)))
                .collect();
            info.push_str(&body.join(", "));
            info.push('}');
        }
        info.push('}');
        Ok(Rc::new(Proxy {
            info,
            expose_info: conf.get_bool("expose_info", true),
        }))
    }

    fn info(&self, req: &Request) -> Response {
        match &*req.method {
            "GET" | "HEAD" if self.expose_info => {
                Response::with_body(200, "application/json; charset=UTF-8", self.info.clone())
            }
            "GET" | "HEAD" => swob_error(403),
            "OPTIONS" => {
                let mut r = Response::with_body(200, HTML, "");
                r.headers.append("Allow", "GET, HEAD, OPTIONS");
                r
            }
            _ => {
                let mut r = Response::with_body(
                    405,
                    HTML,
                    "<html><h1>Method Not Allowed</h1><p>The method is not allowed for this resource.</p></html>",
                );
                r.headers.append("Allow", "GET, HEAD, OPTIONS");
                r
            }
        }
    }

    fn route(&self, req: &Request) -> Response {
        let path_info = req.path_info();
        // check_utf8: the decoded path must be UTF-8 without NUL.
        let bytes: Vec<u8> = path_info
            .chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap_or(0))
            .collect();
        match std::str::from_utf8(&bytes) {
            Ok(s) if !s.contains('\0') => {}
            _ => return Response::with_body(412, HTML, "Invalid UTF8 or contains NULL"),
        }
        if path_info == "/info" {
            return self.info(req);
        }
        // Swift's split_path(path, 1, 4, rest_with_last=True).
        let segs: Vec<&str> = path_info.splitn(5, '/').collect();
        if !segs[0].is_empty() || segs.len() < 2 || segs[1].is_empty() {
            return swob_error(404);
        }
        let version = segs[1];
        let account = segs.get(2).copied().unwrap_or("");
        if account.is_empty() {
            return Response::with_body(412, HTML, "Bad URL");
        }
        if !matches!(version, "v1" | "v1.0") {
            return swob_error(400);
        }
        let mut r = Response::with_body(
            503,
            HTML,
            "<html><h1>Service Unavailable</h1><p>This proxy does not serve account, container or object \
             requests yet.</p></html>",
        );
        r.headers.append("Retry-After", "60");
        r
    }
}

impl Service for Proxy {
    fn call(&self, req: Request) -> Reply<'_> {
        Reply::Ready(self.route(&req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy() -> Proxy {
        Proxy {
            info: "{\"swift\": {}}".into(),
            expose_info: true,
        }
    }

    #[test]
    fn routes_like_swifts_proxy() {
        let p = proxy();
        let status = |path: &str| p.route(&Request::new("GET", path)).status;
        assert_eq!(status("/"), 404);
        assert_eq!(status("/foo"), 412);
        assert_eq!(status("/v1"), 412);
        assert_eq!(status("/v1/"), 412);
        assert_eq!(status("/v2/a"), 400);
        assert_eq!(status("/v1/a"), 503);
        assert_eq!(status("/v1.0/a/c/o/p"), 503);
        assert_eq!(status("/info"), 200);
        assert_eq!(status("/v1/a%00"), 412);
        assert_eq!(status("/v1/a%FF"), 412);
        assert_eq!(p.route(&Request::new("PUT", "/info")).status, 405);
    }

    #[test]
    fn info_can_be_hidden() {
        let p = Proxy {
            expose_info: false,
            ..proxy()
        };
        assert_eq!(p.route(&Request::new("GET", "/info")).status, 403);
    }
}
