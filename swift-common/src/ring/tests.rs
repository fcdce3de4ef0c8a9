//! Ring tests: Python Swift's answers for the fixture rings in
//! `tests/data/ring/` (made by `generate.py` there with the reference
//! venv), the protocol notes' vectors, every kind of bad file, and reload.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use super::*;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/ring")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(data_dir().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn test_hash() -> HashPathConf {
    HashPathConf::new("testprefix", "testsuffix")
}

fn opt_str(v: &Value) -> Option<&str> {
    v.as_str()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|i| u32::try_from(i.as_u64().unwrap()).unwrap())
        .collect()
}

/// Check primaries and handoffs of `part` against Python's lists, with
/// `index` and `handoff_index` their positions.
fn check_part(ring: &Rc<RingData>, part: usize, answer: &Value, what: &str) {
    let primaries = ring.get_part_nodes(part);
    let got: Vec<u32> = primaries.iter().map(|n| n.id).collect();
    assert_eq!(
        got,
        ids(&answer["primaries"]),
        "{what}: primaries of {part}"
    );
    for (i, n) in primaries.iter().enumerate() {
        assert_eq!(n.index(), Some(i));
        assert_eq!(n.handoff_index(), None);
    }
    let handoffs: Vec<Node> = ring.get_more_nodes(part).collect();
    let got: Vec<u32> = handoffs.iter().map(|n| n.id).collect();
    assert_eq!(got, ids(&answer["handoffs"]), "{what}: handoffs of {part}");
    for (i, n) in handoffs.iter().enumerate() {
        assert_eq!(n.handoff_index(), Some(i));
        assert!(n.is_handoff());
    }
}

