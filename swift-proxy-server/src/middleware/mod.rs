//! The filters this proxy implements, each a [`Service`](swift_common::http::Service)
//! built from its `[filter:...]` section by a `factory` with the signature
//! [`crate::pipeline`] expects.

pub mod cache;
pub mod catch_errors;
pub mod copy;
pub mod dlo;
pub mod gatekeeper;
pub mod healthcheck;
pub mod listing_formats;
pub mod proxy_logging;
pub mod tempauth;

/// Stand-ins for the rest of the pipeline, shared by the filters' tests.
#[cfg(test)]
pub(crate) mod tests {
    use swift_common::http::{Reply, Request, Response, ResponseBody, Service};
    use swift_common::logging::{Level, LogConfig, Logger, Target};

    /// Answers every request with this status.
    pub struct Fixed(pub u16);
    impl Service for Fixed {
        fn call(&self, _req: Request) -> Reply<'_> {
            Reply::Ready(Response::with_body(self.0, "text/plain", &b"fixed"[..]))
        }
    }

    /// Panics.
    pub struct Panics;
    impl Service for Panics {
        fn call(&self, _req: Request) -> Reply<'_> {
            Reply::pending(async move { panic!("boom inside the app") })
        }
    }

    /// Copies the request headers into the response and adds an internal one.
    pub struct Echo;
    impl Service for Echo {
        fn call(&self, req: Request) -> Reply<'_> {
            let mut r = Response::new(200);
            for (k, v) in req.headers.iter() {
                r.headers.append(k.to_owned(), v.to_owned());
            }
            r.headers.append("X-Backend-Internal", "1");
            Reply::Ready(r)
        }
    }

    /// Reports each request header back as `Seen-<name>`.
    pub struct Inspect;
    impl Service for Inspect {
        fn call(&self, req: Request) -> Reply<'_> {
            let mut r = Response::new(200);
            for (k, v) in req.headers.iter() {
                r.headers.append(format!("Seen-{k}"), v.to_owned());
            }
            Reply::Ready(r)
        }
    }

    pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        tokio::task::LocalSet::new().block_on(&rt, f)
    }

    pub fn body_of(r: &Response) -> String {
        match &r.body {
            ResponseBody::Full(b) => String::from_utf8_lossy(b).into_owned(),
            ResponseBody::Empty => String::new(),
            ResponseBody::Stream(_) => "<stream>".into(),
        }
    }

    /// A logger that drops everything (UDP to an unroutable host).
    pub fn test_logger() -> Logger {
        let cfg = LogConfig {
            name: "proxy-server".into(),
            level: Level::Debug,
            facility: 16,
            max_line_length: 0,
            target: Target::Udp("256.256.256.256".into(), 514),
        };
        Logger::open(&cfg, None).expect("logger")
    }
}
