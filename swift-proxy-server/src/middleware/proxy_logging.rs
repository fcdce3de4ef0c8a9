//! `proxy_logging`: one access-log line per client request, in Swift's
//! format (`log_msg_template`, by default the documented space-separated
//! line with every field URL-quoted and `-` for empty values), sent through
//! the access logger (`access_log_*` options, falling back to `log_*`).
//!
//! The line is written when the response has been sent, so `bytes_sent` is
//! what reached the client, and a client that went away is logged as 499.
//! A request already logged by an earlier proxy_logging in the pipeline is
//! not logged twice.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::rc::Rc;

use swift_common::http::message::ip_text;
use swift_common::http::{
    BodyProgress, Caught, Panic, Reply, Request, Response, Service, call_catching,
};
use swift_common::logging::Logger;
use swift_common::time::{Utc, unix_now};

use crate::context::LoggedTarget;
use crate::pipeline::FilterContext;

/// Swift's default `log_msg_template`.
pub const DEFAULT_TEMPLATE: &str = "{client_ip} {remote_addr} {end_time.datetime} {method} {path} {protocol} \
{status_int} {referer} {user_agent} {auth_token} {bytes_recvd} {bytes_sent} {client_etag} {transaction_id} \
{headers} {request_time} {source} {log_info} {start_time} {end_time} {policy_index} {access_user_id}";

/// The fields a template may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    ClientIp,
    RemoteAddr,
    Domain,
    Path,
    Referer,
    UserAgent,
    Headers,
    ClientEtag,
    Account,
    Container,
    Object,
    AccessUserId,
    EndTime,
    StartTime,
    Method,
    Protocol,
    StatusInt,
    AuthToken,
    BytesRecvd,
    BytesSent,
    TransactionId,
    RequestTime,
    Source,
    LogInfo,
    PolicyIndex,
    Ttfb,
    Pid,
    WireStatusInt,
}

const FIELDS: &[(&str, Field)] = &[
    ("client_ip", Field::ClientIp),
    ("remote_addr", Field::RemoteAddr),
    ("domain", Field::Domain),
    ("path", Field::Path),
    ("referer", Field::Referer),
    ("user_agent", Field::UserAgent),
    ("headers", Field::Headers),
    ("client_etag", Field::ClientEtag),
    ("account", Field::Account),
    ("container", Field::Container),
    ("object", Field::Object),
    ("access_user_id", Field::AccessUserId),
    ("end_time", Field::EndTime),
    ("start_time", Field::StartTime),
    ("method", Field::Method),
    ("protocol", Field::Protocol),
    ("status_int", Field::StatusInt),
    ("auth_token", Field::AuthToken),
    ("bytes_recvd", Field::BytesRecvd),
    ("bytes_sent", Field::BytesSent),
    ("transaction_id", Field::TransactionId),
    ("request_time", Field::RequestTime),
    ("source", Field::Source),
    ("log_info", Field::LogInfo),
    ("policy_index", Field::PolicyIndex),
    ("ttfb", Field::Ttfb),
    ("pid", Field::Pid),
    ("wire_status_int", Field::WireStatusInt),
];

/// The attribute after a time field (`{end_time.datetime}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TimeAttr {
    Datetime,
    Iso8601,
    Seconds,
    Millis,
    Micros,
    Nanos,
    /// A strftime directive letter (`{start_time.Y}`).
    Directive(char),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Field(Field, Option<TimeAttr>),
}

/// A parsed `log_msg_template`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template(Vec<Segment>);

impl Template {
    /// Whether any of `fields` appears in the template.
    fn uses(&self, fields: &[Field]) -> bool {
        self.0
            .iter()
            .any(|s| matches!(s, Segment::Field(f, _) if fields.contains(f)))
    }

