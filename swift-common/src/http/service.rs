//! The pipeline's interface: a [`Service`] turns a request into a response.
//! Middleware are services that hold the next one. Workers are
//! single-threaded, so nothing here needs `Send`.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::message::{Request, Response};

/// A boxed, single-threaded future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// One element of the pipeline: a filter, or the app at its end.
pub trait Service {
    fn call(&self, req: Request) -> BoxFuture<'_, Response>;
}

/// Run `fut`, turning a panic inside any of its polls into `Err` with the
/// panic's payload (for catch_errors and the server's last-resort 500).
pub fn catch_unwind_future<F: Future>(fut: F) -> CatchUnwind<F> {
    CatchUnwind {
        inner: Box::pin(fut),
    }
}

/// See [`catch_unwind_future`].
pub struct CatchUnwind<F: Future> {
    inner: Pin<Box<F>>,
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.inner.as_mut();
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_owned()
    }
}
