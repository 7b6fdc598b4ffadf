//! The monitor's machinery: shared state, one task per host, and the supervisor that
//! spawns and stops them.
//!
//! Each host has its own task, so a slow check delays nobody else. The task runs its
//! check against the host's address by the deadline `start + timeout`, and aborts it
//! when the next tick comes first (relayd's "interval timeout", `hce.c`). Results go
//! through the retry/rise counters into [`Table::set_health`]; a success also ends an
//! ejection by passive health ([`Table::end_ejection`]). The supervisor owns the tasks in
//! a [`JoinSet`]: dropping it (monitor dropped) or shutting it down ends them all.
//!
//! A check that panics (or a host task that dies any other way) must not freeze its
//! host's health: the supervisor logs it at `error` with the table, host and check,
//! counts it as a failed check ([`Reason::CheckPanicked`], through the retry counter like
//! any failure) and starts the host's task again one interval later.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use lb_core::{Backend, BackendId, Change, Health, Table, TableEvent};
use parking_lot::Mutex;
use tokio::sync::{broadcast, mpsc};

use tokio::time::{sleep_until, Instant};

use crate::check::deadline_after;
use crate::event::{Demotion, EventKind, HostEvent, Source};
use crate::schedule;
use crate::stats::HostRecord;
use crate::{Check, Failure, Outcome, Probe, Reason};

mod supervisor;

pub(crate) use supervisor::supervise;

thread_local! {
    /// The id of the monitor writing a health change on this thread, so that its own
    /// table listener can tell its changes from everyone else's. HostTable listeners run
    /// synchronously inside `set_health`, on the writer's thread.
    static WRITING: Cell<u64> = const { Cell::new(0) };
}

/// A callback for [`Demotion`]s: the table's name and what happened.
pub(crate) type DemoteHook = Arc<dyn Fn(&str, Demotion) + Send + Sync>;

/// The monitor's settings, validated by its builder.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
    pub(crate) fast_interval: Option<Duration>,
    pub(crate) retry: u32,
    pub(crate) rise: u32,
    pub(crate) port: Option<u16>,
    pub(crate) spread: bool,
}

/// What the table listener and host tasks ask the supervisor to do.
pub(crate) enum Command {
    Spawn(BackendId),
    Stop(BackendId),
    Demotion(Demotion),
    Shutdown,
}

/// State shared by a monitor's handle, tasks and table listener.
pub(crate) struct Shared<B> {
    pub(crate) id: u64,
    pub(crate) table: Arc<dyn Table<B>>,
    pub(crate) check: Arc<dyn Check>,
    pub(crate) config: Config,
    pub(crate) hosts: Mutex<HashMap<BackendId, HostRecord>>,
    pub(crate) events: broadcast::Sender<HostEvent>,
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    pub(crate) demoted: Mutex<bool>,
}

impl<B: Backend> Shared<B> {
    /// Sets a host's health as this monitor.
    pub(crate) fn write(&self, id: BackendId, health: Health, reason: Cow<'static, str>) {
        let previous = WRITING.replace(self.id);
        // An id removed meanwhile is no longer ours to check.
        let _ = self.table.set_health(id, health, reason);
        WRITING.set(previous);
    }

    /// The table listener: keeps records, forwards events, spawns and stops tasks.
    pub(crate) fn observe(&self, event: &TableEvent) {
        let source = if WRITING.get() == self.id {
            Source::Check
        } else if crate::passive::is_writing() {
            Source::Passive
        } else {
            Source::External
        };
        let at = Instant::now();
        match &event.change {
            Change::Health { old, new, reason } => {
                {
                    let mut hosts = self.hosts.lock();
                    let rec = hosts.entry(event.id).or_default();
                    rec.last_change = Some(at);
                    if source != Source::Check {
                        // Someone else decided: the monitor's counters start again.
                        rec.consecutive_failures = 0;
                        rec.consecutive_successes = 0;
                        rec.pending = false;
                        if *new == Health::Down {
                            rec.marks += 1;
                            if let Ok(r) = reason.parse::<Reason>() {
                                rec.last_error = Some(Failure::new(r));
                            }
                        }
                    }
                }
                tracing::info!(
                    table = %event.table, host = %event.host, %old, %new, %reason,
                    check = self.check.name(), ?source, "host state changed"
                );
                self.send(
                    event,
                    EventKind::Health,
                    (*old, *new),
                    reason.clone(),
                    source,
                    at,
                );
            }
            Change::Ejected { reason } | Change::EjectionEnded { reason } => {
                let ejected = matches!(event.change, Change::Ejected { .. });
                if ejected {
                    let mut hosts = self.hosts.lock();
                    let rec = hosts.entry(event.id).or_default();
                    rec.ejections += 1;
                    // An ejection's reason starts with why (`connect refused, ...`).
                    let why = reason.split(',').next().unwrap_or_default();
                    if let Ok(r) = why.parse::<Reason>() {
                        rec.last_error = Some(Failure::new(r));
                    }
                }
                let health = {
                    let snap = self.table.snapshot();
                    snap.index_of(event.id).map(|i| snap.health(i))
                };
                let Some(health) = health else { return };
                let kind = if ejected {
                    EventKind::Ejected
                } else {
                    EventKind::EjectionEnded
                };
                self.send(event, kind, (health, health), reason.clone(), source, at);
            }
            Change::Added => {
                self.hosts.lock().insert(event.id, HostRecord::pending());
                let _ = self.commands.send(Command::Spawn(event.id));
            }
            Change::Removed => {
                self.hosts.lock().remove(&event.id);
                let _ = self.commands.send(Command::Stop(event.id));
            }
            _ => {}
        }
        self.evaluate_demotion();
    }