    /// Parse a template; errors say what is wrong, as Swift's startup check
    /// does (`Cannot interpolate log_msg_template: ...`).
    pub fn parse(text: &str) -> Result<Template, String> {
        let err = |m: String| format!("Cannot interpolate log_msg_template: {m}");
        let mut segs = Vec::new();
        let mut lit = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '}' => return Err(err("Single '}' encountered in format string".into())),
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => return Err(err("expected '}' before end of string".into())),
                        }
                    }
                    if name.contains(['!', ':', '[']) {
                        return Err(err(format!(
                            "conversions and format specs are not supported: {{{name}}}"
                        )));
                    }
                    let (base, attr) = match name.split_once('.') {
                        Some((b, a)) => (b, Some(a)),
                        None => (name.as_str(), None),
                    };
                    let field = FIELDS
                        .iter()
                        .find(|(n, _)| *n == base)
                        .map(|(_, f)| *f)
                        .ok_or_else(|| err(format!("'{base}'")))?;
                    let attr = match attr {
                        None => None,
                        Some(a) => Some(Self::attr(field, a).map_err(err)?),
                    };
                    if !lit.is_empty() {
                        segs.push(Segment::Literal(std::mem::take(&mut lit)));
                    }
                    segs.push(Segment::Field(field, attr));
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            segs.push(Segment::Literal(lit));
        }
        Ok(Template(segs))
    }

    fn attr(field: Field, attr: &str) -> Result<TimeAttr, String> {
        if !matches!(field, Field::StartTime | Field::EndTime) {
            return Err(if attr == "anonymized" {
                "log anonymization ('.anonymized') is not supported by this proxy".into()
            } else {
                format!("'{attr}' is not an attribute of this field")
            });
        }
        Ok(match attr {
            "datetime" => TimeAttr::Datetime,
            "iso8601" => TimeAttr::Iso8601,
            "s" => TimeAttr::Seconds,
            "ms" => TimeAttr::Millis,
            "us" => TimeAttr::Micros,
            "ns" => TimeAttr::Nanos,
            d if d.len() == 1 && "aAbBdHImMpSwyYZ".contains(d) => {
                TimeAttr::Directive(d.chars().next().unwrap_or('S'))
            }
            other => {
                return Err(format!(
                    "The attribute {other} is not a supported time directive"
                ));
            }
        })
    }
}

/// What the line needs from the request, captured before it goes down the
/// pipeline (which takes ownership of it).
#[derive(Clone, Debug, Default)]
struct RequestInfo {
    client_ip: String,
    remote_addr: String,
    domain: String,
    method: String,
    path: String,
    protocol: &'static str,
    referer: String,
    user_agent: String,
    auth_token: String,
    client_etag: String,
    headers: String,
    transaction_id: String,
    source: String,
    log_info: String,
    policy_index: String,
    account: String,
    container: String,
    object: String,
}

/// What is known once the response is done.
struct Outcome {
    status_int: u16,
    wire_status_int: u16,
    bytes_recvd: u64,
    bytes_sent: u64,
    start: f64,
    end: f64,
}

struct Inner {
    logger: Logger,
    template: Template,
    reveal_sensitive_prefix: usize,
    log_headers: bool,
    headers_only: Vec<String>,
}

pub struct ProxyLogging {
    next: Rc<dyn Service>,
    inner: Rc<Inner>,
}

/// `egg:swift#proxy_logging`; reads `log_msg_template`,
/// `access_log_headers` (or `log_headers`), `access_log_headers_only`,
/// `reveal_sensitive_prefix` (16) and the `access_log_*`/`log_*` logger options.
pub fn factory(ctx: &FilterContext<'_>, next: Rc<dyn Service>) -> Result<Rc<dyn Service>, String> {
    let conf = ctx.conf;
    let template = Template::parse(conf.get_or("log_msg_template", DEFAULT_TEMPLATE))
        .map_err(|e| format!("{}: [{}] {e}", conf.source().display(), conf.section()))?;
    let reveal = conf
        .get_parsed::<usize>("reveal_sensitive_prefix", 16)
        .map_err(|e| e.to_string())?;
    let log_headers = conf
        .get("access_log_headers")
        .or_else(|| conf.get("log_headers"))
        .is_some_and(swift_common::config::values::config_true_value);
    let headers_only = conf
        .get_or("access_log_headers_only", "")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    Ok(Rc::new(ProxyLogging {
        next,
        inner: Rc::new(Inner {
            logger: ctx.logger("access_")?,
            template,
            reveal_sensitive_prefix: reveal,
            log_headers,
            headers_only,
        }),
    }))
}

