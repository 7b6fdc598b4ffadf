//! `copy::bidirectional` over real loopback sockets, with splice and with the portable
//! copy: byte-exact data both ways, half-close in both directions, live and exact byte
//! counts, and errors. The idle timeout is in `copy_idle.rs`.
//!
//! Every `_with_splice` test moves more than 64 KiB in the directions it checks and
//! asserts that they were spliced (on Linux with the `splice` feature; elsewhere, and
//! in the portable-copy twins, that nothing was).

mod copy_support;

use std::io;
use std::time::Duration;

use copy_support::{
    assert_progress_spliced, assert_spliced, bulk, finish, opts, random_bytes, session, BOUND, BULK,
};
use lb_relay::copy::{End, Totals};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
    assert_progress_spliced(&s.progress, splice);
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
    assert_progress_spliced(&s.progress, splice);
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
    assert_progress_spliced(&s.progress, splice);
}

#[tokio::test]
async fn server_half_close_keeps_the_upload_flowing_with_splice() {
    server_half_closes_first(true).await;
}

#[tokio::test]
async fn server_half_close_keeps_the_upload_flowing_with_the_portable_copy() {
    server_half_closes_first(false).await;
}

/// `Progress` counts bytes, spliced ones included, while the session is still open:
/// a bulk upload (spliced past its first 64 KiB when splice is on), 42 bytes down.
async fn progress_is_live(splice: bool) {
    let mut s = session(opts(splice)).await;
    bulk(&mut s.client, &mut s.backend, 9).await;
    s.backend.write_all(&[9; 42]).await.expect("write");
    let mut buf = [0u8; 42];
    s.client.read_exact(&mut buf).await.expect("read");
    assert_eq!(s.progress.client_to_server(), BULK as u64);
    assert_eq!(s.progress.server_to_client(), 42);
    assert_progress_spliced(&s.progress, splice);
    assert!(!s.copy.is_finished());
    drop((s.client, s.backend));
    let totals = finish(s.copy).await;
    assert_eq!(
        (totals.client_to_server, totals.server_to_client),
        (BULK as u64, 42)
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

/// A client that aborts (RST, with SO_LINGER 0) ends the session with an error, also
/// in the middle of a spliced transfer.
async fn reset_is_an_error(splice: bool) {
    let mut s = session(opts(splice)).await;
    bulk(&mut s.client, &mut s.backend, 10).await;
    assert_spliced(
        "before the reset",
        s.progress.spliced_client_to_server(),
        BULK as u64,
        splice,
    );
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
