//! JSON as Python's `json` module reads and writes it, and the few Python
//! operations listing_formats applies to the values (`str()`, `repr()`,
//! `in`, truthiness), so a listing converts exactly as Swift converts it.
//!
//! `loads` is `json.loads(bytes)`: the encoding sniffed as Python does
//! (UTF-8, a UTF-8 BOM, UTF-16/32), decoded with `surrogatepass`, then the C
//! scanner's grammar (`NaN`, `Infinity`, raw control characters refused,
//! `\uXXXX` pairs joined, later duplicate keys winning in the first key's
//! place, integers of more than 4300 digits refused). `dumps` is
//! `json.dumps(v)`: ASCII only, `", "` and `": "` separators, floats as
//! `repr`. Strings are Python strings, lone surrogates included.
//!
//! This module knows nothing of listings or HTTP.

use std::borrow::Cow;
use std::collections::HashMap;

use swift_common::config::values::{python_float_repr, python_repr};

/// Python's `sys.int_info.default_max_str_digits`: `int()` of more digits
/// raises `ValueError`, and so does `json.loads`.
const MAX_INT_DIGITS: usize = 4300;

/// How deep arrays and objects may nest. Python raises `RecursionError`
/// near its recursion limit (1000 frames, less the frames of the server
/// around the call); we stop a little earlier, with the same outcome.
pub const MAX_DEPTH: usize = 900;

/// A Python `str`: code points, lone surrogates allowed. Stored as UTF-8
/// generalised to encode surrogates (`ED A0 80` for U+D800), so a string
/// without surrogates is plain UTF-8.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct PyStr(Vec<u8>);

impl std::fmt::Debug for PyStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.repr())
    }
}

impl From<&str> for PyStr {
    fn from(s: &str) -> PyStr {
        PyStr(s.as_bytes().to_vec())
    }
}

impl PyStr {
    /// The text, unless it holds a lone surrogate (which UTF-8 cannot encode).
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The code points, in order.
    pub fn code_points(&self) -> CodePoints<'_> {
        CodePoints(&self.0)
    }

    /// Python's `needle in self` for a string needle.
    pub fn contains(&self, needle: &str) -> bool {
        let n = needle.as_bytes();
        // The encoding is self-synchronising: a byte search is exact.
        n.is_empty() || self.0.windows(n.len()).any(|w| w == n)
    }

    /// Python's `repr()`.
    pub fn repr(&self) -> String {
        python_repr(self.code_points())
    }

    fn push(&mut self, cp: u32) {
        push_code_point(&mut self.0, cp);
    }
}

/// Append `cp` in (generalised) UTF-8.
fn push_code_point(out: &mut Vec<u8>, cp: u32) {
    // The casts keep the low bits on purpose: each is masked first.
    match cp {
        0..=0x7f => out.push(cp as u8),
        0x80..=0x7ff => out.extend_from_slice(&[0xc0 | (cp >> 6) as u8, 0x80 | (cp & 0x3f) as u8]),
        0x800..=0xffff => out.extend_from_slice(&[
            0xe0 | (cp >> 12) as u8,
            0x80 | ((cp >> 6) & 0x3f) as u8,
            0x80 | (cp & 0x3f) as u8,
        ]),
        _ => out.extend_from_slice(&[
            0xf0 | (cp >> 18) as u8,
            0x80 | ((cp >> 12) & 0x3f) as u8,
            0x80 | ((cp >> 6) & 0x3f) as u8,
            0x80 | (cp & 0x3f) as u8,
        ]),
    }
}

/// The code points of a [`PyStr`].
#[derive(Clone)]
pub struct CodePoints<'a>(&'a [u8]);

impl Iterator for CodePoints<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let (&b0, rest) = self.0.split_first()?;
        let (n, init) = match b0 {
            0..=0x7f => (0, u32::from(b0)),
            0xc0..=0xdf => (1, u32::from(b0 & 0x1f)),
            0xe0..=0xef => (2, u32::from(b0 & 0x0f)),
            _ => (3, u32::from(b0 & 0x07)),
        };
        // A PyStr is well formed by construction; a short tail ends it.
        let tail = rest.get(..n)?;
        self.0 = &rest[n..];
        Some(
            tail.iter()
                .fold(init, |acc, &b| (acc << 6) | u32::from(b & 0x3f)),
        )
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.0.len().div_ceil(4), Some(self.0.len()))
    }
}