/// Python's `urllib.parse.quote(s, safe)` over the UTF-8 of `s`.
fn quote(out: &mut String, s: &str, safe: &str) {
    swift_common::http::quote::quote_bytes_into(out, s.as_bytes(), safe);
}

/// Swift's `split_path(path, 1, 4, True)` → (account, container, object)
/// when the version is valid.
fn account_container_object(path: &str) -> (String, String, String) {
    match crate::constraints::split_api_path(path) {
        Some((v, a, c, o)) if matches!(v.as_str(), "v1" | "v1.0") => (a, c, o),
        _ => Default::default(),
    }
}

/// swob's `req.path_qs`: the decoded path quoted again (safe '/'), then
/// the query as it came.
fn logged_path(path_info: &str, query: Option<&str>) -> String {
    let mut path = String::with_capacity(path_info.len() + 8);
    for c in path_info.chars() {
        let b = u8::try_from(u32::from(c)).unwrap_or(b'?');
        if b.is_ascii_alphanumeric() || b"_.-~/".contains(&b) {
            path.push(b as char);
        } else {
            let _ = write!(path, "%{b:02X}");
        }
    }
    if let Some(q) = query {
        path.push('?');
        path.push_str(q);
    }
    path
}

impl RequestInfo {
    /// The request now targets `target` (a middleware rewrote it, see
    /// [`LoggedTarget`]): the path and the account, container and object.
    fn retarget(&mut self, target: &str) {
        let (raw, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        let path_info = swift_common::http::message::percent_decode(raw);
        self.path = logged_path(&path_info, query);
        (self.account, self.container, self.object) = account_container_object(&path_info);
    }
}

impl Inner {
    fn capture(&self, req: &Request) -> RequestInfo {
        let header = |n: &str| req.headers.get(n).unwrap_or("").to_owned();
        let path_info = req.path_info();
        let path = logged_path(&path_info, req.query());
        let mut auth_token = header("x-auth-token");
        if auth_token.chars().count() > self.reveal_sensitive_prefix {
            auth_token = auth_token
                .chars()
                .take(self.reveal_sensitive_prefix)
                .collect::<String>()
                + "...";
        }
        let headers = if self.log_headers {
            req.headers
                .iter()
                .filter(|(k, _)| {
                    self.headers_only.is_empty()
                        || self.headers_only.contains(&k.to_ascii_lowercase())
                })
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            String::new()
        };
        let host = header("host");
        let domain = match host.rsplit_once(':') {
            Some((d, _)) => d.to_owned(),
            None => host,
        };
        // Only templates that show them pay for splitting the path.
        let (account, container, object) =
            if self
                .template
                .uses(&[Field::Account, Field::Container, Field::Object])
            {
                account_container_object(&path_info)
            } else {
                Default::default()
            };
        let remote_addr = ip_text(req.remote_addr.ip());
        RequestInfo {
            client_ip: req
                .forwarded_client_ip()
                .map_or_else(|| remote_addr.clone(), str::to_owned),
            remote_addr,
            domain,
            method: req.method.to_string(),
            path,
            protocol: req.version.as_str(),
            referer: header("referer"),
            user_agent: header("user-agent"),
            auth_token,
            client_etag: header("etag"),
            headers,
            transaction_id: req.env.trans_id.clone().unwrap_or_default(),
            source: req.env.source.clone().unwrap_or_default(),
            log_info: req.env.log_info.join(","),
            policy_index: header("x-backend-storage-policy-index"),
            account,
            container,
            object,
        }
    }

