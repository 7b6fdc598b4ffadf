//! Zero-copy relaying on Linux: `splice(2)` from a socket into a pipe and from the pipe
//! into the other socket.
//!
//! `splice` moves page references instead of copying bytes, so payload never enters
//! user space; a pipe is the required intermediary between two sockets (splice(2):
//! "one of the file descriptors must refer to a pipe"). Both pipe ends are non-blocking
//! and every call passes `SPLICE_F_NONBLOCK`, so `EAGAIN` always means "the socket is
//! not ready", never "the pipe is full": the pipe is drained completely before the next
//! read from the socket, so reading into it never finds it full and writing from it
//! never finds it empty. Readiness comes from tokio (`readable()`/`writable()`), and
//! each call runs inside `try_io` so an `EAGAIN` clears tokio's readiness flag.
//!
//! A pipe starts at the kernel's default size (16 pages, 64 KiB on 4 KiB pages). Every
//! pipe counts against the per-user `pipe-user-pages-soft` limit, past which the kernel
//! gives new pipes a minimal size (pipe(7)), so growing every session's pipes would
//! shrink everyone else's. A direction grows its pipe to [`BULK_PIPE`] only once it has
//! moved [`BULK_AFTER`] bytes, the sign of a bulk transfer, where fewer and larger
//! splices pay off (on loopback, a 1 GiB stream goes from about 11 to 15-20 Gbit/s);
//! growth is best effort (refused past the limit, the pipe keeps its size).
//!
//! This module and `connect` (one `poll(2)`) are the crate's only `unsafe`: foreign
//! calls.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use tokio::io::Interest;
use tokio::net::TcpStream;

use super::Direction;

/// The size a bulk direction grows its pipe to (the default `pipe-max-size` is 1 MiB).
const BULK_PIPE: libc::c_int = 1024 * 1024;

/// Bytes a direction moves before it grows its pipe to [`BULK_PIPE`].
const BULK_AFTER: usize = 1024 * 1024;

/// The capacity assumed when the kernel does not say (the default pipe size).
const DEFAULT_PIPE: usize = 64 * 1024;

/// A non-blocking pipe, its capacity and the number of bytes sitting in it. Both ends
/// are closed when it is dropped.
pub(super) struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    len: usize,
    capacity: usize,
    grown: bool,
}

impl Pipe {
    /// Creates a pipe with `O_NONBLOCK | O_CLOEXEC`.
    ///
    /// # Errors
    ///
    /// `EMFILE` / `ENFILE` when the process or the system is out of descriptors.
    pub(super) fn new() -> io::Result<Pipe> {
        let mut fds: [libc::c_int; 2] = [-1, -1];
        // SAFETY: `fds` is a valid, writable array of two `c_int`, as pipe2(2) requires.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody
        // else; each is wrapped exactly once and closed exactly once, by `OwnedFd`.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let mut pipe = Pipe {
            read,
            write,
            len: 0,
            capacity: DEFAULT_PIPE,
            grown: false,
        };
        if let Some(size) = pipe.fcntl(libc::F_GETPIPE_SZ, 0) {
            pipe.capacity = size;
        }
        Ok(pipe)
    }

    /// Grows the pipe to [`BULK_PIPE`] once; keeps its size if the kernel refuses.
    fn grow(&mut self) {
        if self.grown {
            return;
        }
        self.grown = true;
        if let Some(size) = self.fcntl(libc::F_SETPIPE_SZ, BULK_PIPE) {
            self.capacity = size;
        }
    }

    /// `fcntl(write end, cmd, arg)` for the two pipe-size commands, which return the
    /// pipe's size in bytes; `None` on failure.
    fn fcntl(&self, cmd: libc::c_int, arg: libc::c_int) -> Option<usize> {
        // SAFETY: the descriptor is open (owned by `self`); F_GETPIPE_SZ and
        // F_SETPIPE_SZ take an int argument and touch no memory of ours.
        let size = unsafe { libc::fcntl(self.write.as_raw_fd(), cmd, arg) };
        usize::try_from(size).ok().filter(|&size| size > 0)
    }
}

/// One non-blocking `splice` of up to `len` bytes from `from` to `to`.
fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // SAFETY: both descriptors are open for the duration of the call (they are borrowed
    // from a live `TcpStream` and a live `Pipe`); the offset pointers are null, which
    // splice(2) allows for pipes and sockets; no memory of ours is read or written.
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    // A negative return is the only failure; any other value fits a usize.
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Copies `src` to `dst` through `pipe` until EOF on `src` with the pipe drained.
pub(super) async fn copy(
    src: &TcpStream,
    dst: &TcpStream,
    mut pipe: Pipe,
    dir: &Direction<'_>,
) -> io::Result<()> {
    let (src_fd, dst_fd) = (src.as_raw_fd(), dst.as_raw_fd());
    let (pipe_in, pipe_out) = (pipe.write.as_raw_fd(), pipe.read.as_raw_fd());
    let mut moved = 0usize;
    loop {
        // Fill: the pipe is empty here, so EAGAIN can only come from the socket.
        let n = loop {
            super::read_ready(src).await?;
            let capacity = pipe.capacity;
            match src.try_io(Interest::READABLE, || splice(src_fd, pipe_in, capacity)) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            return Ok(());
        }
        pipe.len = n;
        moved += n;
        if moved >= BULK_AFTER {
            pipe.grow();
        }
        // Drain: the pipe holds data, so EAGAIN can only come from the socket.
        while pipe.len > 0 {
            super::write_ready(dst).await?;
            match dst.try_io(Interest::WRITABLE, || splice(pipe_out, dst_fd, pipe.len)) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    pipe.len -= n;
                    dir.spliced(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}
