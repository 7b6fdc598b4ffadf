//! [`Relay`]: a built, not yet running relay, and [`Relay::start`].

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::accept::{self, AcceptControl};
use crate::handle::RelayHandle;
use crate::lifecycle::{Phase, Tracker};
use crate::service::{Accepted, Shared};
use crate::{Settings, StartError};

/// The error type a layered session service may return: anything that can be logged.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the accept loop can drive: a [`tower::Service`](tower_service::Service) of
/// [`Accepted`] connections whose futures can be spawned, with errors that can be
/// logged. Implemented for every such service; [`SessionService`](crate::SessionService)
/// wrapped in any stack of tower layers qualifies.
pub trait RelayService:
    tower_service::Service<Accepted, Future: Send + 'static, Error: Into<BoxError>> + Send + 'static
{
}

impl<S> RelayService for S
where
    S: tower_service::Service<Accepted> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
}

type AcceptLoop = Box<
    dyn FnOnce(Vec<TcpListener>, AcceptControl) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send,
>;

/// A relay, built and checked, not yet listening: relayd's `relay "name" { ... }`.
///
/// Build one with [`Relay::builder`], then [`start`](Relay::start) it to bind its
/// listen addresses and get a [`RelayHandle`] to control it.
pub struct Relay {
    shared: Arc<Shared>,
    accept: AcceptLoop,
}

impl Relay {
    pub(crate) fn new<S: RelayService>(shared: Arc<Shared>, service: S) -> Self {
        Relay {
            shared,
            accept: Box::new(move |listeners, ctl| Box::pin(accept::run(listeners, service, ctl))),
        }
    }

    /// The relay's settings, as built.
    pub fn settings(&self) -> &Settings {
        &self.shared.settings
    }

    /// Binds every listen address and starts accepting, on the current Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`StartError::Bind`] when an address cannot be bound (in use, not on this
    /// machine, a privileged port); nothing is left listening then.
    /// [`StartError::NoRuntime`] when called outside a Tokio runtime.
    pub fn start(self) -> Result<RelayHandle, StartError> {
        let settings = &self.shared.settings;
        let name = settings.name.clone();
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| StartError::NoRuntime {
            relay: name.clone(),
        })?;
        let _guard = runtime.enter();
        let mut listeners = Vec::with_capacity(settings.listen.len());
        let mut port = None;
        for addr in &settings.listen {
            // Port 0: the first address picks a free port, the others use the same.
            let addr = match port {
                Some(port) if addr.port() == 0 => SocketAddr::new(addr.ip(), port),
                _ => *addr,
            };
            let listener = accept::bind(addr, &settings.tcp)
                .and_then(|l| l.local_addr().map(|local| (l, local)))
                .map_err(|source| StartError::Bind {
                    relay: name.clone(),
                    addr,
                    source,
                })?;
            port.get_or_insert(listener.1.port());
            listeners.push(listener);
        }
        let local_addrs: Vec<SocketAddr> = listeners.iter().map(|(_, a)| *a).collect();
        let listeners = listeners.into_iter().map(|(l, _)| l).collect();
        let (phase, phase_rx) = watch::channel(Phase::Running);
        let tracker = Arc::new(Tracker::default());
        let ctl = AcceptControl {
            shared: self.shared.clone(),
            phase: phase_rx,
            tracker: tracker.clone(),
            permits: Arc::new(Semaphore::new(settings.max_sessions)),
        };
        self.shared.accepting.store(true, Ordering::Release);
        let task = runtime.spawn((self.accept)(listeners, ctl));
        tracing::info!(relay = %name, listen = ?local_addrs, "relay started");
        Ok(RelayHandle::new(
            self.shared,
            phase,
            tracker,
            task,
            local_addrs,
        ))
    }
}

impl fmt::Debug for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Relay")
            .field("settings", &self.shared.settings)
            .finish()
    }
}
