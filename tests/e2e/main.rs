//! End-to-end tests.

mod cluster;
mod copy;
mod docs;
mod faults;
mod functional;
mod packaging;
mod proxy_bad_input;
mod proxy_diff;
mod proxy_http;
mod proxy_server;
mod reload;
mod swift_init;
mod swift_init_diff;
mod swift_init_interop;
mod swift_venv;
mod tempauth;
