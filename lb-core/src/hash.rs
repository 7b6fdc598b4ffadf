//! Keyed hashing: the 128-bit [`HashKey`], SipHash-2-4 for relayd compatibility, and
//! a fast keyed hash for addresses.
//!
//! # Why keyed, and why a fixed default
//!
//! Hash modes map a client to a host by hashing something about the client. Keying the
//! hash keeps outsiders from predicting (and aiming at) the host a given address lands
//! on. relayd draws a random key at every configuration load unless one is given, so
//! every reload and restart remaps every client; we use a fixed, documented
//! [`HashKey::DEFAULT`] instead, so that mappings are the same in every process, on
//! every platform and across restarts, and several balancers agree without sharing
//! state. Configure your own key (and keep it the same on every instance) when the
//! mapping must not be guessable.
//!
//! # Key syntax (relayd's `parse.y`, rule `hashkey`)
//!
//! - `0x` followed by exactly 32 hexadecimal digits: four 32-bit words `w0..w3`, read
//!   as `sscanf(s, "0x%8x%8x%8x%8x")` reads them.
//! - Any other string: the key is the MD5 digest of the string, read as the same four
//!   big-endian words; that is, the key of `0x` + the MD5 hex digest.
//!
//! relayd *rejects* a string that starts with `0x` but is not 34 characters long
//! (`"hex key must be 128 bits (32 hex digits) long"`) or does not scan as hex
//! (`"invalid hex key"`); it does not pass it through MD5. We do the same, with
//! [`Error::InvalidKey`]. We are slightly stricter than `sscanf`, which would accept
//! signs, spaces or a second `0x` inside a 34-character string: only the digits
//! `0-9a-fA-F` are accepted. The prefix is case-sensitive, as in relayd (`strncmp`):
//! `0X...` is an ordinary string and goes through MD5.
//!
//! SipHash takes the key as two 64-bit words, `k0 = w0 | w1 << 32` and
//! `k1 = w2 | w3 << 32`: the `u_int64_t` view of relayd's `u_int32_t data[4]` on a
//! little-endian machine (amd64), which is what relayd hashes with there.
//!
//! # The two hashes
//!
//! - [`siphash24`] (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012):
//!   what relayd uses. A pseudo-random function: without the key, outputs cannot be
//!   predicted and collisions cannot be crafted. About 10-20 ns for an address.
//! - [`fast_hash`]: XXH3-64 (xxHash 0.8, Yann Collet), seeded from the key. Its output
//!   is frozen by the xxHash specification, it passes SMHasher, and it hashes 4 or 16
//!   bytes in a few nanoseconds, which is what a per-packet or per-connection pick can
//!   afford. The cost: it is **not a PRF**. Someone who knows the key can compute
//!   colliding inputs at will, and nothing is claimed about recovering the seed from
//!   observed mappings. It is the default for addresses (whose choice by an attacker is
//!   limited), while [`siphash24`] is the choice for attacker-chosen bytes such as
//!   headers or cookies when targeting one host must be impossible.
//!
//! Both are portable (byte-oriented, no platform word size or endianness in the
//! result) and stable: `tests/hash_golden.rs` pins their outputs.

use std::fmt;
use std::hash::Hasher;
use std::net::IpAddr;
use std::str::FromStr;

use md5::{Digest, Md5};
use siphasher::sip::SipHasher24;

use crate::{Error, Result};

/// A 128-bit hash key, relayd's `source-hash` / `loadbalance` key.
///
/// Parse one from relayd's syntax with [`HashKey::parse`] (or `str::parse`); the
/// [`Display`](fmt::Display) form is the `0x` + 32 hex digits syntax, so it round-trips.
/// [`Debug`](fmt::Debug) does not print the key, so it stays out of logs.
///
/// ```
/// use lb_core::HashKey;
/// let key: HashKey = "0x000102030405060708090a0b0c0d0e0f".parse()?;
/// assert_eq!(key.words(), [0x0001_0203, 0x0405_0607, 0x0809_0a0b, 0x0c0d_0e0f]);
/// assert_eq!(key.sip_keys(), (0x0405_0607_0001_0203, 0x0c0d_0e0f_0809_0a0b));
/// // Any other string goes through MD5, as in relayd:
/// assert_eq!(HashKey::parse("foo")?, HashKey::parse("0xacbd18db4cc2f85cedef654fccc4a4d8")?);
/// assert_eq!(key.to_string(), "0x000102030405060708090a0b0c0d0e0f");
/// # Ok::<(), lb_core::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashKey {
    words: [u32; 4],
}