#[test]
fn fixture_rings_answer_as_python_swift() {
    let expected = expected();
    let hash = test_hash();
    let rings = expected["rings"].as_object().unwrap();
    assert_eq!(rings.len(), 5);
    let mut checked = 0;
    for (name, want) in rings {
        for version in want["versions"].as_array().unwrap() {
            let version = version.as_u64().unwrap();
            let path = data_dir().join(format!("{name}.v{version}.ring.gz"));
            let ring = Rc::new(io::load(&path).unwrap());
            let what = format!("{name} v{version}");
            assert_eq!(u64::from(ring.format_version()), version);
            assert_eq!(
                ring.replica_count(),
                want["replica_count"].as_f64().unwrap(),
                "{what}"
            );
            assert_eq!(
                ring.partition_count() as u64,
                want["partition_count"].as_u64().unwrap()
            );
            assert_eq!(
                u64::from(ring.part_power()),
                want["part_power"].as_u64().unwrap()
            );
            assert_eq!(ring.version(), want["version"].as_u64());
            assert_eq!(
                ring.devs().len() as u64,
                want["dev_count"].as_u64().unwrap()
            );
            for (i, dev) in want["devs"].as_array().unwrap().iter().enumerate() {
                let got = &ring.devs()[i];
                if dev.is_null() {
                    assert!(got.is_none(), "{what}: device {i} should be a hole");
                    continue;
                }
                let got = got.as_ref().unwrap();
                assert_eq!(u64::from(got.id), dev["id"].as_u64().unwrap());
                assert_eq!(got.region, dev["region"].as_i64().unwrap());
                assert_eq!(got.zone, dev["zone"].as_i64().unwrap());
                assert_eq!(got.ip, dev["ip"].as_str().unwrap());
                assert_eq!(u64::from(got.port), dev["port"].as_u64().unwrap());
                assert_eq!(got.replication_ip, dev["replication_ip"].as_str().unwrap());
                assert_eq!(
                    u64::from(got.replication_port),
                    dev["replication_port"].as_u64().unwrap()
                );
                assert_eq!(got.device, dev["device"].as_str().unwrap());
                assert_eq!(got.weight, dev["weight"].as_f64().unwrap());
                assert_eq!(got.meta, dev["meta"].as_str().unwrap());
            }
            for answer in want["answers"].as_array().unwrap() {
                let digest = hash
                    .hash_path(
                        answer["account"].as_str().unwrap(),
                        opt_str(&answer["container"]),
                        opt_str(&answer["object"]),
                    )
                    .unwrap();
                let part = ring.part_for_hash(&digest);
                assert_eq!(
                    part as u64,
                    answer["part"].as_u64().unwrap(),
                    "{what}: {answer}"
                );
                check_part(&ring, part, answer, &what);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 9 * 104);
}

#[test]
fn a_wide_ring_keeps_four_byte_ids() {
    let ring = io::load(&data_dir().join("wide.v2.ring.gz")).unwrap();
    assert_eq!(ring.dev_id_bytes(), 4);
    assert!(ring.device(70002).is_some());
    assert_eq!(ring.device_count(), 6);
    assert_eq!(ring.assigned_device_count(), 6);
    let narrow = io::load(&data_dir().join("three.v2.ring.gz")).unwrap();
    assert_eq!(narrow.dev_id_bytes(), 2);
}

#[test]
fn devices_that_own_no_partitions_are_not_counted() {
    // regions: 24 devices in 2 regions and a weightless one in region 3.
    let ring = io::load(&data_dir().join("regions.v1.ring.gz")).unwrap();
    assert_eq!(ring.device_count(), 25);
    assert_eq!(ring.weighted_device_count(), 24);
    assert_eq!(ring.assigned_device_count(), 24);
    assert_eq!((ring.num_regions, ring.num_zones, ring.num_ips), (2, 6, 12));
    let dev = ring.device(24).unwrap();
    assert_eq!((dev.ip.as_str(), dev.region), ("fe80::1", 3));
}

/// The formula of `generate.py`'s synthetic ring.
fn synthetic_dev_id(part: usize, replica: usize) -> u16 {
    u16::try_from(((part * 7919 + replica * 104_729) >> 3) % 12).unwrap()
}

#[test]
fn a_big_ring_walks_handoffs_in_steps_as_python_swift() {
    let want = &expected()["synthetic"];
    let part_power = u32::try_from(want["part_power"].as_u64().unwrap()).unwrap();
    let parts = 1usize << part_power;
    let row = |r: usize, len: usize| (0..len).map(|p| synthetic_dev_id(p, r)).collect();
    let devs = want["devs"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, d)| Some(Device::from_json(i, d).unwrap()))
        .collect();
    let ring = Rc::new(
        RingData::new(RingParts {
            devs,
            table: Table::Narrow(vec![row(0, parts), row(1, parts), row(2, parts / 2)]),
            part_shift: 32 - part_power,
            version: None,
            next_part_power: None,
            format_version: 1,
        })
        .unwrap(),
    );
    assert_eq!(
        ring.replica_count(),
        want["replica_count"].as_f64().unwrap()
    );
    let answers = want["answers"].as_array().unwrap();
    assert_eq!(answers.len(), 45);
    for answer in answers {
        let part = usize::try_from(answer["part"].as_u64().unwrap()).unwrap();
        check_part(&ring, part, answer, "synthetic");
    }
}

#[test]
fn hash_path_matches_the_protocol_notes_vectors() {
    let hash = test_hash();
    let hex = |a, c, o| hash.hash_path_hex(a, c, o).unwrap();
    assert_eq!(
        hex("AUTH_test", None, None),
        "673fa2c47b180bb5bd9c41b40dbde62c"
    );
    assert_eq!(
        hex("AUTH_test", Some("c"), None),
        "81744911f926d431d191caa31f81ea60"
    );
    assert_eq!(
        hex("AUTH_test", Some("c"), Some("o")),
        "05c5055fb64b7219c5a436127559a5de"
    );
    // Empty names are left out, as Python's `if container:` does.
    assert_eq!(
        hex("AUTH_test", Some(""), Some("")),
        hex("AUTH_test", None, None)
    );
    assert_eq!(
        hash.hash_path("AUTH_test", None, Some("o")),
        Err(HashPathError)
    );
    assert_eq!(
        hash.hash_path("AUTH_test", Some(""), Some("o")),
        Err(HashPathError)
    );
}

/// Standard base64, for the protocol notes' fixture bytes.
fn base64(text: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = alphabet.iter().position(|&a| a == c).unwrap();
        acc = (acc << 6) | u32::try_from(v).unwrap();
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).unwrap());
        }
    }
    out
}

