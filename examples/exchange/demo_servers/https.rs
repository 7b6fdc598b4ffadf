//! A small HTTP/1.1 server for the HTTPS relay (inside TLS, set up by the caller):
//! Outlook Web App's logon page, naming the server, at `/`, `/owa` and
//! `/owa/auth/logon.aspx` (the health check's path), plus Exchange 2013's
//! `/owa/healthcheck.htm`.
//!
//! One request per connection: the head is read up to the blank line (at most
//! [`MAX_HEAD`] bytes), the request line is parsed (method, target, `HTTP/1.x`), and
//! the answer carries `Content-Length` and `Connection: close`. `HEAD` gets the
//! headers only; other methods get `405`, unknown paths `404`, a malformed head `400`.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::lines::IDLE;

/// The largest request head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// Serves one request on `stream` as `server`.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    server: &str,
) -> io::Result<()> {
    let head = match tokio::time::timeout(IDLE, read_head(&mut stream)).await {
        Ok(head) => head?,
        Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "client idle")),
    };
    let response = match head.as_deref().map(request_line) {
        // The client closed without a request.
        None => return Ok(()),
        Some(Some((method, target))) => respond(method, target, server),
        Some(None) => page(
            400,
            "Bad Request",
            "text/plain",
            "malformed request\n".into(),
            true,
        ),
    };
    stream.write_all(&response).await?;
    stream.shutdown().await
}

/// The request head up to and without the blank line, `None` if the client closed
/// first. An over-long head is an error.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<Option<String>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.truncate(end);
            return Ok(Some(String::from_utf8_lossy(&buf).into_owned()));
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head too long",
            ));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// `(method, target)` from the head's first line, if it is `METHOD SP target SP HTTP/1.x`.
fn request_line(head: &str) -> Option<(&str, &str)> {
    let line = head.lines().next()?;
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    let valid = parts.next().is_none()
        && !method.is_empty()
        && method.bytes().all(|b| b.is_ascii_uppercase())
        && target.starts_with('/')
        && matches!(version, "HTTP/1.0" | "HTTP/1.1");
    valid.then_some((method, target))
}

fn respond(method: &str, target: &str, server: &str) -> Vec<u8> {
    let head_only = method == "HEAD";
    if !matches!(method, "GET" | "HEAD") {
        return page(
            405,
            "Method Not Allowed",
            "text/plain",
            "only GET and HEAD\n".into(),
            false,
        );
    }
    let path = target.split(['?', '#']).next().unwrap_or(target);
    match path {
        "/" | "/owa" | "/owa/" | "/owa/auth/logon.aspx" => page(
            200,
            "OK",
            "text/html; charset=utf-8",
            owa_page(server),
            head_only,
        ),
        "/owa/healthcheck.htm" => page(
            200,
            "OK",
            "text/html",
            format!("200 OK<br/>{server}\r\n"),
            head_only,
        ),
        _ => page(
            404,
            "Not Found",
            "text/plain",
            format!("{path} is not on {server}\n"),
            head_only,
        ),
    }
}

fn page(code: u16, reason: &str, content_type: &str, body: String, head_only: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\nServer: lb-demo-exchange\r\n",
        body.len()
    );
    if code == 405 {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("\r\n");
    if !head_only {
        out.push_str(&body);
    }
    out.into_bytes()
}

fn owa_page(server: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>Outlook Web App - {server}</title></head>\n\
         <body style=\"font-family: Segoe UI, sans-serif; margin: 3em\">\n\
         <h1>Outlook Web App</h1>\n\
         <p>Served by <b id=\"server\">{server}</b>, a demo Exchange server of the <code>lb</code> exchange example.</p>\n\
         <p>Domain\\user name: <input disabled> Password: <input type=\"password\" disabled></p>\n\
         <p><small>Sign-in is not part of the demo.</small></p>\n\
         </body>\n</html>\n"
    )
}
