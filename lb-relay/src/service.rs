//! The relay as a [`tower::Service`](tower_service::Service): one call per accepted
//! connection.
//!
//! The accept loop hands every connection, as an [`Accepted`], to a service. The
//! innermost one is [`SessionService`], which picks a backend, connects with failover
//! and copies both ways. Because it is an ordinary tower service, users wrap it in their
//! own layers through [`RelayBuilder::layer`](crate::RelayBuilder::layer): a concurrency
//! limit, logging, filtering by source address, rate limits. The accept loop respects
//! `poll_ready`: a layer that is not ready (a concurrency limit at its maximum) holds the
//! next accept back, which is backpressure, not a reset.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use tokio::net::TcpStream;

use crate::copy::End;
use crate::forward::Forward;
use crate::stats::Counters;
use crate::{session, Settings};

/// A connection the relay accepted: what every [`SessionService`] call receives.
#[derive(Debug)]
#[non_exhaustive]
pub struct Accepted {
    /// The client's connection.
    pub stream: TcpStream,
    /// The client's address.
    pub peer: SocketAddr,
    /// The address of the relay's listening socket that accepted the connection: the
    /// configured listen address with its port (`0.0.0.0:443` for a wildcard
    /// listener). Policies see it as [`Context::listen`](lb_core::Context::listen),
    /// which relayd's `loadbalance` hashes.
    pub listen: SocketAddr,
    /// The local address of the accepted connection, the one the client dialled
    /// (`192.0.2.1:443` on a wildcard listener): [`Context::local`](lb_core::Context::local),
    /// the PROXY header's destination, and the port `BackendPort::Listen` forwards to.
    pub local: SocketAddr,
    /// Whether the stream already has the relay's per-connection options (on Linux,
    /// accepted sockets inherit `TCP_NODELAY` from the relay's listener); a stream
    /// from elsewhere gets them when its session starts.
    pub(crate) tuned: bool,
}

impl Accepted {
    /// An accepted connection, for services driven by hand (tests, other accept loops).
    /// Reads both addresses from the stream; with no listener at hand, `listen` is the
    /// stream's local address (see [`with_listen`](Accepted::with_listen)).
    pub fn new(stream: TcpStream) -> std::io::Result<Self> {
        let local = stream.local_addr()?;
        Ok(Accepted {
            peer: stream.peer_addr()?,
            listen: local,
            local,
            stream,
            tuned: false,
        })
    }

    /// The same connection, accepted by a listener on `listen` (for example
    /// `0.0.0.0:443`, which `loadbalance` hashes as relayd does).
    pub fn with_listen(mut self, listen: SocketAddr) -> Self {
        self.listen = listen;
        self
    }
}

/// How a session ended: the response of [`SessionService`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The session was relayed to a backend until it ended.
    Relayed {
        /// The table of the host that served it.
        table: String,
        /// The host's name.
        host: String,
        /// The address connected to.
        addr: SocketAddr,
        /// Bytes from the client to the backend.
        client_to_server: u64,
        /// Bytes from the backend to the client.
        server_to_client: u64,
        /// Why it ended: both sides closed, the idle timeout, or an I/O error (then
        /// `None`; the error was logged).
        end: Option<End>,
    },
    /// No host of any table answered (or none was usable): the client connection was
    /// closed.
    NoBackend,
    /// The relay is disabled: the client connection was closed at once.
    Refused,
}

/// What every session of a relay shares.
pub(crate) struct Shared {
    pub(crate) settings: Settings,
    pub(crate) forwards: Vec<Forward>,
    pub(crate) counters: Counters,
    pub(crate) enabled: AtomicBool,
    pub(crate) accepting: AtomicBool,
}

/// The innermost per-connection service of a relay: pick, connect with failover, relay.
///
/// Always ready; every call serves one connection to its end, so the future lives as
/// long as the session. It never fails (`Error = Infallible`): errors are counted in the
/// relay's stats, logged with `tracing`, and reported in the [`Outcome`].
///
/// Cloning is cheap (one `Arc`): clones serve the same relay.
#[derive(Clone)]
pub struct SessionService {
    shared: Arc<Shared>,
}

impl SessionService {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        SessionService { shared }
    }

    /// The relay's name.
    pub fn relay(&self) -> &str {
        &self.shared.settings.name
    }
}

impl std::fmt::Debug for SessionService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionService")
            .field("relay", &self.relay())
            .finish()
    }
}

impl tower_service::Service<Accepted> for SessionService {
    type Response = Outcome;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Outcome, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, accepted: Accepted) -> Self::Future {
        let shared = self.shared.clone();
        Box::pin(async move { Ok(session::serve(&shared, accepted).await) })
    }
}