const NOTES_V1: &str = "H4sICPQqhE0C/29iamVjdC5yaW5nAAAGAPn/UjFORwABAAAA///Nk9tuwjAMhp3SpK+Beo2mnsa0vco0oUIziAQUtRnThniUvetsJ9DBJC4qLqqI1PHh92dLAMifQzz/srpuKt3EL+N4baxd63gyjiu9b9HzeiDLLDRF26qkkKnwkZCxI2+aPNBJKbTRtiQf2bu6sWhPs4RyG7009RbfKT92a7MoLXpm/0X+Ri9FPrVZruidJpiNju96S2TpcTK+BJ2fQdNhg3Ybza5Bs3uAZv1AsxsbzYcN2m20uAbN7wGa9wPNb2z0cdig3Uan16DFPUCLfqDFjY0+DQv0jRqWjZ21K/NOGdm0U5ot6o+t9X+svW5aR/J8DEHiUTCCCAACvEf8lfwTEGKM7ghv4K/EW3CMMiOuDrwCWYKtAG/p/SFXkApVAFcpPMBZAZ4Qbck9JEcF65yqFWspZpNc4zq67gGrOwWyFFuC1Z1/xBXK80Z+htNM4kzsJnETCT83MAFwF+k1wXd03QWrn2ZW7A+YVpz3CtzP8Uo/g5vpF4/MHfonBwAA";
const NOTES_V2: &str = "H4sICPQqhE0C/29iamVjdC5yaW5nAAAGAPn/UjFORwACAAAA//9iYAADz2qllNSy+MyU+KTKktRiJSsFIx0FpYLEopL44ozMtBKQgBlQpCi1ICczOTE+Ob80DyRorGcAFC1LLSrOzM8D8i1rAQAAAP//zNDBCgIhEAbgvfQei+clHLUNeoLeISK2XdmEWmWTgqJ3z+mQ7QYexIN6mRll+PiLAs9iu3uSTt5UK8mmJNeuIVVJVOcaioXBKdAlXsCni7QNzrA2erSurhnFv6PslR5cD5/GnFXbWDc5/C/5fZ0uuUvVn7AH6n67wUMPKINXVU6hxy8U8ob6RNkcylJAWRyUBRLleUN9omIO5SmgPA7KA4mu8ob6ROs5VKSAijioCCS6zgu6fwMAAP//PJAHEsQwCAMFDvjb9/SDhcQZylAkFKmf/fQo6ksd3Sp4+UMMzKqf+FtexChv9Hrysu2L0JmRefnY+sNGoxzN68mE55R5dVTTF1wRHZvtBCu5LdgZxmF30AehsyQz0Kd+2Mi9966GV5N9F4+SUWSrW1wgWGIxtYzDbqC/mpO6c619/1Xwzb2xGtD0BwAA//9cj0tqAzEQRJ2bDLMecEtqtaRcJWTRPzmzsCGeIVmE3D2yIcSkoaFW9eodDrd7ev+at8+178frejkdedvW0+Xsl32bn6eXBLBMAbEsE2Iasaa2TPP2xjHTPFIAaTWV5JIpCJKkBBGlWOxJBDKAGooG1a41e4GaGxZLHLyK1zK/3ur++OYfq/qdHQIuUx3khxEP5KxUakyNS7bxncRVqMUUBVmsZMgSqnMrWppGV+OqAYE6j8U5/SeffWfjne/adZloMH8XPGB79TDaYiezLGiNDDn27pwoMgqENuwYSlSNDcyRyTMRmLVYZQh//wAAAP//AAgA9/8AAAAAAAAHLwAAAP//AAgA9/8AAAAAAAABuwAAAP//AQAA//+MTvoOuAgAAA==";

