//! relayd's `check http` and `check https`: [`Http`].
//!
//! From relayd (`check_tcp.c`, `parse.y`): `check http "/path" code N` sends
//! `HEAD /path HTTP/1.0` (or `HTTP/1.1` with `Host` and `Connection: close` when
//! `host H` is given) and the host is up when the status code of the first status line
//! equals `N` (an interim `100 Continue` is that first line: relayd does not skip it,
//! nor do we); `check http "/path" digest D` sends a `GET` and compares `D` with the
//! SHA-1 or MD5 digest of the bytes after the first blank line (`\r\n\r\n`) up to the
//! first NUL byte, framing and all (`check_http_digest`; the status is not looked at).
//! relayd reads until the server closes, or until the timeout, and then judges what
//! it has; so do we. `https` does the same over TLS, unverified and without SNI by
//! default.
//!
//! [`Http::body_digest`] is ours: the digest of the *decoded* body, framed by
//! `Content-Length`, chunked transfer encoding or the end of the connection (RFC 9112,
//! section 6.3), parsed with [`httparse`] (the private `response` module). It is worth
//! having for an `HTTP/1.1` check (`host H`): servers chunk dynamic pages as they
//! please, and relayd's digest of chunk sizes then changes from one check to the next.

use futures_util::future::BoxFuture;

use crate::conn::{self, Transport};
use crate::response::{Reader, MAX_HEAD};
#[cfg(feature = "tls")]
use crate::TlsOptions;
use crate::{Check, Digest, Error, Failure, Outcome, Probe, Reason};

/// The default limit on a body read for its digest.
const DEFAULT_MAX_BODY: usize = 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Code(u16),
    /// relayd's: the raw bytes after the first blank line, up to the first NUL.
    Digest(Digest),
    /// Ours: the decoded body.
    BodyDigest(Digest),
}

/// relayd's `check http "/path" [host H] code N | digest D`, and `check https` with
/// [`tls`](Http::tls).
///
/// Defaults: `HTTP/1.0` without `Host`; bodies up to 1 MiB for digests
/// ([`max_body`](Http::max_body), at most [`Http::MAX_BODY`]).
///
/// ```
/// use lb_health::Http;
/// let owa = Http::code("/owa/healthcheck.htm", 200)?.host("mail.example.com")?;
/// assert_eq!(owa.request(), b"HEAD /owa/healthcheck.htm HTTP/1.1\r\nHost: mail.example.com\r\nConnection: close\r\n\r\n");
/// let page = Http::digest("/", "da39a3ee5e6b4b0d3255bfef95601890afd80709")?;
/// assert_eq!(page.request(), b"GET / HTTP/1.0\r\n\r\n");
/// assert!(Http::code("no-slash", 200).is_err());
/// # Ok::<(), lb_health::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Http {
    path: String,
    host: Option<String>,
    expect: Expect,
    max_body: usize,
    transport: Transport,
}

impl Http {
    /// `check http "path" code N`: `HEAD path`, up when the status is `code`.
    pub fn code(path: &str, code: u16) -> Result<Self, Error> {
        if !(100..=999).contains(&code) {
            return Err(Error::InvalidCode { code });
        }
        Self::new(path, Expect::Code(code))
    }

    /// `check http "path" digest D`: `GET path`, up when the digest of what follows the
    /// first blank line of the response, up to the first NUL byte, is `digest` (40 hex
    /// digits for SHA-1, 32 for MD5, either case), as relayd computes it.
    pub fn digest(path: &str, digest: &str) -> Result<Self, Error> {
        Self::new(path, Expect::Digest(digest.parse()?))
    }

    /// Like [`digest`](Http::digest), but of the decoded body: without chunk framing,
    /// NUL bytes included, interim `1xx` responses skipped. Not in relayd.
    pub fn body_digest(path: &str, digest: &str) -> Result<Self, Error> {
        Self::new(path, Expect::BodyDigest(digest.parse()?))
    }

    fn new(path: &str, expect: Expect) -> Result<Self, Error> {
        if !path.starts_with('/') || !is_token_text(path) {
            return Err(Error::InvalidPath {
                path: path.to_owned(),
            });
        }
        Ok(Http {
            path: path.to_owned(),
            host: None,
            expect,
            max_body: DEFAULT_MAX_BODY,
            transport: Transport::default(),
        })
    }

    /// `host H`: send `HTTP/1.1` with this `Host` header (also the TLS server name).
    pub fn host(mut self, host: &str) -> Result<Self, Error> {
        if host.is_empty() || !is_token_text(host) {
            return Err(Error::InvalidHost {
                host: host.to_owned(),
            });
        }
        self.host = Some(host.to_owned());
        Ok(self)
    }