impl HashKey {
    /// The default key: the key relayd derives from the string `lb default hash key`
    /// (its MD5 digest is `8eb1f08c36bbfab86162e83b2c6b7640`). Fixed forever, so that
    /// default mappings never change; `relayd.conf` reproduces it with
    /// `mode source-hash "lb default hash key"`.
    pub const DEFAULT: HashKey =
        HashKey::from_words([0x8eb1_f08c, 0x36bb_fab8, 0x6162_e83b, 0x2c6b_7640]);

    /// A key from its four 32-bit words, as `sscanf("0x%8x%8x%8x%8x")` fills them.
    pub const fn from_words(words: [u32; 4]) -> Self {
        HashKey { words }
    }

    /// A key from SipHash's two 64-bit key words (the inverse of
    /// [`sip_keys`](HashKey::sip_keys)).
    pub const fn from_sip_keys(k0: u64, k1: u64) -> Self {
        HashKey {
            words: [k0 as u32, (k0 >> 32) as u32, k1 as u32, (k1 >> 32) as u32],
        }
    }

    /// Parses relayd's key syntax (see the [module docs](self)): `0x` + exactly 32 hex
    /// digits, or any other string through MD5. A string starting with `0x` that is not
    /// exactly 32 hex digits after it is [`Error::InvalidKey`], as in relayd.
    pub fn parse(s: &str) -> Result<Self> {
        let Some(hex) = s.strip_prefix("0x") else {
            let digest: [u8; 16] = Md5::digest(s.as_bytes()).into();
            let mut words = [0u32; 4];
            for (w, chunk) in words.iter_mut().zip(digest.chunks_exact(4)) {
                *w = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            }
            return Ok(HashKey { words });
        };
        let len = hex.chars().count();
        if len != 32 {
            return Err(Error::InvalidKey {
                reason: format!(
                    "hex key must be 128 bits (32 hex digits after `0x`), got {len} characters"
                ),
            });
        }
        let mut words = [0u32; 4];
        for (i, c) in hex.chars().enumerate() {
            let digit = c.to_digit(16).ok_or_else(|| Error::InvalidKey {
                reason: format!(
                    "invalid hex key: expected a hex digit 0-9a-f, found {c:?} at position {}",
                    i + 2
                ),
            })?;
            words[i / 8] = (words[i / 8] << 4) | digit;
        }
        Ok(HashKey { words })
    }

    /// The four 32-bit words `w0..w3`.
    pub const fn words(&self) -> [u32; 4] {
        self.words
    }

    /// SipHash's key words: `k0 = w0 | w1 << 32`, `k1 = w2 | w3 << 32`.
    pub const fn sip_keys(&self) -> (u64, u64) {
        let w = self.words;
        (
            w[0] as u64 | (w[1] as u64) << 32,
            w[2] as u64 | (w[3] as u64) << 32,
        )
    }

    /// The 64-bit seed of [`fast_hash`]: `k0 ^ k1.rotate_left(32)`, so that every bit of
    /// the key changes the seed. Fixed forever, like the key itself.
    pub const fn fast_seed(&self) -> u64 {
        let (k0, k1) = self.sip_keys();
        k0 ^ k1.rotate_left(32)
    }
}

impl Default for HashKey {
    /// [`HashKey::DEFAULT`].
    fn default() -> Self {
        HashKey::DEFAULT
    }
}

impl FromStr for HashKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        HashKey::parse(s)
    }
}

impl fmt::Display for HashKey {
    /// `0x` + 32 hex digits: relayd's syntax, which [`HashKey::parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.words;
        write!(f, "0x{a:08x}{b:08x}{c:08x}{d:08x}")
    }
}

impl fmt::Debug for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == HashKey::DEFAULT {
            f.write_str("HashKey(DEFAULT)")
        } else {
            f.write_str("HashKey(..)")
        }
    }
}

/// SipHash-2-4 under `key`, fed incrementally: relayd's `SipHash24_Update` calls.
///
/// Feeding `a` then `b` gives the same result as feeding their concatenation.
///
/// ```
/// use lb_core::{hash::SipHash24, siphash24, HashKey};
/// let key = HashKey::DEFAULT;
/// let mut h = SipHash24::new(&key);
/// h.write(b"lb ");
/// h.write(b"hash");
/// assert_eq!(h.finish(), siphash24(&key, b"lb hash"));
/// ```
#[derive(Clone, Debug)]
pub struct SipHash24(SipHasher24);

impl SipHash24 {
    /// A hasher keyed with `key` (see [`HashKey::sip_keys`]).
    #[inline]
    pub fn new(key: &HashKey) -> Self {
        let (k0, k1) = key.sip_keys();
        SipHash24(SipHasher24::new_with_keys(k0, k1))
    }

