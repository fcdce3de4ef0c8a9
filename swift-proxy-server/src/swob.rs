//! Responses as Swift's `swob` builds them: `text/html; charset=UTF-8` by
//! default, and for an error status without a body of its own, swob's
//! `<html><h1>Title</h1><p>Explanation</p></html>`. A 401 carries
//! `Www-Authenticate: Swift realm="<account>"`.
//!
//! Every module that answers a client builds its responses here, so the
//! bodies and content types agree with Python Swift's byte for byte.

use swift_common::http::{Response, Text};

/// swob's default content type.
pub const HTML: &str = "text/html; charset=UTF-8";

/// swob's explanation for a status (`RESPONSE_REASONS`), empty when swob
/// sends no body for it.
pub fn explanation(status: u16) -> &'static str {
    match status {
        202 => "The request is accepted for processing.",
        301 => "The resource has moved permanently.",
        302 | 307 => "The resource has moved temporarily.",
        303 => "The response to the request can be found under a different URI.",
        400 => {
            "The server could not comply with the request since it is either malformed or otherwise incorrect."
        }
        401 => {
            "This server could not verify that you are authorized to access the document you requested."
        }
        402 => "Access was denied for financial reasons.",
        403 => "Access was denied to this resource.",
        404 => "The resource could not be found.",
        405 => "The method is not allowed for this resource.",
        406 => "The resource is not available in a format acceptable to your browser.",
        408 => "The server has waited too long for the request to be sent by the client.",
        409 => "There was a conflict when trying to complete your request.",
        410 => "This resource is no longer available.",
        411 => "Content-Length header required.",
        412 => "A precondition for this request was not met.",
        413 => "The body of your request was too large for this server.",
        414 => "The request URI was too long for this server.",
        415 => "The request media type is not supported by this server.",
        416 => "The Range requested is not available.",
        417 => "Expectation failed.",
        422 => "Unable to process the contained instructions",
        499 => "The client was disconnected during request.",
        500 => "The server has either erred or is incapable of performing the requested operation.",
        501 => "The requested method is not implemented by this server.",
        502 => "Bad gateway.",
        503 => "The server is currently unavailable. Please try again at a later time.",
        504 => "A timeout has occurred speaking to a backend server.",
        507 => "There was not enough space to save the resource. Drive: unknown",
        529 => {
            "The server is incapable of performing the requested operation due to too many requests. Slow down."
        }
        _ => "",
    }
}

/// A response of `status` with swob's default body (or none).
pub fn status(status: u16) -> Response {
    let text = explanation(status);
    if text.is_empty() {
        return Response::with_body(status, HTML, "");
    }
    let title = swift_common::http::reason(status);
    Response::with_body(
        status,
        HTML,
        format!("<html><h1>{title}</h1><p>{text}</p></html>"),
    )
}

/// A response of `status` with this body and content type.
pub fn with_body(
    status: u16,
    content_type: impl Into<Text>,
    body: impl Into<bytes::Bytes>,
) -> Response {
    Response::with_body(status, content_type, body)
}

/// A `text/html; charset=UTF-8` response whose body is `body` (swob's
/// `HTTPBadRequest(body=...)`, the usual way Swift explains a refusal).
pub fn html(status: u16, body: impl Into<bytes::Bytes>) -> Response {
    Response::with_body(status, HTML, body)
}

/// A `text/plain` response (what `check_metadata` and friends send).
pub fn plain(status: u16, body: impl Into<bytes::Bytes>) -> Response {
    Response::with_body(status, "text/plain", body)
}

/// 401 with `Www-Authenticate: Swift realm="<realm>"` (swob's
/// `www_authenticate`: the account of `/v1/<account>...`, else `unknown`).
pub fn unauthorized(path_info: &str) -> Response {
    let mut r = status(401);
    r.headers.append(
        "Www-Authenticate",
        format!("Swift realm=\"{}\"", realm(path_info)),
    );
    r
}

/// The realm swob names for a path: its second segment unless that is
/// `v1.0` or `auth`, quoted as WSGI strings are.
pub fn realm(path_info: &str) -> String {
    let mut segs = path_info.splitn(4, '/');
    let root = segs.next().unwrap_or("");
    let version = segs.next().unwrap_or("");
    match segs.next() {
        // split_path(2, 3, True): a path from the root, a version, an account.
        Some(r)
            if root.is_empty()
                && !version.is_empty()
                && !r.is_empty()
                && r != "v1.0"
                && r != "auth" =>
        {
            swift_common::http::quote::wsgi_quote(r, "/")
        }
        _ => "unknown".to_owned(),
    }
}

/// 405 with an `Allow` header listing `allowed`.
pub fn method_not_allowed(allowed: &str) -> Response {
    let mut r = status(405);
    r.headers.append("Allow", allowed.to_owned());
    r
}
