//! Real servers on 127.0.0.1, port 0, each run by a tokio task until the test ends.

use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A listener on a free port.
pub async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = l.local_addr().expect("local addr");
    (l, addr)
}

/// An address where nothing listens: bound, then closed.
pub async fn closed_port() -> SocketAddr {
    let (l, addr) = listener().await;
    drop(l);
    addr
}

/// Accepts connections and hands each to `serve` on its own task, until the listener
/// task is aborted or the test ends.
pub fn accept_loop<F, Fut>(l: TcpListener, serve: F) -> tokio::task::JoinHandle<()>
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(serve(s));
        }
    })
}

/// Reads until the peer closes, so that a connection stays open as long as the
/// client wants.
async fn drain(mut s: TcpStream) {
    let mut buf = [0u8; 1024];
    while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// A server that sends `banner` on connect, then waits for the client to close.
pub async fn banner(banner: &'static [u8]) -> SocketAddr {
    let (l, addr) = listener().await;
    accept_loop(l, move |mut s| async move {
        let _ = s.write_all(banner).await;
        drain(s).await;
    });
    addr
}

/// A server that accepts and never answers.
pub async fn silent() -> SocketAddr {
    let (l, addr) = listener().await;
    accept_loop(l, drain);
    addr
}

/// A server that reads `request_len` bytes (or a request head ending in a blank
/// line), records them, then writes `response` and closes.
pub async fn respond(response: Vec<u8>) -> (SocketAddr, Arc<Mutex<Vec<Vec<u8>>>>) {
    let (l, addr) = listener().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let response = Arc::new(response);
    accept_loop(l, move |mut s| {
        let log = log.clone();
        let response = response.clone();
        async move {
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.ends_with(b"\r\n\r\n") {
                match s.read(&mut buf).await {
                    Ok(n) if n > 0 => req.extend_from_slice(&buf[..n]),
                    _ => break,
                }
            }
            log.lock().push(req);
            let _ = s.write_all(&response).await;
            let _ = s.shutdown().await;
        }
    });
    (addr, seen)
}

/// A server that echoes what it receives.
pub async fn echo() -> SocketAddr {
    let (l, addr) = listener().await;
    accept_loop(l, |mut s| async move {
        let (mut r, mut w) = s.split();
        let _ = tokio::io::copy(&mut r, &mut w).await;
    });
    addr
}
