//! The idle timeout of `copy::bidirectional` over real loopback sockets: a short real
//! timeout, traffic in either direction alone keeping a session alive (paused clock),
//! and the zero and unrepresentable timeouts. The `_with_splice` tests first move
//! more than 64 KiB, so the idle clock is checked on the splice path, and assert that
//! it was taken.

mod copy_support;

use std::time::Duration;

use copy_support::{assert_progress_spliced, bulk, finish, session, BOUND, BULK};
use lb_relay::copy::{CopyOptions, End, Totals};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A session that goes silent after a bulk upload ends with `IdleTimeout` after a
/// short real timeout, and both peers then see their connection closed.
async fn silent_session_times_out(splice: bool) {
    let mut s = session(CopyOptions {
        // Long enough for the bulk upload on a loaded machine; the session still
        // ends within the tests' bound.
        idle_timeout: Duration::from_secs(2),
        splice,
    })
    .await;
    bulk(&mut s.client, &mut s.backend, 11).await;
    let totals = finish(s.copy).await;
    assert_eq!(
        totals,
        Totals {
            client_to_server: BULK as u64,
            server_to_client: 0,
            end: End::IdleTimeout
        }
    );
    assert_progress_spliced(&s.progress, splice);
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
/// ends exactly 150 ms after the last byte. A bulk transfer in that direction comes
/// first, so with splice on the single bytes go through the pipe.
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
    bulk(&mut sender, &mut receiver, 12).await;
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
    let moved = BULK as u64 + 10;
    assert_eq!(counts, if downstream { (0, moved) } else { (moved, 0) });
    assert_progress_spliced(&s.progress, splice);
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
