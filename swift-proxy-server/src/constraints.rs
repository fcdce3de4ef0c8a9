//! Swift's request checks (`swift/common/constraints.py` and the proxy's
//! parts of `request_helpers.py`): path splitting, UTF-8 of names,
//! metadata limits, object creation rules, `X-Delete-At`/`X-Delete-After`,
//! listing parameters. Each refusal is the response Swift sends, body and
//! content type included.
//!
//! Pure functions of the request and the constraints: no I/O here.

use swift_common::config::Constraints;
use swift_common::http::quote::{parse_qsl, wsgi_bytes, wsgi_to_str};
use swift_common::http::{Headers, Response};
use swift_common::timestamp::{Timestamp, normalize_delete_at_timestamp};

use crate::swob;

/// Swift's `split_path(path, minsegs, maxsegs, rest_with_last)`: the
/// `maxsegs` segments of `path` (`None` for those absent), at least
/// `minsegs` of them present and not empty; with `rest_with_last` the last
/// one keeps any further slashes. `None` where Swift raises `ValueError`
/// (a path not from the root, too few or too many segments, an empty one
/// before the last). The segments are borrowed from `path`.
pub fn split_path(
    path: &str,
    minsegs: usize,
    maxsegs: usize,
    rest_with_last: bool,
) -> Option<Vec<Option<&str>>> {
    let (min, max) = (minsegs + 1, maxsegs + 1);
    let segs: Vec<&str> = if rest_with_last {
        path.splitn(max, '/').collect()
    } else {
        path.splitn(max + 1, '/').collect()
    };
    let count = segs.len();
    let too_many = if rest_with_last {
        count > max
    } else {
        count > max + 1 || (count == max + 1 && !segs[max].is_empty())
    };
    if !segs[0].is_empty() || count < min || too_many || segs[1..min].contains(&"") {
        return None;
    }
    let segs = &segs[1..count.min(max)];
    if segs[..segs.len() - 1].contains(&"") {
        return None;
    }
    let mut out = Vec::with_capacity(maxsegs);
    out.extend(segs.iter().map(|s| Some(*s)));
    out.resize(maxsegs, None);
    Some(out)
}

/// The proxy's `split_path(path, 1, 4, rest_with_last=True)` of a WSGI
/// path: `(version, account, container, object)`, empty strings for the
/// parts absent (the object keeps its slashes; `/v1/a/` has no container).
pub fn split_api_path(path: &str) -> Option<(String, String, String, String)> {
    let mut segs = split_path(path, 1, 4, true)?
        .into_iter()
        .map(|s| s.unwrap_or_default().to_owned());
    let mut next = || segs.next().unwrap_or_default();
    Some((next(), next(), next(), next()))
}

/// Swift's `check_utf8` of a WSGI string: its bytes are UTF-8, not empty,
/// without NUL (reserved) unless `internal`, no surrogates.
pub fn check_utf8(wsgi: &str, internal: bool) -> bool {
    if wsgi.is_empty() {
        return false;
    }
    let bytes = wsgi_bytes(wsgi);
    let Ok(s) = std::str::from_utf8(&bytes) else {
        return false;
    };
    internal || !s.contains('\0')
}

/// `valid_api_version`.
pub fn valid_api_version(version: &str, constraints: &Constraints) -> bool {
    constraints.valid_api_versions.iter().any(|v| v == version)
}

fn text_400(body: impl Into<bytes::Bytes>) -> Response {
    swob::plain(400, body)
}

/// `check_metadata(req, target_type)`.
pub fn check_metadata(headers: &Headers, target: &str, c: &Constraints) -> Option<Response> {
    let prefix = format!("x-{target}-meta-");
    let mut count = 0i64;
    let mut size = 0i64;
    for (key, value) in headers.iter() {
        if value.chars().count() as i64 > c.max_header_size as i64 {
            let name: String = py_title(key)
                .chars()
                .take(c.max_meta_name_length as usize)
                .collect();
            let mut body = b"Header value too long: ".to_vec();
            body.extend(wsgi_bytes(&name));
            return Some(text_400(body));
        }
        let lower = key.to_ascii_lowercase();
        let Some(name) = lower.strip_prefix(&prefix) else {
            continue;
        };
        let orig_name = &key[key.len() - name.len()..];
        // Messages name it as swob's headers do: title-cased.
        let shown = || format!("{prefix}{}", py_title(orig_name));
        if name.is_empty() {
            return Some(text_400("Metadata name cannot be empty"));
        }
        let bad_key = wsgi_to_str(orig_name).is_none_or(|s| s.contains('\0'));
        let bad_value = !value.is_empty() && wsgi_to_str(value).is_none_or(|s| s.contains('\0'));
        if (target == "account" || target == "container") && (bad_key || bad_value) {
            return Some(text_400("Metadata must be valid UTF-8"));
        }
        count += 1;
        size += (orig_name.chars().count() + value.chars().count()) as i64;
        if orig_name.chars().count() as i64 > c.max_meta_name_length {
            let mut body = b"Metadata name too long: ".to_vec();
            body.extend(wsgi_bytes(&shown()));
            return Some(text_400(body));
        }
        if value.chars().count() as i64 > c.max_meta_value_length {
            let mut body =
                format!("Metadata value longer than {}: ", c.max_meta_value_length).into_bytes();
            body.extend(wsgi_bytes(&shown()));
            return Some(text_400(body));
        }
        if count > c.max_meta_count {
            return Some(text_400(format!(
                "Too many metadata items; max {}",
                c.max_meta_count
            )));
        }
        if size > c.max_meta_overall_size {
            return Some(text_400(format!(
                "Total metadata too large; max {}",
                c.max_meta_overall_size
            )));
        }
    }
    None
}

