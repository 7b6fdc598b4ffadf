//! The error type of `lb-health`: configuration mistakes a caller can fix.
//!
//! A check that *fails* is not an error: it is an [`Outcome`](crate::Outcome) carrying a
//! [`Reason`](crate::Reason). These errors are for settings that cannot work (a pattern
//! that does not parse, a digest of the wrong length, a monitor started outside tokio).

/// What was wrong with a check or monitor setting. Each message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An `expect` pattern that fnmatch(3) cannot see whole (it holds a NUL byte).
    #[error("invalid expect pattern {pattern:?}: {reason} (expected an fnmatch pattern without NUL bytes)")]
    InvalidPattern {
        /// The pattern that was given.
        pattern: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A `binary` payload that is not hex.
    #[error("invalid hex in `{field}`: {reason} (expected pairs of hex digits, like \"0a1b\")")]
    InvalidHex {
        /// Which payload: `"send"` or `"expect"`.
        field: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// An HTTP digest that is neither SHA-1 nor MD5 in hex.
    #[error("invalid digest {digest:?}: expected 40 hex digits (SHA-1) or 32 hex digits (MD5)")]
    InvalidDigest {
        /// The digest that was given.
        digest: String,
    },
    /// An HTTP path that would not make a valid request line.
    #[error("invalid http path {path:?}: expected an absolute path starting with `/`, without spaces or control characters")]
    InvalidPath {
        /// The path that was given.
        path: String,
    },
    /// An HTTP `Host` value that would not make a valid header.
    #[error("invalid http host {host:?}: expected a host name or address, without spaces or control characters")]
    InvalidHost {
        /// The host that was given.
        host: String,
    },
    /// An HTTP status code outside `100..=999`.
    #[error("invalid http code {code}: expected a status code in 100..=999")]
    InvalidCode {
        /// The code that was given.
        code: u16,
    },
    /// A monitor or check setting out of its range.
    #[error("invalid setting `{setting}`: {expected}")]
    InvalidSetting {
        /// The setting's name.
        setting: &'static str,
        /// What it accepts.
        expected: String,
    },
    /// A host that a check cannot reach: its backend has no address.
    #[error("host `{host}` of table `{table}` has no address to check: expected a backend whose `addr()` is `Some`")]
    NoAddress {
        /// The table's name.
        table: String,
        /// The host's name.
        host: String,
    },
    /// An ICMP check may open neither a datagram nor a raw ICMP socket.
    #[error("icmp not permitted: {detail} (expected a group in net.ipv4.ping_group_range, or CAP_NET_RAW)")]
    IcmpNotPermitted {
        /// Why each kind of socket failed.
        detail: String,
    },
    /// The monitor was started outside a tokio runtime.
    #[error("no tokio runtime: expected the monitor to be started from within a tokio runtime")]
    NoRuntime,
    /// A TLS setting that rustls rejected (a CA file without certificates, a bad server
    /// name).
    #[cfg(feature = "tls")]
    #[error("invalid tls setting: {reason}")]
    Tls {
        /// What was wrong.
        reason: String,
    },
}
