//! Python string and path primitives that Swift's config handling leans on:
//! `str.isspace`/`str.strip`, `repr()` of a string (for messages), `int()`,
//! `float()` and `repr(float)`, and `os.path.abspath`/`normpath`/`dirname`.
//!
//! They live here so that the parser, paste and the value parsers agree with
//! Python on every edge (Unicode whitespace, `1_000`, `٤`, `//x`).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Python's `str.isspace()` for one character (also what `\s` matches in `re`).
/// Wider than `char::is_whitespace`: it includes U+001C..U+001F.
pub(crate) fn is_space(c: char) -> bool {
    matches!(
        c,
        '\t'..='\r'
            | '\u{1c}'..='\u{20}'
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

/// Python's `s.strip()`.
pub(crate) fn strip(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// Python's `s.rstrip()`.
pub(crate) fn rstrip(s: &str) -> &str {
    s.trim_end_matches(is_space)
}

/// The whitespace Python's `int()` and `float()` ignore around a number:
/// `str.isspace` minus the ASCII separators U+001C..U+001F (Python maps only
/// non-ASCII spaces to ' ' before its ASCII-only strip).
fn is_number_space(c: char) -> bool {
    is_space(c) && !('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `s.split()` (no argument).
pub(crate) fn split_whitespace(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_space).filter(|p| !p.is_empty())
}

/// Characters `repr()` shows escaped: controls, and the invisible or
/// separator characters Python does not consider printable (an approximation
/// of `str.isprintable` without a Unicode table, exact for Latin-1).
fn is_unprintable(c: char) -> bool {
    let u = c as u32;
    u < 0x20
        || (0x7f..=0xa0).contains(&u)
        || u == 0xad
        || u == 0x1680
        || (0x2000..=0x200f).contains(&u)
        || (0x2028..=0x202f).contains(&u)
        || (0x205f..=0x206f).contains(&u)
        || u == 0x3000
        || u == 0xfeff
        || (0xfff9..=0xfffb).contains(&u)
        || (0xe000..=0xf8ff).contains(&u)
}

/// Python's `repr()` of a string: quoted, with invisible characters escaped,
/// so a message shows exactly what was in the file.
pub(crate) fn repr(s: &str) -> String {
    repr_code_points(s.chars().map(u32::from))
}

/// [`repr`] of a Python string given as code points, which unlike a Rust
/// `str` may hold lone surrogates (shown as `\udXXX`, as Python does).
pub(crate) fn repr_code_points<I: Iterator<Item = u32> + Clone>(s: I) -> String {
    let has = |c: u32| s.clone().any(|x| x == c);
    let quote = if has(u32::from('\'')) && !has(u32::from('"')) {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.size_hint().0 + 2);
    out.push(quote);
    for u in s {
        match char::from_u32(u) {
            Some('\\') => out.push_str("\\\\"),
            Some('\t') => out.push_str("\\t"),
            Some('\n') => out.push_str("\\n"),
            Some('\r') => out.push_str("\\r"),
            Some(c) if c == quote => {
                out.push('\\');
                out.push(c);
            }
            Some(c) if !is_unprintable(c) => out.push(c),
            // Unprintable, or a lone surrogate (never printable).
            _ => {
                if u <= 0xff {
                    out.push_str(&format!("\\x{u:02x}"));
                } else if u <= 0xffff {
                    out.push_str(&format!("\\u{u:04x}"));
                } else {
                    out.push_str(&format!("\\U{u:08x}"));
                }
            }
        }
    }
    out.push(quote);
    out
}

/// The code points of the digit zero of every Unicode `Nd` run (Unicode 14,
/// as in Python 3.11): Python's `int()` and `float()` accept any of these
/// digits, each run being ten consecutive code points.
const DECIMAL_ZEROS: &[u32] = &[
    0x30, 0x660, 0x6f0, 0x7c0, 0x966, 0x9e6, 0xa66, 0xae6, 0xb66, 0xbe6, 0xc66, 0xce6, 0xd66,
    0xde6, 0xe50, 0xed0, 0xf20, 0x1040, 0x1090, 0x17e0, 0x1810, 0x1946, 0x19d0, 0x1a80, 0x1a90,
    0x1b50, 0x1bb0, 0x1c40, 0x1c50, 0xa620, 0xa8d0, 0xa900, 0xa9d0, 0xa9f0, 0xaa50, 0xabf0, 0xff10,
    0x104a0, 0x10d30, 0x11066, 0x110f0, 0x11136, 0x111d0, 0x112f0, 0x11450, 0x114d0, 0x11650,
    0x116c0, 0x11730, 0x118e0, 0x11950, 0x11c50, 0x11d50, 0x11da0, 0x16a60, 0x16ac0, 0x16b50,
    0x1d7ce, 0x1d7d8, 0x1d7e2, 0x1d7ec, 0x1d7f6, 0x1e140, 0x1e2f0, 0x1e950, 0x1fbf0,
];

/// The value of a Unicode decimal digit (`Nd`), as Python's `int()` reads it.
fn decimal_value(c: char) -> Option<u8> {
    let u = c as u32;
    if c.is_ascii_digit() {
        return Some(c as u8 - b'0');
    }
    DECIMAL_ZEROS
        .iter()
        .find(|&&zero| (zero..zero + 10).contains(&u))
        .and_then(|&zero| u8::try_from(u - zero).ok())
}

/// Python's `int(s)` for a string in base 10: surrounding whitespace, a sign,
/// any Unicode decimal digits, single `_` between digits. `None` when Python
/// raises, or when the number does not fit an `i64` (Python would accept it).
pub(crate) fn parse_int(s: &str) -> Option<i64> {
    parse_int_with(s, false)
}

/// [`parse_int`], with values past `i64` clamped to its range instead of
/// refused (Python's ints have no range; callers that clamp anyway).
pub(crate) fn parse_int_saturating(s: &str) -> Option<i64> {
    parse_int_with(s, true)
}

fn parse_int_with(s: &str, saturate: bool) -> Option<i64> {
    let s = s.trim_matches(is_number_space);
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut value: i64 = 0;
    let mut prev_digit = false;
    for c in digits.chars() {
        if c == '_' {
            if !prev_digit {
                return None;
            }
            prev_digit = false;
            continue;
        }
        let d = decimal_value(c)?;
        // Accumulate negatively so that i64::MIN fits.
        value = match value
            .checked_mul(10)
            .and_then(|v| v.checked_sub(i64::from(d)))
        {
            Some(v) => v,
            None if saturate => i64::MIN,
            None => return None,
        };
        prev_digit = true;
    }
    if !prev_digit {
        return None;
    }
    if negative {
        Some(value)
    } else if saturate {
        Some(value.checked_neg().unwrap_or(i64::MAX))
    } else {
        value.checked_neg()
    }
}

/// Python's `float(s)` for a string: whitespace, sign, `inf`/`infinity`/`nan`
/// (any case), decimal digits (any Unicode `Nd`) with single `_` between
/// digits, an optional fraction and exponent.
pub(crate) fn parse_float(s: &str) -> Option<f64> {
    // The common case (every timestamp): ASCII digits with at most one
    // point, which needs none of the mapping below and which Rust reads
    // exactly as Python does.
    let b = s.as_bytes();
    if b.iter().any(u8::is_ascii_digit)
        && b.iter().all(|&c| c.is_ascii_digit() || c == b'.')
        && b.iter().filter(|&&c| c == b'.').count() <= 1
    {
        return s.parse().ok();
    }
    // Python first maps Unicode digits and spaces to ASCII.
    let mut ascii = String::with_capacity(s.len());
    for c in s.chars() {
        if is_number_space(c) {
            ascii.push(' ');
        } else if let Some(d) = decimal_value(c) {
            ascii.push(char::from(b'0' + d));
        } else if c.is_ascii() {
            ascii.push(c);
        } else {
            return None;
        }
    }
    let t = ascii.trim_matches(' ');
    let (sign, body) = match t.as_bytes().first() {
        Some(b'-') => ("-", &t[1..]),
        Some(b'+') => ("", &t[1..]),
        _ => ("", t),
    };
    let lower = body.to_ascii_lowercase();
    if matches!(lower.as_str(), "inf" | "infinity") {
        return Some(if sign == "-" {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if lower == "nan" {
        return Some(f64::NAN);
    }
    // Underscores only between two digits; then the plain decimal grammar.
    let bytes = body.as_bytes();
    let mut cleaned = String::with_capacity(body.len() + 1);
    cleaned.push_str(sign);
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'_' {
            let before = i > 0 && bytes[i - 1].is_ascii_digit();
            let after = bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
            if !(before && after) {
                return None;
            }
        } else {
            cleaned.push(char::from(b));
        }
    }
    if !is_decimal_literal(&cleaned[sign.len()..]) {
        return None;
    }
    cleaned.parse().ok()
}

/// `digits [. digits?] | . digits`, then an optional `e[+-]digits`.
fn is_decimal_literal(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    let mut frac_digits = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac_digits = i - start;
    }
    if int_digits + frac_digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    i == b.len()
}

/// Python's `repr(float)`: the shortest round-tripping digits, positional for
/// exponents in `-4..16` (always with a fraction, `1.0`), else `1e+16` style.
pub(crate) fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_owned();
    }
    if f.is_infinite() {
        return if f < 0.0 { "-inf" } else { "inf" }.to_owned();
    }
    // `{:e}` gives the shortest round-tripping digits: "-1.25e-7".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if (-4..16).contains(&exp) {
        let n = digits.len() as i32;
        let body = if exp < 0 {
            format!("0.{}{}", "0".repeat((-exp - 1) as usize), digits)
        } else if exp + 1 >= n {
            format!("{}{}.0", digits, "0".repeat((exp + 1 - n) as usize))
        } else {
            let (a, b) = digits.split_at((exp + 1) as usize);
            format!("{a}.{b}")
        };
        format!("{sign}{body}")
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{first}{frac}e{esign}{:02}", exp.abs())
    }
}

/// Python's `os.path.normpath` on a POSIX path: lexical, no symlinks.
pub(crate) fn normpath(path: &Path) -> PathBuf {
    let bytes = path.as_os_str().as_bytes();
    if bytes.is_empty() {
        return PathBuf::from(".");
    }
    // POSIX keeps exactly two leading slashes; one, or three and more, become one.
    let leading = bytes.iter().take_while(|&&b| b == b'/').count();
    let prefix: &[u8] = match leading {
        0 => b"",
        2 => b"//",
        _ => b"/",
    };
    let mut parts: Vec<&[u8]> = Vec::new();
    for comp in bytes.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if parts.last().is_some_and(|p| *p != b"..") {
                    parts.pop();
                } else if prefix.is_empty() {
                    parts.push(comp);
                }
            }
            _ => parts.push(comp),
        }
    }
    let mut out: Vec<u8> = prefix.to_vec();
    out.extend_from_slice(&parts.join(&b'/'));
    if out.is_empty() {
        out.push(b'.');
    }
    PathBuf::from(OsStr::from_bytes(&out))
}

