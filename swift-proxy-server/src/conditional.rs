//! swob's conditional responses, for middleware that build a response
//! themselves (Swift's `Response(conditional_response=True)`): the `Range`
//! header ([`ByteRanges`], swob's `Range` and `ranges_for_length`),
//! `If-Match`/`If-None-Match` ([`EtagMatch`], swob's `Match`),
//! `If-Modified-Since`/`If-Unmodified-Since` (HTTP dates read as Python's
//! `email.utils.parsedate` reads them), and the status they lead to
//! ([`conditional_status`]).
//!
//! Only the parsing and the decisions live here; building the bodies is the
//! caller's job (and the object server's, for plain objects).

use std::collections::BTreeSet;

use swift_common::http::Headers;

/// swob's `MAX_RANGES`, `MAX_RANGE_OVERLAPS`, `MAX_NONASCENDING_RANGES`.
const MAX_RANGES: usize = 50;
const MAX_RANGE_OVERLAPS: usize = 2;
const MAX_NONASCENDING_RANGES: usize = 8;

/// A content length for [`ByteRanges::ranges_for_length`]: a number, or
/// Python's `float("inf")` (what DLO passes to find a range's end before it
/// knows the length).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Length {
    Bytes(u128),
    Infinite,
}

impl Length {
    fn lt(self, n: u128) -> bool {
        match self {
            Length::Bytes(l) => l < n,
            Length::Infinite => false,
        }
    }
}

/// One end of a satisfiable range: a byte offset, or the end of an
/// infinite length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Offset {
    At(u128),
    Infinite,
}

impl From<Length> for Offset {
    fn from(l: Length) -> Offset {
        match l {
            Length::Bytes(b) => Offset::At(b),
            Length::Infinite => Offset::Infinite,
        }
    }
}

/// A `Range` header as swob parses it: `(first, last)` pairs, either end
/// missing (`bytes=5-`, `bytes=-5`), every one syntactically valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ByteRanges {
    pub ranges: Vec<(Option<u128>, Option<u128>)>,
}

/// Python's `int()` of an ASCII number (an optional sign, digits); numbers
/// beyond `u128` saturate.
fn py_int(s: &str) -> Option<i128> {
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v = digits.bytes().fold(0i128, |acc, b| {
        acc.saturating_mul(10).saturating_add(i128::from(b - b'0'))
    });
    Some(if neg { -v } else { v })
}

impl ByteRanges {
    /// swob's `Range(headerval)`; `None` where swob raises `ValueError` (the
    /// header is then ignored).
    pub fn parse(header: &str) -> Option<ByteRanges> {
        if header.is_empty() {
            return None;
        }
        let value = header.replace(' ', "");
        if !value.to_ascii_lowercase().starts_with("bytes=") {
            return None;
        }
        let mut ranges = Vec::new();
        for rng in value[6..].split(',') {
            let (start, end) = rng.split_once('-')?;
            // The split is at the first '-', so a start never has a sign
            // of its own but int() still takes a '+'.
            let start = if start.is_empty() {
                None
            } else {
                Some(py_int(start)?.max(0) as u128)
            };
            let end = if end.is_empty() {
                // `bytes=-` has neither end.
                start?;
                None
            } else {
                if !end.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let e = py_int(end)?.max(0) as u128;
                if start.is_some_and(|s| e < s) {
                    return None;
                }
                Some(e)
            };
            ranges.push((start, end));
        }
        Some(ByteRanges { ranges })
    }