    /// `check https`: the same over TLS.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, options: TlsOptions) -> Self {
        self.transport.tls = Some(options);
        self
    }

    /// The most a digest check reads: [`max_body`](Http::max_body) is clamped to it.
    /// (relayd has no limit but memory; a backend must not be able to make a check
    /// hold more than this.)
    pub const MAX_BODY: usize = 64 * 1024 * 1024;

    /// The largest body read for a digest (default 1 MiB); a larger one fails with
    /// [`Reason::InvalidResponse`]. Values above [`Http::MAX_BODY`] are clamped to it.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes.min(Self::MAX_BODY);
        self
    }

    /// The request this check sends.
    pub fn request(&self) -> Vec<u8> {
        let method = match self.expect {
            Expect::Code(_) => "HEAD",
            Expect::Digest(_) | Expect::BodyDigest(_) => "GET",
        };
        let text = match &self.host {
            None => format!("{method} {} HTTP/1.0\r\n\r\n", self.path),
            Some(host) => format!(
                "{method} {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
                self.path
            ),
        };
        text.into_bytes()
    }

    async fn run(&self, probe: &Probe) -> Result<(), Failure> {
        let mut stream = self.transport.open(probe, self.host.as_deref()).await?;
        conn::send(&mut stream, &self.request(), probe.deadline()).await?;
        let mut r = Reader {
            stream,
            buf: Vec::new(),
            // Both terms are bounded (MAX_BODY), so this cannot overflow.
            limit: MAX_HEAD + self.max_body,
            probe,
        };
        let (want, got) = match self.expect {
            Expect::Code(code) => {
                let head = r.head(false).await?;
                if head.code == code {
                    return Ok(());
                }
                return Err(Failure::new(Reason::HttpCodeMismatch)
                    .with_detail(format!("expected {code}, got {}", head.code)));
            }
            Expect::Digest(want) => {
                r.read_to_end().await?;
                let body = raw_body(&r.buf).ok_or_else(|| {
                    Failure::new(Reason::InvalidResponse)
                        .with_detail("no blank line ending the response head")
                })?;
                if body.len() > self.max_body {
                    return Err(Failure::new(Reason::InvalidResponse)
                        .with_detail(format!("body larger than {} bytes", self.max_body)));
                }
                (want, want.of(body))
            }
            Expect::BodyDigest(want) => {
                r.limit = r.limit.saturating_add(MAX_HEAD);
                let head = r.head(true).await?;
                let body = r.body(&head, self.max_body).await?;
                (want, want.of(&body))
            }
        };
        if got == want {
            Ok(())
        } else {
            Err(Failure::new(Reason::HttpDigestMismatch)
                .with_detail(format!("expected {want}, got {got}")))
        }
    }
}

/// What relayd's `check_http_digest` hashes: the response as a C string (up to its
/// first NUL), after the first `\r\n\r\n`. `None` without a blank line.
fn raw_body(response: &[u8]) -> Option<&[u8]> {
    let text = response
        .iter()
        .position(|&b| b == 0)
        .map_or(response, |nul| &response[..nul]);
    let at = text.windows(4).position(|w| w == b"\r\n\r\n")?;
    Some(&text[at + 4..])
}

impl Check for Http {
    fn name(&self) -> &'static str {
        match (self.transport.is_tls(), self.expect) {
            (false, Expect::Code(_)) => "http code",
            (false, Expect::Digest(_)) => "http digest",
            (false, Expect::BodyDigest(_)) => "http body digest",
            (true, Expect::Code(_)) => "https code",
            (true, Expect::Digest(_)) => "https digest",
            (true, Expect::BodyDigest(_)) => "https body digest",
        }
    }

    fn check<'a>(&'a self, probe: &'a Probe) -> BoxFuture<'a, Outcome> {
        Box::pin(async move { self.run(probe).await.into() })
    }
}

/// Visible ASCII only: no spaces or control characters that would break the request.
fn is_token_text(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        let c = Http::code("/", 200).unwrap();
        assert_eq!(c.request(), b"HEAD / HTTP/1.0\r\n\r\n");
        assert_eq!(c.name(), "http code");
        assert!(Http::code("/a b", 200).is_err());
        assert!(Http::code("/", 99).is_err());
        assert!(Http::code("/", 200).unwrap().host("a\r\nX: y").is_err());
    }

    #[test]
    fn relayds_digest_input() {
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        assert_eq!(raw_body(chunked), Some(&b"3\r\nabc\r\n0\r\n\r\n"[..]));
        assert_eq!(raw_body(b"HTTP/1.0 200 OK\r\n\r\nab\0cd"), Some(&b"ab"[..]));
        assert_eq!(raw_body(b"HTTP/1.0 200 OK\r\n\0\r\n\r\nab"), None);
        assert_eq!(raw_body(b"HTTP/1.0 200 OK\r\n"), None);
    }

    #[test]
    fn max_body_is_clamped() {
        let c = Http::digest("/", &"0".repeat(40))
            .unwrap()
            .max_body(usize::MAX);
        assert_eq!(c.max_body, Http::MAX_BODY);
        assert_eq!(c.max_body(10).max_body, 10);
    }
}