    fn line(&self, info: &RequestInfo, out: &Outcome) -> String {
        let mut line = String::with_capacity(256);
        let num = |n: u64| if n == 0 { String::new() } else { n.to_string() };
        for seg in &self.template.0 {
            let (field, attr) = match seg {
                Segment::Literal(l) => {
                    line.push_str(l);
                    continue;
                }
                Segment::Field(f, a) => (*f, *a),
            };
            // Borrowed where the value is already text: one line per request.
            let value: Cow<'_, str> = match field {
                Field::ClientIp => Cow::Borrowed(&info.client_ip),
                Field::RemoteAddr => Cow::Borrowed(&info.remote_addr),
                Field::Domain => Cow::Borrowed(&info.domain),
                Field::Path => Cow::Borrowed(&info.path),
                Field::Referer => Cow::Borrowed(&info.referer),
                Field::UserAgent => Cow::Borrowed(&info.user_agent),
                Field::Headers => Cow::Borrowed(&info.headers),
                Field::ClientEtag => Cow::Borrowed(&info.client_etag),
                Field::Account => Cow::Borrowed(&info.account),
                Field::Container => Cow::Borrowed(&info.container),
                Field::Object => Cow::Borrowed(&info.object),
                Field::AccessUserId => Cow::Borrowed(""),
                Field::EndTime => Cow::Owned(format_time(out.end, attr)),
                Field::StartTime => Cow::Owned(format_time(out.start, attr)),
                Field::Method => Cow::Borrowed(&info.method),
                Field::Protocol => Cow::Borrowed(info.protocol),
                Field::StatusInt => Cow::Owned(num(u64::from(out.status_int))),
                Field::WireStatusInt => Cow::Owned(num(u64::from(out.wire_status_int))),
                Field::AuthToken => Cow::Borrowed(&info.auth_token),
                Field::BytesRecvd => Cow::Owned(num(out.bytes_recvd)),
                Field::BytesSent => Cow::Owned(num(out.bytes_sent)),
                Field::TransactionId => Cow::Borrowed(&info.transaction_id),
                Field::RequestTime => Cow::Owned(fixed(out.end - out.start, 4)),
                Field::Source => Cow::Borrowed(&info.source),
                Field::LogInfo => Cow::Borrowed(&info.log_info),
                Field::PolicyIndex => Cow::Borrowed(&info.policy_index),
                Field::Ttfb => Cow::Borrowed(""),
                Field::Pid => Cow::Owned(swift_common::http::trans_id::pid().to_string()),
            };
            if value.is_empty() {
                line.push('-');
            } else if field.is_numeric() {
                // Digits, `.`, `-`, letters of a time: quoting keeps them.
                line.push_str(&value);
            } else {
                quote(&mut line, &value, ":/{}");
            }
        }
        line
    }
}

impl Field {
    /// Fields whose text is only what `quote` keeps as it is (numbers and
    /// times), so they go into the line without the quoting pass.
    fn is_numeric(self) -> bool {
        matches!(
            self,
            Field::StatusInt
                | Field::WireStatusInt
                | Field::BytesRecvd
                | Field::BytesSent
                | Field::RequestTime
                | Field::StartTime
                | Field::EndTime
                | Field::Pid
        )
    }
}

/// `format!("{v:.prec$}")` (Python's `%.<prec>f`: the exact binary value
/// rounded half to even) for `prec` up to 9. A time is a binary fraction
/// `mantissa / 2^shift`, so integer arithmetic rounds it exactly, at a
/// fraction of the cost of the general formatter (which for nine digits
/// of an epoch time often falls back to its slow bignum path).
fn fixed(v: f64, prec: u32) -> String {
    let bits = v.to_bits();
    let biased_exp = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1u64 << 52) - 1);
    // v = mantissa * 2^-shift (subnormals have no implicit bit).
    let (mantissa, shift) = if biased_exp == 0 {
        (frac, 1074)
    } else {
        (frac | (1u64 << 52), 1075 - biased_exp)
    };
    // Negative, non-finite, whole numbers past 2^53 and precisions whose
    // scale could overflow: the general formatter.
    if v.is_sign_negative() || !v.is_finite() || shift <= 0 || prec > 9 {
        return format!("{v:.*}", prec as usize);
    }
    let scale = 10u64.pow(prec);
    let scaled = if shift >= 128 {
        // Below 2^-75: rounds to zero at nine digits or fewer (no tie).
        0
    } else {
        // mantissa < 2^53 and scale < 2^30: the product fits in u128.
        let num = u128::from(mantissa) * u128::from(scale);
        let q = num >> shift;
        let rem = num & ((1u128 << shift) - 1);
        let half = 1u128 << (shift - 1);
        if rem > half || (rem == half && q & 1 == 1) {
            q + 1
        } else {
            q
        }
    };
    // Both parts fit in u64 (the value is below 2^53), whose formatting is
    // much cheaper than u128's.
    let (Ok(int), Ok(fraction)) = (
        u64::try_from(scaled / u128::from(scale)),
        u64::try_from(scaled % u128::from(scale)),
    ) else {
        return format!("{v:.*}", prec as usize);
    };
    let mut s = String::with_capacity(32);
    swift_common::timestamp::push_zero_padded(&mut s, int, 1);
    if prec > 0 {
        s.push('.');
        swift_common::timestamp::push_zero_padded(&mut s, fraction, prec as usize);
    }
    s
}

