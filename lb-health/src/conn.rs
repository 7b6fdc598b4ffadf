//! Connections for checks: connect, optional TLS, send and read, each bounded by the
//! probe's deadline and failing with the [`Reason`] of its phase.
//!
//! Check sockets set `SO_REUSEADDR`. A check closes first, so its socket lingers in
//! TIME_WAIT for a minute on an ephemeral port; with checks every few seconds, many
//! ports of the ephemeral range are held at any time. Linux lets a listener with
//! `SO_REUSEADDR` bind over a lingering socket only if that socket had `SO_REUSEADDR`
//! too (`inet_bind_conflict` in `net/ipv4/inet_connection_sock.c`), so without it a
//! check could make a later `bind` in that range fail with `EADDRINUSE`.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{timeout_at, Instant};

#[cfg(feature = "tls")]
use crate::TlsOptions;
use crate::{Failure, Probe, Reason};

/// A byte stream a check talks over: plain TCP or TLS.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A boxed [`Io`].
pub(crate) type Stream = Box<dyn Io>;

/// How a check reaches its host: plain TCP, or TLS over it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Transport {
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<TlsOptions>,
}

impl Transport {
    /// Whether the transport is TLS.
    pub(crate) fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        {
            self.tls.is_some()
        }
        #[cfg(not(feature = "tls"))]
        {
            false
        }
    }

    /// Connects, and completes a TLS handshake when configured. `name` is the server
    /// name to present (an HTTP `Host`), if the check has one.
    pub(crate) async fn open(&self, probe: &Probe, name: Option<&str>) -> Result<Stream, Failure> {
        let tcp = connect(probe).await?;
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return Ok(Box::new(tls.handshake(tcp, probe, name).await?));
        }
        let _ = name;
        Ok(Box::new(tcp))
    }
}

/// Connects to the probe's address by its deadline, from a socket with `SO_REUSEADDR`.
pub(crate) async fn connect(probe: &Probe) -> Result<TcpStream, Failure> {
    let socket = reusable_socket(probe.addr()).map_err(|e| {
        Failure::new(Reason::from_connect_error(&e))
            .with_detail(format!("cannot open a socket: {e}"))
    })?;
    match timeout_at(probe.deadline(), socket.connect(probe.addr())).await {
        Err(_) => Err(Failure::new(Reason::ConnectTimeout)),
        Ok(Err(e)) => Err(Failure::new(Reason::from_connect_error(&e)).with_detail(e.to_string())),
        Ok(Ok(tcp)) => {
            // Checks send small requests once; do not wait for Nagle.
            let _ = tcp.set_nodelay(true);
            Ok(tcp)
        }
    }
}

/// A socket for `addr`'s family with `SO_REUSEADDR` set.
fn reusable_socket(addr: std::net::SocketAddr) -> std::io::Result<TcpSocket> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    Ok(socket)
}

/// Sends all of `data` by `deadline`.
pub(crate) async fn send<S: AsyncWrite + Unpin + ?Sized>(
    stream: &mut S,
    data: &[u8],
    deadline: Instant,
) -> Result<(), Failure> {
    if data.is_empty() {
        return Ok(());
    }
    let write = async {
        stream.write_all(data).await?;
        stream.flush().await
    };
    match timeout_at(deadline, write).await {
        Err(_) => Err(Failure::new(Reason::WriteTimeout)),
        Ok(Err(e)) => Err(Failure::new(Reason::WriteError).with_detail(e.to_string())),
        Ok(Ok(())) => Ok(()),
    }
}

/// Reads what is available into the end of `buf`, at most `limit - buf.len()` bytes, by
/// `deadline`. Returns the number of bytes read, 0 at the end of the stream (a TLS peer
/// closing without `close_notify` counts as the end too: checks only read).
pub(crate) async fn read_more<S: AsyncRead + Unpin + ?Sized>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    limit: usize,
    deadline: Instant,
) -> Result<usize, Failure> {
    let room = limit.saturating_sub(buf.len()).min(16 * 1024);
    if room == 0 {
        return Ok(0);
    }
    let start = buf.len();
    buf.resize(start + room, 0);
    let result = timeout_at(deadline, stream.read(&mut buf[start..])).await;
    let n = match result {
        Ok(Ok(n)) => n,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
        Ok(Err(e)) => {
            buf.truncate(start);
            return Err(Failure::new(Reason::ReadError).with_detail(e.to_string()));
        }
        Err(_) => {
            buf.truncate(start);
            return Err(Failure::new(Reason::ReadTimeout));
        }
    };
    buf.truncate(start + n);
    Ok(n)
}

/// Up to 64 received bytes as text, for failure details.
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(64)];
    let text = String::from_utf8_lossy(cut);
    let mut out = format!("{:?}", text.as_ref());
    if bytes.len() > cut.len() {
        out.push_str("...");
    }
    out
}
