//! A host's slot in a table: its backend, and the state block that outlives snapshots.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Backend, BackendId};

/// Whether checks find a host alive: relayd's `up`, `down` and `unknown`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Health {
    /// Not checked yet, or checks are inconclusive. Not usable.
    Unknown,
    /// Alive. Usable while enabled.
    #[default]
    Up,
    /// Failing its checks (or marked down by an operator). Not usable.
    Down,
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        })
    }
}

/// What the operator wants of a host, independent of its health.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Admin {
    /// In service.
    #[default]
    Enabled,
    /// Out of service: no new states. Existing leases are not cut (that is the
    /// caller's decision).
    Disabled,
    /// Leaving service: no new states, existing ones finish. Differs from
    /// [`Disabled`](Admin::Disabled) only in what it tells operators and relays.
    Draining,
}

impl fmt::Display for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Admin::Enabled => "enabled",
            Admin::Disabled => "disabled",
            Admin::Draining => "draining",
        })
    }
}

/// The counters of one host, shared by every snapshot it appears in.
///
/// Owned by the host's [`HostSlot`] and never rebuilt, so counts survive health,
/// admin and membership changes. All counters are updated with relaxed atomics: they
/// are statistics and load signals, not synchronisation.
#[derive(Debug, Default)]
pub struct HostState {
    active: AtomicU64,
    total: AtomicU64,
    connect_failures: AtomicU64,
}

impl HostState {
    pub(crate) fn begin(&self) {
        self.active.fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn end(&self) {
        self.active.fetch_sub(1, Ordering::Relaxed);
    }

    /// Live leases on the host: its active states.
    pub fn active(&self) -> u64 {
        self.active.load(Ordering::Relaxed)
    }

    /// Leases ever taken on the host.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Connect attempts that failed (counted by relays through
    /// [`record_connect_failure`](HostState::record_connect_failure)).
    pub fn connect_failures(&self) -> u64 {
        self.connect_failures.load(Ordering::Relaxed)
    }

    /// Counts one failed connect attempt.
    pub fn record_connect_failure(&self) {
        self.connect_failures.fetch_add(1, Ordering::Relaxed);
    }
}

/// A host in a table: the backend, its id, name and weight as read when it was added,
/// and its [`HostState`].
///
/// Slots are shared (`Arc`) between snapshots: a health change publishes a new snapshot
/// that points at the same slots, so leases and counters carry over.
pub struct HostSlot<B> {
    backend: B,
    id: BackendId,
    name: Box<str>,
    state: HostState,
}

impl<B: Backend> HostSlot<B> {
    /// A slot for `backend`, with fresh counters: for a [`Table`](crate::Table)
    /// implementation of your own, which keeps one slot (the same `Arc`) per host for as
    /// long as the host stays in the table.
    pub fn new(backend: B) -> Self {
        HostSlot {
            id: backend.id(),
            name: backend.name().into(),
            backend,
            state: HostState::default(),
        }
    }
}

impl<B> HostSlot<B> {
    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The stable id.
    pub fn id(&self) -> BackendId {
        self.id
    }

    /// The display name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The counters.
    pub fn state(&self) -> &HostState {
        &self.state
    }
}

impl<B> fmt::Debug for HostSlot<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostSlot")
            .field("name", &self.name)
            .field("id", &self.id)
            .field("state", &self.state)
            .finish()
    }
}

/// A host's state at one moment, for reports: see [`Snapshot::stats`](crate::Snapshot::stats).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostStats {
    /// The host's name.
    pub name: String,
    /// The host's id.
    pub id: BackendId,
    /// Its weight.
    pub weight: u16,
    /// Its health.
    pub health: Health,
    /// Its admin state.
    pub admin: Admin,
    /// Whether passive health has ejected it for a while (see
    /// [`HostTable::eject`](crate::HostTable::eject)).
    pub ejected: bool,
    /// Whether new states may go to it (up, enabled and not ejected).
    pub usable: bool,
    /// Live leases.
    pub active: u64,
    /// Leases ever taken.
    pub total: u64,
    /// Failed connects reported by relays.
    pub connect_failures: u64,
}
