//! swob's `Accept.best_match`: which of the formats a server offers an
//! `Accept` header prefers, with swob's parsing: each comma-separated range
//! must match swob's RFC 2616 regular expression (as Python's `re` matches
//! it, Unicode whitespace included), `q` is read with Python's `float()`,
//! a second `q` or a parameter with two `=` is an error, and ranges are
//! ordered by quality then exactness the way Python's `list.sort` orders
//! them (stable, and with CPython's own algorithm so that a `q=nan` lands
//! where it lands in Swift).

use swift_common::config::values::{python_float, python_isspace, python_strip};

/// swob raised `ValueError`: the header is malformed (a 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidAccept;

/// One media range of the header.
#[derive(Debug)]
struct Range<'a> {
    typ: &'a str,
    subtype: &'a str,
    quality: f64,
    /// Neither part is `*`.
    exact: bool,
}

/// `Accept(header).best_match(options)`: the first option the best range
/// matches; the first option when the header is absent or empty; `None`
/// when no range matches any option.
pub fn best_match<'o>(
    header: Option<&str>,
    options: &[&'o str],
) -> Result<Option<&'o str>, InvalidAccept> {
    let Some(header) = header.filter(|h| !h.is_empty()) else {
        return Ok(options.first().copied());
    };
    let mut types = Vec::new();
    for piece in header.split(',') {
        let (typ, subtype, parms) = match_range(piece).ok_or(InvalidAccept)?;
        let mut quality = 1.0;
        let mut seen_q = false;
        for parm in parms.split(';').map(python_strip).filter(|p| !p.is_empty()) {
            // `name, value = parm.split('=')`: exactly one `=`.
            let mut parts = parm.split('=');
            let (Some(name), Some(value), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(InvalidAccept);
            };
            if python_strip(name) == "q" {
                if seen_q {
                    return Err(InvalidAccept);
                }
                seen_q = true;
                quality = python_float(python_strip(value)).ok_or(InvalidAccept)?;
            }
        }
        types.push(Range {
            typ,
            subtype,
            quality,
            exact: typ != "*" && subtype != "*",
        });
    }
    python_sort_reverse(&mut types);
    for t in &types {
        for option in options {
            let (otyp, osub) = option.split_once('/').unwrap_or((option, ""));
            if (t.typ == "*" || t.typ == otyp) && (t.subtype == "*" || t.subtype == osub) {
                return Ok(Some(option));
            }
        }
    }
    Ok(None)
}

/// A character of swob's `token`: `[^()<>@,;:"/\[\]?={}\x00-\x20\x7f]`.
fn is_token(c: char) -> bool {
    !(c <= ' ' || c == '\x7f' || "()<>@,;:\"/[]?={}".contains(c))
}

/// swob's `acc_pattern` against one range: `(type, subtype, params)`.
///
/// The pattern is `^\s*(token)/(token)((?:\s*;\s*token\s*=\s*(?:token|
/// quoted-string))*?\s*)$`. Both tokens are greedy and what follows each can
/// only start with a non-token character, so backtracking never shortens
/// them; the one exception is the leading `\s*`, which gives back its last
/// character when that is also a token character (U+0085, U+00A0) and
/// nothing else can start the type. The parameters are the rest of the
/// string, checked by an automaton for the parameter grammar.
fn match_range(piece: &str) -> Option<(&str, &str, &str)> {
    let chars: Vec<(usize, char)> = piece.char_indices().collect();
    let at = |k: usize| chars.get(k).map(|&(_, c)| c);
    let offset = |k: usize| chars.get(k).map_or(piece.len(), |&(o, _)| o);
    let mut k = 0;
    while at(k).is_some_and(python_isspace) {
        k += 1;
    }
    let t1 = if at(k).is_some_and(is_token) {
        k
    } else if k > 0 && at(k - 1).is_some_and(is_token) {
        k - 1
    } else {
        return None;
    };
    let mut m = t1;
    while at(m).is_some_and(is_token) {
        m += 1;
    }
    if at(m) != Some('/') {
        return None;
    }
    let t2 = m + 1;
    let mut m2 = t2;
    while at(m2).is_some_and(is_token) {
        m2 += 1;
    }
    if m2 == t2 {
        return None;
    }
    let rest = &piece[offset(m2)..];
    params_match(rest).then(|| {
        (
            &piece[offset(t1)..offset(m)],
            &piece[offset(t2)..offset(m2)],
            rest,
        )
    })
}

/// Whether `s` is `(?:\s*;\s*token\s*=\s*(?:token|quoted-string))*\s*`,
/// by simulating its automaton (whitespace and token characters overlap).
fn params_match(s: &str) -> bool {
    // States: 0 between parameters (accepting), 1 after `;`, 2 in a name,
    // 3 after a name, 4 after `=`, 5 in a token value (accepting), 6 in a
    // quoted value, 7 after a backslash there, 8 after the closing quote
    // (accepting).
    const ACCEPTING: u16 = 1 << 0 | 1 << 5 | 1 << 8;
    let mut states: u16 = 1;
    for c in s.chars() {
        let ws = python_isspace(c);
        let tok = is_token(c);
        let mut next: u16 = 0;
        let mut go = |cond: bool, to: u16| {
            if cond {
                next |= 1 << to;
            }
        };
        for state in 0..9u16 {
            if states & (1 << state) == 0 {
                continue;
            }
            match state {
                0 | 8 => {
                    go(ws, 0);
                    go(c == ';', 1);
                }
                1 => {
                    go(ws, 1);
                    go(tok, 2);
                }
                2 => {
                    go(tok, 2);
                    go(ws, 3);
                    go(c == '=', 4);
                }
                3 => {
                    go(ws, 3);
                    go(c == '=', 4);
                }
                4 => {
                    go(ws, 4);
                    go(tok, 5);
                    go(c == '"', 6);
                }
                5 => {
                    go(tok, 5);
                    go(ws, 0);
                    go(c == ';', 1);
                }
                6 => {
                    go(c == '\\', 7);
                    go(c == '"', 8);
                    go(c != '\\' && c != '"', 6);
                }
                _ => go(c != '\n', 6),
            }
        }
        states = next;
        if states == 0 {
            return false;
        }
    }
    states & ACCEPTING != 0
}

