//! Soak: many idle sessions held through a relay while short sessions churn beside them.
//!
//! `cargo bench --bench soak` opens 10 000 sessions through one relay and keeps them
//! idle, then runs short sessions (connect, a server-first banner, close) through a
//! second relay for a minute, and prints:
//!
//! - `idle memory`: the user-space heap one idle relayed session holds (goal: at most
//!   4 KiB), measured with a counting allocator as `lb-relay/tests/session_memory.rs`
//!   does: the growth of live heap bytes divided by the sessions, minus the two sockets
//!   per session the bench itself owns (the client and the backend's side);
//! - `churn`: short sessions done and failed (goal: none failed), and their rate;
//! - `idle sessions after churn`: every idle session still relays a byte both ways;
//! - `heap after churn`: live heap growth across the churn (a leak shows here);
//! - `descriptors`: open descriptors before, with every session open, and after every
//!   session has closed (goal: after = before).
//!
//! The bench raises its open-file limit (it needs four descriptors per idle session in
//! this one process: the client, the relay's two sockets and the backend's side);
//! without the privilege to raise it far enough (`CAP_SYS_RESOURCE`) it opens as many
//! sessions as fit under the hard limit and says so: 3 976 under a hard limit of 20 000. `LB_SOAK_SESSIONS` and `LB_SOAK_SECS` change the sizes.
//! Without `--bench` (`cargo test --benches`) it runs a seconds-long smoke pass.
//!
//! Everything stays on loopback; the churn uses client addresses across 127.0.0.0/8 so
//! that TIME_WAIT entries never exhaust one address's ports.

#[path = "../lb-relay/tests/alloc_support/mod.rs"]
mod alloc_support;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lb_core::{Host, HostTable};
use lb_relay::{BackendPort, Relay, RelayHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

#[global_allocator]
static ALLOCATOR: alloc_support::Counting = alloc_support::Counting;

const BANNER: &[u8] = b"+OK lb soak\r\n";
/// Concurrent short-session loops during the churn.
const CHURNERS: usize = 16;
/// Connects in flight at once while the idle sessions open.
const OPENING: usize = 128;
/// The longest any single step may take before the bench gives up on it.
const STEP: Duration = Duration::from_secs(10);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let measure = std::env::args().any(|arg| arg == "--bench");
    let sessions = env_or("LB_SOAK_SESSIONS", if measure { 10_000 } else { 200 });
    let secs = env_or("LB_SOAK_SECS", if measure { 60 } else { 2 });
    let sessions = sessions.min(raise_fd_limit(sessions));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(sessions, Duration::from_secs(secs as u64)))
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Raises the open-file limit for `sessions` idle sessions and returns how many fit.
fn raise_fd_limit(sessions: usize) -> usize {
    let want = (sessions * 4 + 4096) as libc::rlim_t;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for getrlimit(2) to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return sessions;
    }
    let raised = libc::rlimit {
        rlim_cur: want.max(lim.rlim_cur),
        rlim_max: want.max(lim.rlim_max),
    };
    // SAFETY: `raised` is a valid rlimit; raising the hard limit needs privilege and
    // fails cleanly (EPERM) without it.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        return sessions;
    }
    let soft = libc::rlimit {
        rlim_cur: lim.rlim_max,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: as above; the soft limit may always rise to the hard one.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &soft) };
    let fit = (lim.rlim_max as usize).saturating_sub(4096) / 4;
    if fit < sessions {
        eprintln!(
            "soak: the open-file limit ({}) allows {fit} idle sessions, not {sessions}; \
             run as root (or raise `ulimit -Hn`) for the full figure",
            lim.rlim_max
        );
    }
    fit
}

/// Open descriptors of this process.
fn descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count())
}

fn relay(name: &str, backend: SocketAddr) -> Result<RelayHandle, BoxError> {
    let table = HostTable::new(name, [Host::from(backend)])?;
    Ok(Relay::builder(name)
        .listen(Ipv4Addr::LOCALHOST.into())
        .forward_to(table)
        .backend_port(BackendPort::Host)
        .max_sessions(1_000_000)
        .build()?
        .start()?)
}

async fn bounded<T>(
    what: &str,
    f: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    tokio::time::timeout(STEP, f).await.map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{what} took over {STEP:?}"),
        )
    })?
}

/// Heap bytes per connected `TcpStream` (its tokio registration), from 2 x 200 streams.
async fn bytes_per_stream() -> Result<isize, BoxError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let mut streams = Vec::with_capacity(400);
    let before = alloc_support::live();
    for _ in 0..200 {
        let (c, s) = tokio::join!(TcpStream::connect(addr), listener.accept());
        streams.push(c?);
        streams.push(s?.0);
    }
    Ok((alloc_support::live() - before) / 400)
}

