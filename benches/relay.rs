//! The relay against a direct connection to the same kind of backend, in one run, on
//! loopback.
//!
//! Figures (the list), each printed as
//! `<figure>: relay <value> <unit>, direct <value> <unit>, ratio <relay/direct>`:
//!
//! - `throughput`: one stream of 1 GiB from the client to a backend that discards it,
//!   timed until the backend's close reaches the client (median of 3 runs);
//! - `connections`: new connections per second, each one connect, a 1-byte echo and a
//!   close, from 4 concurrent clients (median of 3 rounds of 2000 connections);
//! - `latency p50` / `latency p99`: a 64-byte request and its 64-byte echo on one open
//!   connection per path, 20 000 round trips after 1000 of warm-up.
//!
//! The two paths alternate (run, round, or block of 2000 round trips at a time), so
//! background load on the machine falls on both alike.
//!
//! The relay runs with its defaults (splice on Linux, nodelay); `LB_BENCH_SPLICE=0`
//! runs it with the portable copy instead. Everything (backends, relay, clients) shares
//! one tokio runtime with two worker threads, so the relay's CPU cost shows in every
//! figure. The direct and the relayed path each have their own backend listener.
//!
//! `cargo bench --bench relay` measures. Without `--bench` (`cargo test --benches`), the
//! binary runs a seconds-long smoke pass over the same code with tiny sizes and prints
//! no figures.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use lb_core::{Host, HostTable};
use lb_relay::{BackendPort, Relay, RelayHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How much each figure measures.
struct Sizes {
    stream_bytes: u64,
    stream_runs: usize,
    connection_rounds: usize,
    connection_clients: usize,
    connections_per_client: usize,
    warmup_round_trips: usize,
    round_trip_blocks: usize,
    round_trips_per_block: usize,
}

const FULL: Sizes = Sizes {
    stream_bytes: 1 << 30,
    stream_runs: 3,
    connection_rounds: 3,
    connection_clients: 4,
    connections_per_client: 500,
    warmup_round_trips: 1000,
    round_trip_blocks: 10,
    round_trips_per_block: 2000,
};

const SMOKE: Sizes = Sizes {
    stream_bytes: 1 << 20,
    stream_runs: 1,
    connection_rounds: 1,
    connection_clients: 2,
    connections_per_client: 10,
    warmup_round_trips: 10,
    round_trip_blocks: 2,
    round_trips_per_block: 50,
};

const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let measure = std::env::args().any(|arg| arg == "--bench");
    let splice = std::env::var("LB_BENCH_SPLICE").map_or(true, |v| v != "0");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let sizes = if measure { &FULL } else { &SMOKE };
    let figures = runtime.block_on(run(sizes, splice))?;
    if measure {
        for line in figures {
            println!("{line}");
        }
    } else {
        println!("relay bench smoke pass ok; `cargo bench --bench relay` measures");
    }
    Ok(())
}

/// One backend listener per path and kind, and a relay in front of the relayed ones.
struct Setup {
    direct_sink: SocketAddr,
    direct_echo: SocketAddr,
    relay_sink: SocketAddr,
    relay_echo: SocketAddr,
    /// A bare tokio relay to another echo backend: the floor a relay can reach here.
    bare_echo: SocketAddr,
    _relays: [RelayHandle; 2],
}

async fn run(sizes: &Sizes, splice: bool) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let direct_sink = spawn_backend(Backend::Sink).await?;
    let direct_echo = spawn_backend(Backend::Echo).await?;
    let sink_relay = relay_to(spawn_backend(Backend::Sink).await?, splice)?;
    let echo_relay = relay_to(spawn_backend(Backend::Echo).await?, splice)?;
    let setup = Setup {
        direct_sink,
        direct_echo,
        relay_sink: sink_relay.local_addrs()[0],
        relay_echo: echo_relay.local_addrs()[0],
        bare_echo: spawn_bare_relay(spawn_backend(Backend::Echo).await?).await?,
        _relays: [sink_relay, echo_relay],
    };

    // `LB_BENCH_ONLY=connections` (or `throughput`, `latency`) measures one figure,
    // for profiling it alone.
    let only = std::env::var("LB_BENCH_ONLY").ok();
    let wanted = |figure: &str| only.as_deref().is_none_or(|only| only == figure);
    let mut lines = Vec::new();
    if wanted("throughput") {
        lines.push(throughput(&setup, sizes).await?);
    }
    if wanted("connections") {
        lines.extend(connection_rate(&setup, sizes).await?);
    }
    if wanted("latency") {
        lines.extend(latency(&setup, sizes).await?);
    }
    Ok(lines)
}

