//! Passive health: traffic reports what happened, and a failing host is ejected at once,
//! for a while.
//!
//! relayd never lets a failed connect take a host out: a relay keeps sending clients to
//! a dead host until the next check notices, up to `interval + timeout` later (10.2 s by
//! default). Envoy's outlier detection is the model we follow: the relay reports each
//! connect outcome, and `N` consecutive failures (default 1) **eject** the host
//! ([`Table::eject`]) for an ejection time. Ejection is not health: the host's
//! [`Health`](lb_core::Health) stays what checks say, so when the ejection ends a host that a check found
//! down stays out (the check wins).
//!
//! - **Ejection time**: the base (default 10 s), doubled on each consecutive ejection
//!   (10, 20, 40 s, ...), at most the maximum (default 5 min). The back-off starts again
//!   once the host has served: a success reported at least one base ejection time after
//!   its last ejection ended.
//! - **End**: by itself when the time is over (a tokio timer), or earlier when an active
//!   check succeeds (a [`Monitor`](crate::Monitor) on the table calls
//!   [`Table::end_ejection`]). Without a tokio runtime (none current when a failure is
//!   reported, none when the handle was made) no timer can run: ejections due are then
//!   ended by the next report to this handle, or by
//!   [`end_expired_ejections`](Passive::end_expired_ejections), and all of them when the
//!   last clone of the handle is dropped.
//! - **Never the last host**: passive health never ejects the last usable host of a
//!   table, nor more than a share of the hosts that are up and enabled (default 50 %,
//!   rounded down, but at least one when two or more are usable; Envoy's
//!   `max_ejection_percent`). A failing connect to a host that may not be ejected is
//!   still counted by the relay, which still fails over to the next candidate and the
//!   backup tables.
//!
//! Events: `warn` "host ejected" (fields `table`, `host`, `reason`, `for_s`, `ejections`)
//! and `info` "ejection ended". The table's [`Change::Ejected`](lb_core::Change::Ejected) carries the reason and
//! the time (`"connect refused, ejected for 10 s"`); a [`Monitor`](crate::Monitor) on the
//! same table forwards ejections and their end on its event stream
//! ([`EventKind`](crate::EventKind), [`Source::Passive`](crate::Source::Passive)) and
//! counts them in its stats.

use std::cell::Cell;
use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use lb_core::{Backend, BackendId, Error, Host, IntoTable, ListenerId, Table};
use parking_lot::Mutex;
use tokio::runtime::Handle;
use tokio::time::Instant;

use crate::Reason;

mod ejection;
mod inner;
#[cfg(test)]
mod tests;

use ejection::{ejection_time, held, Seconds, State};

thread_local! {
    /// Set while passive health writes to a table, so that a monitor's listener can tell
    /// its ejections from an operator's.
    static WRITING: Cell<bool> = const { Cell::new(false) };
}

/// Whether the table change being delivered on this thread was made by passive health.
pub(crate) fn is_writing() -> bool {
    WRITING.get()
}

/// Passive health for one table: traffic reports outcomes, `N` consecutive failures
/// (default 1) eject a host for a while. See the [module docs](self).
///
/// A cheap handle (an `Arc` inside): create one per table and clone it into every
/// connection task. `Send + Sync`. Each [`Passive::new`] registers a listener on the
/// table (to follow recoveries, ends of ejections and removals), removed when the last
/// clone of the handle is dropped; that drop also ends the ejections still in force.
///
/// Defaults:
/// - threshold 1: the first failed connect ejects the host;
/// - ejection time 10 s, doubled on each consecutive ejection, at most 5 min;
/// - at most 50 % of the up and enabled hosts ejected (at least one of two), never the
///   last usable host.
///
/// ```
/// use lb_core::{Health, HostTable};
/// use lb_health::{Passive, Reason};
/// use std::net::SocketAddr;
/// use std::time::Duration;
///
/// let a: SocketAddr = "10.0.0.11:25".parse()?;
/// let b: SocketAddr = "10.0.0.12:25".parse()?;
/// let table = HostTable::new("smtp", [a, b])?;
/// let passive = Passive::new(table.clone())
///     .with_threshold(2)?
///     .with_ejection_time(Duration::from_secs(5), Duration::from_secs(60))?;
/// let id = table.snapshot().id(0);
/// assert!(!passive.report_failure(id, Reason::ConnectRefused)); // 1 of 2
/// assert!(passive.report_failure(id, Reason::ConnectRefused)); // 2 of 2: ejected
/// let snap = table.snapshot();
/// assert_eq!((snap.health(0), snap.is_ejected(0)), (Health::Up, true));
/// assert_eq!(snap.usable(), &[1]);
/// // The last usable host is never ejected.
/// let last = table.snapshot().id(1);
/// assert!(!passive.report_failure(last, Reason::ConnectRefused));
/// assert!(!passive.report_failure(last, Reason::ConnectRefused));
/// assert_eq!(table.snapshot().usable(), &[1]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Passive<B: Backend = Host> {
    inner: Arc<Inner<B>>,
}

