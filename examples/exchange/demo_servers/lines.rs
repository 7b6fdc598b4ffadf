//! Reading the line-based protocols (POP3, IMAP, the RPC echo) with limits: a line may
//! not exceed [`MAX_LINE`] bytes, and a client silent for [`IDLE`] is disconnected.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// The longest line a demo server reads (RFC 1939 allows 255 octets for POP3
/// commands; IMAP allows more, a demo needs less).
pub const MAX_LINE: usize = 4096;
/// How long a demo server waits for the next line.
pub const IDLE: Duration = Duration::from_secs(300);

/// The next line without its `\r\n` (or `\n`), or `None` at the end of the stream.
/// An over-long line or a silent client is an error, which ends the session.
pub async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let mut limited = (&mut *reader).take(MAX_LINE as u64);
    let n = tokio::time::timeout(IDLE, limited.read_until(b'\n', &mut buf))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "client idle"))??;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("line longer than {MAX_LINE} bytes, or cut short"),
        ));
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}
