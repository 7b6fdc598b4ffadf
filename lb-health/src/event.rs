//! What a [`Monitor`](crate::Monitor) tells the world: [`HostEvent`]s on a broadcast
//! stream, and [`Demotion`]s of a table (relayd's `demote`).

use std::borrow::Cow;
use std::sync::Arc;

use lb_core::{BackendId, Health};
use tokio::time::Instant;

/// A host's health changed. Sent on the stream of
/// [`Monitor::subscribe`](crate::Monitor::subscribe) for every change of the table's
/// health, whoever made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostEvent {
    /// The table's name.
    pub table: Arc<str>,
    /// The host's id.
    pub id: BackendId,
    /// The host's name.
    pub host: String,
    /// The health before.
    pub old: Health,
    /// The health after.
    pub new: Health,
    /// Why, in relayd's words: a [`Reason`](crate::Reason) (`"connect refused"`) for a
    /// failure, `"<check> ok"` (`"tcp ok"`) for a success, `"not checked yet"` when the
    /// monitor starts.
    pub reason: Cow<'static, str>,
    /// Who made the change.
    pub source: Source,
    /// When the monitor saw it.
    pub at: Instant,
}

/// Who changed a host's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// This monitor's checks (or its start-up, setting hosts unknown).
    Check,
    /// Someone else: a [`Passive`](crate::Passive) mark, an operator, another monitor.
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
