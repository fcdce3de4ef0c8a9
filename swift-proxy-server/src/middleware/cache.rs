//! `cache` (`egg:swift#memcache`): gives every request the worker's
//! memcache client as `swift.cache` ([`SwiftCache`] in the request's
//! `env.ext`), then passes it on. What is cached, and for how long, is the
//! business of the middleware and controllers that use it.
//!
//! The client is built once with the pipeline, in the master, and holds no
//! connection until a worker first uses it: each forked worker then has
//! its own pools (see [`crate::memcache`]).

use std::rc::Rc;

use swift_common::http::{Reply, Request, Service};

use crate::context::{Memcache, SwiftCache};
use crate::memcache::{MemcacheConfig, MemcacheRing};
use crate::pipeline::FilterContext;

pub struct Cache {
    next: Rc<dyn Service>,
    cache: Rc<SwiftCache>,
}

impl Cache {
    /// A filter that hands `cache` to every request.
    pub fn new(next: Rc<dyn Service>, cache: Rc<dyn Memcache>) -> Cache {
        Cache {
            next,
            cache: Rc::new(SwiftCache(cache)),
        }
    }
}

/// `egg:swift#memcache`; reads Swift's memcache keys, falling back to
/// `<swift_dir>/memcache.conf` (see [`MemcacheConfig::from_conf`]).
pub fn factory(ctx: &FilterContext<'_>, next: Rc<dyn Service>) -> Result<Rc<dyn Service>, String> {
    let config = MemcacheConfig::from_conf(ctx.conf).map_err(|e| e.to_string())?;
    let ring = MemcacheRing::new(&config, ctx.logger("")?);
    Ok(Rc::new(Cache::new(next, Rc::new(ring))))
}

impl Service for Cache {
    fn call(&self, mut req: Request) -> Reply<'_> {
        req.env.ext.insert_rc(self.cache.clone());
        self.next.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::time::Duration;

    use swift_common::http::{BoxFuture, Response};

    use crate::context::{CacheError, cache};
    use crate::middleware::tests::block_on;

    /// Remembers what was set.
    #[derive(Default)]
    struct Recorder(RefCell<Vec<String>>);
    impl Memcache for Recorder {
        fn get<'a>(
            &'a self,
            _key: &'a str,
        ) -> BoxFuture<'a, Result<Option<serde_json::Value>, CacheError>> {
            Box::pin(async { Ok(None) })
        }
        fn set<'a>(
            &'a self,
            key: &'a str,
            _value: &'a serde_json::Value,
            _ttl: Duration,
        ) -> BoxFuture<'a, Result<(), CacheError>> {
            self.0.borrow_mut().push(key.to_owned());
            Box::pin(async { Ok(()) })
        }
        fn delete<'a>(&'a self, _key: &'a str) -> BoxFuture<'a, Result<(), CacheError>> {
            Box::pin(async { Ok(()) })
        }
    }

    /// Uses `swift.cache` when it is there; 412 when it is not.
    struct UsesCache;
    impl Service for UsesCache {
        fn call(&self, req: Request) -> Reply<'_> {
            let Some(c) = cache(&req.env) else {
                return Reply::Ready(Response::new(412));
            };
            Reply::pending(async move {
                let v = serde_json::Value::Null;
                c.set(req.raw_path(), &v, Duration::ZERO).await.unwrap();
                Response::new(204)
            })
        }
    }

    #[test]
    fn every_request_gets_the_same_cache() {
        let rec = Rc::new(Recorder::default());
        let filter = Cache::new(Rc::new(UsesCache), rec.clone());
        for path in ["/v1/a", "/v1/a/c"] {
            let r = block_on(filter.call(Request::new("GET", path)).resolve());
            assert_eq!(r.status, 204);
        }
        assert_eq!(*rec.0.borrow(), ["/v1/a", "/v1/a/c"]);
        let r = block_on(UsesCache.call(Request::new("GET", "/v1/a")).resolve());
        assert_eq!(r.status, 412);
    }
}
