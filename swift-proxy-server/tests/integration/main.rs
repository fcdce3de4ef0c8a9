//! The proxy crate's integration tests: the memcache client against real
//! memcached servers and Python's client, tempauth against Python's.

mod memcache;
mod tempauth_diff;
