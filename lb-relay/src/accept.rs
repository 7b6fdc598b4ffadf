//! Listening sockets and the accept loop.
//!
//! One task accepts on every listen address of a relay, in turn. Before each accept it
//! takes a session permit (the `max sessions` limit) and waits until the service stack
//! is ready, so at the limit the relay simply stops accepting: new clients wait in the
//! kernel's listen queue instead of being reset, and are served as sessions end.
//!
//! Accept errors never end the loop. Errors that concern one connection
//! (`ECONNABORTED`, `ECONNRESET`: the client left before we accepted it) are skipped.
//! Anything else (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`) means the process or the
//! system is out of a resource; accepting again at once would spin, so the loop logs a
//! warning and backs off, 10 ms doubling up to 1 s, and resumes. The connection that
//! could not be accepted stays queued and is served once descriptors are free.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

use crate::lifecycle::{reached, Phase, Tracker};
use crate::relay::{BoxError, RelayService};
use crate::service::{Accepted, Shared};
use crate::stats::Counters;
use crate::TcpOptions;

/// The first back-off after a resource error.
const BACKOFF_MIN: Duration = Duration::from_millis(10);
/// The longest back-off.
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Creates a listening socket on `addr` with the relay's options.
pub(crate) fn bind(addr: SocketAddr, tcp: &TcpOptions) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        // So that `0.0.0.0` and `::` can be listened on together.
        socket.set_only_v6(true)?;
    }
    // Accepted sockets inherit the buffer sizes of the listener.
    if let Some(size) = tcp.send_buffer {
        socket.set_send_buffer_size(size as usize)?;
    }
    if let Some(size) = tcp.recv_buffer {
        socket.set_recv_buffer_size(size as usize)?;
    }
    // Linux copies TCP_NODELAY from a listener to the sockets it accepts (the whole
    // `tcp_sock` is cloned from the listener), so setting it here once saves a system
    // call per session; elsewhere each session sets it (see `Accepted::tuned`).
    #[cfg(target_os = "linux")]
    if tcp.nodelay {
        socket.set_nodelay(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    // The builder checked that the backlog fits an i32.
    socket.listen(i32::try_from(tcp.backlog).unwrap_or(i32::MAX))?;
    TcpListener::from_std(socket.into())
}

/// What the accept loop needs besides its listeners and service.
pub(crate) struct AcceptControl {
    pub(crate) shared: Arc<Shared>,
    pub(crate) phase: watch::Receiver<Phase>,
    pub(crate) tracker: Arc<Tracker>,
    pub(crate) permits: Arc<Semaphore>,
}

/// Whether an accept error concerns only the connection being accepted.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// Accepts on whichever listener has a connection first, starting the search after the
/// listener served last, so no address starves the others. Returns the index of the
/// listener with the connection.
async fn accept_any(
    listeners: &[TcpListener],
    next: &mut usize,
) -> (usize, io::Result<(TcpStream, SocketAddr)>) {
    poll_fn(|cx| {
        let n = listeners.len();
        for k in 0..n {
            let i = (*next + k) % n;
            if let Poll::Ready(result) = listeners[i].poll_accept(cx) {
                *next = (i + 1) % n;
                return Poll::Ready((i, result));
            }
        }
        Poll::Pending
    })
    .await
}

/// Accepts until the relay drains, handing every connection to `service` in its own
/// task. The listeners are closed when this returns.
pub(crate) async fn run<S: RelayService>(
    listeners: Vec<TcpListener>,
    mut service: S,
    mut ctl: AcceptControl,
) {
    // Shared with every session task for its log lines: a reference count per
    // session, not a copy of the name.
    let name: Arc<str> = Arc::from(ctl.shared.settings.name.as_str());
    let counters = || &ctl.shared.counters;
    // Each listener's own address: the configured one (`0.0.0.0:443` on a wildcard),
    // with the port the system chose if the configured port was 0. A bound socket
    // always has one; `None` only if the system cannot say, and then the session falls
    // back to the accepted socket's address.
    let listen: Vec<Option<SocketAddr>> = listeners.iter().map(|l| l.local_addr().ok()).collect();
    let mut backoff = BACKOFF_MIN;
    let mut next = 0;
    loop {
        let permit = tokio::select! {
            permit = ctl.permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break, // the semaphore is never closed; stop if it is
            },
            () = reached(&mut ctl.phase, Phase::Draining) => break,
        };
        let ready = tokio::select! {
            ready = poll_fn(|cx| service.poll_ready(cx)) => ready.map_err(Into::<BoxError>::into),
            () = reached(&mut ctl.phase, Phase::Draining) => break,
        };
        if let Err(error) = ready {
            tracing::warn!(relay = %name, %error, backoff_ms = backoff.as_millis() as u64, "session service not ready, backing off");
            if pause(&mut ctl.phase, &mut backoff).await {
                break;
            }
            continue;
        }
        let accepted = tokio::select! {
            accepted = accept_any(&listeners, &mut next) => accepted,
            () = reached(&mut ctl.phase, Phase::Draining) => break,
        };
        let (index, accepted) = accepted;
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                backoff = BACKOFF_MIN;
                accepted
            }
            Err(error) if is_connection_error(&error) => {
                Counters::bump(&counters().accept_errors);
                tracing::debug!(relay = %name, %error, "client left before accept");
                continue;
            }
            Err(error) => {
                Counters::bump(&counters().accept_errors);
                tracing::warn!(relay = %name, %error, backoff_ms = backoff.as_millis() as u64, "accept failed, backing off");
                if pause(&mut ctl.phase, &mut backoff).await {
                    break;
                }
                continue;
            }
        };
        // A listener on one address accepts only connections to that address; only a
        // wildcard listener needs to ask the socket which one the client dialled.
        let local = match listen[index] {
            Some(addr) if !addr.ip().is_unspecified() => addr,
            _ => match stream.local_addr() {
                Ok(local) => local,
                Err(error) => {
                    tracing::debug!(relay = %name, %peer, %error, "accepted socket has no local address");
                    continue;
                }
            },
        };
        let token = ctl.tracker.enter();
        let session = service.call(Accepted {
            stream,
            peer,
            listen: listen[index].unwrap_or(local),
            local,
            tuned: cfg!(target_os = "linux"),
        });
        let mut phase = ctl.phase.clone();
        let relay = Arc::clone(&name);
        tokio::spawn(async move {
            let _permit = permit;
            let _token = token;
            tokio::select! {
                result = session => {
                    if let Err(error) = result {
                        let error: BoxError = error.into();
                        tracing::debug!(relay = %relay, %peer, %error, "session service failed");
                    }
                }
                () = reached(&mut phase, Phase::Closing) => {
                    tracing::debug!(relay = %relay, %peer, "session closed by shutdown");
                }
            }
        });
    }
    ctl.shared.accepting.store(false, Ordering::Release);
    tracing::debug!(relay = %name, "stopped accepting");
}