    /// swob's `ranges_for_length`: half-open `(start, end)` pairs that
    /// `length` satisfies; empty when none is (416), or when the set is
    /// egregious (too many, overlapping or out of order).
    pub fn ranges_for_length(&self, length: Length) -> Vec<(u128, Offset)> {
        let mut all: Vec<(u128, Offset)> = Vec::new();
        for &(begin, end) in &self.ranges {
            match (begin, end) {
                (None, Some(0)) => continue,
                (None, Some(e)) => match length {
                    Length::Bytes(l) if e > l => all.push((0, Offset::At(l))),
                    Length::Bytes(l) => all.push((l - e, Offset::At(l))),
                    Length::Infinite => all.push((u128::MAX, Offset::Infinite)),
                },
                (None, None) => continue,
                (Some(b), None) => {
                    if !length.lt(b.saturating_add(1)) {
                        all.push((b, length.into()));
                    }
                }
                (Some(b), Some(e)) => {
                    if !length.lt(b.saturating_add(1)) {
                        let stop = Offset::At(e.saturating_add(1)).min(length.into());
                        all.push((b, stop));
                    }
                }
            }
        }
        if all.len() > MAX_RANGES {
            return Vec::new();
        }
        let key = |o: Offset| match o {
            Offset::At(v) => v,
            Offset::Infinite => u128::MAX,
        };
        let mut overlaps = 0;
        for i in 0..all.len() {
            for j in i + 1..all.len() {
                let (s1, e1) = (all[i].0, key(all[i].1));
                let (s2, e2) = (all[j].0, key(all[j].1));
                if (s1 < s2 && s2 < e1)
                    || (s1 < e2 && e2 < e1)
                    || (s2 < s1 && s1 < e2)
                    || (s2 < e1 && e1 < e2)
                {
                    overlaps += 1;
                    if overlaps > MAX_RANGE_OVERLAPS {
                        return Vec::new();
                    }
                }
            }
        }
        // Python compares the (start, end) tuples.
        let ascending = all.windows(2).all(|w| w[0] <= w[1]);
        if !ascending && all.len() >= MAX_NONASCENDING_RANGES {
            return Vec::new();
        }
        all
    }
}

/// swob's `normalize_etag`: one pair of surrounding quotes removed.
pub fn normalize_etag(tag: &str) -> &str {
    if tag.len() >= 2 && tag.starts_with('"') && tag.ends_with('"') {
        &tag[1..tag.len() - 1]
    } else {
        tag
    }
}

/// An `If-Match` or `If-None-Match` header as swob's `Match` reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtagMatch {
    tags: BTreeSet<String>,
}

impl EtagMatch {
    pub fn parse(header: &str) -> EtagMatch {
        EtagMatch {
            tags: header
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| normalize_etag(t).to_owned())
                .collect(),
        }
    }

    /// `val in match`: `*`, or the etag (quotes aside) is listed.
    pub fn contains(&self, etag: &str) -> bool {
        self.tags.contains("*") || self.tags.contains(normalize_etag(etag))
    }
}

