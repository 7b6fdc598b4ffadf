//! relayd's `check http` and `check https`: [`Http`].
//!
//! From relayd (`check_http.c`, `parse.y`): `check http "/path" code N` sends
//! `HEAD /path HTTP/1.0` (or `HTTP/1.1` with a `Host` header when `host H` is given) and
//! the host is up when the status code equals `N`; `check http "/path" digest D` sends a
//! `GET` and compares the SHA-1 or MD5 digest of the body with `D` (the status is not
//! looked at). `https` does the same over TLS, unverified by default.
//!
//! Responses are parsed with [`httparse`] (see the private `response` module); the body
//! of a `GET` is framed by `Content-Length`, by chunked transfer encoding, or by the end
//! of the connection, as RFC 9112 section 6.3 orders them.

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
    Digest(Digest),
}

/// relayd's `check http "/path" [host H] code N | digest D`, and `check https` with
/// [`tls`](Http::tls).
///
/// Defaults: `HTTP/1.0` without `Host`; bodies up to 1 MiB for digests.
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

    /// `check http "path" digest D`: `GET path`, up when the body's digest is `digest`
    /// (40 hex digits for SHA-1, 32 for MD5).
    pub fn digest(path: &str, digest: &str) -> Result<Self, Error> {
        Self::new(path, Expect::Digest(digest.parse()?))
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

    /// The largest body read for a digest (default 1 MiB); a larger one fails with
    /// [`Reason::InvalidResponse`].
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// The request this check sends.
    pub fn request(&self) -> Vec<u8> {
        let method = match self.expect {
            Expect::Code(_) => "HEAD",
            Expect::Digest(_) => "GET",
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
            limit: MAX_HEAD
                .saturating_add(self.max_body)
                .saturating_add(MAX_HEAD),
            probe,
        };
        let head = r.head().await?;
        match self.expect {
            Expect::Code(code) if head.code == code => Ok(()),
            Expect::Code(code) => Err(Failure::new(Reason::HttpCodeMismatch)
                .with_detail(format!("expected {code}, got {}", head.code))),
            Expect::Digest(want) => {
                let body = r.body(&head, self.max_body).await?;
                let got = want.of(&body);
                if got == want {
                    Ok(())
                } else {
                    Err(Failure::new(Reason::HttpDigestMismatch)
                        .with_detail(format!("expected {want}, got {got}")))
                }
            }
        }
    }
}

impl Check for Http {
    fn name(&self) -> &'static str {
        match (self.transport.is_tls(), self.expect) {
            (false, Expect::Code(_)) => "http code",
            (false, Expect::Digest(_)) => "http digest",
            (true, Expect::Code(_)) => "https code",
            (true, Expect::Digest(_)) => "https digest",
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
}