#[test]
fn the_protocol_notes_rings_give_their_verified_nodes() {
    let hash = test_hash();
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        usize,
        [u32; 3],
        [u32; 5],
    );
    let cases: [Case<'_>; 4] = [
        (
            "AUTH_test",
            Some("c"),
            Some("o"),
            1,
            [5, 2, 1],
            [7, 3, 0, 4, 6],
        ),
        ("AUTH_test", Some("c"), None, 32, [7, 5, 2], [1, 4, 3, 0, 6]),
        ("AUTH_test", None, None, 25, [5, 2, 1], [6, 4, 3, 0, 7]),
        (
            "AUTH_test",
            Some("\u{2603}"),
            Some("obj/with/slash"),
            36,
            [6, 4, 3],
            [0, 7, 5, 2, 1],
        ),
    ];
    for (bytes, len) in [(NOTES_V1, 420), (NOTES_V2, 733)] {
        let bytes = base64(bytes);
        assert_eq!(bytes.len(), len);
        let ring = Rc::new(io::parse(&bytes).unwrap());
        for (a, c, o, part, primaries, handoffs) in cases {
            let got = ring.part_for_hash(&hash.hash_path(a, c, o).unwrap());
            assert_eq!(got, part);
            let p: Vec<u32> = ring.get_part_nodes(part).iter().map(|n| n.id).collect();
            assert_eq!(p, primaries);
            let h: Vec<u32> = ring.get_more_nodes(part).map(|n| n.id).collect();
            assert_eq!(h, handoffs);
        }
    }
}

// ---------------------------------------------------------------------------
// Bad files

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(data_dir().join(name)).unwrap()
}

/// The error of loading `bytes` as a file named `object.ring.gz`.
fn load_error(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("object.ring.gz");
    std::fs::write(&path, bytes).unwrap();
    let err = io::load(&path).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("ring file {}: ", path.display())),
        "{text}"
    );
    assert!(!text.contains('\n'), "{text}");
    text[format!("ring file {}: ", path.display()).len()..].to_owned()
}

/// The uncompressed v1 stream of `three` with its header length and header.
fn v1_stream() -> (Vec<u8>, usize) {
    let data = gunzip(&fixture("three.v1.ring.gz"));
    let len = u32::from_be_bytes(data[6..10].try_into().unwrap()) as usize;
    (data, 10 + len)
}

#[test]
fn a_missing_file_is_named() {
    let err = io::load(Path::new("/nonexistent/object.ring.gz")).unwrap_err();
    assert!(matches!(err.kind, RingErrorKind::Read(_)));
    assert_eq!(
        err.to_string(),
        "ring file /nonexistent/object.ring.gz: cannot read it: No such file or directory (os error 2)"
    );
}

#[test]
fn foreign_files_are_refused_clearly() {
    assert_eq!(
        load_error(b"[swift-hash]\nswift_hash_path_suffix = x\n"),
        "not a gzip file (a ring is a gzip-compressed R1NG stream)"
    );
    assert_eq!(
        load_error(b""),
        "not a gzip file (a ring is a gzip-compressed R1NG stream)"
    );
    assert_eq!(
        load_error(&gzip(b"hello world")),
        "bad ring magic b'hell': not a Swift ring (expected \"R1NG\")"
    );
    assert_eq!(
        load_error(&gzip(b"R2NG\x00\x01")),
        "bad ring magic b'R2NG': not a Swift ring (expected \"R1NG\")"
    );
    assert_eq!(
        load_error(&gzip(b"\x80\x02}q")),
        "bad ring magic b'\\x80\\x02}q': not a Swift ring (expected \"R1NG\")"
    );
    assert_eq!(
        load_error(&gzip(b"R1NG\x00\x03whatever")),
        "unsupported ring format version 3 (only 1 and 2 are supported)"
    );
    assert_eq!(
        load_error(&gzip(b"R1NG")),
        "truncated: the format version is missing after the magic"
    );
}