/// Python's `str.title()`: how header names come out of swob's
/// `req.headers` (from the WSGI environ), so Swift's messages show them
/// (`X-Object-Meta-Color` whatever case the client sent).
fn py_title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_cased = false;
    for ch in s.chars() {
        let cased = ch.is_lowercase() || ch.is_uppercase();
        if !cased {
            out.push(ch);
        } else if prev_cased {
            out.extend(ch.to_lowercase());
        } else {
            out.extend(ch.to_uppercase());
        }
        prev_cased = cased;
    }
    out
}

/// `check_delete_headers`: turn `X-Delete-After` into `X-Delete-At` and
/// check both against `now` (the request's `X-Timestamp`).
pub fn check_delete_headers(headers: &mut Headers, now: Timestamp) -> Result<(), Response> {
    let now = now.secs();
    if let Some(after) = headers.get("x-delete-after").map(str::to_owned) {
        let Some(after) = python_int(&after) else {
            return Err(text_400("Non-integer X-Delete-After"));
        };
        let at = normalize_delete_at_timestamp(now + after as f64);
        if at.parse::<f64>().unwrap_or(0.0) <= now {
            return Err(text_400("X-Delete-After in past"));
        }
        headers.set("X-Delete-At", at);
        headers.remove("x-delete-after");
    }
    if let Some(at) = headers.get("x-delete-at").map(str::to_owned) {
        let Some(at) = python_int(&at) else {
            return Err(text_400("Non-integer X-Delete-At"));
        };
        let at: i64 = normalize_delete_at_timestamp(at as f64)
            .parse()
            .unwrap_or(0);
        let replication = headers
            .get("x-backend-replication")
            .is_some_and(swift_common::config::values::config_true_value);
        if (at as f64) <= now && !replication {
            return Err(text_400("X-Delete-At in past"));
        }
    }
    Ok(())
}

/// Python's `int(str)`: optional sign and surrounding whitespace, digits
/// with optional single underscores between them; values beyond `i64`
/// are clamped (every caller clamps to a timestamp range anyway).
pub fn python_int(s: &str) -> Option<i64> {
    swift_common::config::values::python_int_saturating(s)
}

/// `check_object_creation(req, object_name)`: length, name, content type,
/// expiry headers and metadata of an object PUT. `object_name` is a str.
pub fn check_object_creation(
    headers: &mut Headers,
    content_length: Option<u64>,
    object_name: &str,
    now: Timestamp,
    c: &Constraints,
) -> Option<Response> {
    if let Some(te) = headers.get("transfer-encoding") {
        let encodings: Vec<&str> = te.split(',').collect();
        if encodings.len() > 1 {
            return Some(swob::plain(
                501,
                "Unsupported Transfer-Coding header value specified in Transfer-Encoding header",
            ));
        }
        if !encodings[0].trim().eq_ignore_ascii_case("chunked") {
            return Some(text_400("Invalid Transfer-Encoding header value"));
        }
    } else if let Some(len) = content_length
        && len as i64 > c.max_file_size
    {
        return Some(swob::plain(413, "Your request is too large."));
    }
    let chunked = headers.get("transfer-encoding") == Some("chunked");
    if !headers.contains("content-length") && !chunked {
        return Some(swob::plain(411, "Missing Content-Length header."));
    }
    let name_len = object_name.chars().count() as i64;
    if name_len > c.max_object_name_length {
        return Some(text_400(format!(
            "Object name length of {name_len} longer than {}",
            c.max_object_name_length
        )));
    }
    if !headers.contains("content-type") {
        return Some(text_400("No content type"));
    }
    if let Err(resp) = check_delete_headers(headers, now) {
        return Some(resp);
    }
    let ct = headers.get("content-type").unwrap_or("");
    if !check_utf8(ct, false) {
        return Some(text_400("Invalid Content-Type"));
    }
    check_metadata(headers, "object", c)
}

/// The proxy's `check_content_type`: no `swift_*` parameters.
pub fn check_content_type(headers: &Headers) -> Option<Response> {
    let ct = headers.get("content-type").unwrap_or("");
    if ct.contains(';')
        && ct
            .split(';')
            .skip(1)
            .any(|p| p.trim_start().starts_with("swift_"))
    {
        return Some(swob::html(
            400,
            "Invalid Content-Type, swift_* is not a valid parameter name.",
        ));
    }
    None
}

