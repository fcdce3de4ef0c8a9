//! Swift's config value parsers (`swift/common/utils/config.py`), with
//! Python's `int()`/`float()` rules (whitespace, signs, `1_000`, Unicode
//! digits) and Swift's error sentences. Errors are the reason only; callers
//! wrap them with the file, section and key (see [`super::Conf::invalid`]).

use super::pystr::{self, float_repr, parse_float, parse_int};

/// Swift's `TRUE_VALUES`.
pub const TRUE_VALUES: &[&str] = &["true", "1", "yes", "on", "t", "y"];

/// `config_true_value`: true for `true, 1, yes, on, t, y` in any case, else
/// false. Like Swift, surrounding whitespace is not ignored (config values are
/// already stripped by the parser).
pub fn config_true_value(value: &str) -> bool {
    TRUE_VALUES.iter().any(|t| t.eq_ignore_ascii_case(value))
}

/// `config_auto_int_value`: `None` or `auto` (any case) gives `default`,
/// otherwise Python's `int()` of the value; the error is Swift's sentence.
pub fn config_auto_int_value(value: Option<&str>, default: i64) -> Result<i64, String> {
    match value {
        None => Ok(default),
        Some(v) if v.eq_ignore_ascii_case("auto") => Ok(default),
        Some(v) => parse_int(v).ok_or_else(|| {
            format!("Config option must be an integer or the string \"auto\", not \"{v}\".")
        }),
    }
}

/// `non_negative_float`: Python's `float()` of the value, which must not be
/// negative (`nan` and `inf` pass, as in Swift).
pub fn non_negative_float(value: &str) -> Result<f64, String> {
    match parse_float(value) {
        Some(f) if f.is_nan() || f >= 0.0 => Ok(f),
        // Swift reports the converted number when it was negative.
        Some(f) => Err(format!(
            "Value must be a non-negative float number, not \"{}\".",
            float_repr(f)
        )),
        None => Err(format!(
            "Value must be a non-negative float number, not \"{value}\"."
        )),
    }
}

/// `non_negative_int`: Python's `int()` of the value, not negative.
pub fn non_negative_int(value: &str) -> Result<i64, String> {
    match parse_int(value) {
        Some(i) if i >= 0 => Ok(i),
        Some(i) => Err(format!(
            "Value must be a non-negative integer, not \"{i}\"."
        )),
        None => Err(format!(
            "Value must be a non-negative integer, not \"{value}\"."
        )),
    }
}

/// `config_positive_int_value`: an integer greater than zero (Swift's
/// sentence, including its grammar).
pub fn config_positive_int_value(value: &str) -> Result<i64, String> {
    match parse_int(value) {
        Some(i) if i >= 1 => Ok(i),
        _ => Err(format!(
            "Config option must be an positive int number, not \"{value}\"."
        )),
    }
}

/// `config_positive_float_value`: a float greater than zero (`nan` passes,
/// as in Swift, whose check is `<= 0`).
pub fn config_positive_float_value(value: &str) -> Result<f64, String> {
    match parse_float(value) {
        Some(f) if f.is_nan() || f > 0.0 => Ok(f),
        _ => Err(format!(
            "Config option must be a positive float number, not \"{value}\"."
        )),
    }
}

/// How Python's `%s` shows a bound that Swift's callers pass as an integer.
fn bound_str(b: f64) -> String {
    if b.fract() == 0.0 && b.abs() < 1e16 {
        format!("{b:.0}")
    } else {
        float_repr(b)
    }
}

/// `config_float_value(value, minimum, maximum)`: a float within the
/// optional bounds (inclusive).
pub fn config_float_value(
    value: &str,
    minimum: Option<f64>,
    maximum: Option<f64>,
) -> Result<f64, String> {
    let parsed = parse_float(value).filter(|&v| {
        // Python's comparisons: nan passes both bound checks.
        !(minimum.is_some_and(|m| v < m) || maximum.is_some_and(|m| v > m))
    });
    parsed.ok_or_else(|| {
        let min = minimum
            .map(|m| format!(", greater than {}", bound_str(m)))
            .unwrap_or_default();
        let max = maximum
            .map(|m| format!(", less than {}", bound_str(m)))
            .unwrap_or_default();
        format!("Config option must be a number{min}{max}, not \"{value}\".")
    })
}

/// `config_percent_value`: a number from 0 to 100, returned as a fraction.
pub fn config_percent_value(value: &str) -> Result<f64, String> {
    config_float_value(value, Some(0.0), Some(100.0))
        .map(|v| v / 100.0)
        .map_err(|e| format!("{e}: {value}"))
}

/// What `fallocate_reserve` means: a number of bytes, or a percentage of
/// the filesystem.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FallocateReserve {
    Bytes(i64),
    Percent(f64),
}

