//! Waiting for what the demonstration claims: a host's health changing in some tables,
//! and their monitors' checks failing. Every wait ends at the event or at a deadline,
//! never after a fixed sleep.
//!
//! The schedule gives each event a bound (a check fails within interval + timeout of a
//! stop). An idle machine meets it; a loaded one (CI next to other builds, two cores
//! busy with something else) runs timers and tasks late. What the demonstration
//! asserts is that the event comes; how long it took is printed next to its bound.

use std::future::Future;
use std::time::Duration;

use lb::core::Health;
use lb::health::{EventKind, HostEvent};
use tokio::sync::broadcast::{self, error::TryRecvError};
use tokio::time::Instant;

use crate::overview::describe_event;
use crate::rounds::Round;
use crate::setup::Exchange;

/// How many times its bound an event may take before the demonstration gives up on it.
const PATIENCE: u32 = 5;

/// When to give up on an event due `bound` after `from`.
pub fn patient(from: Instant, bound: Duration) -> Instant {
    from + bound * PATIENCE
}

/// `after` in milliseconds since `since`, with how it compares to the schedule's
/// `bound`, which `rule` explains (`"interval + timeout"`).
pub fn timing(after: Duration, since: &str, rule: &str, bound: Duration) -> String {
    let (ms, bound_ms) = (after.as_millis(), bound.as_millis());
    if after <= bound {
        format!("{ms} ms after {since} (bound: {rule} = {bound_ms} ms)")
    } else {
        format!("{ms} ms after {since} (later than {rule} = {bound_ms} ms: a busy machine runs timers late)")
    }
}

/// The claim that no client saw a failure although `connects` connects to `name` failed.
pub fn no_failure_claim(connects: u64, name: &str, other: &str) -> String {
    match connects {
        0 => format!("no client saw a failure (no client tried {name} before it was marked down)"),
        n => format!(
            "no client saw a failure: {n} connects to {name} failed and each session failed \
             over to {other} within itself"
        ),
    }
}

/// What was seen while a stopped server's clients came back: the host's first `down`
/// event in each table, and when the last table's check confirmed it.
pub struct Outage {
    /// The first down event of each table that reported one.
    pub down: Vec<HostEvent>,
    /// How long after the stop every table's check had failed, if they all did.
    pub confirmed: Option<Duration>,
}

/// Runs `round` (the clients coming back after `host` stopped at `t0`) while waiting
/// for `host` to go down in every pool of `pools` and for their checks to fail: all
/// three at once, so that each is timed when it happens.
pub async fn outage(
    events: &mut broadcast::Receiver<HostEvent>,
    ex: &Exchange,
    t0: Instant,
    host: &str,
    pools: &[usize],
    round: impl Future<Output = Round>,
) -> (Round, Outage) {
    let deadline = patient(t0, ex.schedule.down_bound());
    let (round, down, confirmed) = tokio::join!(
        round,
        wait_for(events, ex, t0, host, Health::Down, pools, deadline),
        wait_for_check_failure(ex, pools, host, t0, deadline),
    );
    (round, Outage { down, confirmed })
}

/// Prints health events until `host` has reached `health` in every pool of `pools`, or
/// until `deadline`. Returns the first such event of each pool that reported one.
pub async fn wait_for(
    events: &mut broadcast::Receiver<HostEvent>,
    ex: &Exchange,
    origin: Instant,
    host: &str,
    health: Health,
    pools: &[usize],
    deadline: Instant,
) -> Vec<HostEvent> {
    let tables: Vec<&str> = pools.iter().map(|&p| ex.pools[p].table.name()).collect();
    let mut seen: Vec<HostEvent> = Vec::with_capacity(tables.len());
    while seen.len() < tables.len() {
        let event = match events.try_recv() {
            Ok(e) => e,
            Err(TryRecvError::Empty) => {
                match tokio::time::timeout_at(deadline, events.recv()).await {
                    Ok(Ok(e)) => e,
                    Ok(Err(broadcast::error::RecvError::Lagged(n))) => {
                        println!("   ({n} health events missed)");
                        continue;
                    }
                    Ok(Err(broadcast::error::RecvError::Closed)) | Err(_) => break,
                }
            }
            Err(TryRecvError::Lagged(n)) => {
                println!("   ({n} health events missed)");
                continue;
            }
            Err(TryRecvError::Closed) => break,
        };
        println!(
            "   {}",
            describe_event(ex, origin, &event).replacen('[', "[+", 1)
        );
        let wanted = event.host == host && event.kind == EventKind::Health && event.new == health;
        if wanted && tables.contains(&&*event.table) && !seen.iter().any(|e| e.table == event.table)
        {
            seen.push(event);
        }
    }
    seen
}

/// Prints the events already received without waiting: the late ones of a step.
pub fn drain(events: &mut broadcast::Receiver<HostEvent>, ex: &Exchange, origin: Instant) {
    loop {
        match events.try_recv() {
            Ok(event) => println!(
                "   {}",
                describe_event(ex, origin, &event).replacen('[', "[+", 1)
            ),
            Err(TryRecvError::Lagged(n)) => println!("   ({n} health events missed)"),
            Err(TryRecvError::Empty | TryRecvError::Closed) => return,
        }
    }
}

/// Waits until the monitor of every pool of `pools` has seen its own check of `host`
/// fail since `origin`; returns how long after `origin` the last of them was seen.
async fn wait_for_check_failure(
    ex: &Exchange,
    pools: &[usize],
    host: &str,
    origin: Instant,
    deadline: Instant,
) -> Option<Duration> {
    let id = ex.pools[0]
        .table
        .snapshot()
        .hosts()
        .iter()
        .find(|h| h.name() == host)?
        .id();
    let mut pending: Vec<usize> = pools.to_vec();
    let mut last = None;
    loop {
        pending.retain(|&p| {
            let pool = &ex.pools[p];
            let Some(stats) = pool.monitor.host_stats(id) else {
                return true;
            };
            if stats.consecutive_failures == 0 {
                return true;
            }
            let at = Instant::now() - origin;
            let why = stats
                .last_error
                .map_or(String::new(), |e| format!(" ({e})"));
            println!(
                "   [+{:7.3} s] {host} in <{}>: the health check fails{why}",
                at.as_secs_f64(),
                pool.table.name()
            );
            last = Some(at);
            false
        });
        if pending.is_empty() || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    pending.is_empty().then_some(last).flatten()
}

/// Failed connects and failed sessions, over all relays.
pub fn relay_totals(ex: &Exchange) -> (u64, u64) {
    ex.relays.iter().fold((0, 0), |(c, f), r| {
        let s = r.handle.stats();
        (c + s.connect_failures, f + s.failed)
    })
}
