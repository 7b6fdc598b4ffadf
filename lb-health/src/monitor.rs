//! [`Monitor`]: runs a table's checks on tokio and writes health into the table.
//!
//! relayd's health check engine (`hce.c`) checks every host of every table once per
//! `interval` (10 s), each check bounded by `timeout` (200 ms); `retry N` makes a host
//! go down only after N+1 consecutive failures, and one success brings it back. Hosts
//! are `unknown` until checked. We keep these rules and defaults, and add what
//! HAProxy's checks taught: `rise M` successes to come back, a faster interval while a
//! host is down or changing state (`fastinter`/`downinter`), and checks spread across
//! the interval (`spread-checks`).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use lb_core::{Backend, BackendId, Health, Host, IntoTable, ListenerId, Table};
use parking_lot::Mutex;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::event::{Demotion, HostEvent};
use crate::runner::{self, Command, Config, DemoteHook, Shared};
use crate::stats::{CheckStats, HostRecord};
use crate::{Check, Error, Tcp};

/// Monitors get distinct ids, so that each recognises its own table writes.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Runs the checks of one table and writes the results into it.
///
/// Dropping the monitor (or [`shutdown`](Monitor::shutdown)) ends every task it
/// started and removes its change listener from the table; health stays as last
/// written.
///
/// Disabled and draining hosts are checked too (relayd skips them), so that their
/// health is known the moment an operator enables them again.
///
/// ```no_run
/// use lb_core::HostTable;
/// use lb_health::{Http, Monitor};
/// use std::time::Duration;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let table = HostTable::new("exchange", ["10.0.0.11:443".parse::<std::net::SocketAddr>()?])?;
/// let builder = Monitor::builder(table)
///     .check(Http::code("/owa/healthcheck.htm", 200)?)
///     .port(80)
///     .retry(2);
/// let mut events = builder.subscribe();
/// let monitor = builder.start()?;
/// while let Ok(e) = events.recv().await {
///     println!("{}: {} -> {} ({})", e.host, e.old, e.new, e.reason);
/// }
/// # drop(monitor); Ok(()) }
/// ```
pub struct Monitor<B: Backend = Host> {
    shared: Arc<Shared<B>>,
    supervisor: Option<JoinHandle<()>>,
    /// The table listener that feeds [`Shared::observe`]; removed on drop.
    listener: ListenerId,
}

/// Builds a [`Monitor`]. Defaults:
/// - check: [`Tcp`] (relayd's `check tcp`);
/// - `interval` 10 s, `timeout` 200 ms for the whole check (relayd's defaults);
/// - `retry` 0: down at the first failure; `rise` 1: up at the first success;
/// - no fast interval;
/// - the host's own port (no override);
/// - checks spread across the interval after the first round, which runs at start;
/// - hosts set [`Health::Unknown`] at start until their first check
///   ([`keep_initial_health`](MonitorBuilder::keep_initial_health) keeps the table's);
/// - an event stream of 256 events.
pub struct MonitorBuilder<B: Backend = Host> {
    table: Arc<dyn Table<B>>,
    check: Arc<dyn Check>,
    config: Config,
    keep_initial_health: bool,
    events: broadcast::Sender<HostEvent>,
    on_demote: Option<DemoteHook>,
}

impl<B: Backend> Monitor<B> {
    /// Starts building a monitor of `table`.
    pub fn builder(table: impl IntoTable<B>) -> MonitorBuilder<B> {
        let table = table.into_table();
        MonitorBuilder {
            table,
            check: Arc::new(Tcp),
            config: Config {
                interval: Duration::from_secs(10),
                timeout: Duration::from_millis(200),
                fast_interval: None,
                retry: 0,
                rise: 1,
                port: None,
                spread: true,
            },
            keep_initial_health: false,
            events: broadcast::channel(256).0,
            on_demote: None,
        }
    }

