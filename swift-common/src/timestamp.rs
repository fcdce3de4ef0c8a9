//! Swift's `Timestamp`: seconds since the epoch at 10 µs precision plus an
//! internal offset, in its two text forms: normal (`%016.05f`,
//! `1402464677.04188`) and internal (normal, then `_%016x` of the offset
//! when the offset is not zero). Ordered as Swift orders them.
//!
//! Also `normalize_delete_at_timestamp` (`X-Delete-At`'s `%010d` form).

use std::fmt;

/// Ticks per second (Swift's deca-microsecond precision).
const TICKS: f64 = 100_000.0;
/// Largest time Swift accepts (`9999999999.99999`).
const MAX_TICKS: u64 = 999_999_999_999_999;

/// A Swift timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    ticks: u64,
    offset: u64,
}

/// Why a text is not a timestamp (Swift's `InvalidTimestamp` cases).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid timestamp {0}")]
pub struct InvalidTimestamp(pub String);

impl Timestamp {
    /// Now (Swift's `Timestamp.now()`).
    pub fn now() -> Timestamp {
        Timestamp::from_secs(crate::time::unix_now())
    }

    /// From seconds since the epoch, rounded to 10 µs (negative becomes 0).
    pub fn from_secs(secs: f64) -> Timestamp {
        let ticks = (secs * TICKS).round();
        Timestamp {
            ticks: if ticks.is_finite() && ticks > 0.0 {
                (ticks as u64).min(MAX_TICKS)
            } else {
                0
            },
            offset: 0,
        }
    }

    /// Parse a normal or internal form (`1.5`, `0000000001.50000`,
    /// `1.50000_000000000000000a`); out-of-range values are refused as
    /// Swift refuses them.
    pub fn parse(s: &str) -> Result<Timestamp, InvalidTimestamp> {
        let bad = || InvalidTimestamp(s.to_owned());
        let (float_part, hex_part) = match s.split_once('_') {
            Some((f, h)) => (f, Some(h)),
            None => (s, None),
        };
        let offset = match hex_part {
            Some(h) if h.len() <= 16 && !h.contains('_') && !h.is_empty() => {
                u64::from_str_radix(h, 16).map_err(|_| bad())?
            }
            Some(_) => return Err(bad()),
            None => 0,
        };
        let secs: f64 = crate::config::values::python_float(float_part.trim()).ok_or_else(bad)?;
        if !secs.is_finite() || secs < 0.0 {
            return Err(bad());
        }
        let ticks = (secs * TICKS).round();
        if ticks > MAX_TICKS as f64 {
            return Err(bad());
        }
        Ok(Timestamp {
            ticks: ticks as u64,
            offset,
        })
    }

    /// Seconds since the epoch.
    pub fn secs(&self) -> f64 {
        self.ticks as f64 / TICKS
    }

    /// The internal offset.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The same time with the offset raised by `n`.
    pub fn with_offset(self, n: u64) -> Timestamp {
        Timestamp {
            offset: self.offset.saturating_add(n),
            ..self
        }
    }

    /// `%016.05f`: what clients see (`X-Timestamp`).
    pub fn normal(&self) -> String {
        // Digit by digit: every request makes one, and `format!` with zero
        // padding costs several times more.
        let mut s = String::with_capacity(40);
        push_zero_padded(&mut s, self.ticks / 100_000, 10);
        s.push('.');
        push_zero_padded(&mut s, self.ticks % 100_000, 5);
        s
    }

    /// The normal form, plus `_<offset as 16 hex digits>` when the offset is
    /// not zero: what backends are sent.
    pub fn internal(&self) -> String {
        if self.offset == 0 {
            self.normal()
        } else {
            format!("{}_{:016x}", self.normal(), self.offset)
        }
    }

    /// Whole seconds, rounded up (Swift's `Last-Modified` from a timestamp).
    pub fn ceil_secs(&self) -> i64 {
        self.ticks.div_ceil(100_000) as i64
    }

    /// The HTTP date of [`Timestamp::ceil_secs`] (`Last-Modified`).
    pub fn http_date(&self) -> String {
        crate::time::Utc::from_unix(self.ceil_secs(), 0).http_date()
    }

    /// `2026-11-25T05:52:18.515320` (listings' `last_modified`).
    pub fn isoformat(&self) -> String {
        let secs = (self.ticks / 100_000) as i64;
        let micros = ((self.ticks % 100_000) * 10) as u32;
        let mut iso = crate::time::Utc::from_unix(secs, micros).iso8601();
        // Python's isoformat has no zone suffix.
        iso.pop();
        iso
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.internal())
    }
}

/// Swift's `normalize_delete_at_timestamp`: `%010d` of the value clamped to
/// `0..=9999999999`.
pub fn normalize_delete_at_timestamp(secs: f64) -> String {
    let v = secs.clamp(0.0, 9_999_999_999.0) as i64;
    format!("{v:010}")
}

/// `{n:0width$}` for `width` up to 20, without fmt's padding machinery
/// (timestamps and the access log's times are written on every request).
pub fn push_zero_padded(s: &mut String, mut n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let start = i.min(digits.len().saturating_sub(width));
    // ASCII digits: always UTF-8.
    s.push_str(std::str::from_utf8(&digits[start..]).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_form_is_zero_padded() {
        for ticks in [
            0,
            1,
            99_999,
            100_000,
            179_558_593_851_532,
            999_999_999_999_999,
            u64::MAX,
        ] {
            let t = Timestamp { ticks, offset: 0 };
            let want = format!("{:010}.{:05}", ticks / 100_000, ticks % 100_000);
            assert_eq!(t.normal(), want);
        }
    }

    #[test]
    fn forms_match_swift() {
        let t = Timestamp::parse("1795585938.51532").unwrap();
        assert_eq!(t.normal(), "1795585938.51532");
        assert_eq!(t.internal(), "1795585938.51532");
        assert_eq!(t.http_date(), "Wed, 25 Nov 2026 05:52:19 GMT");
        assert_eq!(t.isoformat(), "2026-11-25T05:52:18.515320");
        assert_eq!(Timestamp::from_secs(1.5).internal(), "0000000001.50000");
        let o = Timestamp::parse("1795585938.51532_0000000000000001").unwrap();
        assert_eq!(o.normal(), "1795585938.51532");
        assert_eq!(o.internal(), "1795585938.51532_0000000000000001");
        assert!(o > t);
        assert!(Timestamp::parse("1795585938.51533").unwrap() > o);
    }

    #[test]
    fn bad_timestamps_are_refused() {
        for bad in ["", "abc", "-1", "1_", "1_zz", "1_00000000000000001", "1e20"] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(normalize_delete_at_timestamp(12.7), "0000000012");
        assert_eq!(normalize_delete_at_timestamp(-5.0), "0000000000");
        assert_eq!(normalize_delete_at_timestamp(1e12), "9999999999");
    }
}