#[test]
fn truncated_files_are_refused_clearly() {
    for name in ["three.v1.ring.gz", "three.v2.ring.gz"] {
        let bytes = fixture(name);
        for cut in [bytes.len() / 2, bytes.len() - 4, 30] {
            let err = load_error(&bytes[..cut]);
            assert!(
                err.starts_with("truncated or corrupt gzip data"),
                "{name} at {cut}: {err}"
            );
        }
    }
    let (data, header_end) = v1_stream();
    assert_eq!(
        load_error(&gzip(&data[..8])),
        "truncated: the v1 header length is missing"
    );
    assert_eq!(
        load_error(&gzip(&data[..100])),
        format!(
            "truncated: the v1 header announces {} bytes, 90 are there",
            header_end - 10
        )
    );
    // Two whole rows of three.
    assert_eq!(
        load_error(&gzip(&data[..header_end + 256])),
        "truncated: the header announces 3 replica rows, the file has 2"
    );
    assert_eq!(
        load_error(&gzip(&data[..header_end + 129])),
        "truncated: the last replica row ends in the middle of a device id"
    );
    // A v2 stream cut short: the offsets at the end are then garbage.
    let v2 = gunzip(&fixture("three.v2.ring.gz"));
    let err = load_error(&gzip(&v2[..v2.len() - 20]));
    assert_eq!(
        err,
        "truncated: the v2 index offset at the end of the file (7234245968569644342) \
         is not within the file (2196 bytes)"
    );
}

#[test]
fn a_corrupt_gzip_stream_is_refused() {
    let mut bytes = fixture("three.v1.ring.gz");
    let at = bytes.len() - 6; // inside the CRC/length trailer
    bytes[at] ^= 0xff;
    let err = load_error(&bytes);
    assert!(err.starts_with("truncated or corrupt gzip data"), "{err}");
}

#[test]
fn bad_json_is_named_with_its_part() {
    let (mut data, _) = v1_stream();
    data[10] = b'[';
    let err = load_error(&gzip(&data));
    assert!(err.starts_with("bad JSON in header: "), "{err}");
    let mut data = gunzip(&fixture("three.v2.ring.gz"));
    // The index is the last blob; break its first character.
    let trailer = data.len() - 16;
    let index_at = u64::from_be_bytes(data[trailer..trailer + 8].try_into().unwrap()) as usize;
    data[index_at + 8] = b'x';
    let err = load_error(&gzip(&data));
    assert!(err.starts_with("bad JSON in index: "), "{err}");
}

/// The uncompressed v2 stream of `three` and where its devices section is.
fn v2_devices_at() -> (Vec<u8>, usize) {
    let data = gunzip(&fixture("three.v2.ring.gz"));
    let at = data.windows(8).position(|w| w == b"[{\"devic").unwrap();
    (data, at)
}

#[test]
fn a_section_that_does_not_match_its_digest_is_refused() {
    let (mut data, at) = v2_devices_at();
    // "sda" -> "sdq": still valid JSON, wrong digest.
    let sda = at + data[at..].windows(3).position(|w| w == b"sda").unwrap();
    data[sda + 2] = b'q';
    let err = load_error(&gzip(&data));
    assert!(
        err.starts_with("sha256 mismatch in section swift/ring/devices: found "),
        "{err}"
    );
}

#[test]
fn assignments_to_missing_devices_are_refused() {
    let (mut data, header_end) = v1_stream();
    data[header_end + 10] = 200;
    data[header_end + 11] = 0;
    assert_eq!(
        load_error(&gzip(&data)),
        "replica 0 of partition 5 is assigned to device 200, which is out of range (8 devices)"
    );
    // hole: device 3 was removed; point an assignment at it.
    let data = gunzip(&fixture("hole.v1.ring.gz"));
    let len = u32::from_be_bytes(data[6..10].try_into().unwrap()) as usize;
    let mut data = data;
    data[10 + len] = 3;
    data[10 + len + 1] = 0;
    assert_eq!(
        load_error(&gzip(&data)),
        "replica 0 of partition 0 is assigned to device 3, which was removed from the ring"
    );
}

