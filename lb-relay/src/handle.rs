//! [`RelayHandle`]: a running relay, its controls (relayctl's `relay`, `table` and
//! `host` commands as methods), its stats and its graceful shutdown.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use lb_core::{Admin, BackendId, Health, Host, Table};
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::lifecycle::{Phase, Tracker};
use crate::service::Shared;
use crate::stats::TableStats;
use crate::{ControlError, RelayStats, Settings};

/// A running relay.
///
/// Control actions apply at once to new sessions and never cut existing ones:
/// disabling or draining a host, or disabling a table, changes where the next sessions
/// go (they delegate to the shared [`Table`], so every relay and balancer using the
/// table sees the change); disabling the relay makes it close new clients at once.
///
/// Dropping the handle closes every session and the listeners at once; call
/// [`shutdown`](RelayHandle::shutdown) first for a graceful stop.
pub struct RelayHandle {
    shared: Arc<Shared>,
    phase: watch::Sender<Phase>,
    tracker: Arc<Tracker>,
    accept: Mutex<Option<JoinHandle<()>>>,
    local_addrs: Vec<SocketAddr>,
}

/// What a graceful shutdown did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Sessions that were running when the shutdown began.
    pub sessions: usize,
    /// Sessions still running at the deadline, closed by the relay.
    pub closed: usize,
}

impl RelayHandle {
    pub(crate) fn new(
        shared: Arc<Shared>,
        phase: watch::Sender<Phase>,
        tracker: Arc<Tracker>,
        accept: JoinHandle<()>,
        local_addrs: Vec<SocketAddr>,
    ) -> Self {
        RelayHandle {
            shared,
            phase,
            tracker,
            accept: Mutex::new(Some(accept)),
            local_addrs,
        }
    }

    /// The relay's name.
    pub fn name(&self) -> &str {
        &self.shared.settings.name
    }

    /// The addresses actually listened on (with the port chosen for port 0).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// The relay's settings.
    pub fn settings(&self) -> &Settings {
        &self.shared.settings
    }

    /// The relay's counters and its hosts' states, now.
    pub fn stats(&self) -> RelayStats {
        let c = &self.shared.counters;
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let bytes = c.bytes.totals();
        RelayStats {
            name: self.name().to_owned(),
            enabled: self.is_enabled(),
            accepting: self.shared.accepting.load(Ordering::Acquire),
            active: get(&c.active),
            total: get(&c.total),
            failed: get(&c.failed),
            refused: get(&c.refused),
            idle_timeouts: get(&c.idle_timeouts),
            connect_failures: get(&c.connect_failures),
            accept_errors: get(&c.accept_errors),
            bytes_client_to_server: bytes.client_to_server,
            bytes_server_to_client: bytes.server_to_client,
            bytes_spliced_client_to_server: bytes.spliced_client_to_server,
            bytes_spliced_server_to_client: bytes.spliced_server_to_client,
            sessions: c.windows.counts(),
            tables: self
                .shared
                .forwards
                .iter()
                .map(|f| TableStats {
                    name: f.table().name().to_owned(),
                    hosts: f.table().stats(),
                })
                .collect(),
        }
    }

    /// Takes new sessions again after [`disable`](RelayHandle::disable).
    pub fn enable(&self) {
        self.shared.enabled.store(true, Ordering::Release);
        tracing::info!(relay = %self.name(), "relay enabled");
    }

    /// Refuses new sessions: clients are accepted and closed at once (counted as
    /// `refused`). Running sessions continue.
    pub fn disable(&self) {
        self.shared.enabled.store(false, Ordering::Release);
        tracing::info!(relay = %self.name(), "relay disabled");
    }

    /// Whether the relay takes new sessions.
    pub fn is_enabled(&self) -> bool {
        self.shared.enabled.load(Ordering::Acquire)
    }

    /// The tables the relay forwards to, in order.
    pub fn tables(&self) -> Vec<Arc<dyn Table<Host>>> {
        self.shared
            .forwards
            .iter()
            .map(|f| f.table().clone())
            .collect()
    }

    /// The table called `name`.
    ///
    /// # Errors
    ///
    /// [`ControlError::UnknownTable`] if the relay does not forward to it.
    pub fn table(&self, name: &str) -> Result<&Arc<dyn Table<Host>>, ControlError> {
        self.shared
            .forwards
            .iter()
            .map(|f| f.table())
            .find(|t| t.name() == name)
            .ok_or_else(|| ControlError::UnknownTable {
                relay: self.name().to_owned(),
                table: name.to_owned(),
            })
    }

    /// Puts a host back in service. Returns its previous admin state.
    ///
    /// # Errors
    ///
    /// An unknown table or host.
    pub fn enable_host(&self, table: &str, id: BackendId) -> Result<Admin, ControlError> {
        self.set_host_admin(table, id, Admin::Enabled)
    }

    /// Takes a host out of service: no new sessions; running ones continue. Returns its
    /// previous admin state.
    ///
    /// # Errors
    ///
    /// An unknown table or host.
    pub fn disable_host(&self, table: &str, id: BackendId) -> Result<Admin, ControlError> {
        self.set_host_admin(table, id, Admin::Disabled)
    }

    /// Drains a host: no new sessions, running ones finish (watch its `active` count in
    /// [`stats`](RelayHandle::stats) reach 0). Returns its previous admin state.
    ///
    /// # Errors
    ///
    /// An unknown table or host.
    pub fn drain_host(&self, table: &str, id: BackendId) -> Result<Admin, ControlError> {
        self.set_host_admin(table, id, Admin::Draining)
    }

