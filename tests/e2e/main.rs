//! End-to-end tests.

mod swift_init;
mod swift_init_diff;
mod swift_init_interop;
