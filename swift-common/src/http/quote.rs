//! URL quoting as Python's `urllib.parse` does it, over bytes: `quote`
//! (unreserved `A-Za-z0-9_.-~` plus a caller's safe set kept), `unquote`,
//! and the query-string pair `parse_qsl` / `urlencode` that Swift uses to
//! re-encode a client's query for a backend.
//!
//! Swift's strings are WSGI strings: each char one byte (latin-1). Callers
//! pass the bytes they mean: `wsgi_bytes` turns a WSGI string back into them.

/// The bytes a WSGI (latin-1) string stands for. Chars above U+00FF cannot
/// occur in one; they are replaced by `?`.
pub fn wsgi_bytes(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    push_wsgi_bytes(&mut out, s);
    out
}

/// Append the bytes of a WSGI string (what goes on the wire for a header).
pub fn push_wsgi_bytes(out: &mut Vec<u8>, s: &str) {
    if s.is_ascii() {
        out.extend_from_slice(s.as_bytes());
    } else {
        out.extend(
            s.chars()
                .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')),
        );
    }
}

/// A WSGI string from bytes (each byte one char; ASCII is the fast path).
pub fn bytes_to_wsgi(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) if s.is_ascii() => s.to_owned(),
        _ => b.iter().map(|&c| char::from(c)).collect(),
    }
}

/// A WSGI string's bytes read as UTF-8 (Swift's `wsgi_to_str`); `None`
/// when they are not UTF-8.
pub fn wsgi_to_str(s: &str) -> Option<String> {
    wsgi_as_str(s).map(std::borrow::Cow::into_owned)
}

/// [`wsgi_to_str`] without a copy for ASCII (the common case: the same
/// text either way).
pub fn wsgi_as_str(s: &str) -> Option<std::borrow::Cow<'_, str>> {
    if s.is_ascii() {
        return Some(std::borrow::Cow::Borrowed(s));
    }
    String::from_utf8(wsgi_bytes(s))
        .ok()
        .map(std::borrow::Cow::Owned)
}

/// A str as a WSGI string (Swift's `str_to_wsgi`): its UTF-8 bytes, each
/// one char.
pub fn str_to_wsgi(s: &str) -> String {
    bytes_to_wsgi(s.as_bytes())
}

/// The bytes `quote` never escapes: ASCII letters, digits and `_.-~`.
const ALWAYS_SAFE: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~');
        i += 1;
    }
    table
};

/// Python's `quote(bytes, safe)`.
pub fn quote_bytes_into(out: &mut String, bytes: &[u8], safe: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let safe = safe.as_bytes();
    out.reserve(bytes.len());
    // Runs of ASCII bytes kept as they are go in at once (every access-log
    // field and backend path passes here).
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        // A table lookup first: most bytes are letters and digits.
        if ALWAYS_SAFE[usize::from(b)] {
            continue;
        }
        let keep = safe.contains(&b);
        if keep && b.is_ascii() {
            continue;
        }
        if let Ok(text) = std::str::from_utf8(&bytes[run..i]) {
            out.push_str(text);
        }
        run = i + 1;
        if keep {
            // A non-ASCII byte that `safe` names: one char, as before.
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    if let Ok(text) = std::str::from_utf8(&bytes[run..]) {
        out.push_str(text);
    }
}

/// Python's `quote(s, safe)` of a str (its UTF-8).
pub fn quote(s: &str, safe: &str) -> String {
    let mut out = String::with_capacity(s.len());
    quote_bytes_into(&mut out, s.as_bytes(), safe);
    out
}

/// Python's `quote(s.encode('latin-1'), safe)` of a WSGI string (swob's
/// `wsgi_quote`).
pub fn wsgi_quote(s: &str, safe: &str) -> String {
    let mut out = String::with_capacity(s.len());
    quote_bytes_into(&mut out, &wsgi_bytes(s), safe);
    out
}

/// Python's `unquote_to_bytes`: `%XX` decoded, anything else kept.
pub fn unquote_to_bytes(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' && i + 2 < s.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(s[i + 1]), hex(s[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// Python's `parse_qsl(qs, keep_blank_values=True, encoding='latin-1')`:
/// `&`-separated pairs, `+` as space, `%XX` decoded; each name and value a
/// WSGI string. A pair without `=` has an empty value.
pub fn parse_qsl(qs: &str) -> Vec<(String, String)> {
    qs.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let dec = |s: &str| bytes_to_wsgi(&unquote_to_bytes(s.replace('+', " ").as_bytes()));
            (dec(k), dec(v))
        })
        .collect()
}

/// Python's `urlencode(pairs)` of WSGI strings (`quote_plus`, latin-1).
pub fn urlencode(pairs: &[(String, String)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        quote_plus_into(&mut out, &wsgi_bytes(k));
        out.push('=');
        quote_plus_into(&mut out, &wsgi_bytes(v));
    }
    out
}

fn quote_plus_into(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        if b == b' ' {
            out.push('+');
        } else {
            quote_bytes_into(out, &[b], "");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_keeps_unreserved_and_safe() {
        assert_eq!(quote("/a b/☃~.-_", "/"), "/a%20b/%E2%98%83~.-_");
        assert_eq!(quote("", "/"), "");
        assert_eq!(quote("%%", ""), "%25%25");
        assert_eq!(quote("ab\x7f\x00:/{}z", ":/{}"), "ab%7F%00:/{}z");
        // Every byte, against the one-byte-at-a-time rule.
        let all: Vec<u8> = (0..=255).collect();
        let mut got = String::new();
        quote_bytes_into(&mut got, &all, "/:");
        let want: String = all
            .iter()
            .map(|&b| {
                if b.is_ascii_alphanumeric() || b"_.-~/:".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        assert_eq!(got, want);
        assert_eq!(quote("a/b", ""), "a%2Fb");
        assert_eq!(wsgi_quote("\u{e2}\u{98}\u{83}", "/"), "%E2%98%83");
    }

    #[test]
    fn query_round_trip_as_python() {
        let pairs = parse_qsl("format=xml&prefix=a+b%2Fc&&marker&x=%FF");
        assert_eq!(
            pairs,
            vec![
                ("format".into(), "xml".into()),
                ("prefix".into(), "a b/c".into()),
                ("marker".into(), String::new()),
                ("x".into(), "\u{ff}".into()),
            ]
        );
        assert_eq!(urlencode(&pairs), "format=xml&prefix=a+b%2Fc&marker=&x=%FF");
        assert_eq!(unquote_to_bytes(b"%4"), b"%4");
        assert_eq!(unquote_to_bytes(b"%41%"), b"A%");
    }
}
