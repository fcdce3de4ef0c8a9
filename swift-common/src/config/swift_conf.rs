//! `swift.conf`: the `[swift-hash]` check and `[swift-constraints]`. (Stub.)

use std::path::{Path, PathBuf};

use super::ConfigError;

/// Swift's constraints (`swift/common/constraints.py`), with its defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Constraints {
    pub max_header_size: usize,
    pub max_request_line: usize,
}

impl Default for Constraints {
    fn default() -> Self {
        Constraints {
            max_header_size: 8192,
            max_request_line: 8192,
        }
    }
}

/// A validated `swift.conf`.
#[derive(Clone, Debug)]
pub struct SwiftConf {
    pub path: PathBuf,
    pub constraints: Constraints,
}

impl SwiftConf {
    /// Load and validate `<swift_dir>/swift.conf`.
    pub fn load(swift_dir: &Path) -> Result<Self, ConfigError> {
        let _ = swift_dir;
        unimplemented!()
    }
}
