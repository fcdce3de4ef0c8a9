//! `listing_formats` (`egg:swift#listing_formats`): account and container
//! listings in the format the client asked for, while everything below it
//! only ever produces JSON.
//!
//! For a `GET` or `HEAD` of `/v1/<account>` or `/v1/<account>/<container>`
//! (a valid API version), the format comes from `format=` (`plain`, `json`,
//! `xml`, anything else meaning plain) or else from the `Accept` header
//! (swob's `best_match` among `text/plain`, `application/json`,
//! `application/xml`, `text/xml`; 406 when none is acceptable, 400 when the
//! header is malformed). The request goes down with `format=json`. A
//! `200`/`204` JSON answer comes back converted: names one a line, Swift's
//! XML, or JSON re-serialised; entries whose name holds a NUL are dropped
//! unless the request may see reserved names; an empty plain listing is a
//! 204. Anything Swift would not convert (another status, another content
//! type, no or too large a `Content-Length`, a body that is not a JSON list
//! of objects, a record missing a field) passes through, with the headers
//! title-cased as Swift's `HeaderKeyDict` leaves them and `Vary: Accept`
//! added when the format came from `Accept`.
//!
//! This filter does not validate `limit`, `marker`, `delimiter` and the like,
//! nor fetch anything itself: the controllers below do that.

mod accept;
mod pyjson;
mod render;
#[cfg(test)]
mod tests;

use std::cell::Cell;
use std::rc::Rc;

use bytes::Bytes;
use swift_common::config::values::{config_true_value, list_from_csv, python_int};
use swift_common::http::quote::{parse_qsl, urlencode, wsgi_bytes, wsgi_quote};
use swift_common::http::{
    Headers, Reply, Request, Response, ResponseBody, Service, decimal, reason,
};
use swift_common::logging::{Level, Logger};

use self::pyjson::{Dict, LoadError, Value};
use self::render::ConvertError;
use crate::pipeline::FilterContext;
use crate::swob;

/// Swift's `MAX_CONTAINER_LISTING_CONTENT_LENGTH`: a JSON answer declaring
/// more is not a listing (staticweb's, say) and passes through unread. It
/// also bounds how much of a streamed body is read.
pub const MAX_CONTAINER_LISTING_CONTENT_LENGTH: u64 = 1024 * 10000 * 2;

/// The formats on offer, in swob's order of preference.
const OPTIONS: &[&str] = &[
    "text/plain",
    "application/json",
    "application/xml",
    "text/xml",
];

/// Swift's environ key `swift.format_listing`: true unless a middleware
/// further down takes charge of the listing (and sets it false), in which
/// case its answer goes back untouched. Shared, so the answer's producer
/// can change it after the request has gone down.
#[derive(Debug)]
pub struct FormatListing(pub Cell<bool>);

/// The filter.
pub struct ListingFormats {
    next: Rc<dyn Service>,
    logger: Logger,
    /// `valid_api_versions` from swift.conf's constraints.
    valid_api_versions: Vec<String>,
}

/// `egg:swift#listing_formats`; reads nothing but the logger settings.
pub fn factory(ctx: &FilterContext<'_>, next: Rc<dyn Service>) -> Result<Rc<dyn Service>, String> {
    Ok(Rc::new(ListingFormats {
        next,
        logger: ctx.logger("")?,
        valid_api_versions: ctx.app.swift_conf.constraints.valid_api_versions.clone(),
    }))
}

/// `HeaderKeyDict._title`: `bytes.title()`, ASCII letters only.
fn title(name: &str) -> String {
    let mut prev_letter = false;
    name.chars()
        .map(|c| {
            let out = if prev_letter {
                c.to_ascii_lowercase()
            } else {
                c.to_ascii_uppercase()
            };
            prev_letter = c.is_ascii_alphabetic();
            out
        })
        .collect()
}

