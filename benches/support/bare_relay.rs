//! Bare tokio relays for the relay bench: the least a relay can do per connection
//! (accept, connect to the backend, `copy_bidirectional`; no policy, stats, timeouts or
//! failover), as floors to hold `lb-relay` against.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use socket2::{Domain, Socket, Type};
use tokio::net::{TcpListener, TcpStream};

const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A bare relay on the calling runtime, beside the bench's clients and backends.
pub async fn spawn_shared(backend: SocketAddr) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind((LOOPBACK, 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(accept_loop(listener, backend));
    Ok(addr)
}

/// A bare relay thread per core: `threads` std threads, each running a current_thread
/// runtime with its own `SO_REUSEPORT` listener on one shared port, so the kernel
/// spreads new connections over the threads and each session stays on the thread that
/// accepted it (no work stealing, no wakeups across threads). The threads live until
/// the process exits.
pub fn spawn_per_core(backend: SocketAddr, threads: usize) -> io::Result<RelayThreads> {
    let first = reuse_port_listener(SocketAddr::from((LOOPBACK, 0)))?;
    let addr = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..threads {
        listeners.push(reuse_port_listener(addr)?);
    }
    let mut clocks = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        let thread = std::thread::Builder::new()
            .name(format!("bare-relay-{i}"))
            .spawn(move || {
                runtime.block_on(async move {
                    // Registering with this thread's reactor cannot fail short of
                    // running out of file descriptors; then no connection gets here
                    // and the bench's clients report it.
                    if let Ok(listener) = TcpListener::from_std(listener) {
                        accept_loop(listener, backend).await;
                    }
                });
            })?;
        clocks.push(thread_clock(&thread)?);
    }
    Ok(RelayThreads { addr, clocks })
}

/// A bare relay on its own multi-thread runtime of `threads` workers (work stealing,
/// one listener), off the bench's runtime like [`spawn_per_core`]'s threads.
pub fn spawn_own_runtime(backend: SocketAddr, threads: usize) -> io::Result<SocketAddr> {
    let listener = reuse_port_listener(SocketAddr::from((LOOPBACK, 0)))?;
    let addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("bare-relay-mt")
        .enable_io()
        .build()?;
    std::thread::Builder::new()
        .name("bare-relay-mt-main".into())
        .spawn(move || {
            runtime.block_on(async move {
                if let Ok(listener) = TcpListener::from_std(listener) {
                    accept_loop(listener, backend).await;
                }
            });
        })?;
    Ok(addr)
}

/// The address of a [`spawn_per_core`] relay and the CPU clocks of its threads.
pub struct RelayThreads {
    /// Where the relay listens.
    pub addr: SocketAddr,
    clocks: Vec<libc::clockid_t>,
}

impl RelayThreads {
    /// CPU seconds the relay's threads used so far, together.
    pub fn cpu_seconds(&self) -> io::Result<f64> {
        let mut total = 0.0;
        for &clock in &self.clocks {
            let mut now = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: `now` is a valid, writable `timespec`; `clock` is a thread CPU
            // clock of a thread that never exits before the process does.
            if unsafe { libc::clock_gettime(clock, &mut now) } != 0 {
                return Err(io::Error::last_os_error());
            }
            total += now.tv_sec as f64 + now.tv_nsec as f64 / 1e9;
        }
        Ok(total)
    }
}

fn thread_clock(thread: &std::thread::JoinHandle<()>) -> io::Result<libc::clockid_t> {
    use std::os::unix::thread::JoinHandleExt;
    let mut clock: libc::clockid_t = 0;
    // SAFETY: the thread is alive (it never returns) and `clock` is writable.
    let err = unsafe { libc::pthread_getcpuclockid(thread.as_pthread_t(), &mut clock) };
    if err != 0 {
        return Err(io::Error::from_raw_os_error(err));
    }
    Ok(clock)
}

/// A non-blocking listener with `SO_REUSEPORT`, bound to `addr`.
fn reuse_port_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

async fn accept_loop(listener: TcpListener, backend: SocketAddr) {
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
}
