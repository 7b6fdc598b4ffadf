//! How a [`Balancer`] follows its table: snapshots offered by writers are applied by one
//! thread at a time, newest first, and a rebuild never holds up a health change.
//!
//! A balancer has one updating thread at most. A writer offering a snapshot leaves it
//! as *pending* (a newer one replaces an older one: each snapshot is the whole table,
//! so the newest is all that matters) and then:
//!
//! - applies it itself when nobody is updating and it keeps the membership of the plan
//!   in use: a health or admin change, which a policy derives in O(hosts);
//! - waits (briefly) when another thread is applying such a change;
//! - returns at once when another thread is rebuilding for a new membership: that
//!   thread applies the newest pending snapshot when its rebuild is done;
//! - leaves a snapshot with a new membership pending for the writer of that membership
//!   change, whose [`settle`](Watcher::settle) rebuilds on its own thread.
//!
//! The plan in use keeps serving picks until the next one is stored.

use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::{Balancer, Prepared};
use crate::table::Watcher;
use crate::{Backend, Policy, Snapshot};

/// The update state of one balancer.
pub(super) struct Updates<B> {
    state: Mutex<State<B>>,
    done: Condvar,
}

struct State<B> {
    /// The newest snapshot offered and not applied yet.
    pending: Option<Arc<Snapshot<B>>>,
    /// The version of the snapshot the balancer serves.
    applied: u64,
    /// What the updating thread is doing, if there is one.
    busy: Option<Work>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Work {
    /// Deriving a plan for the membership in use (health, admin).
    Cheap,
    /// Building a plan for a new membership.
    Rebuild,
}

impl<B> Updates<B> {
    /// Updates of a balancer serving version `applied`.
    pub(super) fn new(applied: u64) -> Self {
        Updates {
            state: Mutex::new(State {
                pending: None,
                applied,
                busy: None,
            }),
            done: Condvar::new(),
        }
    }
}

/// Clears the busy mark when dropped, even if the policy panicked.
struct Busy<'a, B> {
    updates: &'a Updates<B>,
}

impl<B> Drop for Busy<'_, B> {
    fn drop(&mut self) {
        self.updates.state.lock().busy = None;
        self.updates.done.notify_all();
    }
}

impl<P: Policy, B: Backend> Balancer<P, B> {
    /// Whether `snapshot` keeps the membership of the plan in use. Read while no other
    /// thread updates (the caller holds the state lock and nobody is busy, or is the
    /// busy thread).
    fn same_membership(&self, snapshot: &Snapshot<B>) -> bool {
        self.prepared.load().snapshot.membership_version() == snapshot.membership_version()
    }

    /// Applies pending snapshots as the updating thread: every one when `rebuild`, else
    /// only those of the membership in use. Returns when none is left (or the next one
    /// needs a rebuild and `rebuild` is false). The caller marked itself busy.
    fn apply_pending(&self, rebuild: bool) {
        let _busy = Busy {
            updates: &self.updates,
        };
        loop {
            let next = {
                let mut state = self.updates.state.lock();
                let Some(next) = state.pending.take() else {
                    return;
                };
                let cheap = self.same_membership(&next);
                if !cheap && !rebuild {
                    state.pending = Some(next);
                    return;
                }
                state.busy = Some(if cheap { Work::Cheap } else { Work::Rebuild });
                if !cheap {
                    // Writers waiting for a cheap update stop waiting.
                    self.updates.done.notify_all();
                }
                next
            };
            let previous = self.prepared.load_full();
            let plan = self
                .policy
                .plan(&next, Some((&previous.snapshot, &previous.plan)));
            let version = next.version();
            self.prepared.store(Arc::new(Prepared {
                snapshot: next,
                plan,
            }));
            let mut state = self.updates.state.lock();
            state.applied = version;
            state.busy = Some(Work::Cheap);
            drop(state);
            self.updates.done.notify_all();
        }
    }

    /// Leaves `snapshot` pending unless a newer one is (or is served already).
    fn leave(state: &mut State<B>, snapshot: &Arc<Snapshot<B>>) {
        let newer = state
            .pending
            .as_ref()
            .map_or(state.applied, |p| p.version().max(state.applied));
        if snapshot.version() > newer {
            state.pending = Some(snapshot.clone());
        }
    }
}

impl<P: Policy, B: Backend> Watcher<B> for Balancer<P, B> {
    fn offer(&self, snapshot: &Arc<Snapshot<B>>) {
        let mut state = self.updates.state.lock();
        Self::leave(&mut state, snapshot);
        loop {
            if state.applied >= snapshot.version() {
                return;
            }
            match state.busy {
                Some(Work::Rebuild) => return,
                Some(Work::Cheap) => self.updates.done.wait(&mut state),
                None => {
                    let cheap = state
                        .pending
                        .as_ref()
                        .is_some_and(|p| self.same_membership(p));
                    if !cheap {
                        // A rebuild: its writer's `settle` does it.
                        return;
                    }
                    state.busy = Some(Work::Cheap);
                    drop(state);
                    self.apply_pending(false);
                    state = self.updates.state.lock();
                }
            }
        }
    }

    fn settle(&self, version: u64) {
        let mut state = self.updates.state.lock();
        loop {
            if state.applied >= version {
                return;
            }
            match state.busy {
                Some(_) => self.updates.done.wait(&mut state),
                None if state.pending.is_none() => return,
                None => {
                    state.busy = Some(Work::Rebuild);
                    drop(state);
                    self.apply_pending(true);
                    state = self.updates.state.lock();
                }
            }
        }
    }
}
