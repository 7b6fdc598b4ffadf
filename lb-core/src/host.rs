//! A host's slot in a table: its backend, and the state block that outlives snapshots.

use std::fmt;

use crate::BackendId;

mod slot;

pub(crate) use slot::LeasedHost;
pub use slot::{HostSlot, HostState};

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
