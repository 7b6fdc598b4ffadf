//! Heap allocations per relayed session, counted with a counting allocator.
//!
//! Each session is the shape of a short protocol exchange: the client connects, sends
//! 4 bytes, the backend answers 4 bytes, the client closes, the backend sees EOF and
//! closes, and the relay ends the session. The same exchange runs once directly against
//! the backend and once through the relay; the difference of the two allocation counts,
//! divided by the number of sessions, is what the relay allocates per session (accept,
//! session task, backend socket, lease, stats, copy). The binary holds this single test
//! on a current-thread runtime so nothing else allocates meanwhile. Run with
//! `--nocapture` to see the figure.

mod alloc_support;
mod common;

use std::net::SocketAddr;

use common::{bounded, relay, steady, Run};
use lb_core::{Host, HostTable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[global_allocator]
static ALLOCATOR: alloc_support::Counting = alloc_support::Counting;

const SESSIONS: usize = 200;

/// The most allocations a relayed session may make; a regression past this fails. The
/// figure was 15 before the connection-rate work of issue 13 (a 64 KiB copy buffer per
/// direction and burst, the stats registry's entry, the relay's name, the list of
/// tried hosts) and is 8 after it: the session's future (boxed by the tower service)
/// and its task, the tokio registrations of the two relay-side sockets and the list
/// tokio keeps of released ones, and the table and host names of the
/// [`Outcome`](lb_relay::Outcome).
const LIMIT: usize = 8;

/// Runs `SESSIONS` exchanges against `to`, with `backend` accepting the far side, and
/// waits until every task is done with them (the allocation count stops moving while
/// every task has its turn: a relayed session ends after its backend closed); returns
/// the allocations they made.
async fn exchanges(to: SocketAddr, backend: &TcpListener) -> usize {
    let mut buf = [0u8; 4];
    let before = alloc_support::allocations();
    for _ in 0..SESSIONS {
        let mut client = common::connect(to).await.unwrap();
        let (mut server, _) = bounded("the backend accept", backend.accept())
            .await
            .unwrap();
        client.write_all(b"ping").await.unwrap();
        server.read_exact(&mut buf).await.unwrap();
        server.write_all(b"pong").await.unwrap();
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong");
        drop(client);
        assert_eq!(
            bounded("EOF at the backend", server.read(&mut buf))
                .await
                .unwrap(),
            0
        );
        drop(server);
    }
    steady("the sessions to end", alloc_support::allocations).await - before
}

#[test]
fn a_relayed_session_makes_few_allocations() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let direct = backend.local_addr().unwrap();
        let relay = relay("allocations")
            .forward_to(HostTable::new("t", [Host::from(direct)]).unwrap())
            .run();
        let via_relay = relay.local_addrs()[0];
        // Warm up both paths: the first sessions allocate what later ones reuse (the
        // scheduler's queues, the timer wheel, the stats' buffers).
        exchanges(direct, &backend).await;
        exchanges(via_relay, &backend).await;

        let direct_allocations = exchanges(direct, &backend).await;
        let relayed_allocations = exchanges(via_relay, &backend).await;
        // Every relayed session ran and ended before the count was taken.
        let stats = relay.stats();
        assert_eq!((stats.total, stats.active), (2 * SESSIONS as u64, 0));
        let per_session =
            relayed_allocations.saturating_sub(direct_allocations) as f64 / SESSIONS as f64;
        println!(
            "relayed session: {per_session:.2} allocations in the relay \
             ({} per relayed exchange, {} per direct one)",
            relayed_allocations as f64 / SESSIONS as f64,
            direct_allocations as f64 / SESSIONS as f64,
        );
        assert!(
            per_session <= LIMIT as f64,
            "a relayed session makes {per_session:.2} allocations, expected at most {LIMIT}"
        );
    });
}