/// The query's parameters (WSGI strings), in order.
pub fn params(query: Option<&str>) -> Vec<(String, String)> {
    query.map(parse_qsl).unwrap_or_default()
}

/// The last value of a parameter (swob's `req.params` is a dict: later
/// values win).
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `get_param`'s UTF-8 check for `names`: 400 `"<name>" parameter not
/// valid UTF-8` for the first one that is not.
pub fn validate_params(params: &[(String, String)], names: &[&str]) -> Option<Response> {
    for name in names {
        if let Some(v) = param(params, name)
            && !v.is_empty()
            && wsgi_to_str(v).is_none()
        {
            return Some(text_400(format!("\"{name}\" parameter not valid UTF-8")));
        }
    }
    None
}

/// `constrain_req_limit`: 412 `Maximum limit is N` past the limit.
pub fn constrain_req_limit(params: &[(String, String)], limit: i64) -> Option<Response> {
    if let Some(given) = param(params, "limit")
        && !given.is_empty()
        && given.bytes().all(|b| b.is_ascii_digit())
        && given.parse::<i64>().map_or(true, |n| n > limit)
    {
        return Some(swob::html(412, format!("Maximum limit is {limit}")));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c() -> Constraints {
        Constraints::default()
    }

    #[test]
    fn split_path_like_swift() {
        let s = |p: &str| split_api_path(p);
        assert_eq!(s("/v1/a/c/o/p").unwrap().3, "o/p");
        assert_eq!(s("/v1/a").unwrap().1, "a");
        assert_eq!(s("/v1/a/").unwrap().2, "");
        assert!(s("/v1//c").is_none());
        assert!(s("/v1/a//o").is_none());
        assert!(s("/v1/a//").is_none());
        assert_eq!(s("/v1/").unwrap().1, "");
        assert_eq!(s("/v1/a/c/").unwrap().3, "");
        assert_eq!(s("/v1/a/c//o").unwrap().3, "/o");
        assert!(s("//a").is_none());
        assert!(s("/").is_none());
        assert!(s("v1/a").is_none());
    }

    #[test]
    fn metadata_limits() {
        let mut h = Headers::new();
        h.append("X-Object-Meta-", "x");
        assert!(check_metadata(&h, "object", &c()).is_some());
        let mut h = Headers::new();
        h.append(format!("X-Object-Meta-{}", "a".repeat(129)), "x");
        let r = check_metadata(&h, "object", &c()).unwrap();
        assert_eq!(r.status, 400);
        let mut h = Headers::new();
        for i in 0..91 {
            h.append(format!("X-Object-Meta-{i}"), "v");
        }
        assert!(check_metadata(&h, "object", &c()).is_some());
        let mut h = Headers::new();
        h.append("X-Container-Meta-A", "\u{ff}");
        assert!(check_metadata(&h, "container", &c()).is_some());
        assert!(check_metadata(&h, "object", &c()).is_none());
    }

    #[test]
    fn metadata_messages_title_case_names() {
        let mut h = Headers::new();
        h.append(format!("x-object-meta-{}", "n".repeat(129)), "v");
        let r = check_metadata(&h, "object", &c()).unwrap();
        let swift_common::http::ResponseBody::Full(body) = r.body else {
            panic!("a full body");
        };
        assert_eq!(
            &body[..],
            format!("Metadata name too long: x-object-meta-N{}", "n".repeat(128)).as_bytes()
        );
        assert_eq!(py_title("big-2x_y é"), "Big-2X_Y É");
    }

    #[test]
    fn delete_after_becomes_delete_at() {
        let now = Timestamp::from_secs(1000.0);
        let mut h = Headers::new();
        h.append("X-Delete-After", "60");
        check_delete_headers(&mut h, now).unwrap();
        assert_eq!(h.get("x-delete-at"), Some("0000001060"));
        assert!(h.get("x-delete-after").is_none());
        let mut h = Headers::new();
        h.append("X-Delete-At", "999");
        assert!(check_delete_headers(&mut h, now).is_err());
        let mut h = Headers::new();
        h.append("X-Delete-At", "abc");
        assert!(check_delete_headers(&mut h, now).is_err());
        // Python's ints have no range: far future is just far future.
        let mut h = Headers::new();
        h.append("X-Delete-At", "1".repeat(100));
        assert!(check_delete_headers(&mut h, now).is_ok());
    }

    #[test]
    fn limit_is_constrained() {
        let p = params(Some("limit=10001"));
        assert_eq!(constrain_req_limit(&p, 10000).unwrap().status, 412);
        assert!(constrain_req_limit(&params(Some("limit=5")), 10000).is_none());
        assert!(constrain_req_limit(&params(Some("limit=-5")), 10000).is_none());
    }
}