    fn set_host_admin(
        &self,
        table: &str,
        id: BackendId,
        admin: Admin,
    ) -> Result<Admin, ControlError> {
        let old = self.table(table)?.set_admin(id, admin)?;
        tracing::info!(relay = %self.name(), %table, host = %id, %old, new = %admin, "host admin state changed");
        Ok(old)
    }

    /// Enables every host of a table.
    ///
    /// # Errors
    ///
    /// An unknown table.
    pub fn enable_table(&self, table: &str) -> Result<(), ControlError> {
        self.table(table)?.set_admin_all(Admin::Enabled);
        Ok(())
    }

    /// Disables every host of a table: sessions go to the next table (the backup).
    ///
    /// # Errors
    ///
    /// An unknown table.
    pub fn disable_table(&self, table: &str) -> Result<(), ControlError> {
        self.table(table)?.set_admin_all(Admin::Disabled);
        Ok(())
    }

    /// Adds a host to a table with the given health (`Health::Up` to use it at once,
    /// `Health::Unknown` to wait for a health monitor's first check). Returns once every
    /// balancer of the table picks from the new membership.
    ///
    /// A new membership rebuilds what the table's policies precompute (a consistent-hash
    /// table of 1024 hosts takes about 145 ms): that runs on tokio's blocking pool
    /// (`spawn_blocking`), never on the async workers, and the old plan serves picks
    /// meanwhile. Health changes made meanwhile (passive marks, checks) do not wait for
    /// it.
    ///
    /// # Errors
    ///
    /// An unknown table, or a host already in it; [`ControlError::ShuttingDown`] if the
    /// runtime stops before the change could be made.
    pub async fn add_host(
        &self,
        table: &str,
        host: Host,
        health: Health,
    ) -> Result<BackendId, ControlError> {
        let table = self.table(table)?.clone();
        self.blocking(move || table.add(host, health)).await
    }

    /// Removes a host from a table. Its running sessions continue. Removing the last
    /// host leaves the table empty: new clients are refused (their connections closed),
    /// as when every host is down, until a host is added again. Returns once every
    /// balancer of the table picks from the new membership; the rebuild runs on tokio's
    /// blocking pool, as for [`add_host`](RelayHandle::add_host).
    ///
    /// # Errors
    ///
    /// An unknown table or host; [`ControlError::ShuttingDown`] if the runtime stops before the change could be
    /// made.
    pub async fn remove_host(&self, table: &str, id: BackendId) -> Result<(), ControlError> {
        let table = self.table(table)?.clone();
        self.blocking(move || table.remove(id)).await
    }

    /// [`add_host`](RelayHandle::add_host) on the caller's thread: **blocks** it for the
    /// rebuild. For threads that may block (not an async worker).
    ///
    /// # Errors
    ///
    /// An unknown table, or a host already in it.
    pub fn add_host_blocking(
        &self,
        table: &str,
        host: Host,
        health: Health,
    ) -> Result<BackendId, ControlError> {
        Ok(self.table(table)?.add(host, health)?)
    }

    /// [`remove_host`](RelayHandle::remove_host) on the caller's thread: **blocks** it
    /// for the rebuild. For threads that may block (not an async worker).
    ///
    /// # Errors
    ///
    /// An unknown table or host.
    pub fn remove_host_blocking(&self, table: &str, id: BackendId) -> Result<(), ControlError> {
        Ok(self.table(table)?.remove(id)?)
    }

    /// Runs a membership change on tokio's blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        change: impl FnOnce() -> lb_core::Result<T> + Send + 'static,
    ) -> Result<T, ControlError> {
        match tokio::task::spawn_blocking(change).await {
            Ok(result) => Ok(result?),
            // A policy that panicked while rebuilding: the caller sees the panic.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(ControlError::ShuttingDown {
                relay: self.name().to_owned(),
            }),
        }
    }

    /// Stops accepting (the listening sockets are closed, so new connections are
    /// refused) and returns once they are closed. Running sessions continue.
    pub async fn stop_accepting(&self) {
        self.phase.send_if_modified(|p| {
            let changed = *p < Phase::Draining;
            if changed {
                *p = Phase::Draining;
            }
            changed
        });
        let task = self.accept.lock().take();
        if let Some(task) = task {
            // The loop never panics; a join error could only be a cancelled runtime.
            let _ = task.await;
        }
    }

    /// Graceful shutdown: stops accepting, lets running sessions finish for up to
    /// `deadline`, then closes those still running. Returns what it did.
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        let sessions = self.tracker.live();
        tracing::info!(relay = %self.name(), sessions, ?deadline, "relay shutting down");
        self.stop_accepting().await;
        let mut closed = 0;
        if tokio::time::timeout(deadline, self.tracker.idle())
            .await
            .is_err()
        {
            closed = self.tracker.live();
            tracing::warn!(relay = %self.name(), sessions = closed, "shutdown deadline passed, closing sessions");
            self.phase.send_replace(Phase::Closing);
            self.tracker.idle().await;
        }
        ShutdownReport { sessions, closed }
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        self.phase.send_replace(Phase::Closing);
    }
}

impl fmt::Debug for RelayHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelayHandle")
            .field("name", &self.name())
            .field("local_addrs", &self.local_addrs)
            .field("sessions", &self.tracker.live())
            .finish()
    }
}