/// Swift's `StrFormatTime`: `%.9f` by default, or one of its attributes.
fn format_time(t: f64, attr: Option<TimeAttr>) -> String {
    // `%.9f` costs a few thousand instructions: only for what uses it.
    let full = || fixed(t, 9);
    let frac = |n: usize| {
        let full = full();
        let f = full.split_once('.').map_or("", |(_, f)| f);
        f.get(..n).unwrap_or("").to_owned()
    };
    if matches!(attr, Some(TimeAttr::Datetime)) {
        let secs = t.floor();
        return Utc::from_unix(secs as i64, ((t - secs) * 1e6) as u32).access_log_datetime();
    }
    let secs = t.floor();
    let u = Utc::from_unix(secs as i64, ((t - secs) * 1e6) as u32);
    const DAYS: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let month = MONTHS[(u.month as usize + 11) % 12];
    let day = DAYS[u.weekday as usize % 7];
    match attr {
        None => full(),
        Some(TimeAttr::Datetime) => u.access_log_datetime(),
        Some(TimeAttr::Iso8601) => format!(
            "{}-{:02}-{:02}T{:02}:{:02}:{:02}",
            u.year, u.month, u.day, u.hour, u.minute, u.second
        ),
        Some(TimeAttr::Seconds) => format!("{}", secs as i64),
        Some(TimeAttr::Millis) => frac(3),
        Some(TimeAttr::Micros) => frac(6),
        Some(TimeAttr::Nanos) => frac(9),
        Some(TimeAttr::Directive(d)) => match d {
            'a' => day[..3].to_owned(),
            'A' => day.to_owned(),
            'b' => month[..3].to_owned(),
            'B' => month.to_owned(),
            'd' => format!("{:02}", u.day),
            'H' => format!("{:02}", u.hour),
            'I' => format!("{:02}", (u.hour + 11) % 12 + 1),
            'm' => format!("{:02}", u.month),
            'M' => format!("{:02}", u.minute),
            'p' => (if u.hour < 12 { "AM" } else { "PM" }).to_owned(),
            'S' => format!("{:02}", u.second),
            'w' => format!("{}", (u.weekday + 1) % 7),
            'y' => format!("{:02}", u.year % 100),
            'Y' => format!("{}", u.year),
            _ => "UTC".to_owned(),
        },
    }
}

