//! `swift.conf` under `swift_dir`: the `[swift-hash]` check
//! (`utils.validate_hash_conf`) and `[swift-constraints]`
//! (`constraints.reload_constraints`), read the way Swift reads them: a plain
//! `ConfigParser()` (lower-cased keys, basic interpolation, `[DEFAULT]`
//! fallback), the hash settings decoded as Latin-1 so any bytes are allowed,
//! the constraints as UTF-8.
//!
//! Unlike Swift, which reads the constraints from `/etc/swift/swift.conf` at
//! import time whatever `swift_dir` says, both come from the same file here.

use std::path::{Path, PathBuf};

use super::ConfigError;
use super::ini::{Encoding, Ini, IniOptions};
use super::pystr::parse_int;
use super::values::list_from_csv;

/// The section holding the hash path settings.
pub const HASH_SECTION: &str = "swift-hash";
/// The section holding the constraints.
pub const CONSTRAINTS_SECTION: &str = "swift-constraints";

/// Swift's constraints (`swift/common/constraints.py`), with its defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Constraints {
    pub max_file_size: i64,
    pub max_meta_name_length: i64,
    pub max_meta_value_length: i64,
    pub max_meta_count: i64,
    pub max_meta_overall_size: i64,
    /// The longest header line the HTTP server accepts.
    pub max_header_size: usize,
    /// The longest request line the HTTP server accepts.
    pub max_request_line: usize,
    pub max_object_name_length: i64,
    pub container_listing_limit: i64,
    pub account_listing_limit: i64,
    pub max_account_name_length: i64,
    pub max_container_name_length: i64,
    pub valid_api_versions: Vec<String>,
    pub extra_header_count: i64,
    pub auto_create_account_prefix: String,
}

impl Default for Constraints {
    fn default() -> Self {
        Constraints {
            max_file_size: 5_368_709_122,
            max_meta_name_length: 128,
            max_meta_value_length: 256,
            max_meta_count: 90,
            max_meta_overall_size: 4096,
            max_header_size: 8192,
            max_request_line: 8192,
            max_object_name_length: 1024,
            container_listing_limit: 10_000,
            account_listing_limit: 10_000,
            max_account_name_length: 256,
            max_container_name_length: 256,
            valid_api_versions: vec!["v1".to_owned(), "v1.0".to_owned()],
            extra_header_count: 0,
            auto_create_account_prefix: ".".to_owned(),
        }
    }
}

/// A constraint's value as `/info` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConstraintValue {
    Int(i64),
    Str(String),
    List(Vec<String>),
}

impl ConstraintValue {
    /// The value as JSON (`8192`, `"."`, `["v1", "v1.0"]`), as Python's
    /// `json.dumps` writes it (ASCII only, `", "` between list items).
    pub fn to_json(&self) -> String {
        match self {
            ConstraintValue::Int(i) => i.to_string(),
            ConstraintValue::Str(s) => json_string(s),
            ConstraintValue::List(items) => {
                let items: Vec<String> = items.iter().map(|s| json_string(s)).collect();
                format!("[{}]", items.join(", "))
            }
        }
    }
}

/// A JSON string literal with Python's `ensure_ascii` escaping (what
/// Swift's `/info` uses).
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// The type of a constraint, which decides how its value is read.
#[derive(Clone, Copy)]
enum Kind {
    Int,
    Str,
    List,
}

/// `DEFAULT_CONSTRAINTS`, in Swift's order (which is `/info`'s order).
const NAMES: &[(&str, Kind)] = &[
    ("max_file_size", Kind::Int),
    ("max_meta_name_length", Kind::Int),
    ("max_meta_value_length", Kind::Int),
    ("max_meta_count", Kind::Int),
    ("max_meta_overall_size", Kind::Int),
    ("max_header_size", Kind::Int),
    ("max_request_line", Kind::Int),
    ("max_object_name_length", Kind::Int),
    ("container_listing_limit", Kind::Int),
    ("account_listing_limit", Kind::Int),
    ("max_account_name_length", Kind::Int),
    ("max_container_name_length", Kind::Int),
    ("valid_api_versions", Kind::List),
    ("extra_header_count", Kind::Int),
    ("auto_create_account_prefix", Kind::Str),
];

impl Constraints {
    /// Every constraint as `(name, value)`, in Swift's order: what the proxy
    /// registers for `/info` (`register_swift_info(**EFFECTIVE_CONSTRAINTS)`).
    pub fn info(&self) -> Vec<(&'static str, ConstraintValue)> {
        NAMES
            .iter()
            .map(|&(name, _)| (name, self.value(name)))
            .collect()
    }

