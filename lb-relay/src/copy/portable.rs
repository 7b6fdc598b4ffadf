//! The portable copy: read into a user-space buffer, write it out.
//!
//! Reads go into one scratch buffer per thread, and whatever the destination accepts at
//! once is written from there, so a short exchange (a banner, a request, a response)
//! allocates nothing. Only when the destination pushes back (its send buffer is full)
//! are the unwritten bytes moved into a buffer of the direction's own, held until
//! they are written and dropped when the burst ends (the source would block), so an
//! idle session holds no buffer.
//!
//! A freshly connected backend socket has no readiness recorded by tokio yet (its
//! connect completed without the I/O driver's help, see `connect`), so the first write
//! to a destination goes straight to the socket instead of waiting for the driver's
//! first event: one trip through the scheduler less per session. Once a write would
//! block, writes wait for tokio's readiness as usual.

use std::cell::RefCell;
use std::io::{self, Read};

use tokio::io::Interest;
use tokio::net::TcpStream;

use super::Direction;

/// Bytes read per system call. Large enough that a bulk transfer costs few calls; it
/// is one buffer per thread, however many sessions run.
const SCRATCH: usize = 64 * 1024;

thread_local! {
    /// The read buffer of every copy on this thread. Borrowed only between two
    /// `.await`s, so no two copies ever hold it at once.
    static SCRATCH_BUFFER: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH].into_boxed_slice());
}

/// Why [`copy`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stopped {
    /// EOF on the source, every byte written.
    Eof,
    /// The byte limit was reached with every byte read also written: the caller may
    /// continue the direction another way (splice) without reordering anything.
    Limit,
}

/// What one read-and-write step did.
enum Step {
    /// The source has nothing to read now.
    WouldBlock,
    /// EOF on the source.
    Eof,
    /// `n` bytes read; those the destination did not take are in the backlog.
    Read(usize),
}

/// Whether the next write to a destination goes straight to the socket (a fresh
/// backend socket, whose readiness tokio has not seen yet) or waits for tokio's
/// readiness first.
#[derive(Debug)]
pub(super) struct WriteMode {
    speculate: bool,
}

impl WriteMode {
    /// The first write goes straight to the socket.
    pub(super) fn fresh() -> Self {
        WriteMode { speculate: true }
    }

    /// One non-blocking write of `data` to `dst`.
    fn try_write(&mut self, dst: &TcpStream, data: &[u8]) -> io::Result<usize> {
        if self.speculate {
            let result = send(dst, data);
            if matches!(&result, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
                // From now on, tokio's readiness says when to try again.
                self.speculate = false;
            }
            return result;
        }
        dst.try_io(Interest::WRITABLE, || send(dst, data))
    }
}

/// `send(2)` on a non-blocking socket, without `SIGPIPE` where the system has the flag
/// (as the standard library's own writes).
fn send(dst: &TcpStream, data: &[u8]) -> io::Result<usize> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let flags = libc::MSG_NOSIGNAL;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let flags = 0;
    socket2::SockRef::from(dst).send_with_flags(data, flags)
}

/// Copies `src` to `dst` until EOF on `src`, or until at least `limit` bytes were
/// copied by this call.
pub(super) async fn copy(
    src: &TcpStream,
    dst: &TcpStream,
    dir: &Direction<'_>,
    mode: &mut WriteMode,
    limit: u64,
) -> io::Result<Stopped> {
    let mut copied = 0u64;
    // Bytes read but not yet accepted by `dst`: empty unless `dst` pushes back.
    let mut backlog = Vec::new();
    loop {
        match step(src, dst, dir, mode, &mut backlog)? {
            Step::Eof => return Ok(Stopped::Eof),
            Step::Read(n) => {
                if !backlog.is_empty() {
                    write_all(dst, &backlog, dir, mode).await?;
                    backlog.clear();
                }
                copied += n as u64;
                if copied >= limit {
                    return Ok(Stopped::Limit);
                }
            }
            Step::WouldBlock => {
                // The burst is over: hold no buffer while waiting.
                backlog = Vec::new();
                super::read_ready(src).await?;
            }
        }
    }
}

/// Reads once from `src` into the thread's scratch buffer and writes what `dst` takes
/// at once; the rest goes to `backlog`.
fn step(
    src: &TcpStream,
    dst: &TcpStream,
    dir: &Direction<'_>,
    mode: &mut WriteMode,
    backlog: &mut Vec<u8>,
) -> io::Result<Step> {
    SCRATCH_BUFFER.with_borrow_mut(|buf| {
        let n = loop {
            match read(src, buf) {
                Ok(0) => return Ok(Step::Eof),
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Step::WouldBlock),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        let mut data = &buf[..n];
        while !data.is_empty() {
            match mode.try_write(dst, data) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => {
                    dir.delivered(written);
                    data = &data[written..];
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        backlog.extend_from_slice(data);
        Ok(Step::Read(n))
    })
}

/// One non-blocking read from `src` into `buf`, if tokio saw `src` readable.
///
/// A read that returns less than `buf` holds emptied the socket's receive queue, so it
/// also clears tokio's readiness, as tokio's own `poll_read` does: the next read waits
/// for the driver's next event instead of costing a system call that would only say
/// `EAGAIN`. Data that arrives after the read raises a new event (epoll is
/// edge-triggered on every arrival), and readiness from an event newer than the one the
/// read went by is kept (tokio compares the event's tick).
fn read(src: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    let mut short = 0;
    let result = src.try_io(Interest::READABLE, || {
        let n = (&*socket2::SockRef::from(src)).read(buf)?;
        if n > 0 && n < buf.len() {
            short = n;
            // Tells `try_io` the socket is drained; the bytes are returned below.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    });
    match result {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock && short > 0 => Ok(short),
        other => other,
    }
}

/// Writes all of `data` to `dst`, waiting for it to be writable as needed.
async fn write_all(
    dst: &TcpStream,
    mut data: &[u8],
    dir: &Direction<'_>,
    mode: &mut WriteMode,
) -> io::Result<()> {
    while !data.is_empty() {
        super::write_ready(dst).await?;
        match mode.try_write(dst, data) {
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
