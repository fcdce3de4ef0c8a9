//! The proxy app at the end of the pipeline (`egg:swift#proxy`, Swift's
//! `proxy.server.Application`): its settings, the rings and policies, the
//! per-worker error limiter, `/info`, and `handle_request`: the checks
//! every request passes (X-Timestamp, UTF-8 path, API version), routing to
//! a controller, the method check, and authorization (delayed for the
//! handlers that need the container's ACL first).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use swift_common::config::{Conf, Constraints};
use swift_common::http::quote::wsgi_as_str;
use swift_common::http::{Reply, Request, Response, Service};
use swift_common::logging::{Level, Logger};
use swift_common::ring::{HashPathConf, Ring};
use swift_common::storage_policy::StoragePolicies;
use swift_common::timestamp::Timestamp;
use swift_common::wsgi::AppContext;

use crate::constraints::{check_utf8, split_api_path, valid_api_version};
use crate::context::{AuthRequest, Authorize, SwiftOwner};
use crate::controllers::{Ctx, account, container, obj};
use crate::info_registry::SwiftInfo;
use crate::mimetypes::MimeTypes;
use crate::node_iter::{ErrorLimiter, Node, RequestNodeCount};
use crate::swob;

/// What a path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Account,
    Container,
    Object,
}

/// The `[app:proxy-server]` settings the controllers use.
#[derive(Debug, Clone)]
pub struct Settings {
    pub conn_timeout: Duration,
    pub node_timeout: Duration,
    pub recoverable_node_timeout: Duration,
    pub client_timeout: Duration,
    pub post_quorum_timeout: Duration,
    pub recheck_account_existence: u64,
    pub recheck_container_existence: u64,
    pub allow_account_management: bool,
    pub account_autocreate: bool,
    pub max_containers_per_account: i64,
    pub max_containers_whitelist: Vec<String>,
    pub deny_host_headers: Vec<String>,
    pub log_handoffs: bool,
    pub cors_allow_origin: Vec<String>,
    pub cors_expose_headers: Vec<String>,
    pub strict_cors_mode: bool,
    pub allow_open_expired: bool,
    pub request_node_count: RequestNodeCount,
    pub swift_owner_headers: Vec<String>,
    /// Idle connections kept per backend per worker (0: a new connection
    /// for every backend request, as Swift's proxy).
    pub backend_keepalive_connections: usize,
    /// How long an idle backend connection is kept.
    pub backend_keepalive_timeout: Duration,
}

