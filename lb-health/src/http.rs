//! relayd's `check http` and `check https`: [`Http`].
//!
//! From relayd (`check_http.c`, `parse.y`): `check http "/path" code N` sends
//! `HEAD /path HTTP/1.0` (or `HTTP/1.1` with a `Host` header when `host H` is given) and
//! the host is up when the status code equals `N`; `check http "/path" digest D` sends a
//! `GET` and compares the SHA-1 or MD5 digest of the body with `D` (the status is not
//! looked at). `https` does the same over TLS, unverified by default.
//!
//! Responses are parsed with [`httparse`]; the body of a `GET` is framed by
//! `Content-Length`, by chunked transfer encoding, or by the end of the connection, as
//! RFC 9112 section 6.3 orders them. Interim `1xx` responses are skipped.

use futures_util::future::BoxFuture;
use httparse::Status;

use crate::conn::{self, excerpt, Stream, Transport};
#[cfg(feature = "tls")]
use crate::TlsOptions;
use crate::{Check, Digest, Error, Failure, Outcome, Probe, Reason};

/// The most a response head may take.
const MAX_HEAD: usize = 16 * 1024;
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

fn invalid(detail: impl Into<String>) -> Failure {
    Failure::new(Reason::InvalidResponse).with_detail(detail)
}

/// What the response head says about the body.
#[derive(Debug)]
struct Head {
    code: u16,
    /// Where the body starts in the buffer.
    start: usize,
    framing: Framing,
}

#[derive(Debug, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}

/// A response read incrementally from the stream into one buffer.
struct Reader<'a> {
    stream: Stream,
    buf: Vec<u8>,
    limit: usize,
    probe: &'a Probe,
}

impl Reader<'_> {
    /// Reads more; `Ok(false)` at the end of the stream.
    async fn more(&mut self) -> Result<bool, Failure> {
        if self.buf.len() >= self.limit {
            return Err(invalid("response larger than the read limit"));
        }
        let n = conn::read_more(
            &mut self.stream,
            &mut self.buf,
            self.limit,
            self.probe.deadline(),
        )
        .await?;
        Ok(n > 0)
    }

    /// Reads until `buf` holds at least `len` bytes.
    async fn fill(&mut self, len: usize) -> Result<(), Failure> {
        while self.buf.len() < len {
            if !self.more().await? {
                return Err(invalid("body cut short by the end of the connection"));
            }
        }
        Ok(())
    }

    /// Reads and parses the final (non-1xx) response head.
    async fn head(&mut self) -> Result<Head, Failure> {
        let mut from = 0;
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&self.buf[from..]) {
                Ok(Status::Complete(len)) => {
                    let code = resp.code.unwrap_or(0);
                    if (100..200).contains(&code) && code != 101 {
                        from += len;
                        continue;
                    }
                    let framing = framing(code, resp.headers)?;
                    return Ok(Head {
                        code,
                        start: from + len,
                        framing,
                    });
                }
                Ok(Status::Partial) if self.buf.len() - from >= MAX_HEAD => {
                    return Err(invalid("response head larger than 16 KiB"))
                }
                Ok(Status::Partial) => {
                    if !self.more().await? {
                        return Err(invalid(format!(
                            "connection closed before the end of the response head, after {}",
                            excerpt(&self.buf[from..])
                        )));
                    }
                }
                Err(e) => return Err(invalid(format!("{e} in {}", excerpt(&self.buf[from..])))),
            }
        }
    }

    /// Reads the body that `head` announces, up to `max` bytes.
    async fn body(&mut self, head: &Head, max: usize) -> Result<Vec<u8>, Failure> {
        let too_big = || invalid(format!("body larger than {max} bytes"));
        match head.framing {
            Framing::Length(n) => {
                let n = usize::try_from(n)
                    .ok()
                    .filter(|&n| n <= max)
                    .ok_or_else(too_big)?;
                self.fill(head.start + n).await?;
                Ok(self.buf[head.start..head.start + n].to_vec())
            }
            Framing::UntilClose => loop {
                if self.buf.len() - head.start > max {
                    return Err(too_big());
                }
                if !self.more().await? {
                    return Ok(self.buf[head.start..].to_vec());
                }
            },
            Framing::Chunked => {
                let mut body = Vec::new();
                let mut pos = head.start;
                loop {
                    match httparse::parse_chunk_size(&self.buf[pos..]) {
                        Ok(Status::Complete((used, 0))) => {
                            let _ = used; // trailers are not needed for a digest
                            return Ok(body);
                        }
                        Ok(Status::Complete((used, size))) => {
                            let size = usize::try_from(size)
                                .ok()
                                .filter(|&s| body.len().saturating_add(s) <= max)
                                .ok_or_else(too_big)?;
                            pos += used;
                            self.fill(pos + size + 2).await?;
                            body.extend_from_slice(&self.buf[pos..pos + size]);
                            if &self.buf[pos + size..pos + size + 2] != b"\r\n" {
                                return Err(invalid("chunk not followed by CRLF"));
                            }
                            pos += size + 2;
                        }
                        Ok(Status::Partial) => {
                            if !self.more().await? {
                                return Err(invalid("chunked body cut short"));
                            }
                        }
                        Err(_) => return Err(invalid("invalid chunk size")),
                    }
                }
            }
        }
    }
}

/// How the body of a response with `code` and `headers` ends (RFC 9112, 6.3).
fn framing(code: u16, headers: &[httparse::Header<'_>]) -> Result<Framing, Failure> {
    if code == 204 || code == 304 {
        return Ok(Framing::Length(0));
    }
    let value = |name: &'static str| {
        headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
    };
    if let Some(te) = value("transfer-encoding").next_back() {
        if te.rsplit(',').next().map(str::trim) == Some("chunked") {
            return Ok(Framing::Chunked);
        }
        return Ok(Framing::UntilClose);
    }
    let mut length = None;
    for v in value("content-length") {
        let n: u64 = v
            .parse()
            .map_err(|_| invalid(format!("invalid Content-Length {v:?}")))?;
        if length.is_some_and(|l| l != n) {
            return Err(invalid("conflicting Content-Length headers"));
        }
        length = Some(n);
    }
    Ok(length.map_or(Framing::UntilClose, Framing::Length))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h<'a>(name: &'a str, value: &'a str) -> httparse::Header<'a> {
        httparse::Header {
            name,
            value: value.as_bytes(),
        }
    }

    #[test]
    fn framing_rules() {
        assert_eq!(
            framing(200, &[h("Content-Length", "12")]),
            Ok(Framing::Length(12))
        );
        assert_eq!(framing(200, &[]), Ok(Framing::UntilClose));
        assert_eq!(
            framing(
                200,
                &[
                    h("Transfer-Encoding", "gzip, chunked"),
                    h("Content-Length", "3")
                ]
            ),
            Ok(Framing::Chunked)
        );
        assert_eq!(
            framing(304, &[h("Content-Length", "12")]),
            Ok(Framing::Length(0))
        );
        assert_eq!(
            framing(200, &[h("content-length", "1"), h("Content-Length", "2")])
                .unwrap_err()
                .reason(),
            Reason::InvalidResponse
        );
        assert!(framing(200, &[h("Content-Length", "-1")]).is_err());
    }

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
