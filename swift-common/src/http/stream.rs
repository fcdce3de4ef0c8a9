//! A [`BodyStream`] from an async step function (`unfold`): the state goes
//! into the step, the step gives back the next piece and the state, until
//! it gives `None`. How response bodies that need I/O between pieces
//! (a backend's body, a body that resumes from another backend) are made.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;

use super::message::BodyStream;

type Step<S> = Pin<Box<dyn Future<Output = Option<(io::Result<Bytes>, S)>>>>;

/// See [`unfold`].
pub struct Unfold<S> {
    step: fn(S) -> Step<S>,
    pending: Option<Step<S>>,
}

/// A stream whose pieces come from `step(state)`: `Some((Ok(piece),
/// state))` for the next piece, `Some((Err(e), _))` to end with an error,
/// `None` at the end.
pub fn unfold<S: 'static>(state: S, step: fn(S) -> Step<S>) -> Unfold<S> {
    Unfold {
        step,
        pending: Some(step(state)),
    }
}

impl<S: 'static> BodyStream for Unfold<S> {
    fn poll_chunk(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<Bytes>>> {
        let Some(fut) = self.pending.as_mut() else {
            return Poll::Ready(None);
        };
        match fut.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                self.pending = None;
                Poll::Ready(None)
            }
            Poll::Ready(Some((Err(e), _))) => {
                self.pending = None;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(Some((Ok(piece), state))) => {
                let step = self.step;
                self.pending = Some(step(state));
                Poll::Ready(Some(Ok(piece)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(n: u8) -> Step<u8> {
        Box::pin(async move {
            match n {
                0 => None,
                9 => Some((Err(io::Error::other("nine")), n)),
                n => Some((Ok(Bytes::from(vec![n])), n - 1)),
            }
        })
    }

    #[test]
    fn pieces_until_none_or_an_error() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut s = Box::pin(unfold(3u8, count));
            let mut got = Vec::new();
            while let Some(p) = std::future::poll_fn(|cx| s.as_mut().poll_chunk(cx)).await {
                got.extend_from_slice(&p.unwrap());
            }
            assert_eq!(got, vec![3, 2, 1]);
            let mut s = Box::pin(unfold(9u8, count));
            let first = std::future::poll_fn(|cx| s.as_mut().poll_chunk(cx)).await;
            assert!(first.unwrap().is_err());
            assert!(
                std::future::poll_fn(|cx| s.as_mut().poll_chunk(cx))
                    .await
                    .is_none()
            );
        });
    }
}
