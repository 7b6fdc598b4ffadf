//! The `SO_REUSEADDR` test shared by lb-health (check sockets) and lb-relay (backend
//! sockets); each includes this file with `#[path]`.
//!
//! A socket whose side closes first lingers (FIN_WAIT2, then TIME_WAIT) on its ephemeral
//! port. A listener must still be able to bind that port: Linux allows it only when both
//! the listener and the lingering socket have `SO_REUSEADDR` (`inet_bind_conflict` in
//! `net/ipv4/inet_connection_sock.c`).

use std::future::Future;
use std::net::SocketAddr;

use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// Asserts that a listener can bind the local port of a connection that `close_first`
/// opens to the given address and closes from its side.
///
/// Linux may give the connection an ephemeral port that another socket (another test's,
/// towards another destination) already holds, which blocks the bind for a reason
/// unrelated to the code under test. Such an attempt decides nothing and is repeated;
/// when no other socket holds the port, a blocked bind fails the test at once.
pub async fn assert_rebindable<F, Fut>(close_first: F)
where
    F: Fn(SocketAddr) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut collided = Vec::new();
    for _ in 0..20 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = listener.local_addr().unwrap();
        let ((), accepted) = tokio::join!(close_first(peer), listener.accept());
        let (mut server, local) = accepted.unwrap();
        assert_eq!(server.read(&mut [0; 1]).await.unwrap(), 0, "closed first");
        drop(server);
        // tokio's listeners set SO_REUSEADDR.
        let Err(e) = TcpListener::bind(local).await else {
            return;
        };
        match others_on_port(local.port(), peer) {
            0 => panic!("{local} stayed blocked with no other socket on it: {e}"),
            others => collided.push(format!("{local}: {e} ({others} other sockets)")),
        }
    }
    panic!("every attempt drew a port held by another socket: {collided:?}");
}

/// How many sockets other than the one connected to `peer` hold local port `port`
/// (from `/proc/net/tcp` and `/proc/net/tcp6`, whose address columns are hex
/// `ADDR:PORT`).
fn others_on_port(port: u16, peer: SocketAddr) -> usize {
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
