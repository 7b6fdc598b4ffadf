//! What a [`Monitor`](crate::Monitor) tells the world: [`HostEvent`]s on a broadcast
//! stream, and [`Demotion`]s of a table (relayd's `demote`).

use std::borrow::Cow;
use std::sync::Arc;

use lb_core::{BackendId, Health};
use tokio::time::Instant;

/// A host's health changed, or it was ejected, or its ejection ended ([`kind`](Self::kind)).
/// Sent on the stream of [`Monitor::subscribe`](crate::Monitor::subscribe) for every
/// such change of the table, whoever made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostEvent {
    /// The table's name.
    pub table: Arc<str>,
    /// The host's id.
    pub id: BackendId,
    /// The host's name.
    pub host: String,
    /// What happened: a health change, an ejection, or its end.
    pub kind: EventKind,
    /// The health before (for an ejection or its end: the host's health, unchanged).
    pub old: Health,
    /// The health after.
    pub new: Health,
    /// Why, in relayd's words: a [`Reason`](crate::Reason) (`"connect refused"`) for a
    /// failure, `"<check> ok"` (`"tcp ok"`) for a success, `"not checked yet"` when the
    /// monitor starts; for an ejection the reason and its time
    /// (`"connect refused, ejected for 10 s"`), for its end `"ejection time over"` or
    /// the check's success.
    pub reason: Cow<'static, str>,
    /// Who made the change.
    pub source: Source,
    /// When the monitor saw it.
    pub at: Instant,
}

/// What a [`HostEvent`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The host's health changed (`old != new`).
    Health,
    /// The host was ejected (passive health, see [`Passive`](crate::Passive)): out of
    /// rotation for the time the reason gives, its health unchanged.
    Ejected,
    /// The host's ejection ended: usable again if it is up and enabled.
    EjectionEnded,
}

/// Who made a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// This monitor's checks (or its start-up, setting hosts unknown); a successful
    /// check ends an ejection.
    Check,
    /// [`Passive`](crate::Passive) health: an ejection, or its end when its time is over.
    Passive,
    /// Someone else: an operator, another monitor.
    External,
}

/// A table lost its last usable host, or got one back: relayd's `demote` hook
/// (relayd demotes a `carp(4)` group so that a standby balancer takes over).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Demotion {
    /// No host of the table is usable any more, and none is waiting for its first
    /// check.
    Demoted,
    /// A host of a demoted table is usable again.
    Restored,
}