/// A v1 stream with `header` (JSON) and `rows` rows of `parts` zeros.
fn v1_with(header: &str, rows: usize, parts: usize) -> Vec<u8> {
    let mut data = b"R1NG\x00\x01".to_vec();
    data.extend_from_slice(&u32::try_from(header.len()).unwrap().to_be_bytes());
    data.extend_from_slice(header.as_bytes());
    data.extend(std::iter::repeat_n(0u8, rows * parts * 2));
    gzip(&data)
}

const DEV0: &str = r#"{"id": 0, "region": 1, "zone": 1, "ip": "10.0.0.1", "port": 6200, "device": "sda", "weight": 1}"#;

#[test]
fn bad_headers_and_devices_are_refused_clearly() {
    let ring = |devs: &str, extra: &str| {
        format!(
            r#"{{"byteorder": "little", "devs": [{devs}], "part_shift": 30, "replica_count": 1{extra}}}"#
        )
    };
    // A minimal valid ring, then one thing wrong at a time.
    let ok = v1_with(&ring(DEV0, ""), 1, 4);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("account.ring.gz"), &ok).unwrap();
    let r = Ring::open(dir.path(), "account", &test_hash()).unwrap();
    assert_eq!(r.partition_count(), 4);
    let dev = r.data().device(0).unwrap().clone();
    assert_eq!(
        (dev.replication_ip.as_str(), dev.replication_port),
        ("10.0.0.1", 6200)
    );
    assert_eq!(dev.meta, "");

    let cases = [
        (
            ring(DEV0, "").replace("30", "33"),
            1,
            "part_shift 33 is out of range (0-32)",
        ),
        (
            ring(DEV0, "").replace("little", "middle"),
            1,
            "header: \"byteorder\" must be \"little\" or \"big\"",
        ),
        (
            ring(DEV0, "").replace("\"replica_count\": 1", "\"replica_count\": 0"),
            0,
            "the ring assigns no partitions (no replica rows)",
        ),
        (
            ring(&DEV0.replace("\"id\": 0", "\"id\": 1"), ""),
            1,
            "header: device at position 0 has id 1: a ring's device ids are their positions",
        ),
        (
            ring(&DEV0.replace(", \"port\": 6200", ""), ""),
            1,
            "header: device 0 has no \"port\"",
        ),
        (
            ring(&DEV0.replace("6200", "70000"), ""),
            1,
            "header: device 0: \"port\" must be a port number (0-65535)",
        ),
        (
            ring(&DEV0.replace("\"10.0.0.1\"", "10"), ""),
            1,
            "header: device 0: \"ip\" must be a string",
        ),
        (
            ring("null", ""),
            1,
            "replica 0 of partition 0 is assigned to device 0, which was removed from the ring",
        ),
        (ring("7", ""), 1, "header: device 0 is not a JSON object"),
        (
            ring(DEV0, "").replace("\"part_shift\": 30, ", ""),
            1,
            "header: \"part_shift\" is missing",
        ),
        (
            ring(DEV0, ", \"version\": \"x\""),
            1,
            "header: \"version\" must be a non-negative integer, not \"x\"",
        ),
    ];
    for (header, rows, want) in cases {
        assert_eq!(load_error(&v1_with(&header, rows, 4)), want, "{header}");
    }
}

#[test]
fn bad_v2_layouts_are_refused_clearly() {
    let data = gunzip(&fixture("three.v2.ring.gz"));
    let trailer = data.len() - 16;
    // An index offset past the end.
    let mut bad = data.clone();
    bad[trailer..trailer + 8].copy_from_slice(&u64::MAX.to_be_bytes());
    assert_eq!(
        load_error(&gzip(&bad)),
        format!(
            "truncated: the v2 index offset at the end of the file ({}) is not within the file ({trailer} bytes)",
            u64::MAX
        )
    );
    // Rename a section in the index: it is then missing.
    let index_at = u64::from_be_bytes(data[trailer..trailer + 8].try_into().unwrap()) as usize;
    let mut bad = data.clone();
    let pos = index_at
        + bad[index_at..]
            .windows(11)
            .position(|w| w == b"assignments")
            .unwrap();
    bad[pos] = b'A';
    assert_eq!(
        load_error(&gzip(&bad)),
        "the index has no section swift/ring/assignments"
    );
    // Too short to hold the trailer.
    assert_eq!(
        load_error(&gzip(b"R1NG\x00\x02abc")),
        "truncated: the v2 index offsets at the end of the file are missing"
    );
}

