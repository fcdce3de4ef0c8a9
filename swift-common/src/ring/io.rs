//! Reading a ring file: gzip, the `R1NG` magic and version, then the v1
//! layout (JSON header and native-order u16 rows) or the v2 layout
//! (length-prefixed sections located through the index at the end, each
//! checked against its digest, big-endian ids of 2 or 4 bytes), as Swift's
//! `swift/common/ring/ring.py` and `io.py` write them. This module only
//! parses bytes; validation of what they mean is `RingData::new`'s.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::SystemTime;

use flate2::read::GzDecoder;
use md5::Md5;
use serde_json::Value;
use sha2::{Digest, Sha256, Sha512};

use super::data::{Device, RingData, RingParts, Table};
use super::error::{RingError, RingErrorKind};

/// The magic every ring file starts with, after decompression.
pub const MAGIC: &[u8; 4] = b"R1NG";

/// Read and parse the ring file at `path`.
pub fn load(path: &Path) -> Result<RingData, RingError> {
    load_with_mtime(path).map(|(ring, _)| ring)
}

/// Read and parse the ring file at `path`, with the modification time of
/// the very file that was read (taken from the open file, so a
/// replacement that lands meanwhile is seen as a change next time).
pub fn load_with_mtime(path: &Path) -> Result<(RingData, Option<SystemTime>), RingError> {
    let read = |path: &Path| -> std::io::Result<(Vec<u8>, Option<SystemTime>)> {
        let mut file = File::open(path)?;
        let mtime = file.metadata()?.modified().ok();
        let mut compressed = Vec::new();
        file.read_to_end(&mut compressed)?;
        Ok((compressed, mtime))
    };
    let (compressed, mtime) =
        read(path).map_err(|e| RingError::new(path, RingErrorKind::Read(e)))?;
    let ring = parse(&compressed).map_err(|kind| RingError::new(path, kind))?;
    Ok((ring, mtime))
}

/// Parse the bytes of a ring file (as stored: gzip-compressed).
pub fn parse(compressed: &[u8]) -> Result<RingData, RingErrorKind> {
    if !compressed.starts_with(&[0x1f, 0x8b]) {
        return Err(RingErrorKind::NotGzip);
    }
    let mut data = Vec::new();
    GzDecoder::new(compressed)
        .read_to_end(&mut data)
        .map_err(RingErrorKind::Gzip)?;
    parse_uncompressed(&data)
}

/// Parse the uncompressed stream of a ring file.
pub fn parse_uncompressed(data: &[u8]) -> Result<RingData, RingErrorKind> {
    let magic = data.get(..4).unwrap_or(data);
    if magic != MAGIC {
        return Err(RingErrorKind::BadMagic {
            found: bytes_repr(magic),
        });
    }
    let Some(version) = data.get(4..6) else {
        return Err(truncated("the format version is missing after the magic"));
    };
    let version = u16::from_be_bytes([version[0], version[1]]);
    let parts = match version {
        1 => parse_v1(data)?,
        2 => parse_v2(data)?,
        v => return Err(RingErrorKind::UnsupportedVersion(v)),
    };
    RingData::new(parts).map_err(RingErrorKind::Invalid)
}

fn truncated(what: &str) -> RingErrorKind {
    RingErrorKind::Truncated(what.to_owned())
}

fn invalid(what: impl Into<String>) -> RingErrorKind {
    RingErrorKind::Invalid(what.into())
}

/// `bytes` as Python's `repr` of a bytes object (`b'R2NG'`).
fn bytes_repr(bytes: &[u8]) -> String {
    let mut out = String::from("b'");
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\'' => out.push_str("\\'"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('\'');
    out
}

fn json(part: &str, bytes: &[u8]) -> Result<Value, RingErrorKind> {
    serde_json::from_slice(bytes).map_err(|e| RingErrorKind::Json {
        part: part.to_owned(),
        error: e.to_string(),
    })
}

/// An optional non-negative integer of a JSON object (`null` = absent).
fn opt_uint(
    obj: &serde_json::Map<String, Value>,
    part: &str,
    key: &str,
) -> Result<Option<u64>, RingErrorKind> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            invalid(format!(
                "{part}: {key:?} must be a non-negative integer, not {v}"
            ))
        }),
    }
}