/// A Python object as `json.loads` builds it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// An `int`, as its decimal text (`-0` already made `0`).
    Int(String),
    Float(f64),
    Str(PyStr),
    List(Vec<Value>),
    Dict(Dict),
}

/// A `dict` from `json.loads`: keys in first-seen order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dict(pub Vec<(PyStr, Value)>);

impl Dict {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0
            .iter()
            .find(|(k, _)| k.0 == key.as_bytes())
            .map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
}

/// Python raised `TypeError` (an operation the value's type lacks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeError(pub String);

impl Value {
    /// Python's type name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "NoneType",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
        }
    }

    /// Python's `bool(value)`.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Int(i) => i != "0",
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Dict(d) => !d.0.is_empty(),
        }
    }

    /// Python's `needle in value` for a string needle: a substring of a
    /// string, an element of a list, a key of a dict; other types raise.
    pub fn contains(&self, needle: &str) -> Result<bool, TypeError> {
        match self {
            Value::Str(s) => Ok(s.contains(needle)),
            Value::List(l) => Ok(l
                .iter()
                .any(|v| matches!(v, Value::Str(s) if s.0 == needle.as_bytes()))),
            Value::Dict(d) => Ok(d.contains_key(needle)),
            other => Err(TypeError(format!(
                "argument of type '{}' is not iterable",
                other.type_name()
            ))),
        }
    }

    /// Python's `str(value)`.
    pub fn py_str(&self) -> PyStr {
        match self {
            Value::Str(s) => s.clone(),
            other => PyStr(other.repr().into_bytes()),
        }
    }

    /// Python's `repr(value)`.
    pub fn repr(&self) -> String {
        let mut out = String::new();
        self.repr_into(&mut out);
        out
    }

    fn repr_into(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("None"),
            Value::Bool(true) => out.push_str("True"),
            Value::Bool(false) => out.push_str("False"),
            Value::Int(i) => out.push_str(i),
            Value::Float(f) => out.push_str(&python_float_repr(*f)),
            Value::Str(s) => out.push_str(&s.repr()),
            Value::List(l) => {
                out.push('[');
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.repr_into(out);
                }
                out.push(']');
            }
            Value::Dict(d) => {
                out.push('{');
                for (i, (k, v)) in d.0.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&k.repr());
                    out.push_str(": ");
                    v.repr_into(out);
                }
                out.push('}');
            }
        }
    }
}

/// Why `json.loads` failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// `ValueError` (bad encoding, bad JSON, too many digits): Swift passes
    /// such a body through.
    Invalid(String),
    /// `RecursionError`: nothing catches it in Swift (a 500).
    TooDeep,
}

fn invalid<T>(what: &str, at: usize) -> Result<T, LoadError> {
    Err(LoadError::Invalid(format!("{what} at byte {at}")))
}

/// `json.loads(body)` for a bytes body.
pub fn loads(body: &[u8]) -> Result<Value, LoadError> {
    let text = decode(body)?;
    let mut p = Parser {
        s: &text,
        i: 0,
        depth: 0,
    };
    p.skip_ws();
    let v = p.value()?;
    p.skip_ws();
    if p.i != p.s.len() {
        return invalid("Extra data", p.i);
    }
    Ok(v)
}

