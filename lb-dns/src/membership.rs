//! [`Membership`]: a table's hosts kept in sync with DNS by a tokio task, and its
//! [`MembershipBuilder`].

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lb_core::{Health, IntoTable};
use tokio::sync::{broadcast, oneshot, watch};
use tokio::task::JoinHandle;

use crate::sync::{run, Settings};
use crate::{DnsBackend, DnsEvent, Error, Member, Resolver, Source};

/// What the task shares with its handle.
pub(crate) struct Shared {
    pub(crate) events: broadcast::Sender<DnsEvent>,
    pub(crate) members: Mutex<Vec<Member>>,
    /// Turns true after the first round; the task owns the sender, so that a task that
    /// ended (stopped, or panicked) releases every waiter.
    pub(crate) ready: watch::Receiver<bool>,
}

/// A running membership: a tokio task that resolves its [`Source`]s, re-resolves each
/// when its TTL ends, and adds and removes the table's hosts to follow.
///
/// - Ids are stable: a host's id derives from its address, so a lookup that returns the
///   same addresses changes nothing, and with a consistent-hash policy only the
///   clients of added or removed addresses move.
/// - A failed lookup keeps the source's last good hosts; the table is never emptied by
///   DNS. Failures are [`DnsEvent::LookupFailed`] events and `warn` logs.
/// - Hosts are added with the builder's initial health and enabled; the membership
///   removes only hosts it added, and leaves alone an address that was already in the
///   table.
/// - Table writes (which rebuild the balancers' plans) run on tokio's blocking pool.
///
/// Dropping the handle stops the task; [`shutdown`](Membership::shutdown) stops it
/// and waits for it. Hosts stay in the table either way.
pub struct Membership {
    shared: Arc<Shared>,
    table: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Membership {
    /// A builder for a membership that asks `resolver`.
    pub fn builder(resolver: Resolver) -> MembershipBuilder {
        let (events, _) = broadcast::channel(DEFAULT_EVENTS);
        MembershipBuilder {
            resolver,
            sources: Vec::new(),
            min_ttl: DEFAULT_MIN_TTL,
            max_ttl: DEFAULT_MAX_TTL,
            initial_health: Health::Up,
            events,
        }
    }

    /// Events from now on (see [`DnsEvent`]). To see those of the first lookups,
    /// subscribe on the builder.
    pub fn subscribe(&self) -> broadcast::Receiver<DnsEvent> {
        self.shared.events.subscribe()
    }

    /// Waits until every source has been looked up once (successfully or not) and the
    /// table follows the answers. Returns at once after that, or if the task ended.
    pub async fn ready(&self) {
        let mut ready = self.shared.ready.clone();
        // An error means the task ended: nothing more to wait for.
        let _ = ready.wait_for(|r| *r).await;
    }

    /// The hosts DNS gives now: the union of every source's last good answer, sorted by
    /// address, each address once (with its largest weight).
    pub fn members(&self) -> Vec<Member> {
        self.shared
            .members
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The name of the table kept in sync.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Stops the task and waits until it has ended. A table write in progress is
    /// finished first; the table keeps its hosts.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl fmt::Debug for Membership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Membership")
            .field("table", &self.table)
            .field("members", &self.members())
            .finish()
    }
}

/// The default minimum TTL: an answer with a smaller TTL (0 included) is asked again
/// after 1 s, not at once.
pub const DEFAULT_MIN_TTL: Duration = Duration::from_secs(1);
/// The default maximum TTL: an answer is asked again after at most 300 s, whatever its
/// TTL, so that a change is seen within 5 minutes.
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(300);
const DEFAULT_EVENTS: usize = 64;

/// Builds a [`Membership`].
///
/// Defaults:
/// - no sources (at least one is required);
/// - minimum TTL [`DEFAULT_MIN_TTL`] (1 s), maximum TTL [`DEFAULT_MAX_TTL`] (300 s);
/// - hosts added [`Health::Up`] (a health monitor on the table marks them as it
///   checks them);
/// - room for 64 events per subscriber.
pub struct MembershipBuilder {
    resolver: Resolver,
    sources: Vec<Source>,
    min_ttl: Duration,
    max_ttl: Duration,
    initial_health: Health,
    events: broadcast::Sender<DnsEvent>,
}

impl MembershipBuilder {
    /// Adds a source.
    pub fn source(mut self, source: Source) -> Self {
        self.sources.push(source);
        self
    }