struct Inner<B: Backend> {
    table: Arc<dyn Table<B>>,
    /// The table listener; removed when the last handle drops.
    listener: ListenerId,
    /// The runtime current at construction, for timers of reports made outside one.
    runtime: Option<Handle>,
    state: Mutex<State>,
    /// Serialises ejection decisions, so that two hosts failing at once cannot both
    /// pass the share rule. Never held while `state` is wanted by the table listener
    /// on the same thread: `state` is only locked briefly inside.
    deciding: Mutex<()>,
}

impl<B: Backend> Passive<B> {
    /// Passive health for `table`, with the defaults above.
    pub fn new(table: impl IntoTable<B>) -> Self {
        let table = table.into_table();
        // A weak reference: the table must not keep us alive; the last handle's drop
        // removes the listener (`Inner`'s `Drop`).
        let inner = Arc::new_cyclic(|weak: &Weak<Inner<B>>| {
            let weak = weak.clone();
            let listener = table.on_change(move |event| {
                if let Some(inner) = weak.upgrade() {
                    inner.observe(event.id, &event.host, &event.change);
                }
            });
            Inner {
                table,
                listener,
                runtime: Handle::try_current().ok(),
                state: Mutex::new(State::default()),
                deciding: Mutex::new(()),
            }
        });
        Passive { inner }
    }

    /// The same handle with another threshold: `failures` consecutive failures eject a
    /// host. [`Error::InvalidSetting`] for 0.
    pub fn with_threshold(self, failures: u32) -> Result<Self, Error> {
        if failures == 0 {
            return Err(invalid(
                "passive threshold",
                "at least 1 consecutive failure",
            ));
        }
        self.inner.state.lock().settings.threshold = failures;
        Ok(self)
    }

    /// The same handle with other ejection times: `base` for a first ejection, doubled
    /// on each consecutive one, at most `max`. [`Error::InvalidSetting`] for a zero
    /// duration or `base > max`.
    pub fn with_ejection_time(self, base: Duration, max: Duration) -> Result<Self, Error> {
        if base.is_zero() || max.is_zero() {
            return Err(invalid("ejection time", "more than 0 for base and max"));
        }
        if base > max {
            return Err(invalid(
                "ejection time",
                "a base no longer than the maximum",
            ));
        }
        let mut state = self.inner.state.lock();
        state.settings.base = base;
        state.settings.max = max;
        drop(state);
        Ok(self)
    }

    /// The same handle with another maximum ejected share: at most `percent` % of the
    /// hosts that are up and enabled may be ejected at once (rounded down, but at least
    /// one when two or more are usable); 0 disables ejection. [`Error::InvalidSetting`]
    /// above 100.
    pub fn with_max_ejected_percent(self, percent: u8) -> Result<Self, Error> {
        if percent > 100 {
            return Err(invalid("max ejected percent", "0..=100 percent"));
        }
        self.inner.state.lock().settings.max_percent = percent;
        Ok(self)
    }

    /// The number of consecutive failures that ejects a host.
    pub fn threshold(&self) -> u32 {
        self.inner.state.lock().settings.threshold
    }

    /// The first ejection's time and the longest one: `(base, max)`.
    pub fn ejection_time(&self) -> (Duration, Duration) {
        let s = self.inner.state.lock().settings;
        (s.base, s.max)
    }

    /// The largest share of up and enabled hosts ejected at once, in percent.
    pub fn max_ejected_percent(&self) -> u8 {
        self.inner.state.lock().settings.max_percent
    }