/// `body.decode(json.detect_encoding(body), 'surrogatepass')`, as
/// generalised UTF-8.
fn decode(b: &[u8]) -> Result<Cow<'_, [u8]>, LoadError> {
    const BOM8: &[u8] = b"\xef\xbb\xbf";
    if b.starts_with(b"\x00\x00\xfe\xff") {
        return utf32(&b[4..], true);
    }
    if b.starts_with(b"\xff\xfe\x00\x00") {
        return utf32(&b[4..], false);
    }
    if b.starts_with(b"\xfe\xff") {
        return utf16(&b[2..], true);
    }
    if b.starts_with(b"\xff\xfe") {
        return utf16(&b[2..], false);
    }
    if let Some(rest) = b.strip_prefix(BOM8) {
        return utf8(rest);
    }
    if b.len() >= 4 {
        if b[0] == 0 {
            return if b[1] != 0 {
                utf16(b, true)
            } else {
                utf32(b, true)
            };
        }
        if b[1] == 0 {
            return if b[2] != 0 || b[3] != 0 {
                utf16(b, false)
            } else {
                utf32(b, false)
            };
        }
    } else if b.len() == 2 {
        if b[0] == 0 {
            return utf16(b, true);
        }
        if b[1] == 0 {
            return utf16(b, false);
        }
    }
    utf8(b)
}

/// UTF-8 with `surrogatepass`: valid UTF-8, plus encoded surrogates
/// (`ED A0..BF xx`), which is already our representation.
fn utf8(b: &[u8]) -> Result<Cow<'_, [u8]>, LoadError> {
    if std::str::from_utf8(b).is_ok() {
        return Ok(Cow::Borrowed(b));
    }
    let mut i = 0;
    while i < b.len() {
        match std::str::from_utf8(&b[i..]) {
            Ok(_) => break,
            Err(e) => {
                let at = i + e.valid_up_to();
                let s = &b[at..];
                if s.len() >= 3
                    && s[0] == 0xed
                    && (0xa0..=0xbf).contains(&s[1])
                    && (0x80..=0xbf).contains(&s[2])
                {
                    i = at + 3;
                } else {
                    return invalid("'utf-8' codec can't decode", at);
                }
            }
        }
    }
    Ok(Cow::Borrowed(b))
}

fn utf16(b: &[u8], big_endian: bool) -> Result<Cow<'static, [u8]>, LoadError> {
    if !b.len().is_multiple_of(2) {
        return invalid("'utf-16' codec: truncated data", b.len());
    }
    let unit = |c: &[u8]| {
        if big_endian {
            u32::from(u16::from_be_bytes([c[0], c[1]]))
        } else {
            u32::from(u16::from_le_bytes([c[0], c[1]]))
        }
    };
    let units: Vec<u32> = b.chunks_exact(2).map(unit).collect();
    let mut out = Vec::with_capacity(b.len());
    let mut k = 0;
    while k < units.len() {
        let u = units[k];
        match units.get(k + 1) {
            Some(&lo) if (0xd800..0xdc00).contains(&u) && (0xdc00..0xe000).contains(&lo) => {
                push_code_point(&mut out, 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00));
                k += 2;
            }
            // A lone surrogate passes (surrogatepass).
            _ => {
                push_code_point(&mut out, u);
                k += 1;
            }
        }
    }
    Ok(Cow::Owned(out))
}

