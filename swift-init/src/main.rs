//! `swift-init`: Swift's service manager. (being written)
#![forbid(unsafe_code)]

fn main() {}
