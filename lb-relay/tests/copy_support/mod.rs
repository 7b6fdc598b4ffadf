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

/// Whether this build can splice at all (Linux, feature `splice`).
pub const SPLICE_BUILT: bool = cfg!(all(target_os = "linux", feature = "splice"));

/// The bytes a direction copies through user space before it switches to splice (the
/// crate's `SPLICE_AFTER`).
pub const SPLICE_AFTER: u64 = 64 * 1024;

/// More than a direction needs to be in splice mode, whatever the read sizes.
pub const BULK: usize = 3 * SPLICE_AFTER as usize;

/// Checks the bytes of one direction that went through `splice(2)`, out of `total`
/// delivered, for a session copied with `splice` on or off.
///
/// With splice on (and built), a direction that moved `total` bytes spliced all but
/// its user-space start: the portable copy stops at the first read that reaches
/// [`SPLICE_AFTER`], and reads at most 64 KiB at a time, so it copied between 64 KiB
/// and 128 KiB - 1. Otherwise nothing was spliced.
pub fn assert_spliced(what: &str, spliced: u64, total: u64, splice: bool) {
    if splice && SPLICE_BUILT && total > SPLICE_AFTER {
        let most = total - SPLICE_AFTER;
        let least = total.saturating_sub(2 * SPLICE_AFTER - 1);
        assert!(
            (least..=most).contains(&spliced),
            "{what}: {spliced} of {total} bytes spliced, expected {least}..={most}"
        );
    } else {
        assert_eq!(
            spliced, 0,
            "{what}: nothing spliced (splice {splice}, {total} bytes)"
        );
    }
}

/// [`assert_spliced`] for both directions of a session's progress.
pub fn assert_progress_spliced(progress: &Progress, splice: bool) {
    assert_spliced(
        "client to server",
        progress.spliced_client_to_server(),
        progress.client_to_server(),
        splice,
    );
    assert_spliced(
        "server to client",
        progress.spliced_server_to_client(),
        progress.server_to_client(),
        splice,
    );
}

/// Sends [`BULK`] bytes from `from` to `to` and reads them there, so that direction of
/// the session between them is past its switch to splice (when splice is on).
pub async fn bulk(from: &mut TcpStream, to: &mut TcpStream, seed: u64) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let data = random_bytes(BULK, seed);
    let mut got = vec![0u8; BULK];
    let (written, read) = tokio::time::timeout(BOUND, async {
        tokio::join!(from.write_all(&data), to.read_exact(&mut got))
    })
    .await
    .expect("the bulk transfer ends within the bound");
    written.expect("write bulk");
    read.expect("read bulk");
    assert!(got == data, "bulk bytes differ");
}