    /// A new receiver of host state changes (from now on; use
    /// [`MonitorBuilder::subscribe`] to see the first round).
    pub fn subscribe(&self) -> broadcast::Receiver<HostEvent> {
        self.shared.events.subscribe()
    }

    /// Every host's check statistics, in configuration order.
    pub fn stats(&self) -> Vec<CheckStats> {
        let snap = self.shared.table.snapshot();
        let hosts = self.shared.hosts.lock();
        (0..snap.len())
            .map(|i| {
                let id = snap.id(i);
                let rec = hosts.get(&id).cloned().unwrap_or_default();
                rec.stats(
                    id,
                    snap.host(i).name(),
                    (snap.health(i), snap.is_ejected(i)),
                )
            })
            .collect()
    }

    /// One host's check statistics, if it is in the table.
    pub fn host_stats(&self, id: BackendId) -> Option<CheckStats> {
        let snap = self.shared.table.snapshot();
        let i = snap.index_of(id)?;
        let rec = self
            .shared
            .hosts
            .lock()
            .get(&id)
            .cloned()
            .unwrap_or_default();
        Some(rec.stats(
            id,
            snap.host(i).name(),
            (snap.health(i), snap.is_ejected(i)),
        ))
    }

    /// Whether the table is demoted: no usable host (see [`Demotion`]).
    pub fn is_demoted(&self) -> bool {
        *self.shared.demoted.lock()
    }

    /// The monitored table.
    pub fn table(&self) -> &Arc<dyn Table<B>> {
        &self.shared.table
    }

    /// Stops every check and waits until all tasks have ended.
    pub async fn shutdown(mut self) {
        let _ = self.shared.commands.send(Command::Shutdown);
        if let Some(supervisor) = self.supervisor.take() {
            let _ = supervisor.await;
        }
    }
}

impl<B: Backend> Drop for Monitor<B> {
    fn drop(&mut self) {
        // Aborting the supervisor drops its JoinSet, which aborts every host task.
        if let Some(supervisor) = &self.supervisor {
            supervisor.abort();
        }
        self.shared.table.remove_listener(self.listener);
    }
}

impl<B: Backend> fmt::Debug for Monitor<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Monitor")
            .field("table", &self.shared.table.name())
            .field("check", &self.shared.check.name())
            .field("config", &self.shared.config)
            .finish()
    }
}

impl<B: Backend> MonitorBuilder<B> {
    /// The check to run (default [`Tcp`]).
    pub fn check(mut self, check: impl Check) -> Self {
        self.check = Arc::new(check);
        self
    }

