//! The portable copy: read into a user-space buffer, write it out.
//!
//! The buffer exists only while a burst of data is moving: it is allocated when the
//! source becomes readable and dropped as soon as the source would block with every
//! byte written, so an idle session holds no buffer. Reading appends into the buffer's
//! spare capacity (`try_read_buf`), so a fresh buffer is never zeroed.

use std::io;

use tokio::net::TcpStream;

use super::Direction;

/// Bytes read per system call. Large enough that a bulk transfer costs few calls; it
/// is held only while data is moving.
const BUFFER: usize = 64 * 1024;

/// Why [`copy`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stopped {
    /// EOF on the source, every byte written.
    Eof,
    /// The byte limit was reached with every byte read also written: the caller may
    /// continue the direction another way (splice) without reordering anything.
    Limit,
}

/// Copies `src` to `dst` until EOF on `src`, or until at least `limit` bytes were
/// copied by this call.
pub(super) async fn copy(
    src: &TcpStream,
    dst: &TcpStream,
    dir: &Direction<'_>,
    limit: u64,
) -> io::Result<Stopped> {
    let mut copied = 0u64;
    loop {
        super::read_ready(src).await?;
        let mut buf = Vec::with_capacity(BUFFER);
        loop {
            buf.clear();
            match src.try_read_buf(&mut buf) {
                Ok(0) => return Ok(Stopped::Eof),
                Ok(n) => {
                    write_all(dst, &buf, dir).await?;
                    copied += n as u64;
                    if copied >= limit {
                        return Ok(Stopped::Limit);
                    }
                }
                // Spurious readiness or the burst is over: drop the buffer and wait.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

async fn write_all(dst: &TcpStream, mut data: &[u8], dir: &Direction<'_>) -> io::Result<()> {
    while !data.is_empty() {
        super::write_ready(dst).await?;
        match dst.try_write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                dir.delivered(n);
                data = &data[n..];
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
