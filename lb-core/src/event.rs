//! What a [`HostTable`](crate::Table) tells its listeners: [`TableEvent`] and [`Change`],
//! and the [`ListenerId`] that removes a listener again.
//!
//! Listeners are how health monitors, passive health and an operator's logging learn of
//! changes they did not make. A listener belongs to whoever registered it: a component
//! that lives shorter than its table (a monitor, a passive health handle) removes its
//! listener with [`HostTable::remove_listener`](crate::HostTable::remove_listener) when it
//! goes, or the table would keep the closure, and whatever it captured, for its whole
//! life.
//!
//! # When and where listeners are called
//!
//! - **On the writer's thread**, synchronously inside the call that made the change
//!   (`set_health`, `add`, ...), after the table's lock is released and after the
//!   table's balancers were handed the new snapshot. A writer can therefore mark its
//!   own changes with a thread-local and recognise them in its listener (`lb-health`'s
//!   monitor does).
//! - **In the order the changes were made**: every listener hears the events of one
//!   table in increasing [`version`](TableEvent::version), with no gap, whatever the
//!   threads writing. A batched membership change
//!   ([`HostTable::update`](crate::HostTable::update)) is one version with one event per
//!   host it changed, heard in the batch's order. A writer waits until the event before its own has been
//!   delivered; so a slow listener delays the next writer, and a listener must not
//!   wait for another thread's write to the same table.
//! - **Writes made by a listener** (on its own thread, to the same table) are made at
//!   once (the snapshot is current when the write returns) but their events are
//!   delivered after the event being delivered has reached every listener, by the same
//!   thread, before the outer write returns; events other threads committed in between
//!   come first. Such an event is delivered outside the listener's write call, so a
//!   thread-local set around that call is no longer set when it is heard.
//! - **A listener that panics** unwinds into the writer, like any panic in a call it
//!   made; the rest of that event's listeners are not called, later events are
//!   delivered as usual, and events written by that thread's listeners and not yet
//!   delivered are dropped.
//! - A **membership change** is heard when it is made, before the balancers have
//!   rebuilt their plans for it (see [`table`](crate::table)).

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::{Admin, BackendId, Health, Weight};

/// What changed in a table: passed to the listeners of
/// [`HostTable::on_change`](crate::HostTable::on_change).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableEvent {
    /// The table's name.
    pub table: Arc<str>,
    /// The host's id.
    pub id: BackendId,
    /// The host's name.
    pub host: String,
    /// What happened to it.
    pub change: Change,
    /// The version of the snapshot that carries the change.
    pub version: u64,
}

/// One change to one host of a table.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// Its health changed, for the given reason (`"connect refused"`, `"check ok"`, ...).
    Health {
        /// Before.
        old: Health,
        /// After.
        new: Health,
        /// Why, in relayd's words where they fit.
        reason: Cow<'static, str>,
    },
    /// Its admin state changed.
    Admin {
        /// Before.
        old: Admin,
        /// After.
        new: Admin,
    },
    /// Its weight changed.
    Weight {
        /// Before.
        old: Weight,
        /// After.
        new: Weight,
    },
    /// It was ejected (see [`HostTable::eject`](crate::HostTable::eject)): out of rotation,
    /// its health unchanged.
    Ejected {
        /// Why, and for how long if the ejector knows (`"connect refused, ejected for 10 s"`).
        reason: Cow<'static, str>,
    },
    /// Its ejection ended (see [`HostTable::end_ejection`](crate::HostTable::end_ejection)):
    /// usable again if it is up and enabled.
    EjectionEnded {
        /// Why (`"ejection time over"`, `"tcp ok"`).
        reason: Cow<'static, str>,
    },
    /// It was added to the table.
    Added,
    /// It was removed from the table.
    Removed,
}

/// Names one listener registered with [`HostTable::on_change`](crate::HostTable::on_change), to
/// remove it with [`HostTable::remove_listener`](crate::HostTable::remove_listener).
///
/// Ids are unique across every table of the process, so an id handed to the wrong table
/// removes nothing. Dropping the id does not remove the listener: a caller that never
/// removes it (a listener meant to live as long as the table) may ignore it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerId(u64);

/// The source of [`ListenerId`]s; 0 is never handed out.
static NEXT_LISTENER: AtomicU64 = AtomicU64::new(1);

impl ListenerId {
    /// A fresh id, distinct from every other of this process (for a [`HostTable`](crate::Table)
    /// implementation of your own).
    #[allow(clippy::should_implement_trait)]
    pub fn next() -> Self {
        ListenerId(NEXT_LISTENER.fetch_add(1, Ordering::Relaxed))
    }
}

impl fmt::Display for ListenerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "listener#{}", self.0)
    }
}

/// A change listener, as [`Table::add_listener`](crate::Table::add_listener) takes it.
pub type Listener = Arc<dyn Fn(&TableEvent) + Send + Sync>;
