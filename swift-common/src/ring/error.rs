//! The errors of loading a ring file: one type, [`RingError`], that always
//! names the file, and its kinds. Loading never panics on a bad file.

use std::path::{Path, PathBuf};

/// A ring file that cannot be used. `Display` is one line naming the file
/// and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("ring file {}: {kind}", path.display())]
pub struct RingError {
    /// The ring file (`<swift_dir>/<name>.ring.gz`).
    pub path: PathBuf,
    /// What is wrong with it.
    pub kind: RingErrorKind,
}

impl RingError {
    pub(crate) fn new(path: &Path, kind: RingErrorKind) -> Self {
        RingError {
            path: path.to_path_buf(),
            kind,
        }
    }
}

/// What is wrong with a ring file.
#[derive(Debug, thiserror::Error)]
pub enum RingErrorKind {
    /// The file cannot be opened or read (missing, permissions, ...).
    #[error("cannot read it: {0}")]
    Read(#[source] std::io::Error),
    /// The file does not start with the gzip magic.
    #[error("not a gzip file (a ring is a gzip-compressed R1NG stream)")]
    NotGzip,
    /// The gzip stream is truncated or corrupt (bad CRC, bad deflate data).
    #[error("truncated or corrupt gzip data: {0}")]
    Gzip(#[source] std::io::Error),
    /// The uncompressed stream does not start with `R1NG`.
    #[error("bad ring magic {found}: not a Swift ring (expected \"R1NG\")")]
    BadMagic {
        /// The first bytes, escaped as Python prints bytes.
        found: String,
    },
    /// A ring format version other than 1 or 2.
    #[error("unsupported ring format version {0} (only 1 and 2 are supported)")]
    UnsupportedVersion(u16),
    /// The uncompressed stream ends before what it announces.
    #[error("truncated: {0}")]
    Truncated(String),
    /// A JSON part (v1 header, v2 metadata, devices or index) does not parse.
    #[error("bad JSON in {part}: {error}")]
    Json {
        /// Which part: `header`, `swift/ring/metadata`, ...
        part: String,
        error: String,
    },
    /// A v2 section whose checksum does not match the index.
    #[error("{method} mismatch in section {section}: found {found}, expected {expected}")]
    Checksum {
        section: String,
        method: String,
        found: String,
        expected: String,
    },
    /// Anything else that makes the ring unusable: a device id out of
    /// range or pointing at a removed device, a bad device entry, a
    /// `part_shift` out of range, a missing v2 section...
    #[error("{0}")]
    Invalid(String),
}

/// `hash_path` was given an object without a container (Swift raises
/// `ValueError: container is required if object is provided`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("container is required if object is provided")]
pub struct HashPathError;
