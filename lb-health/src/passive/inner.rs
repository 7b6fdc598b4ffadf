//! What [`Passive`](super::Passive) does behind its reports: writing to the table as
//! passive health, following the table's changes, and ending ejections (timers, and the
//! sweep for when no runtime runs them).

use std::borrow::Cow;
use std::sync::Arc;

use lb_core::{Backend, BackendId, Change, Health, Table};
use tokio::runtime::Handle;
use tokio::time::Instant;

use super::{Inner, WRITING};

impl<B: Backend> Inner<B> {
    /// Makes a table change as passive health (see [`is_writing`]).
    pub(super) fn write<R>(&self, f: impl FnOnce(&dyn Table<B>) -> R) -> R {
        let previous = WRITING.replace(true);
        let out = f(&*self.table);
        WRITING.set(previous);
        out
    }

    /// The table listener: follows recoveries, ends of ejections and removals.
    pub(super) fn observe(&self, id: BackendId, host: &str, change: &Change) {
        let mut state = self.state.lock();
        match change {
            Change::Removed => {
                state.hosts.remove(&id);
            }
            // A host that recovers starts counting from zero.
            Change::Health {
                new: Health::Up, ..
            } => {
                if let Some(rec) = state.hosts.get_mut(&id) {
                    rec.failures = 0;
                }
            }
            Change::EjectionEnded { reason } => {
                let Some(rec) = state.hosts.get_mut(&id) else {
                    return;
                };
                // Failures reported while it was out (racing sessions) start no new count.
                rec.failures = 0;
                if rec.until.take().is_some() {
                    rec.ended_at = Some(Instant::now());
                    drop(state);
                    tracing::info!(table = %self.table.name(), host, %reason, "ejection ended");
                }
            }
            _ => {}
        }
    }

    /// Ends ejection `generation` of host `id` when its time is over, unless it already
    /// ended (a check's success) or a later one replaced it.
    pub(super) fn end(&self, id: BackendId, generation: u64) {
        let current = self
            .state
            .lock()
            .hosts
            .get(&id)
            .is_some_and(|rec| rec.generation == generation && rec.until.is_some());
        if current {
            let reason: Cow<'static, str> = Cow::Borrowed("ejection time over");
            // The listener records the end; an id removed meanwhile has nothing to end.
            let _ = self.write(|t| t.end_ejection(id, reason));
        }
    }

    /// Ends every ejection due at `now`; returns how many were due.
    pub(super) fn end_due(&self, now: Instant) -> usize {
        let due = self.state.lock().due(now);
        for &(id, generation) in &due {
            self.end(id, generation);
        }
        due.len()
    }

    /// Starts the timer that ends ejection `generation` of `id` at `at`: on the current
    /// runtime, or the one current at construction. Without either, the sweep in
    /// [`end_due`](Self::end_due) ends it.
    pub(super) fn schedule_end(self: &Arc<Self>, id: BackendId, generation: u64, at: Instant) {
        let Some(runtime) = Handle::try_current().ok().or_else(|| self.runtime.clone()) else {
            tracing::debug!(table = %self.table.name(), host = %id, "no tokio runtime: the ejection ends at the next report");
            return;
        };
        // Weak: a pending timer does not keep passive health alive; its drop ends the
        // ejections it made.
        let weak = Arc::downgrade(self);
        runtime.spawn(async move {
            tokio::time::sleep_until(at).await;
            if let Some(inner) = weak.upgrade() {
                inner.end(id, generation);
            }
        });
    }
}
