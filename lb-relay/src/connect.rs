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

    /// Our side closes first, so its socket lingers (FIN_WAIT2, then TIME_WAIT) on its
    /// ephemeral port. A listener must still be able to bind that port: Linux allows it
    /// only when both the listener and the lingering socket have `SO_REUSEADDR`.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_closed_connection_does_not_block_a_listener_on_its_port() {
        // Linux may give us an ephemeral port that another socket (another test's,
        // towards another destination) already holds; that socket blocks the bind for a
        // reason unrelated to ours, so such an attempt decides nothing and is repeated.
        // When no other socket holds the port, the bind must succeed.
        let mut collided = Vec::new();
        for _ in 0..20 {
            match close_then_rebind().await {
                Ok(()) => return,
                Err((e, 0)) => panic!("the port stayed blocked with no other socket on it: {e}"),
                Err((e, others)) => collided.push(format!("{e} ({others} other sockets)")),
            }
        }
        panic!("every attempt drew a port held by another socket: {collided:?}");
    }

    #[cfg(target_os = "linux")]
    async fn close_then_rebind() -> Result<(), (String, usize)> {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = listener.local_addr().unwrap();
        let tcp = TcpOptions::default();
        let stream = connect(peer, Duration::from_secs(2), &tcp).await.unwrap();
        let local = stream.local_addr().unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        drop(stream);
        assert_eq!(server.read(&mut [0; 1]).await.unwrap(), 0);
        drop(server);
        // tokio's listeners set SO_REUSEADDR, as the relay's do.
        match tokio::net::TcpListener::bind(local).await {
            Ok(_) => Ok(()),
            Err(e) => Err((format!("{local}: {e}"), others_on_port(local.port(), peer))),
        }
    }

    /// How many sockets other than the one connected to `peer` hold local port `port`
    /// (from `/proc/net/tcp` and `/proc/net/tcp6`, whose address columns are hex
    /// `ADDR:PORT`). Another test's socket on the port blocks a bind whatever we do.
    #[cfg(target_os = "linux")]
    fn others_on_port(port: u16, peer: std::net::SocketAddr) -> usize {
        let peer_port = format!(":{:04X}", peer.port());
        let mut others = 0;
        for path in ["/proc/net/tcp", "/proc/net/tcp6"] {
            let Ok(table) = std::fs::read_to_string(path) else {
                continue;
            };
            for line in table.lines().skip(1) {
                let mut cols = line.split_whitespace().skip(1);
                let (Some(local), Some(remote)) = (cols.next(), cols.next()) else {
                    continue;
                };
                let local_port = local.rsplit(':').next().map(|p| u16::from_str_radix(p, 16));
                if local_port == Some(Ok(port)) && !remote.ends_with(&peer_port) {
                    others += 1;
                }
            }
        }
        others
    }
}
