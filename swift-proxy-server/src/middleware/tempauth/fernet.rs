//! The pieces of tempauth that are bytes and crypto, not HTTP: Python's
//! lenient base64 (`b64decode` as `user64_` names and Fernet keys and tokens
//! are read), Fernet tokens exactly as Python's `cryptography` makes and
//! checks them (so a token issued by a Python tempauth with the same keys is
//! good here and the other way round), and `uuid4().hex`.
//!
//! No policy lives here: which keys, which lifetime, is the caller's.

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// `_MAX_CLOCK_SKEW`: a token may claim to be this far in the future.
const MAX_CLOCK_SKEW: i128 = 60;

/// Random bytes from the kernel (tokens must not be guessable).
pub fn random_bytes<const N: usize>() -> Result<[u8; N], String> {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).map_err(|e| format!("no random bytes: {e}"))?;
    Ok(b)
}

/// `uuid4().hex`: 32 lowercase hex digits, version 4, RFC 4122 variant.
pub fn uuid4_hex() -> Result<String, String> {
    let mut b = random_bytes::<16>()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn b64_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Python's `base64.b64decode(s)` (or `urlsafe_b64decode` with `urlsafe`,
/// which reads `-_` as `+/` and still takes `+/`): characters outside the
/// alphabet are skipped, decoding stops at the padding that completes a
/// quad, and the error is binascii's.
pub fn b64decode(s: &str, urlsafe: bool) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut quad_pos = 0u8;
    let mut left = 0u32;
    let mut pads = 0u8;
    let mut data_chars = 0usize;
    for &c in s.as_bytes() {
        let c = match c {
            b'-' if urlsafe => b'+',
            b'_' if urlsafe => b'/',
            c => c,
        };
        if c == b'=' {
            if quad_pos >= 2 {
                pads += 1;
                if quad_pos + pads >= 4 {
                    return Ok(out);
                }
            }
            continue;
        }
        let Some(v) = b64_value(c) else { continue };
        data_chars += 1;
        pads = 0;
        match quad_pos {
            0 => {
                quad_pos = 1;
                left = u32::from(v);
            }
            1 => {
                quad_pos = 2;
                out.push(((left << 2) | (u32::from(v) >> 4)) as u8);
                left = u32::from(v) & 0x0f;
            }
            2 => {
                quad_pos = 3;
                out.push(((left << 4) | (u32::from(v) >> 2)) as u8);
                left = u32::from(v) & 0x03;
            }
            _ => {
                quad_pos = 0;
                out.push(((left << 6) | u32::from(v)) as u8);
                left = 0;
            }
        }
    }
    match quad_pos {
        0 => Ok(out),
        1 => Err(format!(
            "Invalid base64-encoded string: number of data characters ({data_chars}) \
             cannot be 1 more than a multiple of 4"
        )),
        _ => Err("Incorrect padding".into()),
    }
}

/// `base64.urlsafe_b64encode`, with padding.
pub fn urlsafe_b64encode(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 0x3f) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// One Fernet key: the first half signs, the second encrypts.
#[derive(Clone)]
pub struct Fernet {
    signing: [u8; 16],
    encryption: [u8; 16],
}

impl std::fmt::Debug for Fernet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fernet(<key>)")
    }
}

/// Why a key is refused: `cryptography`'s sentence.
pub const BAD_KEY: &str = "Fernet key must be 32 url-safe base64-encoded bytes.";

impl Fernet {
    /// `Fernet(key)`: `key` is 32 bytes, url-safe base64.
    pub fn new(key: &str) -> Result<Fernet, String> {
        let raw = b64decode(key, true).map_err(|_| BAD_KEY.to_owned())?;
        let raw: [u8; 32] = raw.try_into().map_err(|_| BAD_KEY.to_owned())?;
        let mut signing = [0u8; 16];
        let mut encryption = [0u8; 16];
        signing.copy_from_slice(&raw[..16]);
        encryption.copy_from_slice(&raw[16..]);
        Ok(Fernet {
            signing,
            encryption,
        })
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes a key of any length; 16 bytes cannot be refused.
        match HmacSha256::new_from_slice(&self.signing) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC accepts any key length"),
        }
    }

    /// `encrypt_at_time(data, now)` with a fresh random IV.
    pub fn encrypt(&self, data: &[u8], now: u64) -> Result<String, String> {
        let iv = random_bytes::<16>()?;
        Ok(self.encrypt_with_iv(data, now, iv))
    }

    fn encrypt_with_iv(&self, data: &[u8], now: u64, iv: [u8; 16]) -> String {
        let ct = cbc::Encryptor::<aes::Aes128>::new(&self.encryption.into(), &iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(data);
        let mut token = Vec::with_capacity(25 + ct.len() + 32);
        token.push(0x80);
        token.extend_from_slice(&now.to_be_bytes());
        token.extend_from_slice(&iv);
        token.extend_from_slice(&ct);
        let mut mac = self.mac();
        mac.update(&token);
        token.extend_from_slice(&mac.finalize().into_bytes());
        urlsafe_b64encode(&token)
    }

    /// `decrypt_at_time(token, ttl, now)` of already-decoded token bytes.
    fn decrypt_data(&self, data: &[u8], ttl: i64, now: i64) -> Option<Vec<u8>> {
        let ts = u64::from_be_bytes(data.get(1..9)?.try_into().ok()?);
        let (ts, ttl, now) = (i128::from(ts), i128::from(ttl), i128::from(now));
        if ts + ttl < now || now + MAX_CLOCK_SKEW < ts {
            return None;
        }
        let split = data.len().checked_sub(32)?;
        let mut mac = self.mac();
        mac.update(&data[..split]);
        mac.verify_slice(&data[split..]).ok()?;
        let iv: [u8; 16] = data.get(9..25)?.try_into().ok()?;
        let ct = data.get(25..split)?;
        cbc::Decryptor::<aes::Aes128>::new(&self.encryption.into(), &iv.into())
            .decrypt_padded_vec_mut::<Pkcs7>(ct)
            .ok()
    }
}

