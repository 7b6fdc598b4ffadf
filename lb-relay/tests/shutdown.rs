//! Graceful shutdown: stop accepting at once, let running sessions finish until the
//! deadline, then close the rest.

mod common;

use std::io::ErrorKind;
use std::time::Duration;

use common::{bounded, read_line, read_to_close, relay, table, Backend, Run};
use lb_core::Host;
use lb_relay::ShutdownReport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const SIZE: usize = 64 << 20;
const CHUNK: usize = 64 << 10;

/// Byte `i` of the transfer: a pattern a lost or repeated chunk cannot match.
fn pattern(i: usize) -> u8 {
    (i % 253) as u8
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_64_mib_transfer_in_flight_completes_and_new_clients_are_refused() {
    // The backend sends 64 MiB to whoever connects, then closes.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut chunk = vec![0u8; CHUNK];
        for offset in (0..SIZE).step_by(CHUNK) {
            for (k, b) in chunk.iter_mut().enumerate() {
                *b = pattern(offset + k);
            }
            s.write_all(&chunk).await.unwrap();
        }
        s.shutdown().await.unwrap();
    });
    let relay = relay("graceful")
        .forward_to(lb_core::HostTable::new("t", [Host::from(backend)]).unwrap())
        .run();
    let to = relay.local_addrs()[0];
    let mut client = common::connect(to).await.unwrap();
    // The transfer is in flight: the first mebibyte has arrived.
    let mut buf = vec![0u8; 1 << 20];
    bounded("the first MiB", client.read_exact(&mut buf))
        .await
        .unwrap();
    let mut received = buf.len();

    let relay = std::sync::Arc::new(relay);
    let stopping = relay.clone();
    let shutdown = tokio::spawn(async move { stopping.shutdown(Duration::from_secs(30)).await });
    // New connections are refused once the listener is closed (soon after the call).
    common::eventually("the listener to close", || !relay.stats().accepting).await;
    let refused = common::connect(to).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
    assert!(!shutdown.is_finished());

    // The transfer runs to its end, every byte in place.
    let mut all_match = buf.iter().enumerate().all(|(i, b)| *b == pattern(i));
    bounded("the rest of the transfer", async {
        loop {
            let n = client.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            all_match &= buf[..n]
                .iter()
                .enumerate()
                .all(|(k, b)| *b == pattern(received + k));
            received += n;
        }
    })
    .await;
    assert_eq!(received, SIZE);
    assert!(all_match, "the transfer arrived altered");
    // The client closes its side too: the session is over (half-close keeps it open
    // until both directions ended).
    drop(client);
    let report = bounded("the shutdown", shutdown).await.unwrap();
    assert_eq!(summary(report), (1, 0));
    assert_eq!(relay.stats().bytes_server_to_client, SIZE as u64);
}

/// `(sessions running when the shutdown began, sessions closed at the deadline)`.
fn summary(report: ShutdownReport) -> (usize, usize) {
    (report.sessions, report.closed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_still_running_at_the_deadline_are_closed() {
    let a = Backend::start("a").await;
    let relay = relay("deadline").forward_to(table("t", &[&a])).run();
    let mut silent = common::connect(relay.local_addrs()[0]).await.unwrap();
    assert_eq!(read_line(&mut silent).await, "a");
    let report = bounded("the shutdown", relay.shutdown(Duration::from_millis(200))).await;
    assert_eq!(summary(report), (1, 1));
    // The relay dropped both sockets of the session.
    assert_eq!(read_to_close(&mut silent).await, b"");
    assert_eq!(relay.stats().active, 0);
}

#[tokio::test]
async fn a_stopped_relay_leaves_no_listener_on_its_tables() {
    let a = Backend::start("a").await;
    let t = table("t", &[&a]);
    let relay = relay("listeners").forward_to(t.clone()).run();
    assert_eq!(t.listener_count(), 1, "the relay's passive health");
    let report = bounded("the shutdown", relay.shutdown(Duration::from_millis(200))).await;
    assert_eq!(summary(report), (0, 0));
    drop(relay);
    assert_eq!(t.listener_count(), 0);
}