const MONTHS: [&str; 24] = [
    "jan",
    "feb",
    "mar",
    "apr",
    "may",
    "jun",
    "jul",
    "aug",
    "sep",
    "oct",
    "nov",
    "dec",
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Days from 1970-01-01 to the civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// An HTTP date as swob reads one (`email.utils.parsedate`, the zone
/// ignored, then `datetime`): seconds since the epoch, `None` when Python
/// would find no date.
pub fn parse_http_date(value: &str) -> Option<i64> {
    let mut data: Vec<String> = value.split_whitespace().map(str::to_owned).collect();
    let first = data.first()?.clone();
    if first.ends_with(',') || DAYS.contains(&first.to_lowercase().as_str()) {
        data.remove(0);
    } else if let Some(i) = first.rfind(',') {
        data[0] = first[i + 1..].to_owned();
    }
    if data.len() == 3 {
        let stuff: Vec<String> = data[0].split('-').map(str::to_owned).collect();
        if stuff.len() == 3 {
            let rest = data.split_off(1);
            data = stuff;
            data.extend(rest);
        }
    }
    if data.len() == 4 {
        let s = data[3].clone();
        let i = s.find('+').or_else(|| s.find('-'));
        match i {
            Some(i) if i > 0 => {
                data.truncate(3);
                data.push(s[..i].to_owned());
                data.push(s[i..].to_owned());
            }
            _ => data.push(String::new()),
        }
    }
    if data.len() < 5 {
        return None;
    }
    let (mut dd, mut mm, mut yy, mut tm) = (
        data[0].clone(),
        data[1].to_lowercase(),
        data[2].clone(),
        data[3].clone(),
    );
    let mut tz = data[4].clone();
    if dd.is_empty() || mm.is_empty() || yy.is_empty() {
        return None;
    }
    if !MONTHS.contains(&mm.as_str()) {
        std::mem::swap(&mut dd, &mut mm);
        mm = mm.to_lowercase();
        if !MONTHS.contains(&mm.as_str()) {
            return None;
        }
    }
    let mut month = MONTHS.iter().position(|m| *m == mm)? as i64 + 1;
    if month > 12 {
        month -= 12;
    }
    if dd.ends_with(',') {
        dd.pop();
    }
    if yy.find(':').is_some_and(|i| i > 0) {
        std::mem::swap(&mut yy, &mut tm);
    }
    if yy.ends_with(',') {
        yy.pop();
        if yy.is_empty() {
            return None;
        }
    }
    if !yy.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        std::mem::swap(&mut yy, &mut tz);
    }
    if tm.ends_with(',') {
        tm.pop();
    }
    let parts: Vec<&str> = tm.split(':').collect();
    let (hh, mi, ss) = match parts.as_slice() {
        [h, m] => (*h, *m, "0"),
        [h, m, s] => (*h, *m, *s),
        [one] if one.contains('.') => {
            let p: Vec<&str> = one.split('.').collect();
            match p.as_slice() {
                [h, m] => (*h, *m, "0"),
                [h, m, s] => (*h, *m, *s),
                _ => return None,
            }
        }
        _ => return None,
    };
    let num = |s: &str| py_int(s.trim()).and_then(|v| i64::try_from(v).ok());
    let (mut year, day, hour, minute, second) =
        (num(&yy)?, num(&dd)?, num(hh)?, num(mi)?, num(ss)?);
    if year < 100 {
        year += if year > 68 { 1900 } else { 2000 };
    }
    // datetime() refuses what is not a real moment.
    if !(1..=9999).contains(&year)
        || !(1..=days_in_month(year, month)).contains(&day)
        || !(0..24).contains(&hour)
        || !(0..60).contains(&minute)
        || !(0..60).contains(&second)
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second)
}

