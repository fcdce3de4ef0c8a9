//! HTTP for Swift servers: the request and response types the pipeline
//! passes around ([`message`]), lazily read request bodies ([`body`]), the
//! [`Service`] interface, and the per-worker HTTP/1.1 server ([`server`]).
//!
//! We speak HTTP/1.1 with our own small codec (httparse for header fields)
//! rather than hyper, because Swift's behaviour needs control hyper does not
//! give: response header names exactly as the app wrote them, and Swift's
//! distinct answers for each limit (414, 400 Header Line Too Long, 400
//! Headers Too Large, 431).

pub mod body;
pub mod client;
pub mod message;
pub mod quote;
pub mod server;
pub mod service;
pub mod stream;
pub mod trans_id;

pub use body::{Body, BodyProgress};
pub use message::{
    BodyStream, Completion, Env, Extensions, Headers, Request, Response, ResponseBody, Text,
    Version, decimal, reason,
};
pub use server::{KeepAlive, ServeOutcome, ServerConfig, serve};
pub use service::{
    BoxFuture, CatchUnwind, Caught, Panic, Reply, Service, call_catching, panic_message,
};
pub use trans_id::generate_trans_id;