    /// Feeds bytes.
    #[inline]
    pub fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
    }

    /// Feeds an address as relayd does: 4 bytes for IPv4, 16 for IPv6, network order,
    /// no port, no family tag. An IPv4-mapped IPv6 address stays 16 bytes.
    #[inline]
    pub fn write_ip(&mut self, ip: IpAddr) {
        match ip {
            IpAddr::V4(a) => self.write(&a.octets()),
            IpAddr::V6(a) => self.write(&a.octets()),
        }
    }

    /// The 64-bit hash of everything fed so far (relayd's `SipHash24_End`).
    #[inline]
    pub fn finish(&self) -> u64 {
        self.0.finish()
    }
}

/// SipHash-2-4 of `data` under `key`.
#[inline]
pub fn siphash24(key: &HashKey, data: &[u8]) -> u64 {
    let mut h = SipHash24::new(key);
    h.write(data);
    h.finish()
}

/// SipHash-2-4 of an address under `key`, as relayd's `source-hash` hashes a client:
/// see [`SipHash24::write_ip`].
#[inline]
pub fn siphash24_ip(key: &HashKey, ip: IpAddr) -> u64 {
    let mut h = SipHash24::new(key);
    h.write_ip(ip);
    h.finish()
}

/// The fast keyed hash: XXH3-64 of `data` with seed [`HashKey::fast_seed`]. Not a PRF;
/// see the [module docs](self).
#[inline]
pub fn fast_hash(key: &HashKey, data: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(data, key.fast_seed())
}

/// [`fast_hash`] of an address: its 4 bytes for IPv4, 16 for IPv6, network order.
/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) hashes as the IPv4 address, so a
/// client hashes the same whether it reached a v4 or a dual-stack v6 socket.
#[inline]
pub fn fast_hash_ip(key: &HashKey, ip: IpAddr) -> u64 {
    match ip.to_canonical() {
        IpAddr::V4(a) => fast_hash(key, &a.octets()),
        IpAddr::V6(a) => fast_hash(key, &a.octets()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_key_is_the_md5_of_its_phrase() {
        assert_eq!(
            HashKey::parse("lb default hash key").unwrap(),
            HashKey::DEFAULT
        );
        assert_eq!(HashKey::default(), HashKey::DEFAULT);
        assert_eq!(
            HashKey::DEFAULT.to_string(),
            "0x8eb1f08c36bbfab86162e83b2c6b7640"
        );
    }

    #[test]
    fn hex_keys_round_trip_and_mix_case() {
        let k = HashKey::parse("0xDEADbeef0000000100000002ffffffff").unwrap();
        assert_eq!(k.words(), [0xdead_beef, 1, 2, 0xffff_ffff]);
        assert_eq!(k.to_string().parse::<HashKey>().unwrap(), k);
        assert_eq!(HashKey::from_sip_keys(k.sip_keys().0, k.sip_keys().1), k);
    }

    #[test]
    fn malformed_hex_keys_are_errors_as_in_relayd() {
        let short = HashKey::parse("0x1234").unwrap_err();
        assert_eq!(
            short.to_string(),
            "invalid hash key: hex key must be 128 bits (32 hex digits after `0x`), got 4 characters"
        );
        let bad = HashKey::parse("0x000102030405060708090a0b0c0d0e0g").unwrap_err();
        assert_eq!(
            bad.to_string(),
            "invalid hash key: invalid hex key: expected a hex digit 0-9a-f, found 'g' at position 33"
        );
        // Non-ASCII input of the right byte length is rejected, never sliced mid-character.
        assert!(HashKey::parse("0x000102030405060708090a0b0c0d0é").is_err());
        // `0X` is not the hex prefix: an ordinary string, through MD5.
        let upper = HashKey::parse("0X000102030405060708090a0b0c0d0e0f").unwrap();
        assert_ne!(
            upper.words(),
            [0x0001_0203, 0x0405_0607, 0x0809_0a0b, 0x0c0d_0e0f]
        );
    }

    #[test]
    fn debug_does_not_print_the_key() {
        let k = HashKey::parse("secret").unwrap();
        assert_eq!(format!("{k:?}"), "HashKey(..)");
        assert_eq!(format!("{:?}", HashKey::DEFAULT), "HashKey(DEFAULT)");
    }

    #[test]
    fn mapped_v4_hashes_as_v4_in_the_fast_hash_only() {
        let k = HashKey::DEFAULT;
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(fast_hash_ip(&k, v4), fast_hash_ip(&k, mapped));
        assert_ne!(siphash24_ip(&k, v4), siphash24_ip(&k, mapped));
    }
}
