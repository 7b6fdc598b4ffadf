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

use tokio::net::{TcpSocket, TcpStream};

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
pub(crate) async fn connect(
    addr: SocketAddr,
    timeout: Duration,
    tcp: &TcpOptions,
) -> io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    if let Some(size) = tcp.send_buffer {
        socket.set_send_buffer_size(size)?;
    }
    if let Some(size) = tcp.recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    let stream = match tokio::time::timeout(timeout, socket.connect(addr)).await {
        Ok(result) => result?,
        Err(_) => {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer from {addr} within {timeout:?}"),
            ))
        }
    };
    tune(&stream, tcp)?;
    Ok(stream)
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