async fn throughput(setup: &Setup, sizes: &Sizes) -> io::Result<String> {
    let (mut relay, mut direct) = (Vec::new(), Vec::new());
    for _ in 0..sizes.stream_runs {
        relay.push(stream(setup.relay_sink, sizes.stream_bytes).await?);
        direct.push(stream(setup.direct_sink, sizes.stream_bytes).await?);
    }
    let gbits = |secs: f64| sizes.stream_bytes as f64 * 8.0 / secs / 1e9;
    Ok(line(
        "throughput",
        gbits(median(&mut relay)),
        gbits(median(&mut direct)),
        "Gbit/s",
    ))
}

async fn connection_rate(setup: &Setup, sizes: &Sizes) -> io::Result<Vec<String>> {
    let (mut relay, mut direct, mut bare) = (Vec::new(), Vec::new(), Vec::new());
    let (mut relay_cpu, mut direct_cpu, mut bare_cpu) = (Vec::new(), Vec::new(), Vec::new());
    let total = (sizes.connection_clients * sizes.connections_per_client) as f64;
    for _ in 0..sizes.connection_rounds {
        for (addr, rates, cpus) in [
            (setup.relay_echo, &mut relay, &mut relay_cpu),
            (setup.direct_echo, &mut direct, &mut direct_cpu),
            (setup.bare_echo, &mut bare, &mut bare_cpu),
        ] {
            let cpu = cpu_seconds()?;
            rates.push(connections(addr, sizes).await?);
            cpus.push((cpu_seconds()? - cpu) / total * 1e6);
        }
    }
    let direct = median(&mut direct);
    let direct_cpu = median(&mut direct_cpu);
    Ok(vec![
        line("connections", median(&mut relay), direct, "conn/s"),
        line(
            "connection cpu",
            median(&mut relay_cpu),
            direct_cpu,
            "us/conn",
        ),
        line(
            "connections (bare relay)",
            median(&mut bare),
            direct,
            "conn/s",
        ),
        line(
            "connection cpu (bare relay)",
            median(&mut bare_cpu),
            direct_cpu,
            "us/conn",
        ),
    ])
}

