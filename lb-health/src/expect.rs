//! relayd's `check send "data" expect "pattern"`: [`SendExpect`], with ready-made
//! banner checks for SMTP, POP3 and IMAP.
//!
//! relayd sends the data (or nothing, with `send nothing`), then after every read
//! matches the pattern against the *whole* buffer received so far with `fnmatch(3)`,
//! flags 0 (`check_tcp.c`, `check_send_expect`), which sees the buffer up to its first
//! NUL byte. A match marks the host up at once; a mismatch waits for more data. When
//! the server closes the connection first, the host becomes *unknown* (`HOST_UNKNOWN`,
//! which relayd does not count towards `retry`); at the timeout it is down, `expect
//! mismatch` with what was received (relayd's "send/expect failed"), or `read timeout`
//! when nothing came. We match with our own [`fnmatch`](crate::fnmatch::fnmatch()), byte
//! for byte the C library's.
//!
//! Two refinements over relayd, deciding sooner what relayd would decide later:
//! - when the received bytes already differ from the pattern's literal prefix (`220*`
//!   against `500 ...`), or a NUL byte has frozen what fnmatch sees without a match,
//!   no later data can match: the check fails at once, down, instead of waiting for
//!   the end of the connection (unknown in relayd) or the timeout (down);
//! - at most 64 KiB are read; a server that sends more without a match is down
//!   (relayd reads until memory runs out).

use futures_util::future::BoxFuture;

use crate::conn::{self, excerpt, Transport};
use crate::fnmatch::fnmatch;
#[cfg(feature = "tls")]
use crate::TlsOptions;
use crate::{Check, Error, Failure, Outcome, Probe, Reason};

/// The most a send/expect check reads before giving up on a match.
const READ_LIMIT: usize = 64 * 1024;

/// relayd's `check send "data" expect "pattern" [tls]`.
///
/// ```
/// use lb_health::SendExpect;
/// let smtp = SendExpect::smtp(); // send nothing, expect "220*"
/// let redis = SendExpect::new("PING\r\n", "+PONG*")?;
/// assert_eq!(smtp.pattern(), "220*");
/// assert!(SendExpect::new("", "no\0nul").is_err());
/// # let _ = redis;
/// # Ok::<(), lb_health::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct SendExpect {
    send: Vec<u8>,
    pattern: String,
    prefix: Vec<u8>,
    transport: Transport,
}

impl SendExpect {
    /// Sends `send` (exactly these bytes: add `"\r\n"` if the protocol wants it), then
    /// expects the received data to match the fnmatch pattern `expect` (see
    /// [`fnmatch`](crate::fnmatch::fnmatch()): every pattern is valid, but a NUL byte is
    /// refused, as fnmatch would not see what follows it).
    pub fn new(send: impl Into<Vec<u8>>, expect: &str) -> Result<Self, Error> {
        if expect.contains('\0') {
            return Err(Error::InvalidPattern {
                pattern: expect.to_owned(),
                reason: "it contains a NUL byte, which ends the pattern for fnmatch(3)".to_owned(),
            });
        }
        // Bytes before the first metacharacter must start the data as they are.
        let prefix = expect
            .bytes()
            .take_while(|b| !matches!(b, b'*' | b'?' | b'[' | b'\\'))
            .collect();
        Ok(SendExpect {
            send: send.into(),
            pattern: expect.to_owned(),
            prefix,
            transport: Transport::default(),
        })
    }

    /// relayd's `send nothing expect "pattern"`: reads the server's banner.
    pub fn banner(expect: &str) -> Result<Self, Error> {
        Self::new(Vec::new(), expect)
    }

    /// An SMTP banner check: `send nothing expect "220*"`.
    pub fn smtp() -> Self {
        Self::constant("220*")
    }

    /// A POP3 banner check: `send nothing expect "+OK*"`.
    pub fn pop3() -> Self {
        Self::constant("+OK*")
    }

    /// An IMAP banner check: `send nothing expect "* OK*"`.
    pub fn imap() -> Self {
        Self::constant("* OK*")
    }

    fn constant(expect: &'static str) -> Self {
        // The three banner patterns are constants without NUL, checked by a unit test.
        Self::banner(expect).expect("banner patterns hold no NUL")
    }

