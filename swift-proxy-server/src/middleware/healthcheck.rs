//! `healthcheck`: answers `/healthcheck` (any method) with `200 OK` and
//! body `OK`, or `503 Service Unavailable` / `DISABLED BY FILE` while the
//! file or directory named by `disable_path` exists (checked on every
//! request, so an operator can drain a node by touching a file).
//! Every other path goes down the pipeline.

use std::path::PathBuf;
use std::rc::Rc;

use swift_common::http::{Reply, Request, Response, Service};

use crate::pipeline::FilterContext;

pub struct Healthcheck {
    next: Rc<dyn Service>,
    disable_path: Option<PathBuf>,
}

/// `egg:swift#healthcheck`; reads `disable_path`.
pub fn factory(ctx: &FilterContext<'_>, next: Rc<dyn Service>) -> Result<Rc<dyn Service>, String> {
    Ok(Rc::new(Healthcheck {
        next,
        disable_path: ctx.conf.get_nonempty("disable_path").map(PathBuf::from),
    }))
}

impl Service for Healthcheck {
    fn call(&self, req: Request) -> Reply<'_> {
        if req.path_info() != "/healthcheck" {
            return self.next.call(req);
        }
        let resp = match &self.disable_path {
            Some(p) if p.exists() => {
                Response::with_body(503, "text/plain", &b"DISABLED BY FILE"[..])
            }
            _ => Response::with_body(200, "text/plain", &b"OK"[..]),
        };
        Reply::Ready(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::tests::{Fixed, block_on, body_of};

    #[test]
    fn answers_healthcheck_for_any_method_and_passes_the_rest() {
        let h = Healthcheck {
            next: Rc::new(Fixed(404)),
            disable_path: None,
        };
        for method in ["GET", "POST", "DELETE", "HEAD"] {
            let r = block_on(h.call(Request::new(method, "/healthcheck?x=1")).resolve());
            assert_eq!((r.status, body_of(&r)), (200, "OK".to_string()));
            assert_eq!(r.headers.get("Content-Length"), Some("2"));
            assert_eq!(r.headers.get("Content-Type"), Some("text/plain"));
        }
        assert_eq!(
            block_on(h.call(Request::new("GET", "/healthcheck/")).resolve()).status,
            404
        );
        assert_eq!(
            block_on(h.call(Request::new("GET", "/")).resolve()).status,
            404
        );
        assert_eq!(
            block_on(h.call(Request::new("GET", "/health%63heck")).resolve()).status,
            200
        );
    }

    #[test]
    fn disable_path_is_checked_on_every_request() {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("disabled");
        let h = Healthcheck {
            next: Rc::new(Fixed(404)),
            disable_path: Some(flag.clone()),
        };
        assert_eq!(
            block_on(h.call(Request::new("GET", "/healthcheck")).resolve()).status,
            200
        );
        std::fs::write(&flag, "").unwrap();
        let r = block_on(h.call(Request::new("GET", "/healthcheck")).resolve());
        assert_eq!(
            (r.status, body_of(&r)),
            (503, "DISABLED BY FILE".to_string())
        );
        assert_eq!(r.headers.get("Content-Length"), Some("16"));
        std::fs::remove_file(&flag).unwrap();
        std::fs::create_dir(&flag).unwrap();
        assert_eq!(
            block_on(h.call(Request::new("GET", "/healthcheck")).resolve()).status,
            503
        );
    }
}