fn utf32(b: &[u8], big_endian: bool) -> Result<Cow<'static, [u8]>, LoadError> {
    if !b.len().is_multiple_of(4) {
        return invalid("'utf-32' codec: truncated data", b.len());
    }
    let mut out = Vec::with_capacity(b.len());
    for (k, c) in b.chunks_exact(4).enumerate() {
        let arr = [c[0], c[1], c[2], c[3]];
        let u = if big_endian {
            u32::from_be_bytes(arr)
        } else {
            u32::from_le_bytes(arr)
        };
        if u > 0x10ffff {
            return invalid("'utf-32' codec: code point not in range", 4 * k);
        }
        push_code_point(&mut out, u);
    }
    Ok(Cow::Owned(out))
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn literal(&mut self, word: &[u8], v: Value) -> Result<Value, LoadError> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(v)
        } else {
            invalid("Expecting value", self.i)
        }
    }

    fn value(&mut self) -> Result<Value, LoadError> {
        match self.peek() {
            Some(b'"') => {
                self.i += 1;
                Ok(Value::Str(self.string()?))
            }
            Some(b'{') => self.nested(|p| p.object()),
            Some(b'[') => self.nested(|p| p.array()),
            Some(b'n') => self.literal(b"null", Value::Null),
            Some(b't') => self.literal(b"true", Value::Bool(true)),
            Some(b'f') => self.literal(b"false", Value::Bool(false)),
            Some(b'N') => self.literal(b"NaN", Value::Float(f64::NAN)),
            Some(b'I') => self.literal(b"Infinity", Value::Float(f64::INFINITY)),
            Some(b'-') if self.s[self.i..].starts_with(b"-Infinity") => {
                self.i += 9;
                Ok(Value::Float(f64::NEG_INFINITY))
            }
            _ => self.number(),
        }
    }

    fn nested(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<Value, LoadError>,
    ) -> Result<Value, LoadError> {
        if self.depth >= MAX_DEPTH {
            return Err(LoadError::TooDeep);
        }
        self.depth += 1;
        self.i += 1;
        let v = f(self);
        self.depth -= 1;
        v
    }

    /// The C scanner's `_match_number_unicode`.
    fn number(&mut self) -> Result<Value, LoadError> {
        let s = self.s;
        let start = self.i;
        let mut i = start;
        let digit = |i: usize| s.get(i).is_some_and(u8::is_ascii_digit);
        if s.get(i) == Some(&b'-') {
            i += 1;
        }
        match s.get(i) {
            Some(b'1'..=b'9') => {
                i += 1;
                while digit(i) {
                    i += 1;
                }
            }
            Some(b'0') => i += 1,
            _ => return invalid("Expecting value", start),
        }
        let mut is_float = false;
        if s.get(i) == Some(&b'.') && digit(i + 1) {
            is_float = true;
            i += 2;
            while digit(i) {
                i += 1;
            }
        }
        if matches!(s.get(i), Some(b'e' | b'E')) {
            let e_start = i;
            i += 1;
            if matches!(s.get(i), Some(b'-' | b'+')) {
                i += 1;
            }
            while digit(i) {
                i += 1;
            }
            if digit(i - 1) {
                is_float = true;
            } else {
                i = e_start;
            }
        }
        self.i = i;
        // The slice is ASCII digits and signs.
        let text = String::from_utf8_lossy(&s[start..i]);
        if is_float {
            return text
                .parse::<f64>()
                .map(Value::Float)
                .or_else(|_| invalid("bad float", start));
        }
        let digits = text.trim_start_matches('-');
        if digits.len() > MAX_INT_DIGITS {
            return invalid(
                "Exceeds the limit (4300 digits) for integer string conversion",
                start,
            );
        }
        Ok(Value::Int(if digits == "0" {
            "0".to_owned()
        } else {
            text.into_owned()
        }))
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let h = self.s.get(at..at + 4)?;
        h.iter().try_fold(0u32, |acc, &b| {
            char::from(b).to_digit(16).map(|d| (acc << 4) | d)
        })
    }

    /// `scanstring` (strict), from just after the opening quote.
    fn string(&mut self) -> Result<PyStr, LoadError> {
        let begin = self.i - 1;
        let s = self.s;
        let mut out = PyStr::default();
        loop {
            let chunk_start = self.i;
            while let Some(&c) = s.get(self.i) {
                if c == b'"' || c == b'\\' {
                    break;
                }
                if c <= 0x1f {
                    return invalid("Invalid control character", self.i);
                }
                self.i += 1;
            }
            out.0.extend_from_slice(&s[chunk_start..self.i]);
            match s.get(self.i) {
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(_) => self.i += 1,
                None => return invalid("Unterminated string", begin),
            }
            let Some(&esc) = s.get(self.i) else {
                return invalid("Unterminated string", begin);
            };
            if esc != b'u' {
                let c = match esc {
                    b'"' => b'"',
                    b'\\' => b'\\',
                    b'/' => b'/',
                    b'b' => 0x08,
                    b'f' => 0x0c,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    _ => return invalid("Invalid \\escape", self.i - 1),
                };
                out.0.push(c);
                self.i += 1;
                continue;
            }
            // `\uXXXX`: Python wants a character after the four digits.
            let at = self.i + 1;
            if at + 4 >= s.len() {
                return invalid("Invalid \\uXXXX escape", self.i);
            }
            let Some(mut c) = self.hex4(at) else {
                return invalid("Invalid \\uXXXX escape", self.i);
            };
            self.i = at + 4;
            if (0xd800..0xdc00).contains(&c)
                && self.i + 6 < s.len()
                && s[self.i] == b'\\'
                && s[self.i + 1] == b'u'
            {
                let Some(c2) = self.hex4(self.i + 2) else {
                    return invalid("Invalid \\uXXXX escape", self.i + 1);
                };
                if (0xdc00..0xe000).contains(&c2) {
                    c = 0x10000 + ((c - 0xd800) << 10) + (c2 - 0xdc00);
                    self.i += 6;
                }
            }
            out.push(c);
        }
    }

    fn object(&mut self) -> Result<Value, LoadError> {
        let mut pairs: Vec<(PyStr, Value)> = Vec::new();
        // Only large objects get an index: listings' have a handful of keys.
        let mut index: Option<HashMap<PyStr, usize>> = None;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(Value::Dict(Dict(pairs)));
        }
        loop {
            if self.peek() != Some(b'"') {
                return invalid("Expecting property name enclosed in double quotes", self.i);
            }
            self.i += 1;
            let key = self.string()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return invalid("Expecting ':' delimiter", self.i);
            }
            self.i += 1;
            self.skip_ws();
            let value = self.value()?;
            if pairs.len() >= 16 && index.is_none() {
                index = Some(
                    pairs
                        .iter()
                        .enumerate()
                        .map(|(n, (k, _))| (k.clone(), n))
                        .collect(),
                );
            }
            let found = match &index {
                Some(ix) => ix.get(&key).copied(),
                None => pairs.iter().position(|(k, _)| *k == key),
            };
            match found {
                Some(n) => pairs[n].1 = value,
                None => {
                    if let Some(ix) = index.as_mut() {
                        ix.insert(key.clone(), pairs.len());
                    }
                    pairs.push((key, value));
                }
            }
            self.skip_ws();
            match self.peek() {
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Value::Dict(Dict(pairs)));
                }
                Some(b',') => {
                    self.i += 1;
                    self.skip_ws();
                }
                _ => return invalid("Expecting ',' delimiter", self.i),
            }
        }
    }

    fn array(&mut self) -> Result<Value, LoadError> {
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(Value::List(items));
        }
        loop {
            items.push(self.value()?);
            self.skip_ws();
            match self.peek() {
                Some(b']') => {
                    self.i += 1;
                    return Ok(Value::List(items));
                }
                Some(b',') => {
                    self.i += 1;
                    self.skip_ws();
                }
                _ => return invalid("Expecting ',' delimiter", self.i),
            }
        }
    }
}

