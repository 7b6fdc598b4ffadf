//! A check that plays a script of outcomes per host, for exact threshold tests under
//! tokio's paused clock. It never touches the network.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures_util::future::BoxFuture;
use lb_health::{Check, Outcome, Probe, Reason};
use parking_lot::Mutex;
use tokio::time::Instant;

/// One scripted result.
#[derive(Clone, Copy, Debug)]
pub enum Step {
    /// Up.
    Ok,
    /// Down with this reason.
    Fail(Reason),
    /// Unknown (a script killed at its timeout).
    Unknown,
    /// Never finishes: aborted by the monitor.
    Hang,
}

/// Plays `Step`s per address; `Ok` once a host's script is exhausted.
#[derive(Clone, Default)]
pub struct Scripted {
    plan: Arc<Mutex<HashMap<SocketAddr, VecDeque<Step>>>>,
    /// Every check started: (address, when).
    pub starts: Arc<Mutex<Vec<(SocketAddr, Instant)>>>,
    /// Checks currently running.
    pub running: Arc<AtomicUsize>,
}

impl Scripted {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends steps to `addr`'s script.
    pub fn plan(&self, addr: SocketAddr, steps: impl IntoIterator<Item = Step>) {
        self.plan.lock().entry(addr).or_default().extend(steps);
    }

    pub fn started(&self) -> usize {
        self.starts.lock().len()
    }
}

/// Decrements the running count however the check ends (finished or aborted).
struct Running(Arc<AtomicUsize>);
impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Check for Scripted {
    fn name(&self) -> &'static str {
        "scripted"
    }

    fn check<'a>(&'a self, probe: &'a Probe) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            self.running.fetch_add(1, Ordering::SeqCst);
            let _running = Running(self.running.clone());
            self.starts.lock().push((probe.addr(), Instant::now()));
            let step = self
                .plan
                .lock()
                .get_mut(&probe.addr())
                .and_then(VecDeque::pop_front)
                .unwrap_or(Step::Ok);
            match step {
                Step::Ok => Outcome::Up,
                Step::Fail(r) => Outcome::down(r),
                Step::Unknown => Outcome::Unknown(Reason::ScriptTimeout.into()),
                Step::Hang => std::future::pending().await,
            }
        })
    }
}
