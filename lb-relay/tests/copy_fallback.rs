//! When no pipe can be created for splice (the process is out of descriptors), a bulk
//! direction falls back to the portable copy at run time and the session still relays
//! every byte.
//!
//! The test lowers the process's soft `RLIMIT_NOFILE` to exactly the descriptors in use
//! once the four sockets exist, so every later `pipe2` fails with `EMFILE`. That limit
//! is process-wide, so this binary holds this single test, and restores the limit at
//! the end. Linux only: `RLIMIT_NOFILE` semantics, `/dev/null` and splice itself.
#![cfg(all(target_os = "linux", feature = "splice"))]

mod copy_support;

use std::io;
use std::time::Duration;

use copy_support::{pair, random_bytes, BOUND};
use lb_relay::copy::{bidirectional, CopyOptions, End, Progress, Totals};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn rlimit() -> libc::rlimit {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass, which outlives the call.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(rc, 0, "getrlimit: {}", io::Error::last_os_error());
    limit
}

fn set_rlimit(limit: &libc::rlimit) {
    // SAFETY: setrlimit only reads the struct we pass, which outlives the call.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, limit) };
    assert_eq!(rc, 0, "setrlimit: {}", io::Error::last_os_error());
}

/// The lowest free descriptor number: every descriptor below it is in use.
fn lowest_free_fd() -> u64 {
    use std::os::fd::AsRawFd;
    let probe = std::fs::File::open("/dev/null").expect("open /dev/null");
    probe.as_raw_fd() as u64
}

async fn relay_without_descriptors() -> (Totals, Arc<Progress>) {
    let (mut client, relay_client) = pair().await;
    let (mut backend, relay_server) = pair().await;

    let saved = rlimit();
    let exhausted = libc::rlimit {
        rlim_cur: lowest_free_fd(),
        rlim_max: saved.rlim_max,
    };
    set_rlimit(&exhausted);
    let open = std::fs::File::open("/dev/null");
    let no_descriptor = open
        .as_ref()
        .map_err(|e| e.raw_os_error() == Some(libc::EMFILE));
    assert_eq!(
        no_descriptor.err(),
        Some(true),
        "the limit must leave no descriptor free"
    );

    let progress = Arc::new(Progress::default());
    let shared = Arc::clone(&progress);
    let copy = tokio::spawn(async move {
        let opts = CopyOptions {
            idle_timeout: Duration::from_secs(600),
            splice: true,
        };
        bidirectional(relay_client, relay_server, &opts, &shared).await
    });
    // Well past the 64 KiB after which each direction asks for a pipe.
    let up = random_bytes(1_500_000, 7);
    let down = random_bytes(900_000, 8);
    let upload = async {
        client.write_all(&up).await.expect("write up");
        client.shutdown().await.expect("shutdown client");
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.expect("read down");
        got
    };
    let download = async {
        backend.write_all(&down).await.expect("write down");
        backend.shutdown().await.expect("shutdown backend");
        let mut got = Vec::new();
        backend.read_to_end(&mut got).await.expect("read up");
        got
    };
    let both = async { tokio::join!(upload, download) };
    let (at_client, at_backend) = tokio::time::timeout(BOUND, both).await.expect("bound");
    let totals = tokio::time::timeout(BOUND, copy)
        .await
        .expect("bound")
        .expect("task")
        .expect("the session succeeds without pipes");

    set_rlimit(&saved);
    assert!(at_backend == up, "client to server bytes differ");
    assert!(at_client == down, "server to client bytes differ");
    (totals, progress)
}

#[test]
fn splice_falls_back_to_the_portable_copy_without_descriptors() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (totals, progress) = runtime.block_on(relay_without_descriptors());
    assert_eq!(
        totals,
        Totals {
            client_to_server: 1_500_000,
            server_to_client: 900_000,
            end: End::Closed
        }
    );
    // Splice was asked for, and no byte went through it: the fallback ran.
    assert_eq!(
        (
            progress.spliced_client_to_server(),
            progress.spliced_server_to_client()
        ),
        (0, 0)
    );
}
