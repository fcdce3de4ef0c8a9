//! `catch_errors`: gives every request a transaction id (`X-Trans-Id` and
//! `X-Openstack-Request-Id` on every response) and turns any error or panic
//! further down the pipeline into a plain `500 Internal Error` whose body
//! says nothing about the inside.

use std::rc::Rc;

use swift_common::http::{
    Caught, Panic, Reply, Request, Response, ResponseBody, Service, call_catching,
    generate_trans_id, panic_message,
};
use swift_common::logging::{Level, Logger};

use crate::pipeline::FilterContext;

pub struct CatchErrors {
    next: Rc<dyn Service>,
    logger: Logger,
    trans_id_suffix: String,
}

/// `egg:swift#catch_errors`; reads `trans_id_suffix`.
pub fn factory(ctx: &FilterContext<'_>, next: Rc<dyn Service>) -> Result<Rc<dyn Service>, String> {
    Ok(Rc::new(CatchErrors {
        next,
        logger: ctx.logger("")?,
        trans_id_suffix: ctx.conf.get_or("trans_id_suffix", "").to_owned(),
    }))
}

impl CatchErrors {
    fn trans_id(&self, req: &Request) -> String {
        match req
            .headers
            .get("x-trans-id-extra")
            .filter(|e| !e.is_empty())
        {
            Some(extra) => {
                let extra: String = extra.chars().take(32).collect();
                generate_trans_id(&format!("{}-{extra}", self.trans_id_suffix))
            }
            None => generate_trans_id(&self.trans_id_suffix),
        }
    }
}

impl CatchErrors {
    /// What every response gets on its way out; a panic becomes a bare 500.
    fn finish(
        &self,
        outcome: Result<Response, Panic>,
        trans_id: String,
        is_head: bool,
    ) -> Response {
        let mut resp = match outcome {
            Ok(resp) => resp,
            Err(payload) => {
                // Swift's catch_errors logger knows the txn, not the client.
                self.logger.log_with(
                    Level::Error,
                    format_args!("Error: An error occurred: {}", panic_message(&*payload)),
                    Some(&trans_id),
                    None,
                );
                Response::with_body(500, "text/plain", &b"An error occurred"[..])
            }
        };
        if is_head {
            // Swift enforces that a HEAD response carries no body.
            resp.body = ResponseBody::Empty;
        }
        resp.headers.append("X-Trans-Id", trans_id.clone());
        resp.headers.append("X-Openstack-Request-Id", trans_id);
        resp
    }
}

impl Service for CatchErrors {
    fn call(&self, mut req: Request) -> Reply<'_> {
        let trans_id = self.trans_id(&req);
        req.env.trans_id = Some(trans_id.clone());
        let is_head = req.method == "HEAD";
        match call_catching(&*self.next, req) {
            Caught::Ready(outcome) => Reply::Ready(self.finish(outcome, trans_id, is_head)),
            Caught::Pending(fut) => Reply::pending(async move {
                let outcome = fut.await;
                self.finish(outcome, trans_id, is_head)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::tests::{Fixed, Panics, block_on, test_logger};

    fn filter(next: Rc<dyn Service>, suffix: &str) -> CatchErrors {
        CatchErrors {
            next,
            logger: test_logger(),
            trans_id_suffix: suffix.into(),
        }
    }

    #[test]
    fn every_response_gets_the_trans_id_headers() {
        let f = filter(Rc::new(Fixed(200)), "-sfx");
        let resp = block_on(f.call(Request::new("GET", "/x")).resolve());
        let id = resp.headers.get("X-Trans-Id").unwrap().to_owned();
        assert!(id.starts_with("tx") && id.ends_with("-sfx"), "{id}");
        assert_eq!(
            resp.headers.get("X-Openstack-Request-Id"),
            Some(id.as_str())
        );
    }

    #[test]
    fn trans_id_extra_is_appended_and_capped() {
        let f = filter(Rc::new(Fixed(200)), "");
        let mut req = Request::new("GET", "/x");
        req.headers.append("X-Trans-Id-Extra", "a".repeat(40));
        let resp = block_on(f.call(req).resolve());
        assert!(
            resp.headers
                .get("x-trans-id")
                .unwrap()
                .ends_with(&format!("-{}", "a".repeat(32)))
        );
    }

    #[test]
    fn a_panic_becomes_a_500_without_details() {
        let f = filter(Rc::new(Panics), "");
        let resp = block_on(f.call(Request::new("GET", "/x")).resolve());
        assert_eq!(resp.status, 500);
        match &resp.body {
            ResponseBody::Full(b) => assert_eq!(&b[..], b"An error occurred"),
            other => panic!("{other:?}"),
        }
        assert!(resp.headers.get("X-Trans-Id").is_some());
    }
}
