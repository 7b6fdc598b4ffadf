//! A relay's stats say how many bytes went through `splice(2)`: with splice on (Linux,
//! feature `splice`), every byte of a bulk direction past its first 64 KiB; with splice
//! off, none. So a test, or an operator, can tell that zero copy actually ran.

mod common;
mod copy_support;

use common::{bounded, eventually, read_line, relay, table, Backend, Run};
use copy_support::{assert_spliced, random_bytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const UPLOAD: usize = 1 << 20;

/// Sends 1 MiB through a relay to an echo backend and reads it back; returns the
/// relay's stats once the session ended.
async fn echo_a_mebibyte(splice: bool) -> lb_relay::RelayStats {
    let a = Backend::start("a").await;
    let relay = relay("splice-stats")
        .forward_to(table("t", &[&a]))
        .splice(splice)
        .run();
    let mut client = common::connect(relay.local_addrs()[0]).await.unwrap();
    assert_eq!(read_line(&mut client).await, "a");
    let data = random_bytes(UPLOAD, 21);
    let (mut read, mut write) = client.split();
    let send = async {
        write.write_all(&data).await.unwrap();
        write.shutdown().await.unwrap();
    };
    let mut echoed = Vec::new();
    let ((), received) = bounded("the echo", async {
        tokio::join!(send, read.read_to_end(&mut echoed))
    })
    .await;
    received.unwrap();
    assert!(echoed == data, "the echo differs");
    drop(client);
    eventually("the session to end", || relay.stats().active == 0).await;
    relay.stats()
}

async fn spliced_bytes_are_counted(splice: bool) {
    let stats = echo_a_mebibyte(splice).await;
    // The greeting ("a\n") and the echo come down; the upload goes up.
    let (up, down) = (UPLOAD as u64, UPLOAD as u64 + 2);
    assert_eq!(
        (stats.bytes_client_to_server, stats.bytes_server_to_client),
        (up, down)
    );
    assert_spliced(
        "client to server",
        stats.bytes_spliced_client_to_server,
        up,
        splice,
    );
    assert_spliced(
        "server to client",
        stats.bytes_spliced_server_to_client,
        down,
        splice,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_with_splice_counts_the_spliced_bytes() {
    spliced_bytes_are_counted(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_without_splice_splices_nothing() {
    spliced_bytes_are_counted(false).await;
}