impl ProxyLogging {
    /// Arrange for the access line once the response is sent; log a panic
    /// (as status 500) at once and let it go on to catch_errors.
    fn finish(&self, outcome: Result<Response, Panic>, pending: PendingLine) -> Response {
        let PendingLine {
            mut info,
            progress,
            is_head,
            start,
            rewritten,
        } = pending;
        if let Some(target) = rewritten.0.borrow().as_deref() {
            info.retarget(target);
        }
        let inner = self.inner.clone();
        match outcome {
            Ok(mut resp) => {
                let wire = resp.status;
                resp.on_complete(move |c| {
                    // A client that went away mid-request or mid-response: 499.
                    let status = if progress.client_disconnected() || !c.complete {
                        499
                    } else {
                        wire
                    };
                    let out = Outcome {
                        status_int: status,
                        wire_status_int: wire,
                        bytes_recvd: progress.bytes_received(),
                        bytes_sent: if is_head { 0 } else { c.bytes_sent },
                        start,
                        end: unix_now(),
                    };
                    inner
                        .logger
                        .info(format_args!("{}", inner.line(&info, &out)));
                });
                resp
            }
            Err(panic) => {
                let out = Outcome {
                    status_int: 500,
                    wire_status_int: 500,
                    bytes_recvd: progress.bytes_received(),
                    bytes_sent: 0,
                    start,
                    end: unix_now(),
                };
                inner
                    .logger
                    .info(format_args!("{}", inner.line(&info, &out)));
                std::panic::resume_unwind(panic)
            }
        }
    }
}

/// What the access line needs that is known before the request goes down.
struct PendingLine {
    info: RequestInfo,
    progress: BodyProgress,
    is_head: bool,
    start: f64,
    /// Where a middleware pointed the request since (copy's COPY).
    rewritten: LoggedTarget,
}

