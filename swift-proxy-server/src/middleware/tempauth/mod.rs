//! `tempauth` (`egg:swift#tempauth`): Swift's test auth system, users in
//! the config. It hands out tokens at `auth_prefix` (`GET /auth/v1.0` with
//! `X-Auth-User`/`X-Auth-Key`), finds the groups of a token on every other
//! request (`REMOTE_USER`), and installs `swift.authorize`, which the
//! proxy app calls to decide: reseller admins, account owners, container
//! ACLs, account ACLs (`X-Account-Access-Control`), service tokens.
//!
//! Tokens live in memcache exactly as Python's tempauth keeps them
//! (`<prefix>/token/<token>` → `[expires, groups]`, `<prefix>/user/<a:u>`
//! → token), so a Python proxy and ours can share them through one
//! memcached; Fernet tokens (`fernet_key_*`) need no memcache and are
//! Python's byte for byte.
//!
//! The parts: [`config`] reads the section, [`token`] answers
//! `auth_prefix` requests, [`authorize`] decides, [`fernet`] holds the
//! crypto. This module must not decide anything itself beyond Swift's
//! `__call__`: which requests are ours, and what to install.

pub mod authorize;
pub mod config;
pub mod fernet;
pub mod token;

#[cfg(test)]
mod tests;

use std::io::Read as _;
use std::rc::Rc;

use swift_common::http::{Env, Reply, Request, Response, Service};
use swift_common::logging::{Level, Logger};

use crate::context::{
    AuthRequest, Authorize, AuthorizeOverride, CacheError, CleanAcl, RemoteUser, ResellerRequest,
    cache,
};
use crate::pipeline::FilterContext;
use crate::swob;
pub use config::Config;

/// The filter.
pub struct TempAuth {
    inner: Rc<Inner>,
}

/// What the filter and the `authorize` it installs share.
pub(crate) struct Inner {
    pub(crate) cfg: Config,
    pub(crate) fernets: Vec<fernet::Fernet>,
    pub(crate) logger: Logger,
    /// The rest of the pipeline (for account info lookups).
    pub(crate) next: Rc<dyn Service>,
}

/// `egg:swift#tempauth`. Registers `tempauth: {"account_acls": true}` in
/// `/info`.
pub fn factory(ctx: &FilterContext<'_>, next: Rc<dyn Service>) -> Result<Rc<dyn Service>, String> {
    let auth = TempAuth::new(ctx.conf, ctx.logger("")?, next)?;
    ctx.info
        .borrow_mut()
        .register("tempauth", "account_acls", serde_json::Value::Bool(true));
    Ok(Rc::new(auth))
}

/// Why groups could not be looked up at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MemcacheRequired;

impl TempAuth {
    /// The filter for `conf` (DEFAULT and `[filter:tempauth]` merged).
    pub fn new(
        conf: &swift_common::config::Conf,
        logger: Logger,
        next: Rc<dyn Service>,
    ) -> Result<TempAuth, String> {
        let cfg = Config::from_conf(conf)?;
        if let Some(bad) = &cfg.auth_prefix_rewritten {
            logger.warning(format_args!(
                "Rewriting invalid auth prefix \"{bad}\" to \"/auth/\" \
                 (Non-empty auth prefix path is required)"
            ));
        }
        Ok(TempAuth {
            inner: Rc::new(Inner {
                fernets: cfg.fernets(),
                cfg,
                logger,
                next,
            }),
        })
    }
}

impl Service for TempAuth {
    fn call(&self, req: Request) -> Reply<'_> {
        if self.inner.cfg.allow_overrides && req.env.ext.get::<AuthorizeOverride>().is_some() {
            return self.inner.next.call(req);
        }
        let inner = self.inner.clone();
        if req.path_info().starts_with(&inner.cfg.auth_prefix) {
            return Reply::pending(token::handle(inner, req));
        }
        Reply::pending(inner.serve(req))
    }
}

/// Python's `time()`.
pub(crate) fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

pub use crate::constraints::split_path;

impl Inner {
    /// Log with the request's transaction id, as Swift's adapters do.
    pub(crate) fn log(&self, level: Level, env: &Env, msg: std::fmt::Arguments<'_>) {
        self.logger
            .log_with(level, msg, env.trans_id.as_deref(), None);
    }

