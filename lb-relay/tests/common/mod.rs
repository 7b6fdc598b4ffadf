//! Helpers shared by the relay's integration tests: backends on 127.0.0.1 that say
//! who they are, clients bound to chosen source addresses, bounded waits.
#![allow(dead_code)] // each test binary uses its own subset

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lb_core::{BackendId, Host, HostTable};
use lb_relay::{BackendPort, Relay, RelayBuilder, RelayHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

/// Every wait in these tests is bounded by this; nothing sleeps for it.
pub const BOUND: Duration = Duration::from_secs(10);

/// Awaits `fut`, failing the test if it takes longer than [`BOUND`].
pub async fn bounded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(BOUND, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {BOUND:?} waiting for {what}"),
    }
}

/// Polls `cond` every 5 ms until it holds, failing the test after [`BOUND`].
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    bounded(what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
}

/// Yields this many times in [`settle`]: enough for a chain of wake-ups as long as
/// accept, spawn, first poll of the session, backend connect, and a reply.
const SETTLE_ROUNDS: usize = 8;

/// Lets every task that can make progress, make it: a causal barrier, not a pause.
///
/// On a current-thread runtime (the default of `#[tokio::test]`), tokio defers a task
/// that yields until the scheduler has run every ready task and polled the I/O driver
/// (`yield_now`'s documented behaviour), and the driver wakes every task whose socket
/// became ready. So after these rounds, anything the kernel already delivered (a
/// queued connection, bytes in a socket) has been acted on by whichever task waits for
/// it, through a few hand-offs. A test that then sees nothing happened knows that
/// nothing was going to happen, on a loaded machine as on an idle one. On a
/// multi-thread runtime it proves nothing: use it on current-thread runtimes only.
pub async fn settle() {
    for _ in 0..SETTLE_ROUNDS {
        tokio::task::yield_now().await;
    }
}

/// Settles (see [`settle`]) until `measure` returns the same value over a settle
/// round, and returns that value; fails the test after [`BOUND`]. For "wait until the
/// sessions are idle", observed as "their memory stopped shrinking".
pub async fn steady<T: PartialEq>(what: &str, mut measure: impl FnMut() -> T) -> T {
    bounded(what, async {
        let mut last = measure();
        loop {
            settle().await;
            let now = measure();
            if now == last {
                return now;
            }
            last = now;
        }
    })
    .await
}

/// A backend on 127.0.0.1 that greets every connection with `name\n`, then echoes
/// until the client shuts down writing, then closes.
pub struct Backend {
    pub name: String,
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Backend {
    pub async fn start(name: &str) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(name, listener)
    }

    pub fn serve(name: &str, listener: TcpListener) -> Backend {
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let (greeting, count) = (format!("{name}\n"), accepted.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                count.fetch_add(1, Ordering::SeqCst);
                let greeting = greeting.clone();
                tokio::spawn(async move {
                    if stream.write_all(greeting.as_bytes()).await.is_err() {
                        return;
                    }
                    let (mut r, mut w) = stream.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                    let _ = w.shutdown().await;
                });
            }
        });
        Backend {
            name: name.to_owned(),
            addr,
            accepted,
            task,
        }
    }

    /// The table entry for this backend.
    pub fn host(&self) -> Host {
        Host::new(self.name.clone(), self.addr)
    }

    pub fn id(&self) -> BackendId {
        BackendId::of_name(&self.name)
    }

    /// Stops listening: returns once the port is closed (new connects are refused).
    /// Connections already accepted keep being served.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// A table of these backends, all up.
pub fn table(name: &str, backends: &[&Backend]) -> Arc<HostTable<Host>> {
    HostTable::new(name, backends.iter().map(|b| b.host())).unwrap()
}

/// A relay on 127.0.0.1 that connects to each host's own port.
pub fn relay(name: &str) -> RelayBuilder {
    Relay::builder(name)
        .listen(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .backend_port(BackendPort::Host)
}

/// Builds and starts a relay whose settings a test knows to be valid.
pub trait Run {
    /// `build()` then `start()`, failing the test on either error.
    fn run(self) -> RelayHandle;
}

impl Run for RelayBuilder {
    fn run(self) -> RelayHandle {
        self.build()
            .expect("valid relay settings")
            .start()
            .expect("the relay starts")
    }
}

/// Connects to `to` from `source` (any port).
pub async fn connect_from(source: IpAddr, to: SocketAddr) -> TcpStream {
    let socket = reusable(source).unwrap();
    socket.bind(SocketAddr::new(source, 0)).unwrap();
    bounded("connect", socket.connect(to)).await.unwrap()
}

/// A client connection to `to`, from a socket with `SO_REUSEADDR` like the relay's own
/// backend sockets: tests close their clients first, and on Linux the TIME_WAIT left on
/// an ephemeral port would otherwise keep a later listener (the Exchange example's demo
/// servers, on ports 59532 and 59533) from binding that port for a minute.
pub async fn connect(to: SocketAddr) -> std::io::Result<TcpStream> {
    reusable(to.ip())?.connect(to).await
}

/// A socket of `ip`'s family with `SO_REUSEADDR`.
fn reusable(ip: IpAddr) -> std::io::Result<TcpSocket> {
    let socket = match ip {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    Ok(socket)
}

/// Reads one `\n`-terminated line (the backend's greeting), without the newline.
pub async fn read_line(stream: &mut TcpStream) -> String {
    let mut line = Vec::new();
    bounded("a line", async {
        loop {
            let b = stream.read_u8().await.expect("a greeting before EOF");
            if b == b'\n' {
                break;
            }
            line.push(b);
        }
    })
    .await;
    String::from_utf8(line).unwrap()
}

/// Connects through the relay and returns the name of the backend that answered.
pub async fn who(relay: SocketAddr) -> String {
    let mut s = bounded("connect", connect(relay)).await.unwrap();
    read_line(&mut s).await
}

/// Sends `msg` and expects it echoed back.
pub async fn echo(stream: &mut TcpStream, msg: &[u8]) {
    stream.write_all(msg).await.unwrap();
    let mut back = vec![0; msg.len()];
    bounded("the echo", stream.read_exact(&mut back))
        .await
        .unwrap();
    assert_eq!(back, msg);
}

/// Reads until EOF (or a reset, which also means the relay closed the session);
/// returns the bytes read.
pub async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    bounded("the connection to close", async {
        let mut buf = [0; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    all
}
