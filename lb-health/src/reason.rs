//! [`Reason`]: why a check or a connection failed, in relayd's words.
//!
//! relayd keeps the last error of every host (`enum host_error` in `relayd.h`, printed by
//! `host_error()` in `log.c`: "tcp connect failed", "tcp read timeout", "send/expect
//! failed", "http code mismatch", ...). We keep the same vocabulary, shortened to what an
//! operator reads in a log line, and use it for active checks and passive ejections
//! alike, so that a host ejected by traffic and one marked down by its check say the
//! same thing for the same cause.

use std::fmt;
use std::io;
use std::str::FromStr;

/// Why a check or a connection failed.
///
/// [`Display`](fmt::Display) gives relayd's words: `"connect refused"`, `"connect
/// timeout"`, `"read timeout"`, `"expect mismatch"`, `"http code mismatch"`, `"tls
/// handshake failed"`, `"script failed"`, `"interval timeout"`, ... These strings are the
/// `reason` of [`HostTable::set_health`](lb_core::HostTable::set_health) and of the monitor's
/// events.
///
/// ```
/// use lb_health::Reason;
/// assert_eq!(Reason::ConnectRefused.to_string(), "connect refused");
/// let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
/// assert_eq!(Reason::from_connect_error(&refused), Reason::ConnectRefused);
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The host answered the connect with a reset: nothing listens on the port.
    ConnectRefused,
    /// The connect did not complete within the timeout.
    ConnectTimeout,
    /// The connect failed for another reason (unreachable network, no route, ...).
    ConnectError,
    /// Sending the request or payload did not complete within the timeout.
    WriteTimeout,
    /// Sending the request or payload failed (connection reset, broken pipe).
    WriteError,
    /// The answer did not arrive, or did not match yet, within the timeout.
    ReadTimeout,
    /// Reading the answer failed (connection reset).
    ReadError,
    /// The received data did not match the expected pattern or bytes.
    ExpectMismatch,
    /// The HTTP status code was not the expected one.
    HttpCodeMismatch,
    /// The digest of the HTTP body was not the expected one.
    HttpDigestMismatch,
    /// The answer could not be parsed (a malformed HTTP response, a body cut short).
    InvalidResponse,
    /// The TLS handshake failed (protocol error, or a certificate that did not verify).
    TlsHandshakeFailed,
    /// The TLS handshake did not complete within the timeout.
    TlsHandshakeTimeout,
    /// A check script exited with status 0, or was killed by a signal.
    ScriptFailed,
    /// A check script could not be started.
    ScriptError,
    /// A check script was still running at the timeout and was killed. Its host goes
    /// down, as in relayd (a killed child counts as exit status 0).
    ScriptTimeout,
    /// No ICMP echo reply arrived within the timeout.
    IcmpReadTimeout,
    /// Neither a datagram nor a raw ICMP socket may be opened: the check cannot tell.
    IcmpNotPermitted,
    /// The check was still running when the next one was due, and was aborted.
    IntervalTimeout,
    /// The backend has no address to check ([`Backend::addr`](lb_core::Backend::addr)
    /// returned `None`).
    NoAddress,
    /// The check panicked, or its host's task died: counted as a failed check, and the
    /// task is started again at the next interval.
    CheckPanicked,
}

impl Reason {
    /// Every reason, in declaration order.
    pub const ALL: [Reason; 21] = [
        Reason::ConnectRefused,
        Reason::ConnectTimeout,
        Reason::ConnectError,
        Reason::WriteTimeout,
        Reason::WriteError,
        Reason::ReadTimeout,
        Reason::ReadError,
        Reason::ExpectMismatch,
        Reason::HttpCodeMismatch,
        Reason::HttpDigestMismatch,
        Reason::InvalidResponse,
        Reason::TlsHandshakeFailed,
        Reason::TlsHandshakeTimeout,
        Reason::ScriptFailed,
        Reason::ScriptError,
        Reason::ScriptTimeout,
        Reason::IcmpReadTimeout,
        Reason::IcmpNotPermitted,
        Reason::IntervalTimeout,
        Reason::NoAddress,
        Reason::CheckPanicked,
    ];