fn csv(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn seconds(conf: &Conf, key: &str, default: f64) -> Result<Duration, String> {
    let v = conf
        .get_parsed::<f64>(key, default)
        .map_err(|e| e.to_string())?;
    if !v.is_finite() || v < 0.0 {
        return Err(conf
            .invalid(key, "must be a non-negative number of seconds")
            .to_string());
    }
    Ok(Duration::from_secs_f64(v))
}

impl Settings {
    /// Read and check the settings; errors name the file, section and key.
    pub fn from_conf(conf: &Conf) -> Result<Settings, String> {
        let node_timeout = seconds(conf, "node_timeout", 10.0)?;
        let recoverable = match conf.get("recoverable_node_timeout") {
            Some(_) => seconds(conf, "recoverable_node_timeout", 10.0)?,
            None => node_timeout,
        };
        let request_node_count = conf
            .get_with(
                "request_node_count",
                "2 * replicas",
                RequestNodeCount::parse,
            )
            .map_err(|e| e.to_string())?;
        // Options of Swift's proxy this one does not implement: refuse them
        // rather than run differently from what the operator wrote.
        for (key, ok) in [
            (
                "sorting_method",
                conf.get("sorting_method")
                    .is_none_or(|v| v.trim().eq_ignore_ascii_case("shuffle")),
            ),
            (
                "read_affinity",
                conf.get_nonempty("read_affinity").is_none(),
            ),
            (
                "write_affinity",
                conf.get_nonempty("write_affinity").is_none(),
            ),
            ("concurrent_gets", !conf.get_bool("concurrent_gets", false)),
        ] {
            if !ok {
                return Err(conf
                    .invalid(key, "not supported by this proxy (only the default is)")
                    .to_string());
            }
        }
        let owner_headers = conf.get_or(
            "swift_owner_headers",
            "x-container-read, x-container-write, x-container-sync-key, x-container-sync-to, \
             x-account-meta-temp-url-key, x-account-meta-temp-url-key-2, \
             x-container-meta-temp-url-key, x-container-meta-temp-url-key-2, x-account-access-control",
        );
        Ok(Settings {
            conn_timeout: seconds(conf, "conn_timeout", 0.5)?,
            node_timeout,
            recoverable_node_timeout: recoverable,
            client_timeout: seconds(conf, "client_timeout", 60.0)?,
            post_quorum_timeout: seconds(conf, "post_quorum_timeout", 0.5)?,
            recheck_account_existence: conf
                .get_parsed(
                    "recheck_account_existence",
                    crate::info::DEFAULT_RECHECK_ACCOUNT_EXISTENCE,
                )
                .map_err(|e| e.to_string())?,
            recheck_container_existence: conf
                .get_parsed(
                    "recheck_container_existence",
                    crate::info::DEFAULT_RECHECK_CONTAINER_EXISTENCE,
                )
                .map_err(|e| e.to_string())?,
            allow_account_management: conf.get_bool("allow_account_management", false),
            account_autocreate: conf.get_bool("account_autocreate", false),
            max_containers_per_account: conf
                .get_parsed("max_containers_per_account", 0i64)
                .map_err(|e| e.to_string())?,
            max_containers_whitelist: csv(conf.get_or("max_containers_whitelist", "")),
            deny_host_headers: csv(conf.get_or("deny_host_headers", "")),
            log_handoffs: conf.get_bool("log_handoffs", true),
            cors_allow_origin: csv(conf.get_or("cors_allow_origin", "")),
            cors_expose_headers: csv(conf.get_or("cors_expose_headers", "")),
            strict_cors_mode: conf.get_bool("strict_cors_mode", true),
            allow_open_expired: conf.get_bool("allow_open_expired", false),
            request_node_count,
            swift_owner_headers: csv(owner_headers)
                .into_iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            backend_keepalive_connections: conf
                .get_parsed("backend_keepalive_connections", 16usize)
                .map_err(|e| e.to_string())?,
            backend_keepalive_timeout: seconds(conf, "backend_keepalive_timeout", 5.0)?,
        })
    }
}

/// The proxy app.
pub struct ProxyApp {
    me: std::rc::Weak<ProxyApp>,
    pub settings: Settings,
    pub logger: Logger,
    pub constraints: Constraints,
    pub policies: StoragePolicies,
    pub hash: HashPathConf,
    pub account_ring: Ring,
    pub container_ring: Ring,
    object_rings: BTreeMap<u64, Ring>,
    pub limiter: Rc<ErrorLimiter>,
    /// Idle backend connections (none when keep-alive is off).
    backend_pool: Option<Arc<swift_common::http::client::Pool>>,
    pub mimetypes: MimeTypes,
    info: Rc<RefCell<SwiftInfo>>,
    expose_info: bool,
    disallowed_sections: Vec<String>,
    trans_id_suffix: String,
}

impl ProxyApp {
    /// Build from `[app:proxy-server]`: read the settings, policies and
    /// every ring (a missing or broken ring is an error naming its file).
    pub fn new(
        conf: &Conf,
        ctx: &AppContext<'_>,
        info: Rc<RefCell<SwiftInfo>>,
    ) -> Result<Rc<ProxyApp>, String> {
        let settings = Settings::from_conf(conf)?;
        let swift_dir = PathBuf::from(conf.get_nonempty("swift_dir").unwrap_or("/etc/swift"));
        let policies =
            StoragePolicies::from_swift_conf(ctx.swift_conf).map_err(|e| e.to_string())?;
        let hash = HashPathConf::from_swift_conf(ctx.swift_conf);
        let logger = ctx.logger.clone();
        let open = |name: &str| -> Result<Ring, String> {
            let ring = Ring::open(&swift_dir, name, &hash).map_err(|e| e.to_string())?;
            let log = logger.clone();
            ring.set_reload_error_handler(move |e| {
                log.error(format_args!("Keeping the ring in use: {e}"));
            });
            Ok(ring)
        };
        let account_ring = open("account")?;
        let container_ring = open("container")?;
        let mut object_rings = BTreeMap::new();
        for p in policies.iter() {
            object_rings.insert(p.index(), open(p.ring_name())?);
        }
        let error_suppression_interval = conf
            .get_parsed("error_suppression_interval", 60.0f64)
            .map_err(|e| e.to_string())?;
        let error_suppression_limit = conf
            .get_parsed("error_suppression_limit", 10u32)
            .map_err(|e| e.to_string())?;
        let disallowed_sections = csv(conf.get_or(
            "disallowed_sections",
            "swift.auto_create_account_prefix, swift.valid_api_versions",
        ));
        let constraints = ctx.swift_conf.constraints.clone();
        {
            let mut reg = info.borrow_mut();
            reg.register_swift(&settings, &constraints, &policies);
        }
        let backend_pool = (settings.backend_keepalive_connections > 0).then(|| {
            swift_common::http::client::Pool::new(
                settings.backend_keepalive_connections,
                settings.backend_keepalive_timeout,
            )
        });
        Ok(Rc::new_cyclic(|me| ProxyApp {
            me: me.clone(),
            settings,
            logger,
            constraints,
            policies,
            hash,
            account_ring,
            container_ring,
            object_rings,
            limiter: Rc::new(ErrorLimiter::new(
                error_suppression_interval,
                error_suppression_limit,
            )),
            backend_pool,
            mimetypes: MimeTypes::load(&swift_dir),
            info,
            expose_info: conf.get_bool("expose_info", true),
            disallowed_sections,
            trans_id_suffix: conf.get_or("trans_id_suffix", "").to_owned(),
        }))
    }

    /// The object ring of a policy index.
    pub fn object_ring(&self, idx: u64) -> Option<&Ring> {
        self.object_rings.get(&idx)
    }

    /// The partition of a name (WSGI strings) in `ring`.
    pub fn part(
        &self,
        ring: &Ring,
        account: &str,
        container: Option<&str>,
        object: Option<&str>,
    ) -> usize {
        let (a, c, o) = (native(account), container.map(native), object.map(native));
        ring.get_part(&a, c.as_deref(), o.as_deref()).unwrap_or(0)
    }

    /// `hash_path(a, c, o)` in hex (WSGI strings).
    pub fn hash_path_hex(
        &self,
        account: &str,
        container: Option<&str>,
        object: Option<&str>,
    ) -> String {
        let (a, c, o) = (native(account), container.map(native), object.map(native));
        self.hash
            .hash_path_hex(&a, c.as_deref(), o.as_deref())
            .unwrap_or_default()
    }

    /// `User-Agent` of backend requests: `proxy-server <pid of the worker>`.
    pub fn backend_user_agent(&self) -> String {
        use std::fmt::Write as _;
        let mut ua = String::with_capacity(24);
        ua.push_str("proxy-server ");
        let _ = write!(ua, "{}", swift_common::http::trans_id::pid());
        ua
    }

    /// Log with a transaction id.
    pub fn log(&self, level: Level, trans_id: &str, msg: std::fmt::Arguments<'_>) {
        self.logger.log_with(level, msg, Some(trans_id), None);
    }

    /// `error_occurred`: log (`<msg> <ip:port/device>`, as Swift's) and
    /// count an error against `node`.
    pub fn error_occurred(&self, node: &Node, msg: &str, trans_id: &str) {
        self.log(Level::Error, trans_id, format_args!("{msg} {}", node.key()));
        self.error_increment(node, trans_id);
    }

    /// Count an error; log once when the node becomes limited.
    pub fn error_increment(&self, node: &Node, trans_id: &str) {
        if self.limiter.increment(node) {
            self.log(
                Level::Error,
                trans_id,
                format_args!(
                    "Node will be error limited for {:.2}s: {}",
                    self.limiter.interval(),
                    node.key()
                ),
            );
        }
    }

    /// Open a connection to `node` for `<device>/<part><entity_path>` and
    /// send the request head (within `conn_timeout`); the replication
    /// network when the headers ask for it.
    pub async fn connect(
        &self,
        node: &Node,
        part: usize,
        method: &str,
        entity_path: &str,
        query: Option<&str>,
        headers: &swift_common::http::Headers,
    ) -> Result<swift_common::http::client::Connection, swift_common::http::client::ClientError>
    {
        let mut path = Ctx::backend_path(node, part, entity_path);
        if let Some(q) = query {
            path.push('?');
            path.push_str(q);
        }
        let (ip, port) = if headers
            .get("x-backend-use-replication-network")
            .is_some_and(swift_common::config::values::config_true_value)
        {
            (node.replication_ip.as_str(), node.replication_port)
        } else {
            (node.ip.as_str(), node.port)
        };
        swift_common::http::client::Connection::open_with(
            self.backend_pool.as_ref(),
            ip,
            port,
            method,
            &path,
            headers,
            self.settings.conn_timeout,
        )
        .await
    }

    /// Swift's `exception_occurred`: log a failed exchange with `node` and
    /// count it against the node.
    pub fn exception_occurred(
        &self,
        node: &Node,
        server_type: crate::controllers::ServerType,
        info: &str,
        err: &swift_common::http::client::ClientError,
        trans_id: &str,
    ) {
        self.log(
            Level::Error,
            trans_id,
            format_args!(
                "ERROR with {} server {} re: {info}: {err}",
                server_type.name(),
                node.key()
            ),
        );
        self.error_increment(node, trans_id);
    }

    /// This app, shared (for response bodies that outlive the request's
    /// borrow of it, such as a GET that resumes from another node).
    pub fn shared(&self) -> Option<Rc<ProxyApp>> {
        self.me.upgrade()
    }

    /// `error_limit`: limit `node` at once (507).
    pub fn error_limit(&self, node: &Node, msg: &str, trans_id: &str) {
        self.limiter.limit(node);
        self.log(
            Level::Error,
            trans_id,
            format_args!(
                "Node will be error limited for {:.2}s: {}, error: {msg}",
                self.limiter.interval(),
                node.key()
            ),
        );
    }

    /// `/info` (Swift's `InfoController`).
    fn info(&self, req: &Request) -> Response {
        match &*req.method {
            "GET" | "HEAD" if self.expose_info => Response::with_body(
                200,
                "application/json; charset=UTF-8",
                self.info.borrow().render(&self.disallowed_sections),
            ),
            "GET" | "HEAD" => swob::status(403),
            "OPTIONS" => {
                let mut r = swob::status(200);
                r.headers.append("Allow", "HEAD, GET, OPTIONS");
                r
            }
            _ => swob::method_not_allowed("HEAD, GET, OPTIONS"),
        }
    }

    /// Swift's `handle_request`.
    async fn handle(&self, mut req: Request) -> Response {
        // update_request: one X-Timestamp for every backend request.
        let timestamp = match req.headers.get("x-timestamp") {
            Some(v) => match Timestamp::parse(v) {
                Ok(t) => t,
                Err(e) => return swob::plain(400, e.to_string()),
            },
            None => {
                let t = Timestamp::now();
                req.headers.set("X-Timestamp", t.internal());
                t
            }
        };
        if !req.headers.contains("x-auth-token")
            && let Some(t) = req.headers.get("x-storage-token").map(str::to_owned)
        {
            req.headers.set("X-Auth-Token", t);
        }
        let te_chunked = req.headers.get("transfer-encoding").is_some_and(|te| {
            te.rsplit(',')
                .next()
                .is_some_and(|l| l.trim().eq_ignore_ascii_case("chunked"))
        });
        if te_chunked {
            req.headers.remove("content-length");
        }
        let path_info = req.path_info().into_owned();
        let allow_reserved = req
            .headers
            .get("x-backend-allow-reserved-names")
            .is_some_and(swift_common::config::values::config_true_value);
        if !check_utf8(&path_info, allow_reserved) {
            return swob::html(412, "Invalid UTF8 or contains NULL");
        }
        if path_info == "/info" {
            return self.info(&req);
        }
        let Some((version, account, container, object)) = split_api_path(&path_info) else {
            return swob::status(404);
        };
        if !account.is_empty() && !valid_api_version(&version, &self.constraints) {
            return swob::status(400);
        }
        let kind = if !account.is_empty() && !container.is_empty() && !object.is_empty() {
            Kind::Object
        } else if !account.is_empty() && !container.is_empty() && object.is_empty() {
            Kind::Container
        } else if !account.is_empty() && container.is_empty() && object.is_empty() {
            Kind::Account
        } else {
            return swob::html(412, "Bad URL");
        };
        if let Some(host) = req.headers.get("host")
            && self
                .settings
                .deny_host_headers
                .iter()
                .any(|d| d == host.split(':').next().unwrap_or(""))
        {
            return swob::html(403, "Invalid host header");
        }
        let trans_id = req.env.trans_id.clone().unwrap_or_else(|| {
            let mut suffix = self.trans_id_suffix.clone();
            if let Some(extra) = req.headers.get("x-trans-id-extra") {
                suffix.push('-');
                suffix.extend(extra.chars().take(32));
            }
            swift_common::http::generate_trans_id(&suffix)
        });
        req.env.trans_id = Some(trans_id.clone());
        req.headers.set("X-Trans-Id", trans_id.clone());
        let method = req.method.to_string();
        let allowed = match kind {
            Kind::Account => account::allowed_methods(self.settings.allow_account_management),
            Kind::Container => container::ALLOWED,
            Kind::Object => obj::ALLOWED,
        };
        if !allowed.split(", ").any(|m| m == method) {
            return swob::method_not_allowed(allowed);
        }
        // Object requests need the container's policy first; a container
        // that cannot be looked up is a 503 before anything else.
        let delay_denial = method != "OPTIONS"
            && match kind {
                Kind::Object => true,
                Kind::Container => method == "GET" || method == "HEAD",
                Kind::Account => false,
            };
        if let Some(auth) = req.env.ext.get::<Authorize>().cloned() {
            let outcome = (auth.0)(AuthRequest {
                method: method.clone(),
                path_info: path_info.clone(),
                headers: req.headers.clone(),
                acl: None,
                env: req.env.clone(),
            })
            .await;
            if outcome.swift_owner {
                req.env.ext.insert(SwiftOwner(true));
            }
            if let Some(h) = outcome.headers {
                req.headers = h;
            }
            match outcome.denied {
                None => {
                    let cross_account = req.headers.contains("x-copy-from-account")
                        || req.headers.contains("destination-account");
                    if !cross_account {
                        req.env.ext.remove::<Authorize>();
                    }
                }
                Some(denied) if !delay_denial => return denied,
                Some(_) => {}
            }
        }
        let mut ctx = Ctx {
            app: self,
            req,
            trans_id,
            account,
            container,
            object,
            timestamp,
        };
        let origin = ctx.req.headers.get("origin").map(str::to_owned);
        let mut cors_info = None;
        if kind == Kind::Object {
            let info = ctx.container_info().await;
            if info.status >= 500 {
                return swob::status(503);
            }
            cors_info = Some(info);
        }
        if method == "OPTIONS" {
            let info = match kind {
                Kind::Account => None,
                _ => Some(match cors_info {
                    Some(i) => i,
                    None => ctx.container_info().await,
                }),
            };
            let h = &ctx.req.headers;
            return crate::cors::options(
                &self.settings,
                allowed,
                origin.as_deref(),
                h.get("access-control-request-method"),
                h.get("access-control-request-headers"),
                info.as_ref(),
            );
        }
        let cors = match (&origin, kind) {
            (Some(o), Kind::Container | Kind::Object) => Some((
                o.clone(),
                match cors_info {
                    Some(i) => i,
                    None => ctx.container_info().await,
                },
            )),
            _ => None,
        };
        let mut resp = self.dispatch(kind, &method, allowed, ctx).await;
        if let Some((origin, info)) = cors {
            crate::cors::decorate(&self.settings, &info, &origin, &mut resp);
        }
        resp
    }

    async fn dispatch(&self, kind: Kind, method: &str, allowed: &str, ctx: Ctx<'_>) -> Response {
        match (kind, method) {
            (Kind::Account, "GET" | "HEAD") => account::get_or_head(ctx).await,
            (Kind::Account, "PUT") => account::put(ctx).await,
            (Kind::Account, "POST") => account::post(ctx).await,
            (Kind::Account, "DELETE") => account::delete(ctx).await,
            (Kind::Container, "GET") => container::get(ctx).await,
            (Kind::Container, "HEAD") => container::head(ctx).await,
            (Kind::Container, "PUT") => container::put(ctx).await,
            (Kind::Container, "POST") => container::post(ctx).await,
            (Kind::Container, "DELETE") => container::delete(ctx).await,
            (Kind::Object, "GET" | "HEAD") => obj::get_or_head(ctx).await,
            (Kind::Object, "PUT") => obj::put(ctx).await,
            (Kind::Object, "POST") => obj::post(ctx).await,
            (Kind::Object, "DELETE") => obj::delete(ctx).await,
            _ => swob::method_not_allowed(allowed),
        }
    }
}

impl Service for ProxyApp {
    fn call(&self, req: Request) -> Reply<'_> {
        Reply::pending(self.handle(req))
    }
}

/// A WSGI name as the str hashed for its partition (`""` when its bytes are
/// not UTF-8).
fn native(wsgi: &str) -> std::borrow::Cow<'_, str> {
    wsgi_as_str(wsgi).unwrap_or_default()
}
