//! The accept loop survives descriptor exhaustion (`EMFILE`) and serves again once
//! descriptors are free.
//!
//! Lowering `RLIMIT_NOFILE` affects the whole process, so the work happens in a child:
//! the test re-executes its own binary with an environment variable that selects the
//! child's part. The child runs a relay, lowers its limit, fills every free
//! descriptor, connects a client (a socket made beforehand: connecting needs no new
//! descriptor, and the kernel completes the handshake from the listen queue), watches
//! the relay's accept fail with `EMFILE` and back off, frees the descriptors, and
//! checks that the waiting client and a new one are both served.
//!
//! Linux only: it reads `/proc/self/fd` and relies on Linux's `RLIMIT_NOFILE` and
//! listen-queue behaviour.
#![cfg(target_os = "linux")]

mod common;

use std::fs::File;
use std::process::Command;

use common::{bounded, eventually, read_line, relay, table, who, Backend, Run};
use tokio::net::TcpSocket;

const CHILD: &str = "LB_RELAY_EXHAUSTION_CHILD";
const NAME: &str = "accept_loop_survives_descriptor_exhaustion";

#[test]
fn accept_loop_survives_descriptor_exhaustion() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child failed: {}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("served again after exhaustion"),
        "the child did not run its part:\n{stdout}\n{stderr}"
    );
}

/// The highest descriptor number open now.
fn highest_fd() -> u64 {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .max()
        .unwrap()
}

/// How many descriptors are open now.
fn open_fds() -> usize {
    // The directory's own descriptor is listed too, every time alike.
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Lowers the soft `RLIMIT_NOFILE` of this process to `limit`.
fn set_nofile(limit: u64) {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl), 0);
        rl.rlim_cur = limit as libc::rlim_t;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &rl), 0);
    }
}

fn child() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let backend = Backend::start("a").await;
        let relay = relay("exhausted").forward_to(table("t", &[&backend])).run();
        let to = relay.local_addrs()[0];
        let idle = open_fds();
        assert_eq!(who(to).await, "a");
        // The session ends after `who` returns: the relay and the backend close their
        // sockets (and the relay its pipes) a moment later. Descriptors freed after the
        // hog below has filled the table would let the relay accept, so wait for them.
        eventually("the first session's descriptors to close", || {
            relay.stats().active == 0 && open_fds() == idle
        })
        .await;
        let early = TcpSocket::new_v4().unwrap();

        // A few descriptors above those open now, then fill them all.
        set_nofile(highest_fd() + 8);
        let mut hog = Vec::new();
        let emfile = loop {
            match File::open("/dev/null") {
                Ok(f) => hog.push(f),
                Err(e) => break e,
            }
        };
        assert_eq!(emfile.raw_os_error(), Some(libc::EMFILE), "{emfile}");

        let mut waiting = bounded("the handshake", early.connect(to)).await.unwrap();
        // The relay cannot accept: it logs, backs off (10 ms, 20 ms, ...) and retries.
        eventually("accept errors", || relay.stats().accept_errors >= 3).await;
        assert_eq!(relay.stats().total, 1);

        drop(hog);
        assert_eq!(read_line(&mut waiting).await, "a");
        assert_eq!(who(to).await, "a");
        let stats = relay.stats();
        assert_eq!((stats.total, stats.failed), (3, 0));
        println!(
            "served again after exhaustion: {} accept errors",
            stats.accept_errors
        );
    });
}
