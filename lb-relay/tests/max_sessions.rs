//! `max sessions`: beyond the limit the relay stops accepting, so the next client waits
//! in the listen queue (its connect succeeds, nothing is reset) and is served as soon as
//! a session ends.

mod common;

use common::{bounded, echo, read_line, relay, settle, table, Backend, Run};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// A current-thread runtime, so that `settle` is a barrier: once it returns, a relay
// that was going to accept the queued client has done so.
#[tokio::test]
async fn the_next_client_waits_then_is_served_when_a_session_ends() {
    let a = Backend::start("a").await;
    let relay = relay("limited")
        .forward_to(table("t", &[&a]))
        .max_sessions(1)
        .run();
    let to = relay.local_addrs()[0];

    let mut first = common::connect(to).await.unwrap();
    assert_eq!(read_line(&mut first).await, "a");
    echo(&mut first, b"one").await;

    // The kernel completes the second handshake (listen queue), but the relay does not
    // accept it while the first session runs: once every task had its turn with the
    // connection queued and its bytes sent, nobody answered it.
    let mut second = common::connect(to).await.unwrap();
    second.write_all(b"two").await.unwrap();
    settle().await;
    let mut byte = [0u8; 1];
    let answered = second.try_read(&mut byte);
    assert!(
        matches!(&answered, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the second client was answered: {answered:?}"
    );
    let stats = relay.stats();
    assert_eq!((stats.active, stats.total), (1, 1));
    assert_eq!(a.accepted.load(std::sync::atomic::Ordering::SeqCst), 1);

    // The first session ends: the second one is accepted and served, its early bytes
    // intact.
    drop(first);
    assert_eq!(read_line(&mut second).await, "a");
    let mut echoed = [0u8; 3];
    bounded("the echo", second.read_exact(&mut echoed))
        .await
        .unwrap();
    assert_eq!(&echoed, b"two");
    let stats = relay.stats();
    assert_eq!((stats.active, stats.total, stats.failed), (1, 2, 0));
}