    /// Swift's `MAX_HEADER_COUNT`: `max_meta_count + 36 + max(extra_header_count, 0)`.
    pub fn max_header_count(&self) -> i64 {
        self.max_meta_count
            .saturating_add(36)
            .saturating_add(self.extra_header_count.max(0))
    }

    fn value(&self, name: &str) -> ConstraintValue {
        let usize_int = |v: usize| ConstraintValue::Int(i64::try_from(v).unwrap_or(i64::MAX));
        match name {
            "max_file_size" => ConstraintValue::Int(self.max_file_size),
            "max_meta_name_length" => ConstraintValue::Int(self.max_meta_name_length),
            "max_meta_value_length" => ConstraintValue::Int(self.max_meta_value_length),
            "max_meta_count" => ConstraintValue::Int(self.max_meta_count),
            "max_meta_overall_size" => ConstraintValue::Int(self.max_meta_overall_size),
            "max_header_size" => usize_int(self.max_header_size),
            "max_request_line" => usize_int(self.max_request_line),
            "max_object_name_length" => ConstraintValue::Int(self.max_object_name_length),
            "container_listing_limit" => ConstraintValue::Int(self.container_listing_limit),
            "account_listing_limit" => ConstraintValue::Int(self.account_listing_limit),
            "max_account_name_length" => ConstraintValue::Int(self.max_account_name_length),
            "max_container_name_length" => ConstraintValue::Int(self.max_container_name_length),
            "valid_api_versions" => ConstraintValue::List(self.valid_api_versions.clone()),
            "extra_header_count" => ConstraintValue::Int(self.extra_header_count),
            _ => ConstraintValue::Str(self.auto_create_account_prefix.clone()),
        }
    }

    /// Store one overridden value; `Err` is the reason it is refused.
    fn set(&mut self, name: &str, raw: &str, kind: Kind) -> Result<(), String> {
        match kind {
            Kind::Str => {
                raw.clone_into(&mut self.auto_create_account_prefix);
                return Ok(());
            }
            Kind::List => {
                self.valid_api_versions = list_from_csv(raw);
                return Ok(());
            }
            Kind::Int => {}
        }
        let Some(v) = parse_int(raw) else {
            return Err("must be an integer".to_owned());
        };
        let size = || {
            usize::try_from(v).map_err(|_| {
                "must not be negative (the HTTP server could accept no request at all)".to_owned()
            })
        };
        match name {
            "max_file_size" => self.max_file_size = v,
            "max_meta_name_length" => self.max_meta_name_length = v,
            "max_meta_value_length" => self.max_meta_value_length = v,
            "max_meta_count" => self.max_meta_count = v,
            "max_meta_overall_size" => self.max_meta_overall_size = v,
            "max_header_size" => self.max_header_size = size()?,
            "max_request_line" => self.max_request_line = size()?,
            "max_object_name_length" => self.max_object_name_length = v,
            "container_listing_limit" => self.container_listing_limit = v,
            "account_listing_limit" => self.account_listing_limit = v,
            "max_account_name_length" => self.max_account_name_length = v,
            "max_container_name_length" => self.max_container_name_length = v,
            _ => self.extra_header_count = v,
        }
        Ok(())
    }
}

/// A validated `swift.conf`.
#[derive(Clone, Debug)]
pub struct SwiftConf {
    pub path: PathBuf,
    pub constraints: Constraints,
    /// `swift_hash_path_prefix` as bytes (Swift's `HASH_PATH_PREFIX`).
    pub hash_path_prefix: Vec<u8>,
    /// `swift_hash_path_suffix` as bytes (Swift's `HASH_PATH_SUFFIX`).
    pub hash_path_suffix: Vec<u8>,
    /// The whole file as a plain `ConfigParser` reads it (UTF-8), for
    /// whoever needs other sections (storage policies).
    pub ini: Ini,
}

impl SwiftConf {
    /// Load and validate `<swift_dir>/swift.conf`.
    pub fn load(swift_dir: &Path) -> Result<Self, ConfigError> {
        Self::load_file(&swift_dir.join("swift.conf"))
    }