/// The bytes of a token if it is shaped like a Fernet token at all.
fn token_data(token: &str) -> Option<Vec<u8>> {
    if !token.is_ascii() {
        return None;
    }
    let data = b64decode(token, true).ok()?;
    (data.len() >= 9 && data[0] == 0x80).then_some(data)
}

/// `MultiFernet(keys).decrypt(token, ttl)`: the plaintext under the first
/// key that verifies it, if the token is not older than `ttl` seconds.
pub fn decrypt(keys: &[Fernet], token: &str, ttl: i64, now: i64) -> Option<Vec<u8>> {
    let data = token_data(token)?;
    keys.iter().find_map(|k| k.decrypt_data(&data, ttl, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b64decode_is_as_lenient_as_pythons() {
        let ok = |s: &str| b64decode(s, false).unwrap();
        assert_eq!(ok("dGVzdA=="), b"test");
        assert_eq!(ok("dGVzdA==garbage"), b"test");
        assert_eq!(ok("dGVzdDE==="), b"test1");
        assert_eq!(ok("dGV*zdA=="), b"test");
        assert_eq!(ok("YWJj"), b"abc");
        assert_eq!(ok(""), b"");
        assert_eq!(b64decode("dGVzdA", false).unwrap_err(), "Incorrect padding");
        assert!(
            b64decode("dGVzd", false)
                .unwrap_err()
                .contains("cannot be 1 more than a multiple of 4")
        );
        assert_eq!(b64decode("-_8=", true).unwrap(), vec![0xfb, 0xff]);
        assert_eq!(b64decode("+/8=", true).unwrap(), vec![0xfb, 0xff]);
        for n in 0..40u8 {
            let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(b64decode(&urlsafe_b64encode(&data), true).unwrap(), data);
        }
    }

    #[test]
    fn uuid4_hex_looks_like_pythons() {
        let a = uuid4_hex().unwrap();
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(&a[12..13], "4");
        assert!("89ab".contains(&a[16..17]));
        assert_ne!(a, uuid4_hex().unwrap());
    }

    #[test]
    fn fernet_round_trip_ttl_skew_and_rotation() {
        let k1 = Fernet::new("esipv1wC03xLGPb3cydid0uPINl6g8sydhlPh6iwJxk=").unwrap();
        let k2 = Fernet::new("gRXHeKlt5h1nMDZL_QA7UfVIJ5z3ZP3v351cvmiRZD4=").unwrap();
        let t = k1.encrypt(b"a,a:b,AUTH_a", 1000).unwrap();
        assert!(t.starts_with("gAAAAA"), "{t}");
        let both = [k2.clone(), k1.clone()];
        assert_eq!(decrypt(&both, &t, 100, 1050).unwrap(), b"a,a:b,AUTH_a");
        assert_eq!(decrypt(&both, &t, 100, 1100).unwrap(), b"a,a:b,AUTH_a");
        assert!(decrypt(&both, &t, 100, 1101).is_none(), "expired");
        assert!(
            decrypt(&both, &t, 100, 939).is_none(),
            "too far in the future"
        );
        assert!(decrypt(&both, &t, 100, 940).is_some());
        assert!(decrypt(&[k2], &t, 100, 1050).is_none(), "other key");
        let mut bad = t.clone().into_bytes();
        bad[30] = if bad[30] == b'A' { b'B' } else { b'A' };
        let bad = String::from_utf8(bad).unwrap();
        assert!(decrypt(std::slice::from_ref(&k1), &bad, 100, 1050).is_none());
        assert!(decrypt(std::slice::from_ref(&k1), "gAAAA", 100, 1050).is_none());
        assert!(decrypt(std::slice::from_ref(&k1), "tést", 100, 1050).is_none());
        assert_eq!(Fernet::new("c2hvcnQ=").unwrap_err(), BAD_KEY);
        assert_eq!(Fernet::new("x").unwrap_err(), BAD_KEY);
    }

    #[test]
    fn fernet_matches_a_known_token() {
        // Made by Python's cryptography 50: Fernet(key)._encrypt_from_parts(
        // b"hello", 1700000000, bytes(range(16))).
        let k = Fernet::new("esipv1wC03xLGPb3cydid0uPINl6g8sydhlPh6iwJxk=").unwrap();
        let iv: [u8; 16] = std::array::from_fn(|i| i as u8);
        let t = k.encrypt_with_iv(b"hello", 1_700_000_000, iv);
        assert_eq!(t, KNOWN_TOKEN);
        assert_eq!(
            decrypt(&[k], KNOWN_TOKEN, 10, 1_700_000_005).unwrap(),
            b"hello"
        );
    }

    const KNOWN_TOKEN: &str = "gAAAAABlU_EAAAECAwQFBgcICQoLDA0OD66wcnbabn2ZhkpAal6nN3zdzEoe81sgB4DD5EaLXhh_lyVt3nr8ItIACyP4yTiV6w==";
}