    /// The same check over TLS (relayd's trailing `tls`).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, options: TlsOptions) -> Self {
        self.transport.tls = Some(options);
        self
    }

    /// The expected pattern, as given.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The data sent first (empty for a banner check).
    pub fn data(&self) -> &[u8] {
        &self.send
    }

    /// Whether `received`, the whole buffer so far, matches: relayd's
    /// `fnmatch(pattern, received, 0)`, which reads `received` up to its first NUL.
    pub fn matches(&self, received: &[u8]) -> bool {
        fnmatch(self.pattern.as_bytes(), received)
    }

    /// Whether more data could still make `received` match: false once it differs
    /// from the pattern's literal prefix, or once a NUL byte ends what fnmatch sees.
    fn may_match_later(&self, received: &[u8]) -> bool {
        if received.contains(&0) {
            return false;
        }
        let n = received.len().min(self.prefix.len());
        received[..n] == self.prefix[..n]
    }

    fn mismatch(&self, received: &[u8], how: &str) -> Failure {
        Failure::new(Reason::ExpectMismatch).with_detail(format!(
            "expected {:?}, received {}{how}",
            self.pattern,
            excerpt(received)
        ))
    }

    async fn run(&self, probe: &Probe) -> Outcome {
        let mut stream = match self.transport.open(probe, None).await {
            Ok(stream) => stream,
            Err(f) => return Outcome::Down(f),
        };
        if let Err(f) = conn::send(&mut stream, &self.send, probe.deadline()).await {
            return Outcome::Down(f);
        }
        let mut buf = Vec::new();
        loop {
            match conn::read_more(&mut stream, &mut buf, READ_LIMIT, probe.deadline()).await {
                // relayd matches once more at the end of the stream: `send nothing expect
                // "*"` is up against a server that closes at once.
                Ok(0) if self.matches(&buf) => return Outcome::Up,
                Ok(0) if buf.len() >= READ_LIMIT => {
                    return Outcome::Down(self.mismatch(&buf, " (read limit reached)"))
                }
                // relayd's HOST_UNKNOWN: the server said all it will say, without a match.
                Ok(0) => {
                    return Outcome::Unknown(self.mismatch(&buf, " before the connection closed"))
                }
                Ok(_) if self.matches(&buf) => return Outcome::Up,
                Ok(_) if !self.may_match_later(&buf) => {
                    return Outcome::Down(self.mismatch(&buf, ""))
                }
                Ok(_) => {}
                Err(f) if f.reason() == Reason::ReadTimeout && !buf.is_empty() => {
                    return Outcome::Down(self.mismatch(&buf, " before the timeout"))
                }
                Err(f) => return Outcome::Down(f),
            }
        }
    }
}

impl Check for SendExpect {
    fn name(&self) -> &'static str {
        if self.transport.is_tls() {
            "send/expect tls"
        } else {
            "send/expect"
        }
    }

    fn check<'a>(&'a self, probe: &'a Probe) -> BoxFuture<'a, Outcome> {
        Box::pin(self.run(probe))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_patterns() {
        assert!(SendExpect::smtp().matches(b"220 mx.example.com ESMTP\r\n"));
        assert!(SendExpect::pop3().matches(b"+OK POP3 ready\r\n"));
        assert!(SendExpect::imap().matches(b"* OK [CAPABILITY IMAP4rev1] ready\r\n"));
        assert!(!SendExpect::smtp().matches(b"554 no service\r\n"));
        assert!(!SendExpect::imap().matches(b"* BYE\r\n"));
    }

    #[test]
    fn fnmatch_semantics() {
        let c = SendExpect::new("", "HTTP/1.? 200*").unwrap();
        assert!(c.matches(b"HTTP/1.1 200 OK\r\nServer: x/y\r\n"));
        assert!(!c.matches(b"HTTP/1.1 404 Not Found\r\n"));
        let c = SendExpect::new("", "[0-9][0-9][0-9] *").unwrap();
        assert!(c.matches(b"250 ok"));
        assert!(!c.matches(b"25 ok"));
    }

    #[test]
    fn literal_prefix_decides_early() {
        let c = SendExpect::smtp();
        assert!(c.may_match_later(b"22"));
        assert!(c.may_match_later(b"2201"));
        assert!(!c.may_match_later(b"5"));
        assert!(!c.may_match_later(b"22\0"));
        let any = SendExpect::banner("*OK*").unwrap();
        assert!(any.may_match_later(b"anything"));
        let escaped = SendExpect::banner("a\\*b").unwrap();
        assert!(escaped.may_match_later(b"a*"));
        assert!(!escaped.may_match_later(b"b"));
    }

    #[test]
    fn every_pattern_is_valid_but_nul_is_refused() {
        // glob::Pattern refused these; fnmatch(3) accepts them.
        for ok in ["[a-", "**/x**", "[unclosed", "a\\"] {
            assert!(SendExpect::new("", ok).is_ok(), "{ok}");
        }
        let err = SendExpect::new("", "a\0b").unwrap_err();
        assert!(matches!(err, Error::InvalidPattern { .. }), "{err}");
    }

    #[test]
    fn fnmatch_not_glob() {
        // Backslash escapes, `**` anywhere, and bytes that are not UTF-8.
        assert!(SendExpect::banner("OK\\*").unwrap().matches(b"OK*"));
        assert!(!SendExpect::banner("OK\\*").unwrap().matches(b"OK!"));
        assert!(SendExpect::banner("a**b").unwrap().matches(b"a/x/b"));
        assert!(SendExpect::banner("?OK*").unwrap().matches(b"\xffOK"));
        // The match stops at the first NUL, as relayd's strndup does.
        assert!(SendExpect::banner("+OK").unwrap().matches(b"+OK\0garbage"));
    }
}