impl Service for ProxyLogging {
    fn call(&self, mut req: Request) -> Reply<'_> {
        if req.env.access_log_made {
            return self.next.call(req);
        }
        req.env.access_log_made = true;
        let rewritten = LoggedTarget::default();
        req.env.ext.insert(rewritten.clone());
        let pending = PendingLine {
            info: self.inner.capture(&req),
            progress: req.body.progress(),
            is_head: req.method == "HEAD",
            start: unix_now(),
            rewritten,
        };
        match call_catching(&*self.next, req) {
            Caught::Ready(outcome) => Reply::Ready(self.finish(outcome, pending)),
            Caught::Pending(fut) => Reply::pending(async move {
                let outcome = fut.await;
                self.finish(outcome, pending)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inner(template: &str) -> Inner {
        Inner {
            logger: crate::middleware::tests::test_logger(),
            template: Template::parse(template).unwrap(),
            reveal_sensitive_prefix: 16,
            log_headers: false,
            headers_only: Vec::new(),
        }
    }

    #[test]
    fn default_line_matches_python_swift() {
        // Captured from Python Swift 2.38.3 for
        // `curl -H 'User-Agent: ua x' -H 'X-Auth-Token: abcdefghijklmnopqrstuvwxyz' '/info?x=1%202'`:
        // 127.0.0.1 127.0.0.1 25/Nov/2026/07/13/36 GET /info%3Fx%3D1%25202 HTTP/1.0 200 - ua%20x
        // abcdefghijklmnop... - 608 - txb8f0eaff5bc84ac9a1684-006b068aa0 - 0.0005 - -
        // 1795590816.853165388 1795590816.853701591 - -
        let i = inner(DEFAULT_TEMPLATE);
        let mut req = Request::new("GET", "/info?x=1%202");
        req.version = swift_common::http::Version::Http10;
        req.headers.append("User-Agent", "ua x");
        req.headers
            .append("X-Auth-Token", "abcdefghijklmnopqrstuvwxyz");
        req.env.trans_id = Some("txb8f0eaff5bc84ac9a1684-006b068aa0".into());
        let info = i.capture(&req);
        let out = Outcome {
            status_int: 200,
            wire_status_int: 200,
            bytes_recvd: 0,
            bytes_sent: 608,
            start: 1_795_590_816.853_165_4,
            end: 1_795_590_816.853_701_6,
        };
        assert_eq!(
            i.line(&info, &out),
            "127.0.0.1 127.0.0.1 25/Nov/2026/07/13/36 GET /info%3Fx%3D1%25202 HTTP/1.0 200 - ua%20x \
             abcdefghijklmnop... - 608 - txb8f0eaff5bc84ac9a1684-006b068aa0 - 0.0005 - - \
             1795590816.853165388 1795590816.853701591 - -"
        );
    }

    #[test]
    fn fixed_matches_the_general_formatter() {
        let mut values = vec![
            0.0,
            -0.0,
            1e-300,
            5e-324,
            0.0009765625,
            0.125,
            2.5,
            1_700_000_000.0 + 1.0 / 1024.0,
            1_795_590_816.853_165_4,
            2f64.powi(53) + 2.0,
            1e20,
            -1.5,
            f64::NAN,
            f64::INFINITY,
        ];
        // Epoch times, small durations and ties of every kind, pseudo-random.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(1.7e9 + (x % 200_000_000) as f64 / 1024.0 / 7.0);
            values.push((x % 1_000_000) as f64 / 1e6);
            values.push(f64::from_bits(x >> 2));
            values.push((x % 4096) as f64 / 4096.0);
        }
        for v in values {
            for prec in [0, 1, 4, 9] {
                assert_eq!(
                    fixed(v, prec),
                    format!("{v:.*}", prec as usize),
                    "{v:e} {prec}"
                );
            }
        }
    }

    #[test]
    fn numeric_fields_need_no_quoting() {
        let mut attrs = vec![
            None,
            Some(TimeAttr::Datetime),
            Some(TimeAttr::Iso8601),
            Some(TimeAttr::Seconds),
            Some(TimeAttr::Millis),
            Some(TimeAttr::Micros),
            Some(TimeAttr::Nanos),
        ];
        attrs.extend(
            "aAbBdHImMpSwyYZ"
                .chars()
                .map(|c| Some(TimeAttr::Directive(c))),
        );
        for t in [
            0.0,
            1.5,
            1_795_590_816.853_165_4,
            -1.25,
            f64::NAN,
            f64::INFINITY,
        ] {
            for attr in &attrs {
                let v = format_time(t, *attr);
                let mut quoted = String::new();
                quote(&mut quoted, &v, ":/{}");
                assert_eq!(quoted, v, "{t} {attr:?}");
            }
            let v = fixed(t, 4);
            let mut quoted = String::new();
            quote(&mut quoted, &v, ":/{}");
            assert_eq!(quoted, v);
        }
    }

    #[test]
    fn templates_are_checked_at_startup() {
        assert!(Template::parse("{method} {{literal}} {start_time.Y}").is_ok());
        let e = Template::parse("{nope}").unwrap_err();
        assert!(
            e.starts_with("Cannot interpolate log_msg_template: 'nope'"),
            "{e}"
        );
        assert!(
            Template::parse("{client_ip.anonymized}")
                .unwrap_err()
                .contains("anonymization")
        );
        assert!(Template::parse("{method").is_err());
        assert!(Template::parse("{status_int:>5}").is_err());
    }

    #[test]
    fn custom_template_fields() {
        let i =
            inner("{method} {account}/{container}/{object} {start_time.Y}-{start_time.m} {{x}}");
        let info = i.capture(&Request::new("PUT", "/v1/AUTH_a/c/o/p"));
        let out = Outcome {
            status_int: 201,
            wire_status_int: 201,
            bytes_recvd: 5,
            bytes_sent: 0,
            start: 0.5,
            end: 1.0,
        };
        assert_eq!(i.line(&info, &out), "PUT AUTH_a/c/o/p 1970-01 {x}");
    }

    #[test]
    fn a_rewritten_request_is_logged_with_its_new_path() {
        // Swift logs `COPY /v1/AUTH_test/c1/o2` for a COPY of c1/o1 to
        // c1/o2: copy rewrote PATH_INFO before proxy_logging logged.
        let i = inner("{method} {path} {account} {container} {object}");
        let mut info = i.capture(&Request::new("COPY", "/v1/AUTH_a/c/src?x=1"));
        info.retarget("/v1/AUTH_b/d/dst?x=1");
        let out = Outcome {
            status_int: 201,
            wire_status_int: 201,
            bytes_recvd: 0,
            bytes_sent: 0,
            start: 0.5,
            end: 1.0,
        };
        assert_eq!(
            i.line(&info, &out),
            "COPY /v1/AUTH_b/d/dst%3Fx%3D1 AUTH_b d dst"
        );
    }
}