    /// `_get_account_prefix`: the reseller prefix `account` has (`""` if
    /// the empty prefix is configured and no other matches).
    pub(crate) fn account_prefix(&self, account: &str) -> Option<&str> {
        let prefixes = &self.cfg.reseller_prefixes;
        if let Some(p) = prefixes
            .iter()
            .find(|p| !p.is_empty() && account.starts_with(p.as_str()))
        {
            return Some(p);
        }
        prefixes.iter().any(|p| p.is_empty()).then_some("")
    }

    /// `_is_definitive_auth`: the path's account has one of our prefixes.
    fn is_definitive_auth(&self, path: &str) -> bool {
        match split_path(path, 1, 3, true) {
            Some(segs) => segs[1]
                // Swift's bool(prefix): the empty prefix is never definitive.
                .and_then(|a| self.account_prefix(a))
                .is_some_and(|p| !p.is_empty()),
            None => false,
        }
    }

    /// `_get_user_groups`: `account,account:user,<groups>`; `.admin`
    /// becomes the account under every reseller prefix and `account_id`.
    pub(crate) fn user_groups(
        &self,
        account: &str,
        account_user: &str,
        account_id: &str,
    ) -> String {
        let mut groups = vec![account.to_owned(), account_user.to_owned()];
        if let Some(u) = self.cfg.users.get(account_user) {
            groups.extend(u.groups.iter().cloned());
        }
        if let Some(i) = groups.iter().position(|g| g == ".admin") {
            groups.remove(i);
            for p in self.cfg.reseller_prefixes.iter().filter(|p| !p.is_empty()) {
                groups.push(format!("{p}{account}"));
            }
            if !groups.iter().any(|g| g == account_id) {
                groups.push(account_id.to_owned());
            }
        }
        groups.join(",")
    }

    /// `get_groups(env, token)`: the groups of a token of ours, or `None`.
    /// A memcache that fails counts as a miss (Swift's client returns
    /// `None`); the failure is put in `failed` for the caller to log once.
    pub(crate) async fn get_groups(
        &self,
        env: &Env,
        token: &str,
        failed: &mut Option<CacheError>,
    ) -> Result<Option<String>, MemcacheRequired> {
        let prefix = &self.cfg.reseller_prefix;
        for handler in ["zftk", "ftk", "tk"] {
            let Some(rest) = token
                .strip_prefix(prefix.as_str())
                .and_then(|t| t.strip_prefix(handler))
            else {
                continue;
            };
            let groups = match handler {
                "tk" => self.groups_from_memcache(env, rest, failed).await?,
                h => self.groups_from_fernet(rest, h == "zftk"),
            };
            if let Some(g) = groups.filter(|g| !g.is_empty()) {
                return Ok(Some(g));
            }
        }
        Ok(None)
    }

    fn groups_from_fernet(&self, token: &str, compressed: bool) -> Option<String> {
        if self.fernets.is_empty() {
            return None;
        }
        let plain = fernet::decrypt(
            &self.fernets,
            token,
            self.cfg.token_life,
            now().floor() as i64,
        )?;
        let plain = if compressed {
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(&plain[..])
                .read_to_end(&mut out)
                .ok()?;
            out
        } else {
            plain
        };
        String::from_utf8(plain).ok()
    }

    async fn groups_from_memcache(
        &self,
        env: &Env,
        token: &str,
        failed: &mut Option<CacheError>,
    ) -> Result<Option<String>, MemcacheRequired> {
        let mc = cache(env).ok_or(MemcacheRequired)?;
        let p = &self.cfg.reseller_prefix;
        let key = [p.as_str(), "/token/", p, "tk", token].concat();
        let value = match mc.get_shared(&key).await {
            Ok(v) => v,
            Err(e) => {
                *failed = Some(e);
                return Ok(None);
            }
        };
        Ok(value
            .and_then(|v| cached_auth_data(&v))
            .and_then(|(expires, groups)| (expires >= now()).then_some(groups)))
    }

