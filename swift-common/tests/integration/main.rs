//! swift-common's integration tests: one binary, one module per area.

mod config;
mod storage_policy;