/// `json.dumps(value)` (ASCII, default separators).
pub fn dumps(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int(i) => out.extend_from_slice(i.as_bytes()),
        Value::Float(f) => {
            let text = if f.is_nan() {
                "NaN".to_owned()
            } else if f.is_infinite() {
                if *f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
            } else {
                python_float_repr(*f)
            };
            out.extend_from_slice(text.as_bytes());
        }
        Value::Str(s) => dump_str(s, out),
        Value::List(l) => {
            out.push(b'[');
            for (i, v) in l.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                dumps(v, out);
            }
            out.push(b']');
        }
        Value::Dict(d) => {
            out.push(b'{');
            for (i, (k, v)) in d.0.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                dump_str(k, out);
                out.extend_from_slice(b": ");
                dumps(v, out);
            }
            out.push(b'}');
        }
    }
}

/// `py_encode_basestring_ascii`.
fn dump_str(s: &PyStr, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let unit = |out: &mut Vec<u8>, u: u32| {
        out.extend_from_slice(b"\\u");
        for shift in [12, 8, 4, 0] {
            out.push(HEX[((u >> shift) & 0xf) as usize]);
        }
    };
    out.push(b'"');
    for cp in s.code_points() {
        match cp {
            0x22 => out.extend_from_slice(b"\\\""),
            0x5c => out.extend_from_slice(b"\\\\"),
            0x0a => out.extend_from_slice(b"\\n"),
            0x0d => out.extend_from_slice(b"\\r"),
            0x09 => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0x20..=0x7e => out.push(cp as u8),
            0x10000.. => {
                let v = cp - 0x10000;
                unit(out, 0xd800 | (v >> 10));
                unit(out, 0xdc00 | (v & 0x3ff));
            }
            _ => unit(out, cp),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(json: &str) -> String {
        let mut out = Vec::new();
        dumps(&loads(json.as_bytes()).unwrap(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn dumps_matches_python() {
        // Outputs from the reference venv's json.dumps(json.loads(...)).
        assert_eq!(
            round(
                r#"["\ud83d\ude00", "\ud800x", 1e16, 1.0, -0, -0.0, 1E400, NaN, 12345678901234567890123]"#
            ),
            r#"["\ud83d\ude00", "\ud800x", 1e+16, 1.0, 0, -0.0, Infinity, NaN, 12345678901234567890123]"#
        );
        assert_eq!(
            round("{\"a\":1,\"b\":[true,false,null],\"a\":2, \"\u{e9}\\u0001\\/\x7f\":{}}"),
            r#"{"a": 2, "b": [true, false, null], "\u00e9\u0001/\u007f": {}}"#
        );
        assert_eq!(round(" [ ] "), "[]");
        assert_eq!(round("-Infinity"), "-Infinity");
    }

    #[test]
    fn loads_refuses_what_python_refuses() {
        for bad in [
            "",
            "[1,]",
            "{\"a\" 1}",
            "[01]",
            "[1.]",
            "\"a\tb\"",
            "\"\\x\"",
            "[1] x",
            "'a'",
            "\"\\u12\"",
            "{1: 2}",
            "[nul]",
            "\u{feff}\u{feff}[]",
        ] {
            assert!(
                matches!(loads(bad.as_bytes()), Err(LoadError::Invalid(_))),
                "{bad:?}"
            );
        }
        assert!(loads(&[b'"', 0xff, b'"']).is_err());
        let digits = "1".repeat(4301);
        assert!(loads(digits.as_bytes()).is_err());
        assert!(loads(&digits.as_bytes()[1..]).is_ok());
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(loads(deep.as_bytes()), Err(LoadError::TooDeep));
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(loads(ok.as_bytes()).is_ok());
    }

    #[test]
    fn encodings_are_sniffed_as_python_does() {
        // A UTF-8 BOM is dropped; UTF-16/32 are recognised by their zeros.
        assert_eq!(round("\u{feff}[1]"), "[1]");
        let utf16le: Vec<u8> = "[\"\u{e9}\"]"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(
            loads(&utf16le).unwrap(),
            Value::List(vec![Value::Str("\u{e9}".into())])
        );
        let mut utf32be = vec![0, 0, 0xfe, 0xff];
        utf32be.extend("[2]".chars().flat_map(|c| u32::from(c).to_be_bytes()));
        assert_eq!(
            loads(&utf32be).unwrap(),
            Value::List(vec![Value::Int("2".into())])
        );
        // Encoded surrogates pass, as with Python's surrogatepass.
        let v = loads(b"[\"\xed\xa0\x80\"]").unwrap();
        let Value::List(l) = v else { panic!() };
        let Value::Str(s) = &l[0] else { panic!() };
        assert_eq!(s.code_points().collect::<Vec<_>>(), [0xd800]);
        assert_eq!(s.as_str(), None);
        assert_eq!(s.repr(), "'\\ud800'");
    }

    #[test]
    fn python_str_repr_and_in() {
        let v = loads(br#"[1.5, "it's", {"k": null}, [true], "a\"b'c"]"#).unwrap();
        assert_eq!(v.repr(), r#"[1.5, "it's", {'k': None}, [True], 'a"b\'c']"#);
        assert_eq!(Value::Float(1e16).py_str().as_str(), Some("1e+16"));
        assert_eq!(v.contains("it's"), Ok(true));
        assert!(Value::Int("5".into()).contains("\0").is_err());
        assert!(!Value::Int("0".into()).truthy());
        assert!(Value::Float(f64::NAN).truthy());
    }
}
