//! Publishing a committed change: handing its snapshot to the balancers and its event to
//! the listeners, in the order the changes were made, outside the table's lock.
//!
//! Every commit takes its snapshot's version as a delivery ticket under the write lock.
//! Versions are dense (each commit takes the next one), so the deliveries form one
//! queue: a writer waits until the version before its own has been delivered, calls the
//! listeners on its own thread, and lets the next one go. A write made by a listener
//! (re-entrant, same thread) cannot wait for its turn there, since the turn it waits for
//! is the one its own thread is delivering: it is queued on the thread and delivered by
//! that thread right after the event being delivered (and after any events other
//! threads committed in between). A listener that panics still passes the turn on (a
//! drop guard), and the re-entrant writes its thread had queued are skipped.

use std::cell::RefCell;
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::{HostTable, Watcher};
use crate::event::{Change, Listener, TableEvent};
use crate::{Backend, Snapshot};

/// A commit, to publish once the write lock is released.
pub(super) struct Published<B> {
    pub(super) snapshot: Arc<Snapshot<B>>,
    /// Whether hosts or weights changed: balancers may have to rebuild their plans.
    pub(super) membership: bool,
    pub(super) observers: Vec<Arc<dyn Watcher<B>>>,
    pub(super) listeners: Vec<Listener>,
    /// One event per host changed (several for a batched membership update), all with
    /// the snapshot's version.
    pub(super) events: Vec<TableEvent>,
}

/// The events of one commit and who hears them, waiting for their turn.
struct Batch {
    listeners: Vec<Listener>,
    events: Vec<TableEvent>,
}

/// The delivery queue of one table.
pub(super) struct Delivery {
    turn: Mutex<Turn>,
    passed: Condvar,
}

struct Turn {
    /// The version whose event is delivered next.
    next: u64,
    /// Later versions whose writer gave up their turn (a listener panicked before it).
    skipped: BTreeSet<u64>,
}

/// Events queued on this thread for one table (by address of its `Delivery`) while it
/// delivers that table's events: written by its listeners, each with its version.
type Queued = (usize, VecDeque<(u64, Batch)>);

thread_local! {
    /// The tables whose events this thread is delivering, innermost last.
    static DELIVERING: RefCell<Vec<Queued>> = const { RefCell::new(Vec::new()) };
}

impl Delivery {
    /// A queue whose first delivery is `first`.
    pub(super) fn new(first: u64) -> Self {
        Delivery {
            turn: Mutex::new(Turn {
                next: first,
                skipped: BTreeSet::new(),
            }),
            passed: Condvar::new(),
        }
    }

    fn key(&self) -> usize {
        self as *const Delivery as usize
    }

    fn wait_for(&self, version: u64) {
        let mut turn = self.turn.lock();
        while turn.next != version {
            self.passed.wait(&mut turn);
        }
    }

    /// Marks `version` delivered (or given up) and wakes the writers waiting.
    fn pass(&self, version: u64) {
        let mut turn = self.turn.lock();
        if turn.next == version {
            turn.next += 1;
            loop {
                let next = turn.next;
                if !turn.skipped.remove(&next) {
                    break;
                }
                turn.next += 1;
            }
        } else {
            turn.skipped.insert(version);
        }
        drop(turn);
        self.passed.notify_all();
    }
}

/// Passes the turn of `version` on when dropped, even while unwinding.
struct TurnGuard<'a> {
    delivery: &'a Delivery,
    version: u64,
}

impl Drop for TurnGuard<'_> {
    fn drop(&mut self) {
        self.delivery.pass(self.version);
    }
}

/// This thread's delivery frame for one table: removed when dropped, and the events
/// still queued in it (left by a panic) give up their turns.
struct Frame<'a> {
    delivery: &'a Delivery,
}

impl<'a> Frame<'a> {
    fn enter(delivery: &'a Delivery) -> Self {
        DELIVERING.with(|d| d.borrow_mut().push((delivery.key(), VecDeque::new())));
        Frame { delivery }
    }

    fn next(&self) -> Option<(u64, Batch)> {
        let key = self.delivery.key();
        DELIVERING.with(|d| {
            d.borrow_mut()
                .iter_mut()
                .rev()
                .find(|(k, _)| *k == key)
                .and_then(|(_, queue)| queue.pop_front())
        })
    }
}

impl Drop for Frame<'_> {
    fn drop(&mut self) {
        let key = self.delivery.key();
        let left = DELIVERING.with(|d| {
            let mut frames = d.borrow_mut();
            let at = frames.iter().rposition(|(k, _)| *k == key);
            at.map(|i| frames.remove(i).1).unwrap_or_default()
        });
        for (version, _) in left {
            self.delivery.pass(version);
        }
    }
}

impl<B: Backend> HostTable<B> {
    /// Publishes a commit, after the write lock is released: offers the snapshot to the
    /// balancers (a health or admin change is applied at once), delivers the event in
    /// order, and for a membership change returns once every balancer serves it (or a
    /// newer snapshot), rebuilding on this thread where no other thread is.
    pub(super) fn publish(&self, published: Published<B>) {
        let Published {
            snapshot,
            membership,
            observers,
            listeners,
            events,
        } = published;
        for o in &observers {
            o.offer(&snapshot);
        }
        self.deliver(snapshot.version(), Batch { listeners, events });
        if membership {
            for o in &observers {
                o.settle(snapshot.version());
            }
        }
    }

    /// Delivers `batch` (committed as `version`) in its turn, or queues it when this
    /// thread is delivering this table's events already (a listener's write).
    fn deliver(&self, version: u64, batch: Batch) {
        let key = self.delivery.key();
        let mut batch = Some(batch);
        DELIVERING.with(|d| {
            if let Some((_, queue)) = d.borrow_mut().iter_mut().rev().find(|(k, _)| *k == key) {
                if let Some(b) = batch.take() {
                    queue.push_back((version, b));
                }
            }
        });
        let Some(batch) = batch else {
            return;
        };
        let frame = Frame::enter(&self.delivery);
        let mut next = Some((version, batch));
        while let Some((version, batch)) = next {
            self.delivery.wait_for(version);
            let turn = TurnGuard {
                delivery: &self.delivery,
                version,
            };
            call(&batch);
            drop(turn);
            next = frame.next();
        }
    }
}

/// Logs each health change or ejection and calls the listeners, event by event.
fn call(batch: &Batch) {
    for event in &batch.events {
        call_one(&batch.listeners, event);
    }
}

fn call_one(listeners: &[Listener], event: &TableEvent) {
    // Debug: whoever made the change (a monitor, passive health) logs it at its level.
    match &event.change {
        Change::Health { old, new, reason } => {
            tracing::debug!(table = %event.table, host = %event.host, %old, %new, %reason, "host health changed");
        }
        Change::Ejected { reason } => {
            tracing::debug!(table = %event.table, host = %event.host, %reason, "host ejected");
        }
        Change::EjectionEnded { reason } => {
            tracing::debug!(table = %event.table, host = %event.host, %reason, "ejection ended");
        }
        _ => {}
    }
    for l in listeners {
        l(event);
    }
}