/// Sleeps for the back-off, then doubles it. `true` if the relay began draining
/// meanwhile.
async fn pause(phase: &mut watch::Receiver<Phase>, backoff: &mut Duration) -> bool {
    let stop = tokio::select! {
        () = tokio::time::sleep(*backoff) => false,
        () = reached(phase, Phase::Draining) => true,
    };
    *backoff = (*backoff * 2).min(BACKOFF_MAX);
    stop
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_errors_are_not_resource_errors() {
        let kind = |k| io::Error::from(k);
        assert!(is_connection_error(&kind(io::ErrorKind::ConnectionAborted)));
        assert!(is_connection_error(&kind(io::ErrorKind::ConnectionReset)));
        assert!(!is_connection_error(&io::Error::from_raw_os_error(
            libc::EMFILE
        )));
        assert!(!is_connection_error(&io::Error::from_raw_os_error(
            libc::ENFILE
        )));
    }

    /// The assumption behind `Accepted::tuned`: an accepted socket has the listener's
    /// `TCP_NODELAY`, so sessions need not set it.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn accepted_sockets_inherit_nodelay() {
        for nodelay in [true, false] {
            let tcp = TcpOptions {
                nodelay,
                ..TcpOptions::default()
            };
            let listener = bind("127.0.0.1:0".parse().unwrap(), &tcp).unwrap();
            let addr = listener.local_addr().unwrap();
            let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
            let (_client, (accepted, _)) = (client.unwrap(), accepted.unwrap());
            assert_eq!(accepted.nodelay().unwrap(), nodelay);
        }
    }

    #[tokio::test]
    async fn dual_stack_listeners_share_nothing() {
        let tcp = TcpOptions::default();
        let v4 = bind("127.0.0.1:0".parse().unwrap(), &tcp).unwrap();
        let port = v4.local_addr().unwrap().port();
        // An IPv6-only socket on the same port does not collide with the IPv4 one.
        match bind(SocketAddr::new("::1".parse().unwrap(), port), &tcp) {
            Ok(v6) => assert_eq!(v6.local_addr().unwrap().port(), port),
            // A machine without IPv6 on loopback: nothing to check.
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::AddrNotAvailable, "{e}"),
        }
    }
}