/// swob's `_get_conditional_response_status`: 304 or 412 when the
/// request's conditions fail against this response (its `Etag` and
/// `Last-Modified`), `None` when the response stands.
pub fn conditional_status(req: &Headers, status: u16, resp: &Headers) -> Option<u16> {
    let etag = resp
        .get("etag")
        .map(|e| e.replace('"', ""))
        .filter(|e| !e.is_empty());
    if let (Some(etag), Some(inm)) = (&etag, req.get("if-none-match"))
        && EtagMatch::parse(inm).contains(etag)
    {
        return Some(304);
    }
    if let (Some(etag), Some(im)) = (&etag, req.get("if-match"))
        && !EtagMatch::parse(im).contains(etag)
    {
        return Some(412);
    }
    if status == 404
        && req
            .get("if-match")
            .is_some_and(|im| EtagMatch::parse(im).contains("*"))
    {
        return Some(412);
    }
    let last_modified = resp.get("last-modified").and_then(parse_http_date);
    if let Some(lm) = last_modified {
        if req
            .get("if-modified-since")
            .and_then(parse_http_date)
            .is_some_and(|ims| lm <= ims)
        {
            return Some(304);
        }
        if req
            .get("if-unmodified-since")
            .and_then(parse_http_date)
            .is_some_and(|ius| lm > ius)
        {
            return Some(412);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(h: &str) -> Option<Vec<(Option<u128>, Option<u128>)>> {
        ByteRanges::parse(h).map(|r| r.ranges)
    }

    #[test]
    fn range_headers_as_swob_parses_them() {
        assert_eq!(r("bytes=0-4"), Some(vec![(Some(0), Some(4))]));
        assert_eq!(
            r("BYTES = 1 - 2 ,-3"),
            Some(vec![(Some(1), Some(2)), (None, Some(3))])
        );
        assert_eq!(r("bytes=5-"), Some(vec![(Some(5), None)]));
        for bad in [
            "",
            "bytes=",
            "bytes=-",
            "bytes=5-3",
            "bytes=5",
            "bytes=a-1",
            "items=0-1",
            "bytes=1--2",
        ] {
            assert_eq!(r(bad), None, "{bad}");
        }
        assert_eq!(r("bytes=+1-2"), Some(vec![(Some(1), Some(2))]));
    }

    fn rfl(h: &str, len: u128) -> Vec<(u128, Offset)> {
        ByteRanges::parse(h)
            .unwrap()
            .ranges_for_length(Length::Bytes(len))
    }

    #[test]
    fn ranges_for_length_as_swob() {
        assert_eq!(rfl("bytes=0-4", 50), vec![(0, Offset::At(5))]);
        assert_eq!(rfl("bytes=45-100", 50), vec![(45, Offset::At(50))]);
        assert_eq!(rfl("bytes=50-56", 50), vec![]);
        assert_eq!(rfl("bytes=-5", 50), vec![(45, Offset::At(50))]);
        assert_eq!(rfl("bytes=-500", 50), vec![(0, Offset::At(50))]);
        assert_eq!(rfl("bytes=-0", 50), vec![]);
        assert_eq!(rfl("bytes=-5", 0), vec![(0, Offset::At(0))]);
        assert_eq!(rfl("bytes=0-", 0), vec![]);
        let inf = ByteRanges::parse("bytes=3-7")
            .unwrap()
            .ranges_for_length(Length::Infinite);
        assert_eq!(inf, vec![(3, Offset::At(8))]);
        let inf = ByteRanges::parse("bytes=3-")
            .unwrap()
            .ranges_for_length(Length::Infinite);
        assert_eq!(inf, vec![(3, Offset::Infinite)]);
        // Three overlapping ranges are egregious.
        assert_eq!(rfl("bytes=0-10,1-11,2-12,3-13", 50), vec![]);
        let many = format!("bytes={}", vec!["0-0"; 51].join(","));
        assert_eq!(rfl(&many, 50), vec![]);
    }

    #[test]
    fn etag_matches_as_swob() {
        let m = EtagMatch::parse("\"abc\", def");
        assert!(m.contains("abc") && m.contains("\"def\"") && !m.contains("x"));
        assert!(EtagMatch::parse("*").contains("anything"));
    }

    #[test]
    fn http_dates_as_python_parsedate() {
        let t = 784111777; // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(t));
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), Some(t));
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), Some(t));
        assert_eq!(parse_http_date("06 Nov 1994 08:49:37 +0100"), Some(t));
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date("Mon, 29 Feb 2021 00:00:00 GMT"), None);
        assert_eq!(parse_http_date("garbage"), None);
        assert_eq!(parse_http_date(""), None);
    }

    #[test]
    fn conditions_decide_304_and_412() {
        let mut resp = Headers::new();
        resp.append("Etag", "\"abc\"");
        resp.append("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT");
        let req = |k: &str, v: &str| {
            let mut h = Headers::new();
            h.append(k.to_owned(), v.to_owned());
            h
        };
        assert_eq!(
            conditional_status(&req("If-None-Match", "abc"), 200, &resp),
            Some(304)
        );
        assert_eq!(
            conditional_status(&req("If-None-Match", "x"), 200, &resp),
            None
        );
        assert_eq!(
            conditional_status(&req("If-Match", "x"), 200, &resp),
            Some(412)
        );
        assert_eq!(
            conditional_status(&req("If-Match", "\"abc\""), 200, &resp),
            None
        );
        let ims = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(
            conditional_status(&req("If-Modified-Since", ims), 200, &resp),
            Some(304)
        );
        let before = "Sat, 05 Nov 1994 08:49:37 GMT";
        assert_eq!(
            conditional_status(&req("If-Modified-Since", before), 200, &resp),
            None
        );
        assert_eq!(
            conditional_status(&req("If-Unmodified-Since", before), 200, &resp),
            Some(412)
        );
        assert_eq!(conditional_status(&Headers::new(), 200, &resp), None);
    }
}