// ---------------------------------------------------------------------------
// Reload

fn set_mtime(path: &Path, secs: u64) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

/// Replace `path` atomically with `bytes`, with the given mtime.
fn replace(path: &Path, bytes: &[u8], secs: u64) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    set_mtime(&tmp, secs);
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn a_changed_file_is_picked_up_after_reload_time_and_a_broken_one_keeps_the_old_ring() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("object.ring.gz");
    replace(&path, &fixture("three.v1.ring.gz"), 1_000);
    let ring = Ring::open(dir.path(), "object", &test_hash()).unwrap();
    assert_eq!(ring.reload_time(), DEFAULT_RELOAD_TIME);
    assert_eq!(ring.partition_count(), 64);
    let t0 = Instant::now();

    // Before reload_time has passed nothing is looked at.
    replace(&path, &fixture("regions.v2.ring.gz"), 2_000);
    assert!(!ring.maybe_reload_at(t0 + Duration::from_secs(5)).unwrap());
    assert_eq!(ring.partition_count(), 64);
    // After it, the new mtime is seen and the file re-read.
    assert!(ring.maybe_reload_at(t0 + Duration::from_secs(16)).unwrap());
    assert_eq!(ring.partition_count(), 256);
    assert_eq!(ring.data().format_version(), 2);
    // The next check is reload_time later.
    assert!(!ring.maybe_reload_at(t0 + Duration::from_secs(20)).unwrap());
    // Unchanged mtime: nothing re-read, even when due.
    assert!(!ring.maybe_reload_at(t0 + Duration::from_secs(40)).unwrap());

    // A broken replacement: reported once, the old ring kept.
    replace(&path, b"not a ring", 3_000);
    let err = ring
        .maybe_reload_at(t0 + Duration::from_secs(60))
        .unwrap_err();
    assert!(matches!(err.kind, RingErrorKind::NotGzip), "{err}");
    assert_eq!(ring.partition_count(), 256);
    assert!(!ring.maybe_reload_at(t0 + Duration::from_secs(80)).unwrap());
    assert_eq!(ring.get_part_nodes(0).len(), 3);

    // A missing file: reported once, the old ring kept.
    std::fs::remove_file(&path).unwrap();
    let err = ring
        .maybe_reload_at(t0 + Duration::from_secs(100))
        .unwrap_err();
    assert!(matches!(err.kind, RingErrorKind::Read(_)), "{err}");
    assert!(!ring.maybe_reload_at(t0 + Duration::from_secs(120)).unwrap());

    // A good file again.
    replace(&path, &fixture("hole.v2.ring.gz"), 4_000);
    assert!(ring.maybe_reload_at(t0 + Duration::from_secs(140)).unwrap());
    assert_eq!(ring.partition_count(), 128);
}