/// `HeaderKeyDict(headers)`: names title-cased; a repeated name keeps its
/// first place and its last value.
fn header_key_dict(headers: &Headers) -> Headers {
    let mut out = Headers::with_capacity(headers.len());
    for (k, v) in headers.iter() {
        out.set(title(k), v.to_owned());
    }
    out
}

/// A query string as `req.params` holds it: `dict(parse_qsl(...))`.
fn params(query: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in parse_qsl(query) {
        match out.iter_mut().find(|(n, _)| *n == k) {
            Some(slot) => slot.1 = v,
            None => out.push((k, v)),
        }
    }
    out
}

/// What the response side needs to know about the request.
struct Listing {
    out_content_type: &'static str,
    can_vary: bool,
    is_head: bool,
    allow_reserved_names: bool,
    account: String,
    /// `None` for `/v1/a`, `Some("")` for `/v1/a/` (an account listing too).
    container: Option<String>,
    flag: Rc<FormatListing>,
    trans_id: Option<String>,
    client_ip: String,
}

impl ListingFormats {
    /// `get_listing_content_type`; on the way, `req.accept` is set from
    /// `format=` as Swift sets it.
    fn listing_content_type(
        &self,
        req: &mut Request,
        params: &[(String, String)],
    ) -> Result<&'static str, Response> {
        let format = params
            .iter()
            .find(|(k, _)| k == "format")
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty());
        let accept: Option<String> = match format {
            Some(f) => {
                let f = String::from_utf8(wsgi_bytes(f))
                    .map_err(|_| swob::plain(400, &b"\"format\" parameter not valid UTF-8"[..]))?;
                let ct = match f.to_lowercase().as_str() {
                    "json" => "application/json",
                    "xml" => "application/xml",
                    _ => "text/plain",
                };
                req.headers.set("Accept", ct);
                Some(ct.to_owned())
            }
            // WSGI joins a repeated header with commas.
            None => {
                let all: Vec<&str> = req.headers.get_all("accept").collect();
                (!all.is_empty()).then(|| all.join(","))
            }
        };
        match accept::best_match(accept.as_deref(), OPTIONS) {
            Ok(Some(ct)) => Ok(ct),
            Ok(None) => Err(swob::status(406)),
            Err(_) => Err(swob::html(400, &b"Invalid Accept header"[..])),
        }
    }

    /// A refusal as swob sends it: no body for HEAD, and then no length
    /// either when the body was swob's own error page (it is made only
    /// when sent).
    fn refuse(req: &Request, mut resp: Response, own_page: bool) -> Response {
        if req.method == "HEAD" {
            resp.body = ResponseBody::Empty;
            if own_page {
                resp.headers.remove("Content-Length");
            }
        }
        resp
    }

    /// The 500 catch_errors makes of an exception Swift would raise here.
    fn raised(&self, ctx: &Listing, resp: &mut Response, why: &str) -> Response {
        self.logger.log_with(
            Level::Error,
            format_args!("Error: An error occurred: {why}"),
            ctx.trans_id.as_deref(),
            Some(&ctx.client_ip),
        );
        let mut out = Response::with_body(500, "text/plain", &b"An error occurred"[..]);
        out.hooks = std::mem::take(&mut resp.hooks);
        out
    }

    /// `filter_reserved`: drop entries whose name or subdir holds a NUL.
    fn filter_reserved(&self, ctx: &Listing, listing: Vec<Dict>) -> Result<Vec<Dict>, String> {
        let mut kept = Vec::with_capacity(listing.len());
        'entries: for entry in listing {
            for key in ["name", "subdir"] {
                let empty = Value::Str(Default::default());
                let value = entry.get(key).unwrap_or(&empty);
                if value.contains("\0").map_err(|e| e.0)? {
                    let account = wsgi_quote(&ctx.account, "/");
                    let msg = match ctx.container.as_deref().filter(|c| !c.is_empty()) {
                        Some(c) => format!(
                            "Container listing for {account}/{} had reserved byte in {key}: {}",
                            wsgi_quote(c, "/"),
                            value.repr()
                        ),
                        None => format!(
                            "Account listing for {account} had reserved byte in {key}: {}",
                            value.repr()
                        ),
                    };
                    self.logger.log_with(
                        Level::Warning,
                        format_args!("{msg}"),
                        ctx.trans_id.as_deref(),
                        Some(&ctx.client_ip),
                    );
                    continue 'entries;
                }
            }
            kept.push(entry);
        }
        Ok(kept)
    }

    /// The response side of Swift's `__call__`.
    async fn finish(&self, mut resp: Response, ctx: Listing) -> Response {
        if !ctx.flag.0.get() || !matches!(resp.status, 200 | 204) {
            return resp;
        }
        let mut headers = header_key_dict(&resp.headers);
        let resp_content_type = headers
            .get("Content-Type")
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .to_owned();
        let resp_length = headers.get("Content-Length").map(str::to_owned);
        if ctx.can_vary {
            match headers.get("Vary").map(str::to_owned) {
                Some(v) => {
                    if !list_from_csv(&v.to_lowercase())
                        .iter()
                        .any(|t| t == "accept")
                    {
                        headers.set("Vary", format!("{v}, Accept"));
                    }
                }
                None => headers.append("Vary", "Accept"),
            }
        }
        let content_type = format!("{}; charset=utf-8", ctx.out_content_type);
        if resp_content_type != "application/json" {
            resp.headers = headers;
            return resp;
        }
        if ctx.is_head {
            headers.set("Content-Type", content_type);
            headers.set("Content-Length", "0");
            resp.headers = headers;
            return resp;
        }
        let Some(length) = resp_length else {
            resp.headers = headers;
            return resp;
        };
        match python_int(&length) {
            Some(n) if n > MAX_CONTAINER_LISTING_CONTENT_LENGTH as i64 => {
                resp.headers = headers;
                return resp;
            }
            Some(_) => {}
            None => {
                let why = format!("invalid literal for int() with base 10: '{length}'");
                return self.raised(&ctx, &mut resp, &why);
            }
        }
        let body = std::mem::replace(&mut resp.body, ResponseBody::Empty);
        let body = match collect(body, MAX_CONTAINER_LISTING_CONTENT_LENGTH).await {
            Ok(b) => b,
            Err(why) => return self.raised(&ctx, &mut resp, &why),
        };
        resp.headers = headers;
        let listing = match pyjson::loads(&body) {
            Ok(Value::List(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::Dict(d) => Some(d),
                    _ => None,
                })
                .collect::<Option<Vec<Dict>>>(),
            Ok(_) | Err(LoadError::Invalid(_)) => None,
            Err(LoadError::TooDeep) => {
                return self.raised(&ctx, &mut resp, "maximum recursion depth exceeded");
            }
        };
        // Not a JSON list of objects (staticweb's?): sent as it came.
        let Some(mut listing) = listing else {
            resp.body = ResponseBody::Full(body);
            return resp;
        };
        if !ctx.allow_reserved_names {
            listing = match self.filter_reserved(&ctx, listing) {
                Ok(l) => l,
                Err(why) => return self.raised(&ctx, &mut resp, &why),
            };
        }
        let converted = if ctx.out_content_type.ends_with("/xml") {
            let name = ctx.container.as_deref().filter(|c| !c.is_empty());
            let name_bytes = wsgi_bytes(name.unwrap_or(&ctx.account));
            match std::str::from_utf8(&name_bytes) {
                Ok(n) if name.is_some() => render::container_to_xml(&listing, n),
                Ok(n) => render::account_to_xml(&listing, n),
                Err(_) => Err(ConvertError::Raised(
                    "'utf-8' codec can't decode the account or container name".into(),
                )),
            }
        } else if ctx.out_content_type == "text/plain" {
            render::listing_to_text(&listing)
        } else {
            let mut out = Vec::new();
            pyjson::dumps(
                &Value::List(listing.into_iter().map(Value::Dict).collect()),
                &mut out,
            );
            Ok(out)
        };
        let out = match converted {
            Ok(out) => out,
            Err(ConvertError::KeyError(_)) => {
                resp.body = ResponseBody::Full(body);
                return resp;
            }
            Err(ConvertError::Raised(why)) => return self.raised(&ctx, &mut resp, &why),
        };
        if out.is_empty() {
            resp.status = 204;
            resp.reason = reason(204).into();
        }
        resp.headers.set("Content-Type", content_type);
        resp.headers
            .set("Content-Length", decimal(out.len() as u64));
        resp.body = ResponseBody::Full(Bytes::from(out));
        resp
    }
}

