//! `swift-proxy-server`. (being written)
#![forbid(unsafe_code)]

fn main() {}