#[test]
fn lookups_reload_and_report_a_broken_file_once_to_the_handler() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("container.ring.gz");
    replace(&path, &fixture("three.v2.ring.gz"), 1_000);
    let ring = Ring::open(dir.path(), "container", &test_hash())
        .unwrap()
        .with_reload_time(Duration::ZERO);
    let errors = Rc::new(std::cell::RefCell::new(Vec::new()));
    let sink = Rc::clone(&errors);
    ring.set_reload_error_handler(move |e| sink.borrow_mut().push(e.to_string()));

    replace(&path, &fixture("fractional.v1.ring.gz"), 2_000);
    // With reload_time 0 every lookup after the clock moves checks the
    // file; wait (bounded) for the monotonic clock to tick.
    let tick = |ring: &Ring| {
        let start = Instant::now();
        for _ in 0..1_000_000 {
            if Instant::now() > start {
                break;
            }
            std::hint::spin_loop();
        }
        ring.get_part("AUTH_test", Some("c"), Some("o")).unwrap()
    };
    tick(&ring);
    assert_eq!(ring.replica_count(), 2.5);

    std::fs::write(&path, gzip(b"R1NG\x00\x09")).unwrap();
    set_mtime(&path, 3_000);
    for _ in 0..3 {
        tick(&ring);
    }
    assert_eq!(ring.replica_count(), 2.5);
    let errors = errors.borrow();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].ends_with("unsupported ring format version 9 (only 1 and 2 are supported)"));
    assert!(errors[0].contains("container.ring.gz"));
}

#[test]
fn nodes_carry_their_device_fields() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        data_dir().join("fractional.v2.ring.gz"),
        dir.path().join("object-1.ring.gz"),
    )
    .unwrap();
    let ring = Ring::open(dir.path(), "object-1", &test_hash()).unwrap();
    let (part, nodes) = ring.get_nodes("AUTH_test", Some("c"), Some("o")).unwrap();
    assert_eq!(
        part,
        ring.get_part("AUTH_test", Some("c"), Some("o")).unwrap()
    );
    let node = &nodes[0];
    assert_eq!(node.index(), Some(0));
    let dev = ring.data().device(node.id).unwrap().clone();
    assert_eq!(node.ip, dev.ip);
    assert_eq!(node.port, 6200);
    assert_eq!(
        node.replication_port,
        6300 + u16::try_from(node.id).unwrap()
    );
    assert_eq!(node.meta, format!("m{}", node.id));
    assert!(Rc::ptr_eq(node.dev(), &dev));
    // A partition past the end has no primaries and walks nothing new.
    assert!(ring.get_part_nodes(1 << 20).is_empty());
    assert_eq!(ring.get_more_nodes(1 << 20).count(), 6);
}

#[test]
fn a_big_endian_v1_ring_reads_the_same() {
    let (data, header_end) = v1_stream();
    let header = std::str::from_utf8(&data[10..header_end])
        .unwrap()
        .replace("\"byteorder\": \"little\"", "\"byteorder\": \"big\"");
    let mut big = b"R1NG\x00\x01".to_vec();
    big.extend_from_slice(&u32::try_from(header.len()).unwrap().to_be_bytes());
    big.extend_from_slice(header.as_bytes());
    for pair in data[header_end..].chunks_exact(2) {
        big.extend_from_slice(&[pair[1], pair[0]]);
    }
    let little = io::parse(&fixture("three.v1.ring.gz")).unwrap();
    let big = io::parse(&gzip(&big)).unwrap();
    assert_eq!(big.table(), little.table());
    assert_eq!(big.devs(), little.devs());
}

#[test]
fn an_in_memory_ring_and_a_huge_reload_time_never_reload() {
    let data = io::load(&data_dir().join("three.v1.ring.gz")).unwrap();
    let ring = Ring::in_memory(Path::new("memory"), data, &test_hash());
    assert!(
        !ring
            .maybe_reload_at(Instant::now() + Duration::from_secs(1 << 40))
            .unwrap()
    );
    assert_eq!(ring.get_part("AUTH_test", Some("c"), Some("o")).unwrap(), 1);
    // A reload_time past what an Instant can hold means "never", not a panic.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        data_dir().join("three.v2.ring.gz"),
        dir.path().join("object.ring.gz"),
    )
    .unwrap();
    let ring = Ring::open(dir.path(), "object", &test_hash())
        .unwrap()
        .with_reload_time(Duration::MAX);
    std::fs::remove_file(dir.path().join("object.ring.gz")).unwrap();
    assert!(
        !ring
            .maybe_reload_at(Instant::now() + Duration::from_secs(1 << 40))
            .unwrap()
    );
    assert_eq!(ring.get_part_nodes(1).len(), 3);
}
