//! Swift's config value parsers (`swift/common/utils/config.py`).

/// Swift's `TRUE_VALUES`.
pub const TRUE_VALUES: &[&str] = &["true", "1", "yes", "on", "t", "y"];

/// `config_true_value`: true for `true, 1, yes, on, t, y` (any case), else false.
pub fn config_true_value(value: &str) -> bool {
    let v = value.trim();
    TRUE_VALUES.iter().any(|t| t.eq_ignore_ascii_case(v))
}

/// `config_auto_int_value`: `None` or `auto` (any case) gives `default`,
/// otherwise an integer; the error is Swift's sentence.
pub fn config_auto_int_value(value: Option<&str>, default: i64) -> Result<i64, String> {
    match value.map(str::trim) {
        None => Ok(default),
        Some(v) if v.eq_ignore_ascii_case("auto") => Ok(default),
        Some(v) => v.parse().map_err(|_| {
            format!("Config option must be an integer or the string \"auto\", not \"{v}\".")
        }),
    }
}