    /// Reports a failed attempt on host `id` (a refused or timed-out connect). Returns
    /// `true` if this report ejected the host.
    ///
    /// `false` below the threshold, for a host already ejected or not usable, for one
    /// the share rule keeps in (the last usable host), and for an id not in the table.
    /// The host's [`connect_failures`](lb_core::HostState::connect_failures) counter is
    /// the caller's to update: relays count every failed connect, ejection or not.
    pub fn report_failure(&self, id: BackendId, reason: Reason) -> bool {
        let now = Instant::now();
        self.inner.end_due(now);
        let (reached, settings) = {
            let mut state = self.inner.state.lock();
            let settings = state.settings;
            let rec = state.hosts.entry(id).or_default();
            rec.failures = rec.failures.saturating_add(1);
            let reached = rec.failures >= settings.threshold && rec.until.is_none();
            if reached {
                rec.failures = 0;
            }
            (reached, settings)
        };
        let table = self.inner.table.name();
        if !reached {
            tracing::debug!(table, host = %id, %reason, "passive failure below threshold");
            return false;
        }
        let _deciding = self.inner.deciding.lock();
        let snap = self.inner.table.snapshot();
        let Some(i) = snap.index_of(id) else {
            self.inner.state.lock().hosts.remove(&id);
            return false;
        };
        if !snap.is_usable(i) {
            return false;
        }
        let host = snap.host(i).name().to_owned();
        if let Some(why) = held(&snap, settings.max_percent) {
            tracing::info!(table, %host, %reason, held = why, "host not ejected");
            return false;
        }
        let (for_, generation, ejections) = {
            let mut state = self.inner.state.lock();
            let rec = state.hosts.entry(id).or_default();
            rec.ejections = rec.ejections.saturating_add(1);
            let for_ = ejection_time(settings.base, settings.max, rec.ejections);
            rec.generation += 1;
            rec.until = Some(now + for_);
            let out = (for_, rec.generation, rec.ejections);
            state.next_end = Some(state.next_end.map_or(now + for_, |n| n.min(now + for_)));
            out
        };
        let text = format!("{reason}, ejected for {} s", Seconds(for_));
        match self.inner.write(|t| t.eject(id, text.into())) {
            Ok(true) => {}
            // Ejected meanwhile by someone else, or removed: not ours to end.
            _ => {
                let mut state = self.inner.state.lock();
                if let Some(rec) = state.hosts.get_mut(&id) {
                    rec.ejections = rec.ejections.saturating_sub(1);
                    rec.until = None;
                }
                return false;
            }
        }
        tracing::warn!(table, %host, %reason, for_s = %Seconds(for_), ejections, "host ejected");
        self.inner.schedule_end(id, generation, now + for_);
        true
    }

    /// Reports a successful attempt on host `id`: its consecutive-failure count starts
    /// again, and so does its back-off if its last ejection ended at least one base
    /// ejection time ago.
    pub fn report_success(&self, id: BackendId) {
        let mut state = self.inner.state.lock();
        if state.hosts.is_empty() {
            return;
        }
        let now = Instant::now();
        let due = state.next_end.is_some_and(|end| end <= now);
        let base = state.settings.base;
        if let Some(rec) = state.hosts.get_mut(&id) {
            rec.success(now, base);
            if rec.is_idle() {
                state.hosts.remove(&id);
            }
        }
        drop(state);
        if due {
            self.inner.end_due(now);
        }
    }

    /// Ends the ejections of this handle whose time is over; returns how many. Timers
    /// do this on a tokio runtime; without one, call it from your own loop (reports to
    /// the handle call it too).
    pub fn end_expired_ejections(&self) -> usize {
        self.inner.end_due(Instant::now())
    }

    /// The table this handle ejects from.
    pub fn table(&self) -> &Arc<dyn Table<B>> {
        &self.inner.table
    }
}

fn invalid(setting: &'static str, expected: &str) -> Error {
    Error::InvalidSetting {
        setting,
        expected: expected.to_owned(),
    }
}

impl<B: Backend> Drop for Inner<B> {
    fn drop(&mut self) {
        self.table.remove_listener(self.listener);
        // No timer can end them any more: nobody else knows they should end.
        let ours: Vec<BackendId> = self
            .state
            .get_mut()
            .hosts
            .iter()
            .filter(|(_, rec)| rec.until.is_some())
            .map(|(id, _)| *id)
            .collect();
        for id in ours {
            let _ = self.write(|t| t.end_ejection(id, "passive health dropped".into()));
        }
    }
}

impl<B: Backend> Clone for Passive<B> {
    fn clone(&self) -> Self {
        Passive {
            inner: self.inner.clone(),
        }
    }
}

impl<B: Backend> fmt::Debug for Passive<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let settings = self.inner.state.lock().settings;
        f.debug_struct("Passive")
            .field("table", &self.inner.table.name())
            .field("threshold", &settings.threshold)
            .field("ejection_time", &(settings.base, settings.max))
            .field("max_ejected_percent", &settings.max_percent)
            .finish()
    }
}
