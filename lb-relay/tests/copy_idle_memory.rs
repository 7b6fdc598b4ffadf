//! The user-space memory an idle session holds, measured with a counting allocator.
//!
//! The target is under 4 KiB per idle session. This binary holds a single test
//! (so no other test allocates meanwhile) that opens 1000 loopback sessions through
//! `copy::bidirectional`, moves 128 KiB each way through each of them so their copy
//! paths have been used (with splice, past the switch from the portable copy), lets them go idle, and divides the growth of live heap
//! bytes by the number of sessions. It counts the spawned task (the `bidirectional`
//! future with its timer and counters) and, separately, the tokio registrations of the
//! two sockets the relay owns per session. Kernel memory (socket buffers, splice pipes)
//! is not user-space memory and is not counted. Run with `--nocapture` to see the
//! numbers.

mod alloc_support;
mod common;

use std::time::Duration;

use lb_relay::copy::{bidirectional, CopyOptions, Progress};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Heap bytes currently allocated by the whole process.
#[global_allocator]
static ALLOCATOR: alloc_support::Counting = alloc_support::Counting;

const SESSIONS: usize = 1000;
const TARGET: isize = 4096;

/// Bytes per session.
struct Measured {
    /// The spawned `bidirectional` task.
    task: isize,
    /// The tokio registrations of the two streams the relay owns.
    sockets: isize,
    /// `size_of_val` of the `bidirectional` future (part of `task`).
    future_size: usize,
}

async fn measure(splice: bool) -> Measured {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let mut peers = Vec::with_capacity(2 * SESSIONS);
    let mut relay_sides = Vec::with_capacity(SESSIONS);
    let mut handles = Vec::with_capacity(SESSIONS);
    let opts = CopyOptions {
        idle_timeout: Duration::from_secs(600),
        splice,
    };

    // The size of the copy state alone, for the report.
    let (spare_client, spare_server) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (spare_client, spare_server) = (
        spare_client.expect("connect"),
        spare_server.expect("accept").0,
    );
    let progress = Progress::default();
    let future = bidirectional(spare_client, spare_server, &opts, &progress);
    let future_size = std::mem::size_of_val(&future);
    drop(future);

    let before_sockets = alloc_support::live();
    for _ in 0..SESSIONS {
        let (client, relay_client) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let (backend, relay_server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        peers.push(client.expect("connect"));
        peers.push(backend.expect("connect"));
        relay_sides.push((
            relay_client.expect("accept").0,
            relay_server.expect("accept").0,
        ));
    }
    // Four streams per session were created; the relay owns two of them, half.
    let sockets = (alloc_support::live() - before_sockets) / (2 * SESSIONS as isize);

    let payload = vec![0x5Au8; 128 * 1024];
    let mut buf = vec![0u8; 128 * 1024];
    let before_tasks = alloc_support::live();
    for (relay_client, relay_server) in relay_sides.drain(..) {
        let opts = opts.clone();
        handles.push(tokio::spawn(async move {
            let progress = Progress::default();
            bidirectional(relay_client, relay_server, &opts, &progress).await
        }));
    }
    // Move 128 KiB each way through every session, then let them all go idle.
    for pair in peers.chunks_mut(2) {
        let [client, backend] = pair else {
            unreachable!("peers come in pairs")
        };
        client.write_all(&payload).await.expect("write up");
        backend.read_exact(&mut buf).await.expect("read up");
        backend.write_all(&payload).await.expect("write down");
        client.read_exact(&mut buf).await.expect("read down");
    }
    // Wait until every session is idle (each one dropped its copy buffer): the live
    // heap no longer changes while every task has its turn.
    let idle = common::steady("the sessions to go idle", alloc_support::live).await;
    let task = (idle - before_tasks) / SESSIONS as isize;

    for handle in &handles {
        assert!(!handle.is_finished(), "an idle session ended");
    }
    // The sessions and sockets go with the runtime, which each measurement has
    // its own of: nothing of this one is left to be freed during the next.
    drop(peers);
    Measured {
        task,
        sockets,
        future_size,
    }
}

#[test]
fn an_idle_session_holds_under_4_kib() {
    for splice in [true, false] {
        // A current-thread runtime (so that `steady` is a barrier), one per
        // measurement: dropping it frees its tasks, sockets and driver state at once.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let m = runtime.block_on(measure(splice));
        drop(runtime);
        let total = m.task + m.sockets;
        println!(
            "idle session (splice: {splice}): task {} B (future {} B) + its 2 sockets {} B = {} B",
            m.task, m.future_size, m.sockets, total
        );
        assert!(
            total < TARGET,
            "an idle session holds {total} bytes (splice: {splice}), expected under {TARGET}"
        );
    }
}