fn uint(obj: &serde_json::Map<String, Value>, part: &str, key: &str) -> Result<u64, RingErrorKind> {
    opt_uint(obj, part, key)?.ok_or_else(|| invalid(format!("{part}: {key:?} is missing")))
}

fn small(value: u64, part: &str, key: &str) -> Result<u32, RingErrorKind> {
    u32::try_from(value).map_err(|_| invalid(format!("{part}: {key:?} is out of range: {value}")))
}

/// `devs`: a list of device dicts and `null` holes.
fn devices(value: &Value, part: &str) -> Result<Vec<Option<Device>>, RingErrorKind> {
    let Some(list) = value.as_array() else {
        return Err(invalid(format!("{part}: the devices are not a JSON list")));
    };
    list.iter()
        .enumerate()
        .map(|(i, d)| match d {
            Value::Null => Ok(None),
            d => Device::from_json(i, d)
                .map(Some)
                .map_err(|e| invalid(format!("{part}: {e}"))),
        })
        .collect()
}

/// `2 ** (32 - part_shift)`, for a `part_shift` that `RingData::new` will
/// check; 0 when out of range so the checks report it.
fn partition_count(part_shift: u32) -> usize {
    32u32
        .checked_sub(part_shift)
        .and_then(|p| 1usize.checked_shl(p))
        .unwrap_or(0)
}

/// v1: `R1NG`, u16 1, u32 BE header length, the JSON header, then
/// `replica_count` rows of u16 in the header's byte order, the last one
/// possibly shorter.
fn parse_v1(data: &[u8]) -> Result<RingParts, RingErrorKind> {
    let Some(len) = data.get(6..10) else {
        return Err(truncated("the v1 header length is missing"));
    };
    let len =
        usize::try_from(u32::from_be_bytes([len[0], len[1], len[2], len[3]])).unwrap_or(usize::MAX);
    let header_end = 10usize.saturating_add(len);
    let Some(header) = data.get(10..header_end) else {
        return Err(RingErrorKind::Truncated(format!(
            "the v1 header announces {len} bytes, {} are there",
            data.len().saturating_sub(10)
        )));
    };
    let header = json("header", header)?;
    let Some(header) = header.as_object() else {
        return Err(invalid("header: not a JSON object"));
    };
    let big_endian = match header.get("byteorder").and_then(Value::as_str) {
        Some("big") => true,
        Some("little") => false,
        None if header.get("byteorder").is_none() => cfg!(target_endian = "big"),
        _ => {
            return Err(invalid(
                "header: \"byteorder\" must be \"little\" or \"big\"",
            ));
        }
    };
    let devs = devices(header.get("devs").unwrap_or(&Value::Null), "header")?;
    let part_shift = small(
        uint(header, "header", "part_shift")?,
        "header",
        "part_shift",
    )?;
    let replica_count = uint(header, "header", "replica_count")?;
    let parts = partition_count(part_shift);
    if parts == 0 {
        return Err(invalid(format!(
            "part_shift {part_shift} is out of range (0-32)"
        )));
    }
    let mut rows = Vec::new();
    let mut rest = &data[header_end..];
    for row in 0..replica_count {
        let take = rest.len().min(parts.saturating_mul(2));
        if take == 0 {
            return Err(RingErrorKind::Truncated(format!(
                "the header announces {replica_count} replica rows, the file has {row}"
            )));
        }
        if !take.is_multiple_of(2) {
            return Err(truncated(
                "the last replica row ends in the middle of a device id",
            ));
        }
        let (bytes, tail) = rest.split_at(take);
        rest = tail;
        rows.push(
            bytes
                .chunks_exact(2)
                .map(|b| {
                    let b = [b[0], b[1]];
                    if big_endian {
                        u16::from_be_bytes(b)
                    } else {
                        u16::from_le_bytes(b)
                    }
                })
                .collect::<Vec<u16>>(),
        );
    }
    Ok(RingParts {
        devs,
        table: Table::Narrow(rows),
        part_shift,
        version: opt_uint(header, "header", "version")?,
        next_part_power: opt_uint(header, "header", "next_part_power")?
            .map(|v| small(v, "header", "next_part_power"))
            .transpose()?,
        format_version: 1,
    })
}