/// `config_fallocate_value`: `N` bytes (an integer) or `N%` (a float followed
/// by `%`). Negative values are accepted, as in Swift.
pub fn config_fallocate_value(value: &str) -> Result<FallocateReserve, String> {
    let parsed = match value.strip_suffix('%') {
        Some(number) => parse_float(number).map(FallocateReserve::Percent),
        None => parse_int(value).map(FallocateReserve::Bytes),
    };
    parsed.ok_or_else(|| format!("Error: {value} is an invalid value for fallocate_reserve."))
}

/// `list_from_csv`: comma-separated items, stripped, empty ones dropped.
pub fn list_from_csv(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(pystr::strip)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Python's `int()` of a config string (see the module doc); `None` where
/// Python raises `ValueError` (or the number does not fit an `i64`).
pub fn python_int(value: &str) -> Option<i64> {
    parse_int(value)
}

/// Python's `int()` of a string, with a value past `i64` clamped to its
/// range (for callers that clamp anyway, such as `X-Delete-At`).
pub fn python_int_saturating(value: &str) -> Option<i64> {
    super::pystr::parse_int_saturating(value)
}

/// Python's `float()` of a config string; `None` where Python raises.
pub fn python_float(value: &str) -> Option<f64> {
    parse_float(value)
}

/// Python's `str.strip()`: Unicode whitespace as `str.isspace` has it.
pub fn python_strip(value: &str) -> &str {
    pystr::strip(value)
}

/// Python's `str.isspace()` of one character (what `\s` matches in `re`).
pub fn python_isspace(c: char) -> bool {
    pystr::is_space(c)
}

/// Python's `repr()` of a string given as code points (lone surrogates
/// allowed, as in a Python `str`).
pub fn python_repr<I: Iterator<Item = u32> + Clone>(code_points: I) -> String {
    pystr::repr_code_points(code_points)
}

/// Python's `repr()` of a float (`1.0`, `1e+16`, `nan`), for messages that
/// must read like Swift's.
pub fn python_float_repr(value: f64) -> String {
    float_repr(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn true_values_are_case_insensitive_but_not_trimmed() {
        assert!(config_true_value("TRUE"));
        assert!(config_true_value("Y"));
        assert!(!config_true_value(" yes"));
        assert!(!config_true_value("no"));
        assert!(!config_true_value(""));
    }

    #[test]
    fn auto_int_uses_python_int_and_swift_wording() {
        assert_eq!(config_auto_int_value(None, 4), Ok(4));
        assert_eq!(config_auto_int_value(Some("AUTO"), 4), Ok(4));
        assert_eq!(config_auto_int_value(Some(" 8 "), 4), Ok(8));
        assert_eq!(config_auto_int_value(Some("-1"), 4), Ok(-1));
        assert_eq!(
            config_auto_int_value(Some("many"), 4),
            Err(
                "Config option must be an integer or the string \"auto\", not \"many\".".to_owned()
            )
        );
        // Swift compares the raw value with "auto", so padding breaks it.
        assert!(config_auto_int_value(Some(" auto"), 4).is_err());
    }

    #[test]
    fn non_negative_float_reports_the_converted_number() {
        assert_eq!(non_negative_float("1.5"), Ok(1.5));
        assert_eq!(non_negative_float("-0"), Ok(-0.0));
        assert_eq!(
            non_negative_float("-1"),
            Err("Value must be a non-negative float number, not \"-1.0\".".to_owned())
        );
        assert_eq!(
            non_negative_float("x"),
            Err("Value must be a non-negative float number, not \"x\".".to_owned())
        );
    }

    #[test]
    fn positive_int_rejects_zero_with_swifts_sentence() {
        assert_eq!(config_positive_int_value("3"), Ok(3));
        assert_eq!(
            config_positive_int_value("0"),
            Err("Config option must be an positive int number, not \"0\".".to_owned())
        );
    }

    #[test]
    fn percent_value_message_repeats_the_value_like_swift() {
        assert_eq!(config_percent_value("50"), Ok(0.5));
        assert_eq!(
            config_percent_value("101"),
            Err(
                "Config option must be a number, greater than 0, less than 100, not \"101\".: 101"
                    .to_owned()
            )
        );
    }

    #[test]
    fn fallocate_reserve_is_bytes_or_percent() {
        assert_eq!(
            config_fallocate_value("1%"),
            Ok(FallocateReserve::Percent(1.0))
        );
        assert_eq!(
            config_fallocate_value("1024"),
            Ok(FallocateReserve::Bytes(1024))
        );
        assert_eq!(
            config_fallocate_value("-5%"),
            Ok(FallocateReserve::Percent(-5.0))
        );
        assert_eq!(
            config_fallocate_value("1.5"),
            Err("Error: 1.5 is an invalid value for fallocate_reserve.".to_owned())
        );
        assert!(config_fallocate_value("%").is_err());
    }

    #[test]
    fn csv_lists_are_stripped_and_skip_empties() {
        assert_eq!(list_from_csv(" v1, ,v1.0 ,"), ["v1", "v1.0"]);
        assert!(list_from_csv("").is_empty());
    }
}
