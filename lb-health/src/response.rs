//! Reading an HTTP response for a check: the head with [`httparse`], then the body
//! framed as RFC 9112 section 6.3 orders it (`Content-Length`, chunked transfer
//! encoding, or the end of the connection); or, for relayd's digest, everything until
//! the server closes. Interim `1xx` responses are skipped only when asked (relayd's
//! code check reads the first status line, whatever it is).

use httparse::Status;

use crate::conn::{self, excerpt, Stream};
use crate::{Failure, Probe, Reason};

/// The most a response head may take.
pub(crate) const MAX_HEAD: usize = 16 * 1024;

fn invalid(detail: impl Into<String>) -> Failure {
    Failure::new(Reason::InvalidResponse).with_detail(detail)
}

/// What the response head says about the body.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) code: u16,
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
pub(crate) struct Reader<'a> {
    pub(crate) stream: Stream,
    pub(crate) buf: Vec<u8>,
    pub(crate) limit: usize,
    pub(crate) probe: &'a Probe,
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

    /// Reads until the server closes, as relayd does before judging a response. At the
    /// timeout, what arrived is judged too (relayd's `tcp_read_buf` calls its
    /// `validate_close` then); with nothing received, it is a read timeout.
    pub(crate) async fn read_to_end(&mut self) -> Result<(), Failure> {
        loop {
            match self.more().await {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(f) if f.reason() == Reason::ReadTimeout && !self.buf.is_empty() => {
                    return Ok(())
                }
                Err(f) => return Err(f),
            }
        }
    }

    /// Reads and parses the response head: the first one, or with `skip_interim` the
    /// final (non-1xx) one.
    pub(crate) async fn head(&mut self, skip_interim: bool) -> Result<Head, Failure> {
        let mut from = 0;
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&self.buf[from..]) {
                Ok(Status::Complete(len)) => {
                    let code = resp.code.unwrap_or(0);
                    if skip_interim && (100..200).contains(&code) && code != 101 {
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
    pub(crate) async fn body(&mut self, head: &Head, max: usize) -> Result<Vec<u8>, Failure> {
        let too_big = || invalid(format!("body larger than {max} bytes"));
        match head.framing {
            Framing::Length(n) => {
                // Checked: a hostile Content-Length must not overflow the end index.
                let end = usize::try_from(n)
                    .ok()
                    .filter(|&n| n <= max)
                    .and_then(|n| head.start.checked_add(n))
                    .ok_or_else(too_big)?;
                self.fill(end).await?;
                Ok(self.buf[head.start..end].to_vec())
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
                            // Checked: a hostile chunk size must not overflow an index.
                            let size = usize::try_from(size)
                                .ok()
                                .filter(|&s| body.len().saturating_add(s) <= max)
                                .ok_or_else(too_big)?;
                            let start = pos + used;
                            let data_end = start.checked_add(size).ok_or_else(too_big)?;
                            let chunk_end = data_end.checked_add(2).ok_or_else(too_big)?;
                            self.fill(chunk_end).await?;
                            body.extend_from_slice(&self.buf[start..data_end]);
                            if &self.buf[data_end..chunk_end] != b"\r\n" {
                                return Err(invalid("chunk not followed by CRLF"));
                            }
                            pos = chunk_end;
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
}
