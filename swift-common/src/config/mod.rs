//! Configuration: paste.deploy files and `swift.conf`, read the way Swift reads them.
//!
//! - [`ini`]: a parser with Python `configparser` semantics as Swift configures it
//!   (case-sensitive keys, strict duplicates, continuation lines, full-line comments,
//!   `%(name)s` interpolation with Swift's "no `%(` means raw" rule).
//! - [`paste`]: paste.deploy on top of it: a file or a `.conf.d` directory,
//!   `[DEFAULT]` precedence, `set`/`get`, `use = egg:swift#name`, `[pipeline:main]`.
//! - [`values`]: Swift's value parsers (`config_true_value`, `auto` integers, ...).
//! - [`swift_conf`]: `swift.conf` under `swift_dir`: the `[swift-hash]` check and
//!   `[swift-constraints]`.
//!
//! This module only reads and validates; it never opens sockets, logs or exits.
//! Every error carries the file (and line, section and key where known) so a
//! binary can print it as one line.

pub mod ini;
pub mod paste;
pub(crate) mod pystr;
pub mod swift_conf;
pub mod values;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use paste::{Component, PasteConfig, Pipeline};
pub use swift_conf::{Constraints, SwiftConf};

/// Everything that can be wrong with a configuration. `Display` is one line that
/// names the file and, where known, the line, section, key and value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or directory could not be read.
    #[error("Unable to read config from {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A syntax error in an INI file (ConfigParser's ParsingError and friends).
    #[error("{path}: line {line}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// Any other structural problem (missing section, bad pipeline, ...).
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    /// A `%(name)s` reference that cannot be expanded (unknown name, bad
    /// syntax such as `%(x)d` or a lone `%`, or nesting deeper than 10).
    #[error(
        "{path}{}: [{section}] {key} = {value:?}: {message}",
        line_suffix(*.line)
    )]
    Interpolation {
        path: PathBuf,
        /// The line of `key`; `None` for a built-in default (`here`, a global override).
        line: Option<usize>,
        section: String,
        key: String,
        /// The raw value of `key`.
        value: String,
        message: String,
    },
    /// paste.deploy refused the config (no such section, ambiguous names, a
    /// bad pipeline, an unsupported loader). The message is paste's wording
    /// where paste has one and always names the file.
    #[error("{message}")]
    Paste { path: PathBuf, message: String },
    /// `swift.conf` sets neither hash path setting: Swift's exact message.
    #[error(
        "Error: [swift-hash]: both swift_hash_path_suffix and swift_hash_path_prefix are missing from {path}"
    )]
    MissingHashPath { path: PathBuf },
    /// A value that does not parse or is out of range.
    #[error("{path}{}: [{section}] {key} = {value:?}: {reason}", line_suffix(*.line))]
    Value {
        /// The file the value was written in (or the config path).
        path: PathBuf,
        /// The line of the key, when known.
        line: Option<usize>,
        section: String,
        key: String,
        value: String,
        reason: String,
    },
}

/// `": line N"` when the line is known.
fn line_suffix(line: Option<usize>) -> String {
    line.map(|l| format!(": line {l}")).unwrap_or_default()
}

/// A resolved section: what a Swift app or filter factory receives as `conf`
/// (paste's `global_conf` updated with `local_conf`), every value interpolated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conf {
    source: PathBuf,
    section: String,
    values: BTreeMap<String, String>,
    /// Where each value read from a file was written: file and line.
    origins: BTreeMap<String, (PathBuf, usize)>,
}

impl Conf {
    /// A conf from already-resolved values; `source` is the file or `.conf.d`
    /// directory, `section` the full section name (`app:proxy-server`).
    pub fn new(
        source: impl Into<PathBuf>,
        section: impl Into<String>,
        values: BTreeMap<String, String>,
    ) -> Self {
        Conf {
            source: source.into(),
            section: section.into(),
            values,
            origins: BTreeMap::new(),
        }
    }

    /// The same conf, knowing the file and line each value was written at
    /// (errors from [`Conf::invalid`] then name them).
    pub fn with_origins(mut self, origins: BTreeMap<String, (PathBuf, usize)>) -> Self {
        self.origins = origins;
        self
    }

    /// The file and line where `key`'s value was written, if it came from a file.
    pub fn origin(&self, key: &str) -> Option<(&Path, usize)> {
        self.origins.get(key).map(|(p, l)| (p.as_path(), *l))
    }

    /// A conf from literal pairs (for tests and for code that builds a
    /// section by hand).
    pub fn from_pairs(
        source: impl Into<PathBuf>,
        section: impl Into<String>,
        pairs: &[(&str, &str)],
    ) -> Self {
        let values = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Conf::new(source, section, values)
    }

    /// The file or directory this conf was read from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The full section name, such as `app:proxy-server` or `filter:healthcheck`.
    pub fn section(&self) -> &str {
        &self.section
    }

    /// The raw value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// The value of `key`, or `default` when it is unset.
    pub fn get_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.get(key).unwrap_or(default)
    }

    /// The value of `key` when set and not empty after trimming.
    pub fn get_nonempty(&self, key: &str) -> Option<&str> {
        self.get(key).map(str::trim).filter(|v| !v.is_empty())
    }

    /// Swift's `config_true_value(conf.get(key, default))`.
    pub fn get_bool(&self, key: &str, default: bool) -> bool {
        match self.get(key) {
            Some(v) => values::config_true_value(v),
            None => default,
        }
    }

    /// An integer (or any `FromStr` number) with a default for an unset key;
    /// an unparsable value is an error naming the key.
    pub fn get_parsed<T: FromStr>(&self, key: &str, default: T) -> Result<T, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| self.invalid(key, "not a valid number")),
        }
    }

    /// Swift's `config_auto_int_value`: unset or `auto` gives `auto`.
    pub fn get_auto_int(&self, key: &str, auto: i64) -> Result<i64, ConfigError> {
        values::config_auto_int_value(self.get(key), auto)
            .map_err(|reason| self.invalid(key, &reason))
    }

    /// Parse `key` (or `default` when it is unset) with one of Swift's value
    /// parsers from [`values`]; the error names the file, line and key.
    pub fn get_with<T>(
        &self,
        key: &str,
        default: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let value = self.get(key);
        parse(value.unwrap_or(default)).map_err(|reason| {
            let mut err = self.invalid(key, &reason);
            if value.is_none()
                && let ConfigError::Value { value, .. } = &mut err
            {
                default.clone_into(value);
            }
            err
        })
    }

    /// An error about the current value of `key` (or about its absence),
    /// naming the file and line it was written at when known.
    pub fn invalid(&self, key: &str, reason: &str) -> ConfigError {
        let (path, line) = match self.origins.get(key) {
            Some((p, l)) => (p.clone(), Some(*l)),
            None => (self.source.clone(), None),
        };
        ConfigError::Value {
            path,
            line,
            section: self.section.clone(),
            key: key.to_owned(),
            value: self.get(key).unwrap_or("").to_owned(),
            reason: reason.to_owned(),
        }
    }

    /// Set a value (for callers that add computed keys, as paste does with `__name__`).
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        self.origins.remove(&key);
        self.values.insert(key, value.into());
    }

    /// All keys and values, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl fmt::Display for Conf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] in {}", self.section, self.source.display())
    }
}
