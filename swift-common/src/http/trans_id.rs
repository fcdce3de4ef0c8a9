//! Swift's transaction ids: `tx` + 21 random hex digits + `-` + the time as
//! 10 hex digits + the quoted `trans_id_suffix`.

use std::cell::Cell;
use std::io::Read;

thread_local! {
    // xorshift state, seeded on first use; a forked worker reseeds (see
    // `reseed`) so that workers never share a sequence.
    static RNG: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

fn seed() -> (u64, u64) {
    let mut bytes = [0u8; 16];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_ok();
    if !ok {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes.copy_from_slice(&(t ^ (u128::from(std::process::id()) << 64)).to_le_bytes());
    }
    let a = u64::from_le_bytes(bytes[..8].try_into().unwrap_or([1; 8])) | 1;
    let b = u64::from_le_bytes(bytes[8..].try_into().unwrap_or([2; 8])) | 1;
    (a, b)
}

thread_local! {
    // This process's pid, once asked (0: not yet); `reseed` forgets it.
    static PID: Cell<u32> = const { Cell::new(0) };
}

/// Start a new random sequence: call in a process right after fork.
pub fn reseed() {
    RNG.with(|cell| cell.set(seed()));
    PID.with(|cell| cell.set(0));
}

/// The process id, asked of the kernel once per process (glibc does not
/// cache `getpid`, and a proxy names its pid in every backend request's
/// `User-Agent`). A forked worker must call [`reseed`] first, as the
/// supervisor does.
pub fn pid() -> u32 {
    PID.with(|cell| {
        if cell.get() == 0 {
            cell.set(std::process::id());
        }
        cell.get()
    })
}

/// 64 random bits (xorshift128+; ids need uniqueness, not secrecy).
pub fn random_u64() -> u64 {
    RNG.with(|cell| {
        let (mut s0, mut s1) = cell.get();
        if s0 == 0 && s1 == 0 {
            (s0, s1) = seed();
        }
        let result = s0.wrapping_add(s1);
        s1 ^= s0;
        let n0 = s0.rotate_left(55) ^ s1 ^ (s1 << 14);
        let n1 = s1.rotate_left(36);
        cell.set((n0, n1));
        result
    })
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Append the low `digits` hex digits of `n`.
fn push_hex(out: &mut String, n: u128, digits: u32) {
    for i in (0..digits).rev() {
        out.push(char::from(HEX[((n >> (4 * i)) & 0xf) as usize]));
    }
}

/// Swift's `generate_trans_id(trans_id_suffix)`.
pub fn generate_trans_id(suffix: &str) -> String {
    let mut id = String::with_capacity(34 + suffix.len());
    let r = (u128::from(random_u64()) << 64) | u128::from(random_u64());
    let now = crate::time::unix_now() as u128;
    id.push_str("tx");
    // 21 hex digits = 84 random bits, then the time as 10 hex digits.
    push_hex(&mut id, r >> 44, 21);
    id.push('-');
    push_hex(&mut id, now, 10);
    super::quote::quote_bytes_into(&mut id, suffix.as_bytes(), "/");
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_is_the_process_id() {
        assert_eq!(pid(), std::process::id());
        reseed();
        assert_eq!(pid(), std::process::id());
    }

    #[test]
    fn trans_ids_have_swifts_shape_and_differ() {
        let a = generate_trans_id("");
        let b = generate_trans_id("-my suffix");
        assert_eq!(a.len(), 2 + 21 + 1 + 10);
        assert!(a.starts_with("tx") && a.as_bytes()[23] == b'-');
        assert!(a[2..23].bytes().all(|c| c.is_ascii_hexdigit()));
        assert!(b.ends_with("-my%20suffix"), "{b}");
        assert_ne!(a, generate_trans_id(""));
        // The time part is the current time, as Swift's.
        let now = crate::time::unix_now() as u64;
        let t = u64::from_str_radix(&a[24..34], 16).unwrap();
        assert!(t.abs_diff(now) <= 1, "{a}");
    }
}
