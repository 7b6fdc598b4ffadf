//! relayd's `check send "data" expect "pattern"`: [`SendExpect`], with ready-made
//! banner checks for SMTP, POP3 and IMAP.
//!
//! relayd sends the data (or nothing, with `send nothing`), then after every read
//! matches the pattern against the *whole* buffer received so far with `fnmatch(3)`,
//! flags 0 (`check_tcp.c`, `check_send_expect`): a match marks the host up at once, a
//! mismatch waits for more data, and the end of the stream or the timeout decides
//! down. We match with the [`glob`] crate's `Pattern`, whose default options are
//! fnmatch's with flags 0 (`*` also matches `/` and newlines, a leading `.` is not
//! special).
//!
//! Two refinements over relayd, both only deciding sooner what relayd decides later:
//! when the received bytes already differ from the pattern's literal prefix (`220*`
//! against `500 ...`), the check fails at once instead of waiting for the timeout; and
//! a timeout after data that did not match reports `expect mismatch` with what was
//! received, rather than `read timeout`.

use futures_util::future::BoxFuture;
use glob::Pattern;

use crate::conn::{self, excerpt, Transport};
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
/// assert!(SendExpect::new("", "[unclosed").is_err());
/// # let _ = redis;
/// # Ok::<(), lb_health::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct SendExpect {
    send: Vec<u8>,
    pattern: Pattern,
    source: String,
    prefix: Vec<u8>,
    transport: Transport,
}

impl SendExpect {
    /// Sends `send` (exactly these bytes: add `"\r\n"` if the protocol wants it), then
    /// expects the received data to match the glob `expect`.
    pub fn new(send: impl Into<Vec<u8>>, expect: &str) -> Result<Self, Error> {
        let pattern = Pattern::new(expect).map_err(|e| Error::InvalidPattern {
            pattern: expect.to_owned(),
            reason: e.msg.to_owned(),
        })?;
        let prefix = expect
            .split(['*', '?', '['])
            .next()
            .unwrap_or_default()
            .as_bytes()
            .to_vec();
        Ok(SendExpect {
            send: send.into(),
            pattern,
            source: expect.to_owned(),
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
        // The three banner patterns are constants, checked by a unit test.
        Self::banner(expect).expect("banner patterns are valid globs")
    }

    /// The same check over TLS (relayd's trailing `tls`).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, options: TlsOptions) -> Self {
        self.transport.tls = Some(options);
        self
    }

    /// The expected pattern, as given.
    pub fn pattern(&self) -> &str {
        &self.source
    }

    /// The data sent first (empty for a banner check).
    pub fn data(&self) -> &[u8] {
        &self.send
    }

    /// Whether `received`, the whole buffer so far, matches.
    fn matches(&self, received: &[u8]) -> bool {
        self.pattern.matches(&String::from_utf8_lossy(received))
    }

    /// Whether more data could still make `received` match: false once it differs
    /// from the pattern's literal prefix.
    fn may_match_later(&self, received: &[u8]) -> bool {
        let n = received.len().min(self.prefix.len());
        received[..n] == self.prefix[..n]
    }

    fn mismatch(&self, received: &[u8], how: &str) -> Failure {
        Failure::new(Reason::ExpectMismatch).with_detail(format!(
            "expected {:?}, received {}{how}",
            self.source,
            excerpt(received)
        ))
    }

    async fn run(&self, probe: &Probe) -> Result<(), Failure> {
        let mut stream = self.transport.open(probe, None).await?;
        conn::send(&mut stream, &self.send, probe.deadline()).await?;
        let mut buf = Vec::new();
        loop {
            match conn::read_more(&mut stream, &mut buf, READ_LIMIT, probe.deadline()).await {
                Ok(0) if buf.len() >= READ_LIMIT => {
                    return Err(self.mismatch(&buf, " (read limit reached)"))
                }
                Ok(0) => return Err(self.mismatch(&buf, " before the connection closed")),
                Ok(_) if self.matches(&buf) => return Ok(()),
                Ok(_) if !self.may_match_later(&buf) => return Err(self.mismatch(&buf, "")),
                Ok(_) => {}
                Err(f) if f.reason() == Reason::ReadTimeout && !buf.is_empty() => {
                    return Err(self.mismatch(&buf, " before the timeout"))
                }
                Err(f) => return Err(f),
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
        Box::pin(async move { self.run(probe).await.into() })
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
        let any = SendExpect::banner("*OK*").unwrap();
        assert!(any.may_match_later(b"anything"));
    }

    #[test]
    fn invalid_pattern() {
        let err = SendExpect::new("", "[a-").unwrap_err();
        assert!(matches!(err, Error::InvalidPattern { .. }), "{err}");
    }
}
