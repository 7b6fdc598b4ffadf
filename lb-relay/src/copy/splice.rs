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
//! The pipe keeps the kernel's default size (16 pages). Growing it with `F_SETPIPE_SZ`
//! would count against the per-user `pipe-user-pages-soft` limit for every session,
//! after which the kernel shrinks new pipes to two pages (pipe(7)).
//!
//! This is the one module of the crate with `unsafe`: three foreign calls.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use tokio::io::Interest;
use tokio::net::TcpStream;

use super::Direction;

/// Bytes asked of one splice from a socket: as much as the default pipe holds.
const CHUNK: usize = 64 * 1024;

/// A non-blocking pipe and the number of bytes sitting in it. Both ends are closed when
/// it is dropped.
pub(super) struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    len: usize,
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
        Ok(Pipe {
            read,
            write,
            len: 0,
        })
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
    loop {
        // Fill: the pipe is empty here, so EAGAIN can only come from the socket.
        let n = loop {
            src.readable().await?;
            match src.try_io(Interest::READABLE, || splice(src_fd, pipe_in, CHUNK)) {
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
        // Drain: the pipe holds data, so EAGAIN can only come from the socket.
        while pipe.len > 0 {
            dst.writable().await?;
            match dst.try_io(Interest::WRITABLE, || splice(pipe_out, dst_fd, pipe.len)) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    pipe.len -= n;
                    dir.delivered(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}