/// A big-endian u64 at `at`.
fn u64_at(data: &[u8], at: usize, what: &str) -> Result<u64, RingErrorKind> {
    let bytes = at
        .checked_add(8)
        .and_then(|end| data.get(at..end))
        .ok_or_else(|| RingErrorKind::Truncated(format!("{what} is past the end of the file")))?;
    let mut buf = [0u8; 8];
    buf.copy_from_slice(bytes);
    Ok(u64::from_be_bytes(buf))
}

fn offset(value: u64, what: &str) -> Result<usize, RingErrorKind> {
    usize::try_from(value).map_err(|_| invalid(format!("{what} {value} is out of range")))
}

/// A length-prefixed blob at `at`: its 8-byte prefix and its data.
fn blob<'a>(data: &'a [u8], at: usize, what: &str) -> Result<(&'a [u8], &'a [u8]), RingErrorKind> {
    let len = offset(u64_at(data, at, what)?, what)?;
    let start = at + 8;
    let body = start
        .checked_add(len)
        .and_then(|end| data.get(start..end))
        .ok_or_else(|| {
            RingErrorKind::Truncated(format!(
                "{what} announces {len} bytes past the end of the file"
            ))
        })?;
    Ok((&data[at..start], body))
}

/// One entry of the v2 index: where a section is and its digest.
struct IndexEntry {
    start: usize,
    end: Option<usize>,
    method: String,
    digest: String,
}

fn index_entry(section: &str, value: &Value) -> Result<IndexEntry, RingErrorKind> {
    let bad = || {
        invalid(format!(
            "index: the entry of {section} is not [compressed_start, uncompressed_start, compressed_end, uncompressed_end, method, digest]"
        ))
    };
    let list = value.as_array().filter(|l| l.len() == 6).ok_or_else(bad)?;
    let start = list[1].as_u64().ok_or_else(bad)?;
    let end = match &list[3] {
        Value::Null => None,
        v => Some(offset(v.as_u64().ok_or_else(bad)?, "index: section end")?),
    };
    Ok(IndexEntry {
        start: offset(start, "index: section start")?,
        end,
        method: list[4].as_str().ok_or_else(bad)?.to_owned(),
        digest: list[5].as_str().ok_or_else(bad)?.to_owned(),
    })
}

/// The data of one v2 section, its size and digest checked as Swift's
/// `RingReader.open_section` checks them.
fn section<'a>(
    data: &'a [u8],
    index: &serde_json::Map<String, Value>,
    name: &str,
) -> Result<&'a [u8], RingErrorKind> {
    let entry = index
        .get(name)
        .ok_or_else(|| invalid(format!("the index has no section {name}")))?;
    let entry = index_entry(name, entry)?;
    let (prefix, body) = blob(data, entry.start, &format!("section {name}"))?;
    if let Some(end) = entry.end
        && Some(8 + body.len()) != end.checked_sub(entry.start)
    {
        return Err(invalid(format!(
            "inconsistent section size for {name}: the index says {} bytes, the section {}",
            end.saturating_sub(entry.start),
            8 + body.len()
        )));
    }
    let found = match entry.method.as_str() {
        "sha256" => hex(&Sha256::new()
            .chain_update(prefix)
            .chain_update(body)
            .finalize()),
        "sha512" => hex(&Sha512::new()
            .chain_update(prefix)
            .chain_update(body)
            .finalize()),
        "md5" => hex(&Md5::new()
            .chain_update(prefix)
            .chain_update(body)
            .finalize()),
        other => {
            return Err(invalid(format!(
                "unsupported checksum {other}:{} for section {name}",
                entry.digest
            )));
        }
    };
    // Swift skips the check when the index gives no digest.
    if !entry.digest.is_empty() && found != entry.digest {
        return Err(RingErrorKind::Checksum {
            section: name.to_owned(),
            method: entry.method,
            found,
            expected: entry.digest,
        });
    }
    Ok(body)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// v2: `R1NG`, u16 2, sections, the index blob, then the index's
