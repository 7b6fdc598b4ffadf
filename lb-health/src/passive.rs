//! Passive health: traffic reports what happened, and a failing host is marked down at
//! once.
//!
//! relayd never lets a failed connect mark a host down: a relay keeps sending clients to
//! a dead host until the next check notices, up to `interval + timeout` later (10.2 s by
//! default). HAProxy's `observe layer4` with `on-error mark-down` is the fix we follow:
//! the relay reports each connect outcome, `N` consecutive failures (default 1) mark the
//! host [`Health::Down`] immediately, and only active checks bring it back (a success
//! reported by traffic cannot: traffic no longer goes to a down host).
//!
//! A [`Monitor`](crate::Monitor) watching the same table sees these marks through
//! [`Table::on_change`] and counts them in its per-host stats; its rise counter starts
//! again from the mark.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Weak};

use lb_core::{Backend, BackendId, Change, Error, Health, Host, ListenerId, Table};
use parking_lot::Mutex;

use crate::Reason;

/// Passive health for one table: traffic reports outcomes, `N` consecutive failures
/// (default 1) mark a host down at once, active checks bring it back.
///
/// A cheap handle (an `Arc` inside): create one per table and clone it into every
/// connection task. `Send + Sync`. Each [`Passive::new`] registers a listener on the
/// table (to forget counts of hosts that recover or leave), removed when the last clone
/// of the handle is dropped.
///
/// Defaults:
/// - threshold 1: the first failed connect marks the host down.
///
/// ```
/// use lb_core::{Health, Table};
/// use lb_health::{Passive, Reason};
/// use std::net::SocketAddr;
///
/// let a: SocketAddr = "10.0.0.11:25".parse()?;
/// let b: SocketAddr = "10.0.0.12:25".parse()?;
/// let table = Table::new("smtp", [a, b])?;
/// let passive = Passive::new(table.clone()).with_threshold(2)?;
/// let id = table.snapshot().id(0);
/// assert!(!passive.report_failure(id, Reason::ConnectRefused)); // 1 of 2
/// assert!(passive.report_failure(id, Reason::ConnectRefused)); // 2 of 2: down
/// assert_eq!(table.snapshot().health(0), Health::Down);
/// assert_eq!(table.snapshot().usable(), &[1]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Passive<B: Backend = Host> {
    inner: Arc<Inner<B>>,
}

struct Inner<B: Backend> {
    table: Arc<Table<B>>,
    /// The table listener that forgets counts; removed when the last handle drops.
    listener: ListenerId,
    threshold: AtomicU32,
    /// Consecutive failures per host since its last success or mark.
    failures: Mutex<HashMap<BackendId, u32>>,
}

impl<B: Backend> Passive<B> {
    /// Passive health for `table`, with threshold 1.
    pub fn new(table: Arc<Table<B>>) -> Self {
        // Forget counts of hosts that leave the table or come back up, so a host that
        // recovers starts from zero. A weak reference: the table must not keep us alive;
        // the last handle's drop removes the listener (`Inner`'s `Drop`).
        let inner = Arc::new_cyclic(|weak: &Weak<Inner<B>>| {
            let weak = weak.clone();
            let listener = table.on_change(move |event| {
                let Some(inner) = weak.upgrade() else { return };
                match &event.change {
                    Change::Removed
                    | Change::Health {
                        new: Health::Up, ..
                    } => {
                        inner.failures.lock().remove(&event.id);
                    }
                    _ => {}
                }
            });
            Inner {
                table,
                listener,
                threshold: AtomicU32::new(1),
                failures: Mutex::new(HashMap::new()),
            }
        });
        Passive { inner }
    }

    /// The same handle with another threshold: `failures` consecutive failures mark a
    /// host down. [`Error::InvalidSetting`] for 0.
    pub fn with_threshold(self, failures: u32) -> Result<Self, Error> {
        if failures == 0 {
            return Err(Error::InvalidSetting {
                setting: "passive threshold",
                expected: "at least 1 consecutive failure".to_owned(),
            });
        }
        self.inner.threshold.store(failures, Ordering::Relaxed);
        Ok(self)
    }

    /// The number of consecutive failures that marks a host down.
    pub fn threshold(&self) -> u32 {
        self.inner.threshold.load(Ordering::Relaxed)
    }

    /// Reports a failed attempt on host `id` (a refused or timed-out connect). Returns
    /// `true` if this report marked the host down.
    ///
    /// A host already down stays down and the call returns `false`; so does a call for an
    /// id that is not in the table. Marking down calls
    /// [`Table::set_health`]`(id, Health::Down, reason.to_string())`. The host's
    /// [`connect_failures`](lb_core::HostState::connect_failures) counter is the
    /// caller's to update: relays count every failed connect, marks or not.
    pub fn report_failure(&self, id: BackendId, reason: Reason) -> bool {
        let threshold = self.threshold();
        let reached = {
            let mut failures = self.inner.failures.lock();
            let n = failures.entry(id).or_insert(0);
            *n = n.saturating_add(1);
            if *n >= threshold {
                failures.remove(&id);
                true
            } else {
                false
            }
        };
        if !reached {
            tracing::debug!(table = %self.inner.table.name(), host = %id, %reason, "passive failure below threshold");
            return false;
        }
        let snapshot = self.inner.table.snapshot();
        match snapshot.index_of(id).map(|i| snapshot.health(i)) {
            None | Some(Health::Down) => return false,
            Some(_) => {}
        }
        match self
            .inner
            .table
            .set_health(id, Health::Down, reason.to_string())
        {
            // Two reports racing past the threshold: only the one that changed it wins.
            Ok(old) if old != Health::Down => {
                tracing::warn!(table = %self.inner.table.name(), host = %id, %old, %reason, threshold, "host marked down by traffic");
                true
            }
            Ok(_) | Err(_) => false,
        }
    }