    /// Load and validate a `swift.conf` at any path.
    pub fn load_file(path: &Path) -> Result<Self, ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes, path)
    }

    /// Validate the content of a `swift.conf` that lives at `path`.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, ConfigError> {
        // Swift imports the constraints (UTF-8) before it checks the hash
        // settings (Latin-1): a file that is not UTF-8 fails there first.
        let mut ini = Ini::new(IniOptions::PYTHON_DEFAULT, path);
        ini.read_bytes(bytes, path, Encoding::Utf8)?;
        let constraints = read_constraints(&ini, path)?;

        let mut latin1 = Ini::new(IniOptions::PYTHON_DEFAULT, path);
        latin1.read_bytes(bytes, path, Encoding::Latin1)?;
        let hash_path_suffix = hash_setting(&latin1, "swift_hash_path_suffix")?;
        let hash_path_prefix = hash_setting(&latin1, "swift_hash_path_prefix")?;
        if hash_path_suffix.is_empty() && hash_path_prefix.is_empty() {
            return Err(ConfigError::MissingHashPath {
                path: path.to_path_buf(),
            });
        }
        Ok(SwiftConf {
            path: path.to_path_buf(),
            constraints,
            hash_path_prefix,
            hash_path_suffix,
            ini,
        })
    }
}

/// One `[swift-hash]` setting as bytes; empty when the section or key is missing.
fn hash_setting(ini: &Ini, key: &str) -> Result<Vec<u8>, ConfigError> {
    if !ini.has_section(HASH_SECTION) {
        return Ok(Vec::new());
    }
    let value = ini.get(HASH_SECTION, key)?.unwrap_or_default();
    // Every character came from one Latin-1 byte, so each fits a byte.
    Ok(value
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect())
}

/// `reload_constraints`: each constraint set in `[swift-constraints]` (or,
/// when that section exists, in `[DEFAULT]`) overrides Swift's default.
fn read_constraints(ini: &Ini, path: &Path) -> Result<Constraints, ConfigError> {
    let mut constraints = Constraints::default();
    if !ini.has_section(CONSTRAINTS_SECTION) {
        return Ok(constraints);
    }
    for &(name, kind) in NAMES {
        let Some(value) = ini.get(CONSTRAINTS_SECTION, name)? else {
            continue;
        };
        let line = ini.get_raw(CONSTRAINTS_SECTION, name).and_then(|v| v.line);
        constraints
            .set(name, &value, kind)
            .map_err(|reason| ConfigError::Value {
                path: path.to_path_buf(),
                line,
                section: CONSTRAINTS_SECTION.to_owned(),
                key: name.to_owned(),
                value,
                reason,
            })?;
    }
    Ok(constraints)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<SwiftConf, ConfigError> {
        SwiftConf::from_bytes(text.as_bytes(), Path::new("/etc/swift/swift.conf"))
    }

    #[test]
    fn missing_hash_settings_give_swifts_exact_message() {
        let err = load("[swift-hash]\nswift_hash_path_suffix =\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Error: [swift-hash]: both swift_hash_path_suffix and swift_hash_path_prefix \
             are missing from /etc/swift/swift.conf"
        );
    }

    #[test]
    fn hash_keys_are_case_insensitive_and_raw_bytes() {
        let conf = SwiftConf::from_bytes(
            b"[swift-hash]\nSWIFT_HASH_PATH_SUFFIX = caf\xe9\n",
            Path::new("/s.conf"),
        );
        // 0xe9 alone is not UTF-8: Swift's constraints import fails on it too.
        assert!(conf.is_err());
        let conf = load("[swift-hash]\nSWIFT_HASH_PATH_SUFFIX = café\n").unwrap();
        assert_eq!(conf.hash_path_suffix, "café".as_bytes());
    }

    #[test]
    fn constraints_override_defaults_and_keep_info_order() {
        let conf = load(
            "[swift-hash]\nswift_hash_path_prefix = p\n[swift-constraints]\n\
             max_header_size = 16384\nvalid_api_versions = v1, v2,\n\
             auto_create_account_prefix = _\n",
        )
        .unwrap();
        assert_eq!(conf.constraints.max_header_size, 16384);
        let info = conf.constraints.info();
        assert_eq!(info.len(), 15);
        assert_eq!(
            info[0],
            ("max_file_size", ConstraintValue::Int(5_368_709_122))
        );
        assert_eq!(info[12].1.to_json(), "[\"v1\", \"v2\"]");
        assert_eq!(info[14].1.to_json(), "\"_\"");
        assert_eq!(conf.constraints.max_header_count(), 126);
    }

    #[test]
    fn bad_constraint_names_file_section_key_and_value() {
        let err = load(
            "[swift-hash]\nswift_hash_path_prefix = p\n[swift-constraints]\nmax_file_size = big\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "/etc/swift/swift.conf: line 4: [swift-constraints] max_file_size = \"big\": must be an integer"
        );
    }
}