    /// Adds the A and AAAA addresses of `name`, each with `port`.
    pub fn ip(self, name: impl Into<String>, port: u16) -> Self {
        self.source(Source::ip(name, port))
    }

    /// Adds the targets of the SRV name `name` (lowest priority value only; see
    /// [`Source`]).
    pub fn srv(self, name: impl Into<String>) -> Self {
        self.source(Source::srv(name))
    }

    /// The smallest time between two lookups of a source (default 1 s; more than 0).
    pub fn min_ttl(mut self, ttl: Duration) -> Self {
        self.min_ttl = ttl;
        self
    }

    /// The largest time between two lookups of a source (default 300 s; at least the
    /// minimum).
    pub fn max_ttl(mut self, ttl: Duration) -> Self {
        self.max_ttl = ttl;
        self
    }

    /// The health of hosts the membership adds (default [`Health::Up`]).
    pub fn initial_health(mut self, health: Health) -> Self {
        self.initial_health = health;
        self
    }

    /// How many events a subscriber may fall behind before missing some (default 64;
    /// at least 1).
    pub fn event_capacity(mut self, events: usize) -> Self {
        let (sender, _) = broadcast::channel(events.max(1));
        self.events = sender;
        self
    }

    /// Events from the start, including those of the first lookups. (Call after
    /// [`event_capacity`](MembershipBuilder::event_capacity), which starts a new
    /// channel.)
    pub fn subscribe(&self) -> broadcast::Receiver<DnsEvent> {
        self.events.subscribe()
    }

    /// Starts the task that keeps `table` in sync; the first lookups start at once
    /// (wait for them with [`Membership::ready`]).
    ///
    /// Fails outside a tokio runtime, without sources, on an invalid name, and on a
    /// minimum TTL of 0 or above the maximum.
    pub fn start<B: DnsBackend>(self, table: impl IntoTable<B>) -> Result<Membership, Error> {
        let table = table.into_table();
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        if self.sources.is_empty() {
            return Err(Error::NoSources);
        }
        if self.min_ttl.is_zero() || self.min_ttl > self.max_ttl {
            return Err(Error::InvalidSetting {
                setting: "min_ttl",
                expected: format!(
                    "a duration greater than zero and not above the maximum TTL ({:?})",
                    self.max_ttl
                ),
            });
        }
        for source in &self.sources {
            let name = source.name();
            if name.parse::<std::net::IpAddr>().is_err() {
                hickory_resolver::proto::rr::Name::from_utf8(name).map_err(|e| {
                    Error::InvalidName {
                        name: name.to_owned(),
                        reason: e.to_string(),
                    }
                })?;
            }
        }
        let (first_round, ready) = watch::channel(false);
        let shared = Arc::new(Shared {
            events: self.events,
            members: Mutex::new(Vec::new()),
            ready,
        });
        let (stop, stopped) = oneshot::channel();
        let name = table.name().to_owned();
        let settings = Settings {
            min_ttl: self.min_ttl,
            max_ttl: self.max_ttl,
            initial_health: self.initial_health,
        };
        let task = runtime.spawn(run(
            table,
            self.resolver,
            self.sources,
            settings,
            shared.clone(),
            first_round,
            stopped,
        ));
        Ok(Membership {
            shared,
            table: name,
            stop: Some(stop),
            task: Some(task),
        })
    }
}

impl fmt::Debug for MembershipBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MembershipBuilder")
            .field("resolver", &self.resolver)
            .field("sources", &self.sources)
            .field("min_ttl", &self.min_ttl)
            .field("max_ttl", &self.max_ttl)
            .field("initial_health", &self.initial_health)
            .finish()
    }
}
