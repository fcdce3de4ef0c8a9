//! CORS as Swift's proxy does it (`cors_validation` and
//! `Controller.OPTIONS`): a preflight `OPTIONS` is answered from the
//! container's `X-Container-Meta-Access-Control-*` settings and the
//! proxy's `cors_allow_origin`; an actual request with `Origin` gets
//! `Access-Control-Allow-Origin` and `-Expose-Headers` on its response.

use std::collections::BTreeSet;

use swift_common::http::Response;

use crate::app::Settings;
use crate::info::ContainerInfo;

/// `is_origin_allowed`.
pub fn origin_allowed(settings: &Settings, info: &ContainerInfo, origin: &str) -> bool {
    let mut allowed: BTreeSet<&str> = BTreeSet::new();
    if let Some(a) = &info.cors_allow_origin {
        allowed.extend(a.split(' ').map(str::trim).filter(|s| !s.is_empty()));
    }
    allowed.extend(settings.cors_allow_origin.iter().map(String::as_str));
    allowed.contains(origin) || allowed.contains("*")
}

/// `cors_validation`'s work on a response to a request with `Origin`.
pub fn decorate(settings: &Settings, info: &ContainerInfo, origin: &str, resp: &mut Response) {
    if settings.strict_cors_mode && !origin_allowed(settings, info, origin) {
        return;
    }
    if !resp.headers.contains("access-control-expose-headers") {
        let mut expose: BTreeSet<String> = [
            "cache-control",
            "content-language",
            "content-type",
            "expires",
            "last-modified",
            "pragma",
            "etag",
            "x-timestamp",
            "x-trans-id",
            "x-openstack-request-id",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        expose.extend(settings.cors_expose_headers.iter().cloned());
        for (k, _) in resp.headers.iter() {
            let title = k.to_ascii_lowercase();
            if title.starts_with("x-container-meta") || title.starts_with("x-object-meta") {
                expose.insert(title);
            }
        }
        if let Some(e) = &info.cors_expose_headers {
            expose.extend(
                e.split(' ')
                    .map(|h| h.trim().to_ascii_lowercase())
                    .filter(|h| !h.is_empty()),
            );
        }
        let list: Vec<String> = expose.into_iter().collect();
        resp.headers
            .set("Access-Control-Expose-Headers", list.join(", "));
    }
    if !resp.headers.contains("access-control-allow-origin") {
        if info.cors_allow_origin.as_deref().map(str::trim) == Some("*") {
            resp.headers.set("Access-Control-Allow-Origin", "*");
        } else {
            resp.headers
                .set("Access-Control-Allow-Origin", origin.to_owned());
            let vary = match resp.headers.get("vary") {
                Some(v) => format!("{v}, Origin"),
                None => "Origin".to_owned(),
            };
            resp.headers.set("Vary", vary);
        }
    }
}

/// `Controller.OPTIONS`: `allowed` is the controller's method list;
/// `info` is `None` for an account (no CORS there).
pub fn options(
    settings: &Settings,
    allowed: &str,
    origin: Option<&str>,
    request_method: Option<&str>,
    request_headers: Option<&str>,
    info: Option<&ContainerInfo>,
) -> Response {
    let mut resp = crate::swob::status(200);
    resp.headers.set("Allow", allowed.to_owned());
    let (Some(origin), Some(info)) = (origin.filter(|o| !o.is_empty()), info) else {
        return resp;
    };
    let method_ok = request_method.is_some_and(|m| allowed.split(", ").any(|a| a == m));
    if !origin_allowed(settings, info, origin) || !method_ok {
        let mut r = crate::swob::status(401);
        r.headers.set("Allow", allowed.to_owned());
        return r;
    }
    // Swift replaces the response's headers with these: no Content-Type,
    // and `Vary: Origin` only when the origin is echoed.
    resp.headers.remove("content-type");
    let mut vary = Vec::new();
    if info.cors_allow_origin.as_deref().map(str::trim) == Some("*") {
        resp.headers.set("Access-Control-Allow-Origin", "*");
    } else {
        resp.headers
            .set("Access-Control-Allow-Origin", origin.to_owned());
        vary.push("Origin");
    }
    if let Some(age) = &info.cors_max_age {
        resp.headers.set("Access-Control-Max-Age", age.clone());
    }
    resp.headers
        .set("Access-Control-Allow-Methods", allowed.to_owned());
    let asked: BTreeSet<&str> = request_headers
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if !asked.is_empty() {
        let list: Vec<&str> = asked.into_iter().collect();
        resp.headers
            .set("Access-Control-Allow-Headers", list.join(", "));
        vary.push("Access-Control-Request-Headers");
    }
    if !vary.is_empty() {
        resp.headers.set("Vary", vary.join(", "));
    }
    resp
}
