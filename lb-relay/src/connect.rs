//! Opening backend connections: a fresh socket with the relay's [`TcpOptions`], and a
//! connect bounded by the connect timeout.
//!
//! relayd bounds a backend connect by the *session* timeout (600 s by default), so one
//! host that drops SYNs holds every client sent to it for ten minutes. Here the connect
//! has its own, short timeout (3 s by default), after which the relay reports the host to
//! passive health and tries the next candidate.
//!
//! Backend sockets set `SO_REUSEADDR`. The relay usually closes its backend side
//! first, so that socket lingers in TIME_WAIT for a minute on its ephemeral port, and
//! anything that later listens on a port in the ephemeral range (a demo server, a test,
//! another relay) could fail to bind with `EADDRINUSE`. Linux lets a listener with
//! `SO_REUSEADDR` bind over a lingering socket only if that socket had `SO_REUSEADDR`
//! too (`inet_bind_conflict` in `net/ipv4/inet_connection_sock.c`); setting it here
//! costs nothing, since connected sockets' 4-tuples stay unique either way.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

#[cfg(unix)]
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpStream;

use crate::TcpOptions;

/// Applies the per-connection options to an accepted or connected stream.
pub(crate) fn tune(stream: &TcpStream, tcp: &TcpOptions) -> io::Result<()> {
    if tcp.nodelay {
        stream.set_nodelay(true)?;
    }
    Ok(())
}

/// Connects to `addr` within `timeout`. A timeout is reported as
/// [`io::ErrorKind::TimedOut`], so that callers classify it like the system's own.
///
/// The connect is non-blocking; when it is already complete as the call returns (on
/// loopback and on the same host the handshake happens within the call), the stream is
/// used at once instead of waiting for the I/O driver to report it writable: one trip
/// through the scheduler less per session. Otherwise it waits for writability as tokio's
/// own connect does.
pub(crate) async fn connect(
    addr: SocketAddr,
    timeout: Duration,
    tcp: &TcpOptions,
) -> io::Result<TcpStream> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking(),
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    if let Some(size) = tcp.send_buffer {
        socket.set_send_buffer_size(size as usize)?;
    }
    if let Some(size) = tcp.recv_buffer {
        socket.set_recv_buffer_size(size as usize)?;
    }
    if tcp.nodelay {
        // Set before connecting: the option holds for the connection that follows.
        socket.set_nodelay(true)?;
    }
    let state = match socket.connect(&addr.into()) {
        Ok(()) => Connect::Done,
        Err(e) if in_progress(&e) => connect_state(&socket)?,
        Err(e) => return Err(e),
    };
    let stream = TcpStream::from_std(socket.into())?;
    match state {
        Connect::Done => return Ok(stream),
        Connect::Failed => {
            let error = stream.take_error()?;
            return Err(error.unwrap_or_else(|| io::ErrorKind::ConnectionAborted.into()));
        }
        Connect::Pending => {
            let wait = std::future::poll_fn(|cx| stream.poll_write_ready(cx));
            match tokio::time::timeout(timeout, wait).await {
                Ok(ready) => ready?,
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no answer from {addr} within {timeout:?}"),
                    ))
                }
            }
        }
    }
    // Writable: connected, or failed (the socket's error says which).
    if let Some(error) = stream.take_error()? {
        return Err(error);
    }
    Ok(stream)
}

/// Where a non-blocking connect stands right after the call.
enum Connect {
    /// Connected.
    Done,
    /// Failed; the socket's pending error (`SO_ERROR`) says why.
    Failed,
    /// Under way: wait until the socket is writable.
    Pending,
}

/// Whether a non-blocking connect returned "under way".
#[cfg(unix)]
fn in_progress(error: &io::Error) -> bool {
    error.raw_os_error() == Some(libc::EINPROGRESS)
}

#[cfg(not(unix))]
fn in_progress(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::WouldBlock
}

/// Where a connect that returned "under way" stands now: `poll(2)` with a zero timeout.
/// Writable without an error or hang-up is connected (poll(2) and connect(2): a
/// non-blocking connect is complete once the socket is writable).
#[cfg(unix)]
fn connect_state(socket: &Socket) -> io::Result<Connect> {
    let mut fd = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: `fd` is one valid `pollfd` and the count is 1; the timeout is 0, so the
    // call returns at once; the descriptor is open (borrowed from `socket`).
    let n = unsafe { libc::poll(&mut fd, 1, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(if fd.revents & (libc::POLLERR | libc::POLLHUP) != 0 {
        Connect::Failed
    } else if fd.revents & libc::POLLOUT != 0 {
        Connect::Done
    } else {
        Connect::Pending
    })
}

/// Elsewhere the connect is always waited for.
#[cfg(not(unix))]
fn connect_state(_: &Socket) -> io::Result<Connect> {
    Ok(Connect::Pending)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connects_and_refuses() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tcp = TcpOptions::default();
        let stream = connect(addr, Duration::from_secs(2), &tcp).await.unwrap();
        assert!(stream.nodelay().unwrap());
        assert_eq!(stream.peer_addr().unwrap(), addr);
        drop(listener);
        let err = connect(addr, Duration::from_secs(2), &tcp)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    }

    /// Our side closes first, so its socket lingers on its ephemeral port; a listener
    /// must still be able to bind that port (backend sockets set `SO_REUSEADDR`).
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_closed_connection_does_not_block_a_listener_on_its_port() {
        crate::rebind::assert_rebindable(|addr| async move {
            let tcp = TcpOptions::default();
            let stream = connect(addr, Duration::from_secs(2), &tcp).await.unwrap();
            drop(stream);
        })
        .await;
    }
}
