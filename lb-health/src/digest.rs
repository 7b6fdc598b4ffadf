//! [`Digest`]: the body digest of relayd's `check http "/path" digest D`.
//!
//! relayd tells SHA-1 from MD5 by the length of the hex string (40 or 32 digits,
//! `parse.y`) and compares it, with `strcmp`, with the lowercase hex digest of the
//! response after its first blank line (`check_tcp.c`, `check_http_digest`). A digest
//! written in uppercase therefore never matches in relayd; we accept either case.

use std::fmt;

use md5::Md5;
use sha1::{Digest as _, Sha1};

use crate::Error;

/// An expected body digest: SHA-1 or MD5.
///
/// ```
/// use lb_health::Digest;
/// let d: Digest = "da39a3ee5e6b4b0d3255bfef95601890afd80709".parse()?; // SHA-1 of ""
/// assert!(d.matches(b""));
/// assert_eq!(d.to_string(), "sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709");
/// assert!("abc".parse::<Digest>().is_err());
/// # Ok::<(), lb_health::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Digest {
    /// A SHA-1 digest (40 hex digits).
    Sha1([u8; 20]),
    /// An MD5 digest (32 hex digits).
    Md5([u8; 16]),
}

impl Digest {
    /// The digest of `body` with the same algorithm as `self`.
    pub fn of(&self, body: &[u8]) -> Digest {
        match self {
            Digest::Sha1(_) => Digest::Sha1(Sha1::digest(body).into()),
            Digest::Md5(_) => Digest::Md5(Md5::digest(body).into()),
        }
    }

    /// Whether `body` has this digest.
    pub fn matches(&self, body: &[u8]) -> bool {
        self.of(body) == *self
    }

    /// The algorithm's name: `"sha1"` or `"md5"`.
    pub fn algorithm(&self) -> &'static str {
        match self {
            Digest::Sha1(_) => "sha1",
            Digest::Md5(_) => "md5",
        }
    }

    /// The digest's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Digest::Sha1(d) => d,
            Digest::Md5(d) => d,
        }
    }
}

impl std::str::FromStr for Digest {
    type Err = Error;

    /// 40 hex digits for SHA-1, 32 for MD5, either case.
    fn from_str(s: &str) -> Result<Self, Error> {
        let invalid = || Error::InvalidDigest {
            digest: s.to_owned(),
        };
        let bytes = hex::decode(s.trim()).map_err(|_| invalid())?;
        match bytes.len() {
            20 => bytes.try_into().map(Digest::Sha1).map_err(|_| invalid()),
            16 => bytes.try_into().map(Digest::Md5).map_err(|_| invalid()),
            _ => Err(invalid()),
        }
    }
}

impl fmt::Display for Digest {
    /// `"sha1 <hex>"` or `"md5 <hex>"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.algorithm(), hex::encode(self.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        let sha1: Digest = "A9993E364706816ABA3E25717850C26C9CD0D89D".parse().unwrap();
        assert!(sha1.matches(b"abc"));
        assert!(!sha1.matches(b"abd"));
        let md5: Digest = "900150983cd24fb0d6963f7d28e17f72".parse().unwrap();
        assert_eq!(md5.algorithm(), "md5");
        assert!(md5.matches(b"abc"));
        assert_eq!(
            md5.of(b"").to_string(),
            "md5 d41d8cd98f00b204e9800998ecf8427e"
        );
    }

    #[test]
    fn bad_lengths() {
        for bad in ["", "00", "zz", &"0".repeat(64)] {
            assert_eq!(
                bad.parse::<Digest>(),
                Err(Error::InvalidDigest { digest: bad.into() })
            );
        }
    }
}