/// The whole body, refusing one longer than `limit` (the declared length
/// was checked, but a stream may say otherwise).
async fn collect(body: ResponseBody, limit: u64) -> Result<Bytes, String> {
    let mut stream = match body {
        ResponseBody::Empty => return Ok(Bytes::new()),
        ResponseBody::Full(b) => return Ok(b),
        ResponseBody::Stream(s) => s,
    };
    let mut out = Vec::new();
    while let Some(chunk) = std::future::poll_fn(|cx| stream.as_mut().poll_chunk(cx)).await {
        let chunk = chunk.map_err(|e| format!("reading the listing: {e}"))?;
        if (out.len() + chunk.len()) as u64 > limit {
            return Err(format!("listing body longer than {limit} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

impl Service for ListingFormats {
    fn call(&self, mut req: Request) -> Reply<'_> {
        if !(req.method == "GET" || req.method == "HEAD") {
            return self.next.call(req);
        }
        let names = {
            let path = req.path_info();
            // Swift's split_path(path, 2, 3): `Some("")` for `/v1/a/`,
            // which Swift treats as the account.
            crate::constraints::split_path(&path, 2, 3, false)
                .filter(|s| {
                    let version = s[0].unwrap_or("");
                    self.valid_api_versions.iter().any(|v| v == version)
                })
                .map(|s| (s[1].unwrap_or_default().to_owned(), s[2].map(str::to_owned)))
        };
        let Some((account, container)) = names else {
            return self.next.call(req);
        };
        let mut params = params(req.query().unwrap_or(""));
        let out_content_type = match self.listing_content_type(&mut req, &params) {
            Ok(ct) => ct,
            Err(resp) => {
                let own_page = resp.status == 406;
                return Reply::Ready(Self::refuse(&req, resp, own_page));
            }
        };
        let can_vary = !params.iter().any(|(k, _)| k == "format");
        match params.iter_mut().find(|(k, _)| k == "format") {
            Some(slot) => slot.1 = "json".to_owned(),
            None => params.push(("format".to_owned(), "json".to_owned())),
        }
        req.target = format!("{}?{}", req.raw_path(), urlencode(&params));
        // Other middleware get a chance to be in charge.
        let flag = match req.env.ext.get_rc::<FormatListing>() {
            Some(flag) => flag,
            None => {
                let flag = Rc::new(FormatListing(Cell::new(true)));
                req.env.ext.insert_rc(flag.clone());
                flag
            }
        };
        let allow_reserved_names = {
            let all: Vec<&str> = req
                .headers
                .get_all("x-backend-allow-reserved-names")
                .collect();
            !all.is_empty() && config_true_value(&all.join(","))
        };
        let ctx = Listing {
            out_content_type,
            can_vary,
            is_head: req.method == "HEAD",
            allow_reserved_names,
            account,
            container,
            flag,
            trans_id: req.env.trans_id.clone(),
            client_ip: req.client_ip(),
        };
        let reply = self.next.call(req);
        Reply::pending(async move { self.finish(reply.resolve().await, ctx).await })
    }
}