async fn run(sessions: usize, churn_for: Duration) -> Result<(), BoxError> {
    let per_stream = bytes_per_stream().await?;

    // The idle backend: the bench holds its accepted sockets, no task per session.
    let idle_backend = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let idle_relay = relay("idle", idle_backend.local_addr()?)?;
    let churn_relay = relay("churn", spawn_banner_backend().await?)?;
    let idle_to = idle_relay.local_addrs()[0];
    let churn_to = churn_relay.local_addrs()[0];

    // Descriptors held by the setup (listeners, runtime) are in `before` and `after`.
    let fds_before = descriptors();
    // Warm up both paths: first sessions allocate what later ones reuse.
    let (mut warm, mut warm_server) = open_idle(idle_to, &idle_backend).await?;
    short_session(churn_to, 0).await?;

    let before = alloc_support::live();
    let (clients, servers) = open_many(sessions, idle_to, &idle_backend).await?;
    let with_idle = alloc_support::live();
    let per_session = (with_idle - before) / sessions as isize - 2 * per_stream;
    let fds_open = descriptors();
    println!(
        "idle memory: {per_session} B per idle session in the relay over {sessions} sessions \
         (measured {} B, minus 2 bench-owned streams of {per_stream} B; goal <= 4096)",
        (with_idle - before) / sessions as isize
    );

    let (done, failed, elapsed) = churn(churn_to, churn_for).await;
    println!(
        "churn: {done} short sessions in {:.1} s ({:.0}/s), {failed} failed (goal 0)",
        elapsed.as_secs_f64(),
        done as f64 / elapsed.as_secs_f64()
    );

    let after_churn = alloc_support::live();
    println!(
        "heap after churn: {:+} B against before it ({:+.1} B per idle session)",
        after_churn - with_idle,
        (after_churn - with_idle) as f64 / sessions as f64
    );
    let alive = check_alive(clients, servers).await;
    println!("idle sessions after churn: {alive} of {sessions} still relay both ways");

    warm.write_all(b"x").await?;
    warm_server.read_exact(&mut [0u8; 1]).await?;
    drop((warm, warm_server));
    let deadline = Instant::now() + STEP;
    while (idle_relay.stats().active > 0 || churn_relay.stats().active > 0)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let fds_after = descriptors();
    idle_relay.shutdown(Duration::from_secs(1)).await;
    churn_relay.shutdown(Duration::from_secs(1)).await;
    println!(
        "descriptors: {fds_before} before, {fds_open} with every idle session open, \
         {fds_after} after every session closed (goal: after = before)"
    );
    Ok(())
}

/// One idle session: the client, and the backend's accepted side, after a byte each way.
async fn open_idle(
    to: SocketAddr,
    backend: &TcpListener,
) -> Result<(TcpStream, TcpStream), BoxError> {
    let mut client = bounded("connect", TcpStream::connect(to)).await?;
    let (mut server, _) = bounded("the relayed accept", backend.accept()).await?;
    let mut byte = [0u8; 1];
    client.write_all(b"a").await?;
    bounded("a byte to the backend", server.read_exact(&mut byte)).await?;
    server.write_all(b"b").await?;
    bounded("a byte to the client", client.read_exact(&mut byte)).await?;
    Ok((client, server))
}

/// Opens `n` idle sessions, [`OPENING`] at a time.
async fn open_many(
    n: usize,
    to: SocketAddr,
    backend: &TcpListener,
) -> Result<(Vec<TcpStream>, Vec<TcpStream>), BoxError> {
    let (mut clients, mut servers) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut left = n;
    while left > 0 {
        let batch = left.min(OPENING);
        // Connect a batch, then accept it. Clients and accepted sockets pair up by order
        // only loosely; `check_alive` needs no pairing.
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..batch {
            tasks.spawn(async move { bounded("connect", TcpStream::connect(to)).await });
        }
        for _ in 0..batch {
            servers.push(bounded("the relayed accept", backend.accept()).await?.0);
        }
        while let Some(client) = tasks.join_next().await {
            clients.push(client??);
        }
        left -= batch;
    }
    Ok((clients, servers))
}

/// Sends a byte from every client and reads it at the backend side (and back), in
/// whatever pairing the accept gave: returns how many round trips completed.
async fn check_alive(mut clients: Vec<TcpStream>, mut servers: Vec<TcpStream>) -> usize {
    let mut ok = 0;
    for c in clients.iter_mut() {
        if c.write_all(b"c").await.is_ok() {
            ok += 1;
        }
    }
    let mut received = 0;
    let mut byte = [0u8; 1];
    for s in servers.iter_mut() {
        if let Ok(Ok(1)) = tokio::time::timeout(STEP, s.read(&mut byte)).await {
            received += 1;
            let _ = s.write_all(b"d").await;
        }
    }
    let mut returned = 0;
    for c in clients.iter_mut() {
        if let Ok(Ok(1)) = tokio::time::timeout(STEP, c.read(&mut byte)).await {
            returned += 1;
        }
    }
    ok.min(received).min(returned)
}

/// A backend that writes [`BANNER`] and closes, as a POP3 server answering `QUIT`.
async fn spawn_banner_backend() -> io::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                // A failing churn session shows up as a client error.
                let _ = stream.write_all(BANNER).await;
            });
        }
    });
    Ok(addr)
}

/// One short session from client address 127.0.0.`2 + k % 250`: connect, read the
/// banner to EOF, close.
async fn short_session(to: SocketAddr, k: u64) -> io::Result<()> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from(([127, 0, 0, 2 + (k % 250) as u8], 0)))?;
    let mut stream = bounded("connect", socket.connect(to)).await?;
    let mut got = Vec::with_capacity(BANNER.len());
    bounded("the banner", stream.read_to_end(&mut got)).await?;
    if got != BANNER {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("expected the banner, got {got:?}"),
        ));
    }
    Ok(())
}

/// Runs [`CHURNERS`] loops of short sessions for `length`: (done, failed, elapsed).
async fn churn(to: SocketAddr, length: Duration) -> (u64, u64, Duration) {
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let end = start + length;
    let mut loops = tokio::task::JoinSet::new();
    for c in 0..CHURNERS as u64 {
        let (done, failed) = (done.clone(), failed.clone());
        loops.spawn(async move {
            let mut k = c;
            while Instant::now() < end {
                match short_session(to, k).await {
                    Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                    Err(error) => {
                        eprintln!("churn session failed: {error}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
                k += CHURNERS as u64;
            }
        });
    }
    while loops.join_next().await.is_some() {}
    (
        done.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        start.elapsed(),
    )
}