    /// Sends one event to the monitor's subscribers.
    fn send(
        &self,
        event: &TableEvent,
        kind: EventKind,
        (old, new): (Health, Health),
        reason: Cow<'static, str>,
        source: Source,
        at: Instant,
    ) {
        let _ = self.events.send(HostEvent {
            table: event.table.clone(),
            id: event.id,
            host: event.host.clone(),
            kind,
            old,
            new,
            reason,
            source,
            at,
        });
    }

    /// Demotes the table when no host is usable and none waits for its first check;
    /// restores it when one is usable again.
    pub(crate) fn evaluate_demotion(&self) {
        let empty = self.table.snapshot().usable().is_empty();
        let pending = self.hosts.lock().values().any(|r| r.pending);
        let mut demoted = self.demoted.lock();
        let next = if empty { *demoted || !pending } else { false };
        if next != *demoted {
            *demoted = next;
            let d = if next {
                Demotion::Demoted
            } else {
                Demotion::Restored
            };
            // Sent under the lock: the supervisor sees demotions in order.
            let _ = self.commands.send(Command::Demotion(d));
        }
    }

    /// The period of a host's next check: the fast interval while it is not up or is
    /// failing, if one is set.
    fn period(&self, id: BackendId) -> Duration {
        let Some(fast) = self.config.fast_interval else {
            return self.config.interval;
        };
        let snap = self.table.snapshot();
        let up = snap.index_of(id).map(|i| snap.health(i)) == Some(Health::Up);
        let failing = self
            .hosts
            .lock()
            .get(&id)
            .is_some_and(|r| r.consecutive_failures > 0);
        if up && !failing {
            self.config.interval
        } else {
            fast
        }
    }

    /// Runs one check of host `id`, aborting it at `abort_at`. `None` once the host has
    /// left the table.
    async fn probe(&self, id: BackendId, start: Instant, abort_at: Instant) -> Option<Outcome> {
        let addr = {
            let snap = self.table.snapshot();
            let i = snap.index_of(id)?;
            snap.host(i).backend().addr()
        };
        let Some(mut addr) = addr else {
            return Some(Outcome::down(Reason::NoAddress));
        };
        if let Some(port) = self.config.port {
            addr.set_port(port);
        }
        let probe = Probe::with_deadline(addr, deadline_after(start, self.config.timeout));
        let outcome = tokio::select! {
            biased;
            outcome = self.check.check(&probe) => outcome,
            () = sleep_until(abort_at) => Outcome::down(Reason::IntervalTimeout),
        };
        tracing::debug!(
            table = %self.table.name(), host = %id, %addr, check = self.check.name(),
            %outcome, elapsed_ms = start.elapsed().as_millis() as u64, "check done"
        );
        Some(outcome)
    }

    /// Counts an outcome and applies the retry and rise thresholds.
    pub(crate) fn record(&self, id: BackendId, outcome: &Outcome) {
        let snap = self.table.snapshot();
        let Some(index) = snap.index_of(id) else {
            return;
        };
        let current = snap.health(index);
        if matches!(outcome, Outcome::Up) && snap.is_ejected(index) {
            // A successful check ends an ejection early; the check wins.
            let previous = WRITING.replace(self.id);
            let _ = self
                .table
                .end_ejection(id, format!("{} ok", self.check.name()).into());
            WRITING.set(previous);
        }
        let decision = {
            let mut hosts = self.hosts.lock();
            let rec = hosts.entry(id).or_default();
            rec.checks += 1;
            rec.pending = false;
            match outcome {
                Outcome::Up => {
                    rec.successes += 1;
                    rec.consecutive_successes = rec.consecutive_successes.saturating_add(1);
                    rec.consecutive_failures = 0;
                    (current != Health::Up && rec.consecutive_successes >= self.config.rise)
                        .then(|| (Health::Up, Cow::Owned(format!("{} ok", self.check.name()))))
                }
                Outcome::Down(f) => {
                    rec.consecutive_failures = rec.consecutive_failures.saturating_add(1);
                    rec.consecutive_successes = 0;
                    rec.last_error = Some(f.clone());
                    (current != Health::Down && rec.consecutive_failures > self.config.retry)
                        .then(|| (Health::Down, Cow::Borrowed(f.reason().as_str())))
                }
                Outcome::Unknown(f) => {
                    rec.consecutive_failures = 0;
                    rec.consecutive_successes = 0;
                    rec.last_error = Some(f.clone());
                    (current != Health::Unknown)
                        .then(|| (Health::Unknown, Cow::Borrowed(f.reason().as_str())))
                }
            }
        };
        match decision {
            Some((health, reason)) => self.write(id, health, reason),
            // No change, but a first check may have decided a demotion.
            None => self.evaluate_demotion(),
        }
    }
}

/// One host's check loop. A task started again after a panic (`resume`) waits one
/// period before its first check.
async fn run_host<B: Backend>(
    shared: Arc<Shared<B>>,
    id: BackendId,
    index: usize,
    count: usize,
    resume: bool,
) {
    let phase = |period| {
        if shared.config.spread {
            schedule::phase(index, count, period)
        } else {
            Duration::ZERO
        }
    };
    let mut start = Instant::now();
    if resume {
        start += shared.period(id);
        sleep_until(start).await;
    }
    let origin = start;
    loop {
        let period = shared.period(id);
        let abort_at = schedule::next_tick(origin, start, period, phase(period));
        let Some(outcome) = shared.probe(id, start, abort_at).await else {
            return;
        };
        shared.record(id, &outcome);
        // The outcome may have switched the host to (or from) the fast interval.
        let period = shared.period(id);
        let next = schedule::next_tick(origin, start, period, phase(period));
        sleep_until(next).await;
        start = Instant::now().max(next);
    }
}