/// `types.sort(reverse=True, key=lambda t: (t.quality, t.exact))` as
/// CPython runs it: reverse, a stable ascending sort comparing key tuples
/// with `<`, reverse again. The sort is CPython's for lists shorter than 64
/// (its run detection and binary insertion), which every stable sort agrees
/// with unless a quality is NaN.
fn python_sort_reverse(v: &mut Vec<Range<'_>>) {
    // Tuple `<`: the first items unless they are equal (NaN never is).
    let lt = |a: &Range<'_>, b: &Range<'_>| {
        if a.quality == b.quality {
            !a.exact && b.exact
        } else {
            a.quality < b.quality
        }
    };
    v.reverse();
    let n = v.len();
    if n >= 2 {
        let mut run = 2;
        if lt(&v[1], &v[0]) {
            while run < n && lt(&v[run], &v[run - 1]) {
                run += 1;
            }
            v[..run].reverse();
        } else {
            while run < n && !lt(&v[run], &v[run - 1]) {
                run += 1;
            }
        }
        for start in run..n {
            let (mut l, mut r) = (0, start);
            while l < r {
                let p = l + (r - l) / 2;
                if lt(&v[start], &v[p]) {
                    r = p;
                } else {
                    l = p + 1;
                }
            }
            let item = v.remove(start);
            v.insert(l, item);
        }
    }
    v.reverse();
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[&str] = &[
        "text/plain",
        "application/json",
        "application/xml",
        "text/xml",
    ];

    fn best(h: &str) -> Result<Option<&'static str>, InvalidAccept> {
        best_match(Some(h), OPTIONS)
    }

    #[test]
    fn absent_or_empty_means_the_first_option() {
        assert_eq!(best_match(None, OPTIONS), Ok(Some("text/plain")));
        assert_eq!(best(""), Ok(Some("text/plain")));
    }

    #[test]
    fn quality_then_exactness_then_order() {
        assert_eq!(best("application/json"), Ok(Some("application/json")));
        assert_eq!(best("*/*"), Ok(Some("text/plain")));
        assert_eq!(best("application/*"), Ok(Some("application/json")));
        assert_eq!(best("*/*;q=0.9, text/xml"), Ok(Some("text/xml")));
        assert_eq!(
            best("application/*, application/xml"),
            Ok(Some("application/xml"))
        );
        assert_eq!(
            best("text/xml;q=0.5, application/xml;q=0.5"),
            Ok(Some("text/xml"))
        );
        assert_eq!(
            best("text/xml ; q = 0.1 , application/json;q=1_0"),
            Ok(Some("application/json"))
        );
        assert_eq!(best("image/png"), Ok(None));
        assert_eq!(best("Application/JSON"), Ok(None));
        assert_eq!(best("text/html;level=\"1;2\""), Err(InvalidAccept));
        assert_eq!(best("text/html;x=\"a\\\"b\""), Ok(None));
    }

    #[test]
    fn malformed_headers_are_refused() {
        for h in [
            "json",
            ",",
            " ",
            "text/",
            "/plain",
            "a/b;q",
            "a/b;q=x",
            "a/b;q=1;q=1",
            "a/b c",
            "a/b;x=\"1=2\"",
            "a/b;x=\"open",
        ] {
            assert_eq!(best(h), Err(InvalidAccept), "{h:?}");
        }
    }

    #[test]
    fn whitespace_that_is_also_a_token_character() {
        // `\s*` gives back U+00A0 to the type, as Python's backtracking does.
        assert_eq!(match_range("\u{a0}/plain"), Some(("\u{a0}", "plain", "")));
        assert_eq!(match_range(" \u{a0}x/y"), Some(("x", "y", "")));
        assert_eq!(match_range("\u{a0} /y"), None);
        assert_eq!(match_range("a/b\u{a0};q=1"), Some(("a", "b\u{a0}", ";q=1")));
    }

    #[test]
    fn nan_quality_sorts_as_cpython_sorts() {
        // Answers of the reference venv's swob.Accept(h).best_match(...).
        for (h, want) in [
            (
                "text/xml;q=nan, text/plain;q=0.1, application/json",
                "text/xml",
            ),
            ("application/json;q=nan, text/xml;q=nan", "application/json"),
            (
                "text/plain;q=0.1, text/xml;q=nan, application/json;q=0.5, application/xml",
                "text/xml",
            ),
        ] {
            assert_eq!(best(h), Ok(Some(want)), "{h}");
        }
    }
}
