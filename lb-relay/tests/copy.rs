//! `copy::bidirectional` over real loopback sockets, with splice and with the portable
//! copy: byte-exact data both ways, half-close in both directions, the idle timeout
//! across both directions, and exact byte counts.
//!
//! Each test builds `client <-> [relay side | bidirectional | relay side] <-> backend`
//! from two loopback connections.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use lb_relay::copy::{bidirectional, CopyOptions, End, Progress, Totals};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Bound on any wait in these tests: generous, only there so a bug fails instead of
/// hanging.
const BOUND: Duration = Duration::from_secs(20);

/// Two connected loopback sockets: (the outside end, the end the relay owns).
async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let (outside, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    (outside.expect("connect"), accepted.expect("accept").0)
}

struct Session {
    client: TcpStream,
    backend: TcpStream,
    progress: Arc<Progress>,
    copy: JoinHandle<io::Result<Totals>>,
}

async fn session(opts: CopyOptions) -> Session {
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

fn opts(splice: bool) -> CopyOptions {
    CopyOptions {
        idle_timeout: Duration::from_secs(600),
        splice,
    }
}

async fn finish(copy: JoinHandle<io::Result<Totals>>) -> Totals {
    tokio::time::timeout(BOUND, copy)
        .await
        .expect("session ends within the bound")
        .expect("copy task does not panic")
        .expect("copy succeeds")
}

/// Deterministic pseudo-random bytes (SplitMix64), so a reordering or a dropped chunk
/// cannot go unnoticed the way it could with a repeating pattern.
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
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

/// Writes `data`, shuts down writing, and reads everything the peer sends until EOF.
async fn send_and_receive(mut stream: TcpStream, data: Vec<u8>) -> Vec<u8> {
    let (mut read, mut write) = stream.split();
    let sender = async {
        write.write_all(&data).await.expect("write");
        write.shutdown().await.expect("shutdown");
    };
    let mut received = Vec::new();
    let receiver = read.read_to_end(&mut received);
    let ((), read) = tokio::join!(sender, receiver);
    read.expect("read to end");
    received
}

async fn both_ways(splice: bool) {
    const UP: usize = 6 * 1024 * 1024 + 3;
    const DOWN: usize = 5 * 1024 * 1024 + 11;
    let up = random_bytes(UP, 1);
    let down = random_bytes(DOWN, 2);
    let s = session(opts(splice)).await;
    let client = tokio::spawn(send_and_receive(s.client, up.clone()));
    let backend = tokio::spawn(send_and_receive(s.backend, down.clone()));
    let at_backend = tokio::time::timeout(BOUND, backend)
        .await
        .expect("bound")
        .expect("task");
    let at_client = tokio::time::timeout(BOUND, client)
        .await
        .expect("bound")
        .expect("task");
    assert!(at_backend == up, "client to server bytes differ");
    assert!(at_client == down, "server to client bytes differ");
    let totals = finish(s.copy).await;
    assert_eq!(
        totals,
        Totals {
            client_to_server: UP as u64,
            server_to_client: DOWN as u64,
            end: End::Closed
        }
    );
    assert_eq!(s.progress.client_to_server(), UP as u64);
    assert_eq!(s.progress.server_to_client(), DOWN as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn megabytes_both_ways_are_byte_exact_with_splice() {
    both_ways(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn megabytes_both_ways_are_byte_exact_with_the_portable_copy() {
    both_ways(false).await;
}

/// The client sends a request and shuts down writing; the backend sees EOF only after
/// the whole request, then answers; the client still receives the whole answer.
async fn client_half_closes_first(splice: bool) {
    let request = random_bytes(300_000, 3);
    let response = random_bytes(700_001, 4);
    let mut s = session(opts(splice)).await;
    s.client.write_all(&request).await.expect("write request");
    s.client.shutdown().await.expect("client shutdown");
    let mut got = Vec::new();
    tokio::time::timeout(BOUND, s.backend.read_to_end(&mut got))
        .await
        .expect("backend sees EOF after the request")
        .expect("read");
    assert!(got == request, "request differs");
    // The client's FIN reached the backend, and the other direction still flows.
    s.backend
        .write_all(&response)
        .await
        .expect("write response");
    s.backend.shutdown().await.expect("backend shutdown");
    let mut answer = Vec::new();
    tokio::time::timeout(BOUND, s.client.read_to_end(&mut answer))
        .await
        .expect("client sees EOF after the response")
        .expect("read");
    assert!(answer == response, "response differs");
    let totals = finish(s.copy).await;
    assert_eq!(
        (totals.client_to_server, totals.server_to_client, totals.end),
        (300_000, 700_001, End::Closed)
    );
}

#[tokio::test]
async fn client_half_close_keeps_the_response_flowing_with_splice() {
    client_half_closes_first(true).await;
}

#[tokio::test]
async fn client_half_close_keeps_the_response_flowing_with_the_portable_copy() {
    client_half_closes_first(false).await;
}

/// The backend speaks first and shuts down writing (a banner, then FIN); the client
/// sees EOF and can still send, and the backend receives it.
async fn server_half_closes_first(splice: bool) {
    let banner = random_bytes(123_457, 5);
    let upload = random_bytes(2_000_000, 6);
    let mut s = session(opts(splice)).await;
    s.backend.write_all(&banner).await.expect("write banner");
    s.backend.shutdown().await.expect("backend shutdown");
    let mut got = Vec::new();
    tokio::time::timeout(BOUND, s.client.read_to_end(&mut got))
        .await
        .expect("client sees EOF after the banner")
        .expect("read");
    assert!(got == banner, "banner differs");
    s.client.write_all(&upload).await.expect("write upload");
    s.client.shutdown().await.expect("client shutdown");
    let mut received = Vec::new();
    tokio::time::timeout(BOUND, s.backend.read_to_end(&mut received))
        .await
        .expect("backend sees EOF after the upload")
        .expect("read");
    assert!(received == upload, "upload differs");
    let totals = finish(s.copy).await;
    assert_eq!(
        (totals.client_to_server, totals.server_to_client, totals.end),
        (2_000_000, 123_457, End::Closed)
    );
}

#[tokio::test]
async fn server_half_close_keeps_the_upload_flowing_with_splice() {
    server_half_closes_first(true).await;
}

#[tokio::test]
async fn server_half_close_keeps_the_upload_flowing_with_the_portable_copy() {
    server_half_closes_first(false).await;
}

/// A silent session ends with `IdleTimeout` after a short real timeout, and both peers
/// then see their connection closed.
async fn silent_session_times_out(splice: bool) {
    let mut s = session(CopyOptions {
        idle_timeout: Duration::from_millis(150),
        splice,
    })
    .await;
    let totals = finish(s.copy).await;
    assert_eq!(
        totals,
        Totals {
            client_to_server: 0,
            server_to_client: 0,
            end: End::IdleTimeout
        }
    );
    let mut rest = Vec::new();
    let read = tokio::time::timeout(BOUND, s.client.read_to_end(&mut rest)).await;
    assert_eq!(read.expect("bound").expect("clean close"), 0);
    let read = tokio::time::timeout(BOUND, s.backend.read_to_end(&mut rest)).await;
    assert_eq!(read.expect("bound").expect("clean close"), 0);
}

#[tokio::test]
async fn silent_session_times_out_with_splice() {
    silent_session_times_out(true).await;
}

#[tokio::test]
async fn silent_session_times_out_with_the_portable_copy() {
    silent_session_times_out(false).await;
}

/// With tokio's clock paused (it advances only when every task waits), traffic in
/// one direction only, every 100 ms for 1 s, keeps a 150 ms session alive; it then
/// ends exactly 150 ms after the last byte.
async fn traffic_either_way_resets_the_idle_clock(splice: bool, downstream: bool) {
    let s = session(CopyOptions {
        idle_timeout: Duration::from_millis(150),
        splice,
    })
    .await;
    let (mut sender, mut receiver) = if downstream {
        (s.backend, s.client)
    } else {
        (s.client, s.backend)
    };
    let mut byte = [0u8; 1];
    for i in 0..10u8 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        sender.write_all(&[i]).await.expect("write");
        receiver.read_exact(&mut byte).await.expect("relayed byte");
        assert_eq!(byte[0], i);
        assert!(!s.copy.is_finished(), "session closed while active ({i})");
    }
    let last = tokio::time::Instant::now();
    let totals = finish(s.copy).await;
    let idle = last.elapsed();
    assert_eq!(totals.end, End::IdleTimeout);
    let counts = (totals.client_to_server, totals.server_to_client);
    assert_eq!(counts, if downstream { (0, 10) } else { (10, 0) });
    assert!(
        idle >= Duration::from_millis(150) && idle <= Duration::from_millis(160),
        "closed {idle:?} after the last byte"
    );
}

#[tokio::test(start_paused = true)]
async fn downstream_traffic_alone_keeps_a_session_alive_with_splice() {
    traffic_either_way_resets_the_idle_clock(true, true).await;
}

#[tokio::test(start_paused = true)]
async fn upstream_traffic_alone_keeps_a_session_alive_with_the_portable_copy() {
    traffic_either_way_resets_the_idle_clock(false, false).await;
}

#[tokio::test(start_paused = true)]
async fn downstream_traffic_alone_keeps_a_session_alive_with_the_portable_copy() {
    traffic_either_way_resets_the_idle_clock(false, true).await;
}

#[tokio::test(start_paused = true)]
async fn upstream_traffic_alone_keeps_a_session_alive_with_splice() {
    traffic_either_way_resets_the_idle_clock(true, false).await;
}

/// `Progress` counts bytes while the session is still open.
async fn progress_is_live(splice: bool) {
    let mut s = session(opts(splice)).await;
    s.client.write_all(&[7; 1000]).await.expect("write");
    let mut buf = [0u8; 1000];
    s.backend.read_exact(&mut buf).await.expect("read");
    s.backend.write_all(&[9; 42]).await.expect("write");
    s.client.read_exact(&mut buf[..42]).await.expect("read");
    assert_eq!(s.progress.client_to_server(), 1000);
    assert_eq!(s.progress.server_to_client(), 42);
    assert!(!s.copy.is_finished());
    drop((s.client, s.backend));
    let totals = finish(s.copy).await;
    assert_eq!(
        (totals.client_to_server, totals.server_to_client),
        (1000, 42)
    );
}

#[tokio::test]
async fn progress_counts_while_open_with_splice() {
    progress_is_live(true).await;
}

#[tokio::test]
async fn progress_counts_while_open_with_the_portable_copy() {
    progress_is_live(false).await;
}

/// A client that aborts (RST, with SO_LINGER 0) ends the session with an error.
async fn reset_is_an_error(splice: bool) {
    let s = session(opts(splice)).await;
    socket2::SockRef::from(&s.client)
        .set_linger(Some(Duration::ZERO))
        .expect("linger");
    drop(s.client);
    let result = tokio::time::timeout(BOUND, s.copy)
        .await
        .expect("bound")
        .expect("task");
    let error = result.expect_err("an aborted connection is an error");
    assert_eq!(error.kind(), io::ErrorKind::ConnectionReset);
}

#[tokio::test]
async fn reset_is_an_error_with_splice() {
    reset_is_an_error(true).await;
}

#[tokio::test]
async fn reset_is_an_error_with_the_portable_copy() {
    reset_is_an_error(false).await;
}

/// `Duration::MAX` cannot be added to an instant: it means no idle timeout, not a
/// panic. A year of (paused) silence later, the session still relays.
#[tokio::test(start_paused = true)]
async fn an_unrepresentable_idle_timeout_means_none() {
    let mut s = session(CopyOptions {
        idle_timeout: Duration::MAX,
        splice: true,
    })
    .await;
    tokio::time::sleep(Duration::from_secs(365 * 24 * 3600)).await;
    assert!(!s.copy.is_finished(), "the session timed out");
    s.client.write_all(b"still here").await.expect("write");
    let mut buf = [0u8; 10];
    s.backend.read_exact(&mut buf).await.expect("read");
    assert_eq!(&buf, b"still here");
    drop((s.client, s.backend));
    let totals = finish(s.copy).await;
    assert_eq!(
        totals,
        Totals {
            client_to_server: 10,
            server_to_client: 0,
            end: End::Closed
        }
    );
}

/// A zero idle timeout ends the session before anything moves.
#[tokio::test(start_paused = true)]
async fn a_zero_idle_timeout_ends_the_session_at_once() {
    let s = session(CopyOptions {
        idle_timeout: Duration::ZERO,
        splice: false,
    })
    .await;
    let start = tokio::time::Instant::now();
    let totals = finish(s.copy).await;
    assert_eq!(totals.end, End::IdleTimeout);
    assert_eq!(start.elapsed(), Duration::ZERO);
}
