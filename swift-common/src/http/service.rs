//! The pipeline's interface: a [`Service`] turns a request into a
//! [`Reply`]. Middleware are services that hold the next one. Workers are
//! single-threaded, so nothing here needs `Send`.
//!
//! A reply is either a response the service already has, or a future. The
//! first costs no allocation, so a request answered without waiting (a
//! health check, an error) runs through the whole pipeline without boxing.

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
    fn call(&self, req: Request) -> Reply<'_>;
}

/// What a service returns.
pub enum Reply<'a> {
    /// The response, available now.
    Ready(Response),
    /// The response, once the future completes (I/O to do first).
    Pending(BoxFuture<'a, Response>),
}

impl<'a> Reply<'a> {
    /// A reply from a future.
    pub fn pending(fut: impl Future<Output = Response> + 'a) -> Reply<'a> {
        Reply::Pending(Box::pin(fut))
    }

    /// Transform the response when it comes: at once when it is ready.
    pub fn map(self, f: impl FnOnce(Response) -> Response + 'a) -> Reply<'a> {
        match self {
            Reply::Ready(r) => Reply::Ready(f(r)),
            Reply::Pending(fut) => Reply::pending(async move { f(fut.await) }),
        }
    }

    /// The response, awaiting it if needed.
    pub async fn resolve(self) -> Response {
        match self {
            Reply::Ready(r) => r,
            Reply::Pending(fut) => fut.await,
        }
    }
}

/// A panic's payload.
pub type Panic = Box<dyn Any + Send>;

/// A reply whose panics are caught, see [`call_catching`].
pub enum Caught<'a> {
    Ready(Result<Response, Panic>),
    Pending(CatchUnwind<BoxFuture<'a, Response>>),
}

impl Caught<'_> {
    /// The response, or the payload of a panic while making it.
    pub async fn resolve(self) -> Result<Response, Panic> {
        match self {
            Caught::Ready(r) => r,
            Caught::Pending(fut) => fut.await,
        }
    }
}

/// Call `service`, catching a panic while it builds its reply or later
/// while its future runs (for catch_errors and the server's last-resort
/// 500). A ready reply costs nothing extra.
pub fn call_catching(service: &dyn Service, req: Request) -> Caught<'_> {
    match catch_unwind(AssertUnwindSafe(|| service.call(req))) {
        Ok(Reply::Ready(r)) => Caught::Ready(Ok(r)),
        Ok(Reply::Pending(fut)) => Caught::Pending(CatchUnwind { inner: fut }),
        Err(panic) => Caught::Ready(Err(panic)),
    }
}

/// A future whose panics become `Err`, see [`call_catching`].
pub struct CatchUnwind<F> {
    inner: F,
}

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Panic>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = Pin::new(&mut self.inner);
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
