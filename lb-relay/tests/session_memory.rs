//! The user-space memory an idle session holds in a whole relay (accept loop, session
//! service, lease, stats entry, copy, both sockets), measured with a counting allocator.
//!
//! `copy_idle_memory.rs` measures the copy alone; this one measures everything a relay
//! keeps per session. The binary holds this single test so nothing else allocates
//! meanwhile. It opens 500 sessions through a relay to a backend whose accepted sockets
//! the test holds (no backend task per session), moves a few bytes each way through
//! each, lets them go idle, and divides the growth of live heap bytes by the number of
//! sessions, once the heap stopped changing, minus the two sockets per session the test itself owns (the client and the
//! backend's side). Kernel memory (socket buffers, pipes) is not counted. Run with
//! `--nocapture` to see the numbers.

mod alloc_support;
mod common;

use common::{bounded, eventually, relay, steady, Run};
use lb_core::{Host, HostTable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[global_allocator]
static ALLOCATOR: alloc_support::Counting = alloc_support::Counting;

const SESSIONS: usize = 500;
const TARGET: isize = 4096;

/// Heap bytes per connected `TcpStream` (its tokio registration), from 2 x 200 streams.
async fn bytes_per_stream() -> isize {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut streams = Vec::with_capacity(400);
    let before = alloc_support::live();
    for _ in 0..200 {
        let (c, s) = tokio::join!(common::connect(addr), listener.accept());
        streams.push(c.unwrap());
        streams.push(s.unwrap().0);
    }
    (alloc_support::live() - before) / 400
}

#[test]
fn an_idle_relayed_session_holds_under_4_kib() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let per_stream = bytes_per_stream().await;
        let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay = relay("memory")
            .forward_to(HostTable::new("t", [Host::from(backend.local_addr().unwrap())]).unwrap())
            .run();
        let to = relay.local_addrs()[0];
        let mut clients = Vec::with_capacity(SESSIONS);
        let mut servers = Vec::with_capacity(SESSIONS);
        let mut buf = [0u8; 64];
        // Warm up: the first session allocates what every later one reuses (the
        // scheduler's queues, the timer wheel).
        let mut warm = common::connect(to).await.unwrap();
        let (mut warm_server, _) = backend.accept().await.unwrap();
        warm.write_all(b"x").await.unwrap();
        warm_server.read_exact(&mut buf[..1]).await.unwrap();

        let before = alloc_support::live();
        for _ in 0..SESSIONS {
            let mut client = common::connect(to).await.unwrap();
            let (mut server, _) = bounded("the relayed connect", backend.accept())
                .await
                .unwrap();
            client.write_all(b"ping").await.unwrap();
            server.read_exact(&mut buf[..4]).await.unwrap();
            server.write_all(b"pong").await.unwrap();
            client.read_exact(&mut buf[..4]).await.unwrap();
            clients.push(client);
            servers.push(server);
        }
        // Wait until every session is idle (each one dropped what it held while
        // moving data): the live heap no longer changes while every task has its turn.
        let grown = steady("the sessions to go idle", alloc_support::live).await - before;
        let per_session = grown / SESSIONS as isize - 2 * per_stream;
        assert_eq!(relay.stats().active, SESSIONS as u64 + 1);
        println!(
            "idle relayed session: {per_session} B in the relay \
             (measured {} B per session, minus 2 test-owned streams of {per_stream} B)",
            grown / SESSIONS as isize
        );
        assert!(
            per_session < TARGET,
            "an idle relayed session holds {per_session} bytes, expected under {TARGET}"
        );
        drop((clients, servers, warm, warm_server));
        eventually("the sessions to end", || relay.stats().active == 0).await;
    });
}
