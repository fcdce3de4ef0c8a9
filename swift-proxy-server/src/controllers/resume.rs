//! An object GET body that survives its object server (Swift's
//! `GetOrHeadHandler` resuming with `fast_forward`): when the server it
//! streams from fails or stalls past `recoverable_node_timeout` mid-body,
//! the rest is asked of the next node with a `Range` starting at the first
//! byte the client has not had, and accepted only from a copy with the same
//! ETag. The client gets every byte once, in order, or a cut connection;
//! never a byte from another version of the object.
//!
//! A multi-range (`multipart/byteranges`) body is not resumed: its failure
//! cuts the connection.

use std::rc::Rc;
use std::time::Duration;

use swift_common::http::Headers;
use swift_common::http::client::{ClientError, ResponseBody, ResponseHead};
use swift_common::http::stream::{Unfold, unfold};
use swift_common::logging::Level;

use super::ServerType;
use crate::app::ProxyApp;
use crate::node_iter::{Node, SharedNodes, next_node};

/// The bytes still owed to the client, as absolute offsets in the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Remaining {
    /// The next byte to send.
    pub next: u64,
    /// The last byte to send (inclusive); `None`: to the end.
    pub last: Option<u64>,
}

impl Remaining {
    /// What a good source's answer says is coming: all of a 200, or the
    /// `Content-Range` of a single-range 206. `None` when it cannot be
    /// resumed (multipart, or a range it does not state).
    pub fn of(head: &ResponseHead) -> Option<Remaining> {
        match head.status {
            200 => Some(Remaining {
                next: 0,
                last: None,
            }),
            206 => {
                let ct = head.headers.get("content-type").unwrap_or("");
                if ct.to_ascii_lowercase().starts_with("multipart/byteranges") {
                    return None;
                }
                let cr = head.headers.get("content-range")?;
                let spec = cr.trim().strip_prefix("bytes ")?;
                let (range, _total) = spec.split_once('/')?;
                let (a, b) = range.split_once('-')?;
                Some(Remaining {
                    next: a.trim().parse().ok()?,
                    last: Some(b.trim().parse().ok()?),
                })
            }
            _ => None,
        }
    }

    /// The `Range` header that asks for the rest.
    pub fn range_header(&self) -> String {
        match self.last {
            Some(l) => format!("bytes={}-{l}", self.next),
            None => format!("bytes={}-", self.next),
        }
    }
}

/// Everything a resuming body needs, owned (it outlives the request).
pub struct Resume {
    pub app: Rc<ProxyApp>,
    pub trans_id: String,
    pub nodes: SharedNodes,
    /// The backend request's headers (the Range is replaced on resume).
    pub headers: Headers,
    pub part: usize,
    pub entity_path: String,
    pub query: Option<String>,
    pub body: ResponseBody,
    /// The node `body` comes from.
    pub node: Node,
    /// The source's ETag, quotes removed: a resumed copy must match it.
    pub etag: String,
    pub remaining: Remaining,
    pub timeout: Duration,
}

/// The client's body stream for `r`.
pub fn stream(r: Resume) -> Unfold<Resume> {
    unfold(r, |mut r| {
        Box::pin(async move {
            loop {
                match r.body.chunk().await {
                    Ok(Some(piece)) => {
                        r.remaining.next += piece.len() as u64;
                        return Some((Ok(piece), r));
                    }
                    Ok(None) => return None,
                    Err(e) => {
                        if let Err(e) = r.resume(e).await {
                            return Some((Err(std::io::Error::other(e.to_string())), r));
                        }
                    }
                }
            }
        })
    })
}

impl Resume {
    /// The current source failed with `err`: find another with the rest.
    async fn resume(&mut self, err: ClientError) -> Result<(), ClientError> {
        let info = format!(
            "Trying to read object during GET (retrying) {}",
            swift_common::http::quote::wsgi_quote(&format!("/v1{}", self.entity_path), "/")
        );
        self.app
            .exception_occurred(&self.node, ServerType::Object, &info, &err, &self.trans_id);
        if self.remaining.last.is_some_and(|l| self.remaining.next > l) {
            // Everything was sent; only the end of the stream was lost.
            self.body = ResponseBody::empty();
            return Ok(());
        }
        self.headers.set("Range", self.remaining.range_header());
        self.headers
            .remove("x-backend-ignore-range-if-metadata-present");
        while let Some(node) = next_node(&self.nodes) {
            match self.try_node(&node).await {
                Ok(Some(body)) => {
                    self.app.log(
                        Level::Info,
                        &self.trans_id,
                        format_args!(
                            "Resumed GET of {} at byte {} from {}",
                            self.entity_path,
                            self.remaining.next,
                            node.key()
                        ),
                    );
                    self.body = body;
                    self.node = node;
                    return Ok(());
                }
                Ok(None) => {}
                Err(e) => self.app.exception_occurred(
                    &node,
                    ServerType::Object,
                    "Trying to GET the rest of an object",
                    &e,
                    &self.trans_id,
                ),
            }
        }
        Err(err)
    }

    /// The rest from `node`, if it has this very object and the range.
    async fn try_node(&self, node: &Node) -> Result<Option<ResponseBody>, ClientError> {
        let mut conn = self
            .app
            .connect(
                node,
                self.part,
                "GET",
                &self.entity_path,
                self.query.as_deref(),
                &self.headers,
            )
            .await?;
        let head = conn.read_head(self.app.settings.node_timeout).await?;
        let same = head
            .headers
            .get("etag")
            .is_some_and(|e| e.replace('"', "") == self.etag);
        let fits = Remaining::of(&head).is_some_and(|r| r.next == self.remaining.next);
        if head.status == 206 && same && fits {
            return Ok(Some(conn.into_body(&head, self.timeout)));
        }
        if head.status >= 500 {
            self.app.error_increment(node, &self.trans_id);
        }
        Ok(None)
    }
}

#[cfg(test)]
fn head(status: u16, headers: &[(&str, &str)]) -> ResponseHead {
    let mut h = Headers::new();
    for (k, v) in headers {
        h.append((*k).to_owned(), (*v).to_owned());
    }
    ResponseHead {
        status,
        reason: String::new(),
        headers: h,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_left_of_a_response() {
        assert_eq!(
            Remaining::of(&head(200, &[])),
            Some(Remaining {
                next: 0,
                last: None
            })
        );
        let r = Remaining::of(&head(206, &[("Content-Range", "bytes 10-19/100")])).unwrap();
        assert_eq!(
            r,
            Remaining {
                next: 10,
                last: Some(19)
            }
        );
        assert_eq!(r.range_header(), "bytes=10-19");
        assert!(
            Remaining::of(&head(
                206,
                &[("Content-Type", "multipart/byteranges;boundary=x")]
            ))
            .is_none()
        );
        assert!(Remaining::of(&head(304, &[])).is_none());
    }
}