/// Python's `os.path.abspath`: joined to the current directory, then normalized.
pub(crate) fn abspath(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return normpath(path);
    }
    match std::env::current_dir() {
        Ok(cwd) => normpath(&cwd.join(path)),
        Err(_) => normpath(path),
    }
}

/// Python's `os.path.dirname`.
pub(crate) fn dirname(path: &Path) -> PathBuf {
    let bytes = path.as_os_str().as_bytes();
    let head = match bytes.iter().rposition(|&b| b == b'/') {
        Some(i) => &bytes[..=i],
        None => b"",
    };
    let head = if !head.is_empty() && head.iter().any(|&b| b != b'/') {
        let end = head.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
        &head[..end]
    } else {
        head
    };
    PathBuf::from(OsStr::from_bytes(head))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_follows_python() {
        assert_eq!(parse_int(" 1_0 "), Some(10));
        assert_eq!(parse_int("\u{a0}5\u{3000}"), Some(5));
        assert_eq!(parse_int("\u{1c}5"), None);
        assert_eq!(parse_int("١٢"), Some(12));
        assert_eq!(parse_int("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_int("9223372036854775808"), None);
        for bad in ["", "+", "1__0", "_1", "1_", "0x10", "1e3", "- 5", "1.0"] {
            assert_eq!(parse_int(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn float_follows_python() {
        assert_eq!(parse_float("1_0.5"), Some(10.5));
        assert_eq!(parse_float(" 1. "), Some(1.0));
        assert_eq!(parse_float("-iNF"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_float("٣.٥"), Some(3.5));
        assert_eq!(parse_float("1_0e1_0"), Some(1e11));
        assert!(parse_float("nan").is_some_and(f64::is_nan));
        for bad in [
            "", ".", "..", "1..2", "1.2.3", ".e1", "1.5e", "1_.5", "0x1", "e5", "1e5_",
        ] {
            assert_eq!(parse_float(bad), None, "{bad:?}");
        }
        // The plain-digits shortcut reads what the full grammar reads.
        for (s, want) in [
            ("1733612345.12345", 1_733_612_345.123_45),
            ("5.", 5.0),
            (".5", 0.5),
            ("007", 7.0),
            ("0000000001.00000", 1.0),
        ] {
            assert_eq!(parse_float(s), Some(want), "{s:?}");
        }
    }

    #[test]
    fn float_repr_matches_python() {
        let cases = [
            (-1.0, "-1.0"),
            (0.5, "0.5"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (-0.0, "-0.0"),
            (123.456, "123.456"),
            (1e100, "1e+100"),
        ];
        for (f, want) in cases {
            assert_eq!(float_repr(f), want);
        }
    }

    #[test]
    fn paths_follow_posixpath() {
        assert_eq!(normpath(Path::new("/a//b/./c/../d/")), Path::new("/a/b/d"));
        assert_eq!(normpath(Path::new("//a")), Path::new("//a"));
        assert_eq!(normpath(Path::new("///a/..")), Path::new("/"));
        assert_eq!(normpath(Path::new("../x")), Path::new("../x"));
        assert_eq!(
            dirname(Path::new("/etc/swift/p.conf")),
            Path::new("/etc/swift")
        );
        assert_eq!(dirname(Path::new("/p.conf")), Path::new("/"));
    }

    #[test]
    fn repr_escapes_like_python() {
        assert_eq!(repr("a'b"), "\"a'b\"");
        assert_eq!(repr("\u{feff}[x]\n"), "'\\ufeff[x]\\n'");
        assert_eq!(repr("it's \"q\""), "'it\\'s \"q\"'");
    }
}
