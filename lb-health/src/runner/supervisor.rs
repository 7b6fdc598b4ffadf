//! The supervisor: owns the host tasks in a [`JoinSet`], starts and stops them on
//! command, and starts again a task that died (a check that panicked), counting the
//! death as a failed check.

use std::collections::HashMap;
use std::sync::Arc;

use lb_core::{Backend, BackendId};
use tokio::sync::mpsc;
use tokio::task::{self, AbortHandle, JoinError, JoinSet};

use super::{run_host, Command, DemoteHook, Shared};
use crate::{Outcome, Reason};

/// The host tasks of one monitor, by host and by task.
struct Tasks<B> {
    shared: Arc<Shared<B>>,
    set: JoinSet<()>,
    handles: HashMap<BackendId, AbortHandle>,
    hosts: HashMap<task::Id, BackendId>,
}

impl<B: Backend> Tasks<B> {
    /// Starts host `id`'s task, unless it runs or the host left the table.
    fn spawn(&mut self, id: BackendId, resume: bool) {
        let snap = self.shared.table.snapshot();
        if let (Some(index), false) = (snap.index_of(id), self.handles.contains_key(&id)) {
            let task = run_host(self.shared.clone(), id, index, snap.len(), resume);
            let h = self.set.spawn(task);
            self.hosts.insert(h.id(), id);
            self.handles.insert(id, h);
        }
    }

    fn stop(&mut self, id: BackendId) {
        if let Some(h) = self.handles.remove(&id) {
            self.hosts.remove(&h.id());
            h.abort();
        }
    }

    /// A task ended: a host that left the table (nothing to do), one stopped (aborted),
    /// or one that died. A death counts as a failed check and the task starts again.
    fn ended(&mut self, result: Result<task::Id, JoinError>) {
        let (task, error) = match result {
            Ok(task) => (task, None),
            Err(e) => (e.id(), Some(e)),
        };
        let Some(id) = self.hosts.remove(&task) else {
            return; // stopped: already forgotten
        };
        self.handles.remove(&id);
        let Some(error) = error.filter(|e| !e.is_cancelled()) else {
            return; // the host left the table
        };
        let snap = self.shared.table.snapshot();
        let Some(i) = snap.index_of(id) else { return };
        let what = if error.is_panic() {
            panic_message(error.into_panic())
        } else {
            "task died".to_owned()
        };
        tracing::error!(
            table = %self.shared.table.name(), host = %snap.host(i).name(),
            check = self.shared.check.name(), panic = %what,
            "health check panicked: counted as a failure, checks start again at the next interval"
        );
        self.shared
            .record(id, &Outcome::down(Reason::CheckPanicked));
        self.spawn(id, true);
    }
}

/// What a panic said, when it said it with a string.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => payload
            .downcast_ref::<&str>()
            .map_or_else(|| "a non-string payload".to_owned(), |s| (*s).to_owned()),
    }
}

/// The supervisor: spawns the first hosts, then follows commands until shut down.
pub(crate) async fn supervise<B: Backend>(
    shared: Arc<Shared<B>>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    on_demote: Option<DemoteHook>,
) {
    let first: Vec<BackendId> = shared
        .table
        .snapshot()
        .hosts()
        .iter()
        .map(|h| h.id())
        .collect();
    let mut tasks = Tasks {
        shared: shared.clone(),
        set: JoinSet::new(),
        handles: HashMap::new(),
        hosts: HashMap::new(),
    };
    for id in first {
        tasks.spawn(id, false);
    }
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Spawn(id)) => tasks.spawn(id, false),
                Some(Command::Stop(id)) => tasks.stop(id),
                Some(Command::Demotion(d)) => {
                    tracing::warn!(table = %shared.table.name(), demotion = ?d, "table demotion");
                    if let Some(hook) = &on_demote {
                        hook(shared.table.name(), d);
                    }
                }
                Some(Command::Shutdown) | None => break,
            },
            Some(result) = tasks.set.join_next_with_id(), if !tasks.set.is_empty() => {
                tasks.ended(result.map(|(task, ())| task));
            }
        }
    }
    tasks.set.shutdown().await;
}
