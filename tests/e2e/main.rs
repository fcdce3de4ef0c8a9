//! End-to-end tests.

mod swift_init;