    /// Reports a successful attempt on host `id`: resets its consecutive-failure count.
    /// It never brings a host up; active checks do.
    pub fn report_success(&self, id: BackendId) {
        let mut failures = self.inner.failures.lock();
        if !failures.is_empty() {
            failures.remove(&id);
        }
    }

    /// The table this handle marks.
    pub fn table(&self) -> &Arc<Table<B>> {
        &self.inner.table
    }
}

impl<B: Backend> Drop for Inner<B> {
    fn drop(&mut self) {
        self.table.remove_listener(self.listener);
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
        f.debug_struct("Passive")
            .field("table", &self.inner.table.name())
            .field("threshold", &self.threshold())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn table() -> Arc<Table<SocketAddr>> {
        let a: SocketAddr = "10.0.0.1:80".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:80".parse().unwrap();
        Table::new("web", [a, b]).unwrap()
    }

    #[test]
    fn first_failure_marks_down_by_default() {
        let t = table();
        let p = Passive::new(t.clone());
        let id = t.snapshot().id(0);
        assert!(p.report_failure(id, Reason::ConnectRefused));
        assert_eq!(t.snapshot().health(0), Health::Down);
        // Already down: stays down, not marked again.
        assert!(!p.report_failure(id, Reason::ConnectTimeout));
        let events = t.stats();
        assert_eq!(events[0].health, Health::Down);
        assert_eq!(events[1].health, Health::Up);
    }

    #[test]
    fn threshold_counts_consecutive_failures_only() {
        let t = table();
        let p = Passive::new(t.clone()).with_threshold(3).unwrap();
        let id = t.snapshot().id(1);
        assert!(!p.report_failure(id, Reason::ConnectRefused));
        assert!(!p.report_failure(id, Reason::ConnectRefused));
        p.report_success(id);
        assert!(!p.report_failure(id, Reason::ConnectRefused));
        assert!(!p.report_failure(id, Reason::ConnectRefused));
        assert_eq!(t.snapshot().health(1), Health::Up);
        assert!(p.report_failure(id, Reason::ConnectRefused));
        assert_eq!(t.snapshot().health(1), Health::Down);
    }

    #[test]
    fn reason_reaches_the_table() {
        let t = table();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        t.on_change(move |e| s.lock().push(e.change.clone()));
        let p = Passive::new(t.clone());
        assert!(p.report_failure(t.snapshot().id(0), Reason::ConnectTimeout));
        assert_eq!(
            *seen.lock(),
            vec![Change::Health {
                old: Health::Up,
                new: Health::Down,
                reason: "connect timeout".into()
            }]
        );
    }

    #[test]
    fn recovery_resets_the_count() {
        let t = table();
        let p = Passive::new(t.clone()).with_threshold(2).unwrap();
        let id = t.snapshot().id(0);
        assert!(!p.report_failure(id, Reason::ConnectRefused));
        assert!(p.report_failure(id, Reason::ConnectRefused));
        t.set_health(id, Health::Up, "check ok").unwrap();
        assert!(!p.report_failure(id, Reason::ConnectRefused));
        assert!(p.report_failure(id, Reason::ConnectRefused));
    }

    #[test]
    fn the_last_clone_removes_the_listener() {
        let t = table();
        let p = Passive::new(t.clone());
        let q = p.clone();
        let other = Passive::new(t.clone());
        assert_eq!(t.listener_count(), 2);
        drop(p);
        assert_eq!(t.listener_count(), 2);
        drop(q);
        assert_eq!(t.listener_count(), 1);
        // The remaining handle still hears recoveries: its count starts again.
        let id = t.snapshot().id(0);
        let other = other.with_threshold(2).unwrap();
        assert!(!other.report_failure(id, Reason::ConnectRefused));
        t.set_health(id, Health::Down, "operator").unwrap();
        t.set_health(id, Health::Up, "check ok").unwrap();
        assert!(!other.report_failure(id, Reason::ConnectRefused));
        drop(other);
        assert_eq!(t.listener_count(), 0);
    }

    #[test]
    fn zero_threshold_and_unknown_ids() {
        let t = table();
        let err = Passive::new(t.clone()).with_threshold(0).unwrap_err();
        assert!(matches!(err, Error::InvalidSetting { .. }), "{err}");
        let p = Passive::new(t);
        assert!(!p.report_failure(BackendId::from_raw(7), Reason::ConnectRefused));
    }
}