    /// Swift's `__call__` for requests that are not `auth_prefix` ones.
    async fn serve(self: Rc<Self>, mut req: Request) -> Response {
        let path_info = req.path_info().into_owned();
        let token = req
            .headers
            .get("x-auth-token")
            .or_else(|| req.headers.get("x-storage-token"))
            .map(str::to_owned);
        let service_token = req.headers.get("x-service-token").map(str::to_owned);
        let prefix = self.cfg.reseller_prefix.clone();
        match token.filter(|t| !t.is_empty() && t.starts_with(&prefix)) {
            Some(token) => {
                let mut failed = None;
                let looked_up = async {
                    let mut groups = self.get_groups(&req.env, &token, &mut failed).await?;
                    if let Some(st) = service_token.as_deref().filter(|t| !t.is_empty()) {
                        let service_groups = self.get_groups(&req.env, st, &mut failed).await?;
                        if let (Some(g), Some(s)) = (groups.as_mut(), service_groups) {
                            g.push(',');
                            g.push_str(&s);
                        }
                    }
                    Ok::<_, MemcacheRequired>(groups)
                }
                .await;
                if let Some(e) = &failed {
                    self.log(
                        Level::Error,
                        &req.env,
                        format_args!(
                            "Error looking up token in memcache: {e}; treated as not found"
                        ),
                    );
                }
                let groups = match looked_up {
                    Ok(g) => g,
                    Err(MemcacheRequired) => return self.memcache_required(&req.env),
                };
                match groups {
                    Some(groups) => {
                        let mut parts = groups.splitn(3, ',');
                        let first = parts.next().unwrap_or("");
                        let user = parts.next().unwrap_or(first);
                        self.log(
                            Level::Debug,
                            &req.env,
                            format_args!(
                                "User: {user} uses token {token} (trans_id {})",
                                req.env.trans_id.as_deref().unwrap_or("None")
                            ),
                        );
                        if groups.contains(".reseller_admin") {
                            req.env.ext.insert(ResellerRequest);
                        }
                        req.env.ext.insert(RemoteUser(groups));
                        req.env.ext.insert(self.authorize_hook());
                        req.env.ext.insert(CleanAcl);
                    }
                    None if !prefix.is_empty() => {
                        // We are the definitive auth for this token: deny now.
                        let realm = match split_path(&path_info, 2, 3, true) {
                            Some(segs) => segs[1].unwrap_or_default().to_owned(),
                            None => "unknown".into(),
                        };
                        let mut resp = swob::status(401);
                        resp.headers
                            .append("Www-Authenticate", format!("Swift realm=\"{realm}\""));
                        return resp;
                    }
                    None => {
                        if req.env.ext.get::<Authorize>().is_none() {
                            req.env.ext.insert(denied_hook());
                        }
                    }
                }
            }
            None => {
                if self.is_definitive_auth(&path_info) {
                    req.env.ext.insert(self.authorize_hook());
                    req.env.ext.insert(CleanAcl);
                } else if req.env.ext.get::<Authorize>().is_none() {
                    // With the empty prefix we may be anyone's auth;
                    // otherwise this is not ours: deny unless another
                    // auth middleware decides.
                    let hook = if prefix.is_empty() {
                        req.env.ext.insert(CleanAcl);
                        self.authorize_hook()
                    } else {
                        denied_hook()
                    };
                    req.env.ext.insert(hook);
                }
            }
        }
        self.next.call(req).resolve().await
    }

    /// Swift raises "Memcache required" (a 500); we answer 503 and say why.
    pub(crate) fn memcache_required(&self, env: &Env) -> Response {
        self.log(
            Level::Error,
            env,
            format_args!(
                "Memcache required: no cache in the request; put the cache filter \
                 before tempauth in [pipeline:main]"
            ),
        );
        swob::status(503)
    }

    /// `swift.authorize = self.authorize`.
    fn authorize_hook(self: &Rc<Self>) -> Authorize {
        let inner = self.clone();
        Authorize(Rc::new(move |req: AuthRequest| {
            Box::pin(authorize::authorize(inner.clone(), req))
        }))
    }
}

/// `swift.authorize = self.denied_response`.
fn denied_hook() -> Authorize {
    Authorize(Rc::new(|req: AuthRequest| {
        let outcome = crate::context::AuthOutcome::denied(authorize::denied_response(&req));
        Box::pin(async move { outcome })
    }))
}

/// `(expires, groups)` from a memcache token entry.
pub(crate) fn cached_auth_data(v: &serde_json::Value) -> Option<(f64, String)> {
    match v.as_array()?.as_slice() {
        [expires, groups] => Some((expires.as_f64()?, groups.as_str()?.to_owned())),
        _ => None,
    }
}
