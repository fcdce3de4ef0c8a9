//! The operating-system edge. (being written)
#![allow(unsafe_code)]