    /// The reason in relayd's words, as [`Display`](fmt::Display) prints it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::ConnectRefused => "connect refused",
            Reason::ConnectTimeout => "connect timeout",
            Reason::ConnectError => "connect error",
            Reason::WriteTimeout => "write timeout",
            Reason::WriteError => "write error",
            Reason::ReadTimeout => "read timeout",
            Reason::ReadError => "read error",
            Reason::ExpectMismatch => "expect mismatch",
            Reason::HttpCodeMismatch => "http code mismatch",
            Reason::HttpDigestMismatch => "http digest mismatch",
            Reason::InvalidResponse => "invalid response",
            Reason::TlsHandshakeFailed => "tls handshake failed",
            Reason::TlsHandshakeTimeout => "tls handshake timeout",
            Reason::ScriptFailed => "script failed",
            Reason::ScriptError => "script error",
            Reason::ScriptTimeout => "script timeout",
            Reason::IcmpReadTimeout => "icmp read timeout",
            Reason::IcmpNotPermitted => "icmp not permitted",
            Reason::IntervalTimeout => "interval timeout",
            Reason::NoAddress => "no address",
            Reason::CheckPanicked => "check panicked",
        }
    }

    /// The reason for a failed `connect()`: [`ConnectRefused`](Reason::ConnectRefused)
    /// for `ECONNREFUSED`, [`ConnectTimeout`](Reason::ConnectTimeout) for a timeout,
    /// [`ConnectError`](Reason::ConnectError) otherwise. Relays use it to report
    /// [`Passive`](crate::Passive) failures.
    pub fn from_connect_error(err: &io::Error) -> Reason {
        match err.kind() {
            io::ErrorKind::ConnectionRefused => Reason::ConnectRefused,
            io::ErrorKind::TimedOut => Reason::ConnectTimeout,
            _ => Reason::ConnectError,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The words of a [`Reason`] were not recognised.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown reason {0:?}: expected one of relayd's words, like \"connect refused\"")]
pub struct UnknownReason(pub String);

impl FromStr for Reason {
    type Err = UnknownReason;

    /// The reason whose words are `s` (`"read timeout"`): the inverse of `Display`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownReason(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relayd_words() {
        let pinned = [
            (Reason::ConnectRefused, "connect refused"),
            (Reason::ConnectTimeout, "connect timeout"),
            (Reason::ReadTimeout, "read timeout"),
            (Reason::ExpectMismatch, "expect mismatch"),
            (Reason::HttpCodeMismatch, "http code mismatch"),
            (Reason::TlsHandshakeFailed, "tls handshake failed"),
            (Reason::ScriptFailed, "script failed"),
            (Reason::IntervalTimeout, "interval timeout"),
        ];
        for (reason, words) in pinned {
            assert_eq!(reason.to_string(), words);
        }
    }

    #[test]
    fn words_round_trip() {
        for r in Reason::ALL {
            assert_eq!(r.to_string().parse::<Reason>(), Ok(r));
        }
        assert_eq!(
            "timeout".parse::<Reason>(),
            Err(UnknownReason("timeout".into()))
        );
    }

    #[test]
    fn connect_errors() {
        let e = |k| io::Error::from(k);
        assert_eq!(
            Reason::from_connect_error(&e(io::ErrorKind::ConnectionRefused)),
            Reason::ConnectRefused
        );
        assert_eq!(
            Reason::from_connect_error(&e(io::ErrorKind::TimedOut)),
            Reason::ConnectTimeout
        );
        assert_eq!(
            Reason::from_connect_error(&e(io::ErrorKind::AddrNotAvailable)),
            Reason::ConnectError
        );
    }
}