/// uncompressed and compressed offsets as two u64 BE.
fn parse_v2(data: &[u8]) -> Result<RingParts, RingErrorKind> {
    let Some(trailer_at) = data.len().checked_sub(16).filter(|&t| t >= 6) else {
        return Err(truncated(
            "the v2 index offsets at the end of the file are missing",
        ));
    };
    let index_at = offset(
        u64_at(data, trailer_at, "the index offset")?,
        "the index offset",
    )?;
    if index_at >= trailer_at {
        return Err(RingErrorKind::Truncated(format!(
            "the v2 index offset at the end of the file ({index_at}) is not within \
             the file ({trailer_at} bytes)"
        )));
    }
    let (_, index) = blob(&data[..trailer_at], index_at, "the index")?;
    let index = json("index", index)?;
    let Some(index) = index.as_object() else {
        return Err(invalid("index: not a JSON object"));
    };
    let body = &data[..index_at];
    let meta = json(
        "swift/ring/metadata",
        section(body, index, "swift/ring/metadata")?,
    )?;
    let Some(meta) = meta.as_object() else {
        return Err(invalid("swift/ring/metadata: not a JSON object"));
    };
    let part = "swift/ring/metadata";
    let part_shift = small(uint(meta, part, "part_shift")?, part, "part_shift")?;
    let dev_id_bytes = uint(meta, part, "dev_id_bytes")?;
    let devs = json(
        "swift/ring/devices",
        section(body, index, "swift/ring/devices")?,
    )?;
    let devs = devices(&devs, "swift/ring/devices")?;
    let assignments = section(body, index, "swift/ring/assignments")?;
    let parts = partition_count(part_shift);
    if parts == 0 {
        return Err(invalid(format!(
            "part_shift {part_shift} is out of range (0-32)"
        )));
    }
    let width = match dev_id_bytes {
        2 => 2usize,
        4 => 4,
        n => return Err(invalid(format!("{part}: dev_id_bytes {n} is not 2 or 4"))),
    };
    if !assignments.len().is_multiple_of(width) {
        return Err(invalid(format!(
            "swift/ring/assignments: {} bytes is not a whole number of {width}-byte device ids",
            assignments.len()
        )));
    }
    let row_bytes = parts.saturating_mul(width);
    let table = if width == 2 {
        Table::Narrow(
            assignments
                .chunks(row_bytes)
                .map(|row| {
                    row.chunks_exact(2)
                        .map(|b| u16::from_be_bytes([b[0], b[1]]))
                        .collect()
                })
                .collect(),
        )
    } else {
        Table::Wide(
            assignments
                .chunks(row_bytes)
                .map(|row| {
                    row.chunks_exact(4)
                        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                        .collect()
                })
                .collect(),
        )
    };
    Ok(RingParts {
        devs,
        table,
        part_shift,
        version: opt_uint(meta, part, "version")?,
        next_part_power: opt_uint(meta, part, "next_part_power")?
            .map(|v| small(v, part, "next_part_power"))
            .transpose()?,
        format_version: 2,
    })
}