    /// The time between two checks of a host (default 10 s).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.config.interval = interval;
        self
    }

    /// The time a whole check may take: connect, send and read (default 200 ms). Must
    /// be shorter than the interval, as relayd requires.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = timeout;
        self
    }

    /// relayd's `retry N`: a host goes down after N+1 consecutive failures (default 0).
    pub fn retry(mut self, retry: u32) -> Self {
        self.config.retry = retry;
        self
    }

    /// HAProxy's `rise M`: a host comes up after M consecutive successes (default 1, as
    /// relayd). At least 1.
    pub fn rise(mut self, rise: u32) -> Self {
        self.config.rise = rise;
        self
    }

    /// The interval while a host is not up, or up but failing (HAProxy's
    /// `fastinter`/`downinter`): a dead host is retried, and a failing one confirmed,
    /// sooner. Default: none, the normal interval. Must be longer than the timeout.
    pub fn fast_interval(mut self, interval: Duration) -> Self {
        self.config.fast_interval = Some(interval);
        self
    }

    /// Checks this port instead of each host's own (relayd checks the port of the
    /// relay's `forward to`, e.g. 443 for hosts listed without a port).
    pub fn port(mut self, port: u16) -> Self {
        self.config.port = Some(port);
        self
    }

    /// Whether to spread checks across the interval (default `true`). The first round
    /// runs at start either way.
    pub fn spread(mut self, spread: bool) -> Self {
        self.config.spread = spread;
        self
    }

    /// Keep the health the table's hosts have at start (lb-core tables start hosts up)
    /// instead of setting them [`Health::Unknown`] until their first check (default
    /// `false`, relayd's behaviour). Keeping it lets traffic flow while the first round
    /// runs; `retry` then applies to the first failures as to any others.
    pub fn keep_initial_health(mut self, keep: bool) -> Self {
        self.keep_initial_health = keep;
        self
    }

    /// The number of events the stream holds for a slow receiver (default 256); a
    /// receiver that falls further behind gets `RecvError::Lagged`.
    pub fn event_capacity(mut self, events: usize) -> Self {
        self.events = broadcast::channel(events.max(1)).0;
        self
    }

    /// Calls `hook` with the table's name when the table has no usable host left and
    /// when it recovers (relayd's `demote`). Called on the monitor's task, in order;
    /// it should return quickly.
    pub fn on_demote(mut self, hook: impl Fn(&str, Demotion) + Send + Sync + 'static) -> Self {
        self.on_demote = Some(Arc::new(hook));
        self
    }

    /// A receiver of host state changes that sees everything from the start, the
    /// first round included. Subscribe before [`start`](MonitorBuilder::start).
    pub fn subscribe(&self) -> broadcast::Receiver<HostEvent> {
        self.events.subscribe()
    }

    /// Starts the monitor on the current tokio runtime; the first round of checks
    /// starts at once.
    ///
    /// Fails outside a runtime, on a timeout not shorter than the interval (or the
    /// fast interval), on `rise` 0, and when a host has no address.
    pub fn start(self) -> Result<Monitor<B>, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let c = &self.config;
        let invalid = |setting, expected: &str| Error::InvalidSetting {
            setting,
            expected: expected.to_owned(),
        };
        if c.interval.is_zero() {
            return Err(invalid("interval", "a duration greater than zero"));
        }
        if c.timeout.is_zero() || c.timeout >= c.interval {
            return Err(invalid(
                "timeout",
                "greater than zero and shorter than the interval",
            ));
        }
        if c.fast_interval.is_some_and(|f| f <= c.timeout) {
            return Err(invalid("fast interval", "longer than the timeout"));
        }
        if c.rise == 0 {
            return Err(invalid("rise", "at least 1 success"));
        }
        let snap = self.table.snapshot();
        if let Some(host) = snap.hosts().iter().find(|h| h.backend().addr().is_none()) {
            return Err(Error::NoAddress {
                table: self.table.name().to_owned(),
                host: host.name().to_owned(),
            });
        }
        let (commands, receiver) = mpsc::unbounded_channel();
        let hosts: HashMap<BackendId, HostRecord> = snap
            .hosts()
            .iter()
            .map(|h| (h.id(), HostRecord::pending()))
            .collect();
        let shared = Arc::new(Shared {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            table: self.table,
            check: self.check,
            config: self.config,
            hosts: Mutex::new(hosts),
            events: self.events,
            commands,
            demoted: Mutex::new(false),
        });
        let weak: Weak<Shared<B>> = Arc::downgrade(&shared);
        let listener = shared.table.on_change(move |event| {
            if let Some(shared) = weak.upgrade() {
                shared.observe(event);
            }
        });
        if !self.keep_initial_health {
            for h in snap.hosts() {
                shared.write(h.id(), Health::Unknown, "not checked yet".into());
            }
        }
        if snap.is_empty() {
            // No host to wait for: an empty table is demoted at once, as one whose hosts
            // all failed, and restored when a host added later passes its check.
            shared.evaluate_demotion();
        }
        let supervisor = runtime.spawn(runner::supervise(shared.clone(), receiver, self.on_demote));
        tracing::info!(
            table = %shared.table.name(), check = shared.check.name(), hosts = snap.len(),
            interval_ms = shared.config.interval.as_millis() as u64,
            timeout_ms = shared.config.timeout.as_millis() as u64, "monitor started"
        );
        Ok(Monitor {
            shared,
            supervisor: Some(supervisor),
            listener,
        })
    }
}