/// The least a relay can do per connection on tokio, for comparison: accept, connect
/// to `backend`, `copy_bidirectional`; no policy, stats, timeouts or failover.
async fn spawn_bare_relay(backend: SocketAddr) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind((LOOPBACK, 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                // A failing bench connection shows up as a client error.
                let Ok(mut server) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    Ok(addr)
}

/// CPU seconds (user and system) this process used so far, on every thread: clients,
/// backends and relay alike.
fn cpu_seconds() -> io::Result<f64> {
    // SAFETY: an all-zero `rusage` is a valid value of the plain C struct, which
    // getrusage(2) overwrites.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable `rusage`.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(secs(usage.ru_utime) + secs(usage.ru_stime))
}

async fn latency(setup: &Setup, sizes: &Sizes) -> io::Result<Vec<String>> {
    let mut relay_conn = EchoClient::connect(setup.relay_echo).await?;
    let mut direct_conn = EchoClient::connect(setup.direct_echo).await?;
    relay_conn
        .round_trips(sizes.warmup_round_trips, None)
        .await?;
    direct_conn
        .round_trips(sizes.warmup_round_trips, None)
        .await?;
    let (mut relay, mut direct) = (Vec::new(), Vec::new());
    for _ in 0..sizes.round_trip_blocks {
        let n = sizes.round_trips_per_block;
        relay_conn.round_trips(n, Some(&mut relay)).await?;
        direct_conn.round_trips(n, Some(&mut direct)).await?;
    }
    Ok([("latency p50", 0.50), ("latency p99", 0.99)]
        .into_iter()
        .map(|(name, q)| {
            let micros = |samples: &mut [f64]| percentile(samples, q) * 1e6;
            line(name, micros(&mut relay), micros(&mut direct), "us")
        })
        .collect())
}

fn line(figure: &str, relay: f64, direct: f64, unit: &str) -> String {
    format!(
        "{figure}: relay {relay:.2} {unit}, direct {direct:.2} {unit}, ratio {:.3}",
        relay / direct
    )
}

fn median(samples: &mut [f64]) -> f64 {
    percentile(samples, 0.5)
}

/// The nearest-rank percentile `q` (0..=1) of `samples`.
fn percentile(samples: &mut [f64], q: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}

fn relay_to(backend: SocketAddr, splice: bool) -> Result<RelayHandle, Box<dyn std::error::Error>> {
    let table = HostTable::new("bench", [Host::from(backend)])?;
    Ok(Relay::builder("bench")
        .listen(LOOPBACK.into())
        .forward_to(table)
        .backend_port(BackendPort::Host)
        .splice(splice)
        .build()?
        .start()?)
}

#[derive(Clone, Copy)]
enum Backend {
    /// Reads until EOF, discarding, then closes.
    Sink,
    /// Writes back whatever it reads, until EOF.
    Echo,
}

async fn spawn_backend(kind: Backend) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind((LOOPBACK, 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                // A failing bench connection shows up as a client error.
                let _ = serve(kind, stream).await;
            });
        }
    });
    Ok(addr)
}

async fn serve(kind: Backend, mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    // Large reads for the stream; small ones for echoes, where a fresh connection's
    // zeroed buffer would otherwise dominate the connection figure.
    let mut buf = vec![
        0u8;
        match kind {
            Backend::Sink => 256 * 1024,
            Backend::Echo => 4096,
        }
    ];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        if let Backend::Echo = kind {
            stream.write_all(&buf[..n]).await?;
        }
    }
}

/// Seconds to send `bytes` and see the backend close after reading them all.
async fn stream(addr: SocketAddr, bytes: u64) -> io::Result<f64> {
    let chunk = vec![0xA5u8; 1 << 20];
    let start = Instant::now();
    let mut stream = TcpStream::connect(addr).await?;
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        stream.write_all(&chunk[..n]).await?;
        left -= n as u64;
    }
    stream.shutdown().await?;
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await?;
    Ok(start.elapsed().as_secs_f64())
}

/// Connections per second: connect, a 1-byte echo, close, from concurrent clients.
async fn connections(addr: SocketAddr, sizes: &Sizes) -> io::Result<f64> {
    let per_client = sizes.connections_per_client;
    let start = Instant::now();
    let clients: Vec<_> = (0..sizes.connection_clients)
        .map(|_| {
            tokio::spawn(async move {
                for _ in 0..per_client {
                    let mut stream = TcpStream::connect(addr).await?;
                    stream.write_all(b"x").await?;
                    let mut byte = [0u8; 1];
                    stream.read_exact(&mut byte).await?;
                }
                io::Result::Ok(())
            })
        })
        .collect();
    for client in clients {
        client.await.map_err(io::Error::other)??;
    }
    let total = (sizes.connection_clients * per_client) as f64;
    Ok(total / start.elapsed().as_secs_f64())
}

/// One open connection to an echo backend.
struct EchoClient(TcpStream);

impl EchoClient {
    async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(EchoClient(stream))
    }

    /// `n` round trips of a 64-byte request and its echo; the seconds each took are
    /// pushed to `samples` if given.
    async fn round_trips(
        &mut self,
        n: usize,
        mut samples: Option<&mut Vec<f64>>,
    ) -> io::Result<()> {
        let request = [0x42u8; 64];
        let mut response = [0u8; 64];
        for _ in 0..n {
            let start = Instant::now();
            self.0.write_all(&request).await?;
            self.0.read_exact(&mut response).await?;
            if let Some(samples) = samples.as_deref_mut() {
                samples.push(start.elapsed().as_secs_f64());
            }
        }
        Ok(())
    }
}
