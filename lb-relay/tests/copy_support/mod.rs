//! Shared by the `copy*` integration tests: a session built from two loopback
//! connections, `client <-> [relay side | bidirectional | relay side] <-> backend`, and
//! deterministic test data.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::io;
use std::sync::Arc;
use std::time::Duration;

use lb_relay::copy::{bidirectional, CopyOptions, Progress, Totals};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

/// Bound on any wait in these tests: generous, only there so a bug fails instead of
/// hanging.
pub const BOUND: Duration = Duration::from_secs(20);

/// Two connected loopback sockets: (the outside end, the end the relay owns).
pub async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    // SO_REUSEADDR, as in `common::connect`: a TIME_WAIT left on this ephemeral port
    // must not block a later listener on it.
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    let (outside, accepted) = tokio::join!(socket.connect(addr), listener.accept());
    (outside.expect("connect"), accepted.expect("accept").0)
}

/// One running `bidirectional` and the two outside ends of its sockets.
pub struct Session {
    pub client: TcpStream,
    pub backend: TcpStream,
    pub progress: Arc<Progress>,
    pub copy: JoinHandle<io::Result<Totals>>,
}

pub async fn session(opts: CopyOptions) -> Session {
    let (client, relay_client) = pair().await;
    let (backend, relay_server) = pair().await;
    let progress = Arc::new(Progress::default());
    let shared = Arc::clone(&progress);
    let copy =
        tokio::spawn(
            async move { bidirectional(relay_client, relay_server, &opts, &shared).await },
        );
    Session {
        client,
        backend,
        progress,
        copy,
    }
}

pub fn opts(splice: bool) -> CopyOptions {
    CopyOptions {
        idle_timeout: Duration::from_secs(600),
        splice,
    }
}

pub async fn finish(copy: JoinHandle<io::Result<Totals>>) -> Totals {
    tokio::time::timeout(BOUND, copy)
        .await
        .expect("session ends within the bound")
        .expect("copy task does not panic")
        .expect("copy succeeds")
}

/// Deterministic pseudo-random bytes (SplitMix64), so a reordering or a dropped chunk
/// cannot go unnoticed the way it could with a repeating pattern.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}
