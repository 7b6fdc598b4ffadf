//! [`RelayBuilder`]: relayd's `relay "name" { listen on ... forward to ... }` as a
//! builder, checked before anything binds.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use lb_core::{Balancer, Clock, Host, IntoTable, Policy, Select, SystemClock, Table};
use lb_health::Passive;
use lb_policies::round_robin::RoundRobin;
use tower_layer::{Identity, Layer, Stack};

use crate::forward::Forward;
use crate::options::defaults;
use crate::proxy::ProxyProtocol;
use crate::relay::{Relay, RelayService};
use crate::service::{SessionService, Shared};
use crate::stats::Counters;
use crate::validate;
use crate::window::Windows;
use crate::{BackendPort, BuildError, Settings, TcpOptions};

/// Binds a policy to one table.
type PolicyFactory = Arc<dyn Fn(&Arc<dyn Table<Host>>) -> Arc<dyn Select<Host>> + Send + Sync>;

/// A table to forward to: bound to the builder's policy at build time, or already bound
/// by the user.
enum ForwardSpec {
    Table(Arc<dyn Table<Host>>),
    Balancer(Arc<dyn Select<Host>>),
}

/// Builds a [`Relay`]. Start one with [`Relay::builder`].
///
/// Defaults (see `docs/relay.md` for the table):
/// - port 0 (a free port, the same on every listen address);
/// - backend port: [`BackendPort::Listen`], the port the client connected to;
/// - policy: [`RoundRobin`] (relayd's default mode), one instance per table;
/// - connect timeout 3 s, session idle timeout 600 s;
/// - failover 2 (up to 3 hosts tried per session);
/// - max sessions 10 000;
/// - passive health threshold 1 (the first failed connect ejects a host);
/// - ejection time 10 s, doubled on each consecutive ejection, at most 5 min; at most
///   50 % of a table's up and enabled hosts ejected, never the last usable one;
/// - [`TcpOptions::default`]: nodelay on, system buffer sizes, backlog 1024;
/// - no PROXY protocol header;
/// - `splice(2)` on (Linux, with the `splice` feature);
/// - the [`SystemClock`] for the sessions-per-minute/hour/day windows;
/// - no extra tower layer.
///
/// The policy is chosen for the whole relay: [`policy`](Self::policy) (a `Clone`
/// policy, cloned once per table) or [`policy_fn`](Self::policy_fn) (a constructor called
/// once per table), and it applies to every table added with
/// [`forward_to`](Self::forward_to), whatever the order of the calls. A table that needs
/// its own policy, or a balancer shared with other relays, is added already bound with
/// [`forward_to_balancer`](Self::forward_to_balancer).
#[must_use = "a builder does nothing until built"]
pub struct RelayBuilder<L = Identity> {
    name: String,
    listen: Vec<IpAddr>,
    port: u16,
    forwards: Vec<ForwardSpec>,
    policy: PolicyFactory,
    settings: Settings,
    clock: Arc<dyn Clock>,
    layer: L,
}

impl Relay {
    /// Starts building a relay called `name` (1 to 64 characters).
    pub fn builder(name: impl Into<String>) -> RelayBuilder {
        let name = name.into();
        RelayBuilder {
            name: name.clone(),
            listen: Vec::new(),
            port: 0,
            forwards: Vec::new(),
            policy: Arc::new(|table| Balancer::new(table, RoundRobin::new())),
            settings: Settings {
                name,
                listen: Vec::new(),
                backend_port: BackendPort::Listen,
                connect_timeout: defaults::CONNECT_TIMEOUT,
                idle_timeout: defaults::IDLE_TIMEOUT,
                failover: defaults::FAILOVER,
                max_sessions: defaults::MAX_SESSIONS,
                passive_threshold: defaults::PASSIVE_THRESHOLD,
                ejection_time: defaults::EJECTION_TIME,
                max_ejection_time: defaults::MAX_EJECTION_TIME,
                max_ejected_percent: defaults::MAX_EJECTED_PERCENT,
                tcp: TcpOptions::default(),
                proxy_protocol: None,
                splice: true,
            },
            clock: Arc::new(SystemClock),
            layer: Identity::new(),
        }
    }
}

impl<L> RelayBuilder<L> {
    /// Listens on `ip` (IPv4 or IPv6; call once per address). IPv6 sockets are
    /// IPv6-only, so `0.0.0.0` and `::` can both be given.
    pub fn listen(mut self, ip: IpAddr) -> Self {
        self.listen.push(ip);
        self
    }

    /// The port to listen on, on every address. 0 (the default) picks a free port on
    /// the first address and uses the same on the others.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Forwards to `table`, after the tables already given (backup tables: a session
    /// goes to the first table with a host that answers). Bound to the relay's policy
    /// when the relay is built.
    pub fn forward_to(mut self, table: impl IntoTable<Host>) -> Self {
        let table = table.into_table();
        self.forwards.push(ForwardSpec::Table(table));
        self
    }

    /// Forwards to the table of an already bound balancer (any policy, the user's own
    /// included), after the tables already given.
    pub fn forward_to_balancer(mut self, balancer: Arc<dyn Select<Host>>) -> Self {
        self.forwards.push(ForwardSpec::Balancer(balancer));
        self
    }

    /// The policy for the tables given with [`forward_to`](Self::forward_to): cloned
    /// once per table, so per-table state (a round-robin cursor) is not shared.
    pub fn policy<P: Policy + Clone>(mut self, policy: P) -> Self {
        self.policy = Arc::new(move |table| Balancer::new(table, policy.clone()));
        self
    }

    /// The policy for the tables given with [`forward_to`](Self::forward_to), built by
    /// `make` once per table: for policies that are not `Clone`.
    pub fn policy_fn<P: Policy, F>(mut self, make: F) -> Self
    where
        F: Fn() -> P + Send + Sync + 'static,
    {
        self.policy = Arc::new(move |table| Balancer::new(table, make()));
        self
    }

    /// Which port to connect to on the chosen host (default [`BackendPort::Listen`]).
    pub fn backend_port(mut self, port: BackendPort) -> Self {
        self.settings.backend_port = port;
        self
    }

    /// How long a backend connect may take before the next candidate is tried
    /// (default 3 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = timeout;
        self
    }

    /// How long a session may stay silent in both directions before it is closed
    /// (relayd's `session timeout`, default 600 s).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.settings.idle_timeout = timeout;
        self
    }

    /// How many further candidates a session tries after a failed connect (default 2).
    /// 0 disables failover.
    pub fn failover(mut self, candidates: u32) -> Self {
        self.settings.failover = candidates;
        self
    }

    /// At most `sessions` sessions at once (default 10 000). At the limit the relay
    /// stops accepting until a session ends: new clients wait in the listen queue.
    pub fn max_sessions(mut self, sessions: usize) -> Self {
        self.settings.max_sessions = sessions;
        self
    }

    /// How many consecutive failed connects eject a host (default 1).
    pub fn passive_threshold(mut self, failures: u32) -> Self {
        self.settings.passive_threshold = failures;
        self
    }

    /// How long passive health ejects a host: `base` for a first ejection (default
    /// 10 s), doubled on each consecutive one, at most `max` (default 5 min). The
    /// back-off starts again once the host has served for one `base` after its last
    /// ejection ended; a successful active check ends an ejection early. See
    /// [`lb_health::Passive`].
    pub fn ejection(mut self, base: Duration, max: Duration) -> Self {
        self.settings.ejection_time = base;
        self.settings.max_ejection_time = max;
        self
    }

    /// The largest share of a table's up and enabled hosts that passive health ejects
    /// at once, in percent (default 50; rounded down, but at least one host when two or
    /// more are usable; 0 disables ejection). The last usable host is never ejected.
    pub fn max_ejected_percent(mut self, percent: u8) -> Self {
        self.settings.max_ejected_percent = percent;
        self
    }

    /// Socket options (default [`TcpOptions::default`]).
    pub fn tcp(mut self, tcp: TcpOptions) -> Self {
        self.settings.tcp = tcp;
        self
    }

    /// Sends a PROXY protocol header to every backend before the client's bytes.
    pub fn proxy_protocol(mut self, version: ProxyProtocol) -> Self {
        self.settings.proxy_protocol = Some(version);
        self
    }

    /// Whether sessions may use `splice(2)` (default on; effective on Linux with the
    /// `splice` feature only).
    pub fn splice(mut self, enabled: bool) -> Self {
        self.settings.splice = enabled;
        self
    }

    /// The clock behind the sessions-per-minute/hour/day windows (default
    /// [`SystemClock`]; tests use a [`ManualClock`](lb_core::ManualClock)).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Wraps the per-connection service in `layer`. Layers added first are outermost,
    /// as with `tower::ServiceBuilder`.
    pub fn layer<T>(self, layer: T) -> RelayBuilder<Stack<T, L>> {
        RelayBuilder {
            name: self.name,
            listen: self.listen,
            port: self.port,
            forwards: self.forwards,
            policy: self.policy,
            settings: self.settings,
            clock: self.clock,
            layer: Stack::new(layer, self.layer),
        }
    }

    /// Checks the settings, binds the policy to each table and builds the service
    /// stack. Nothing is bound yet: see [`Relay::start`].
    ///
    /// # Errors
    ///
    /// A [`BuildError`] naming the first setting that cannot work.
    pub fn build(self) -> Result<Relay, BuildError>
    where
        L: Layer<SessionService>,
        L::Service: RelayService,
    {
        let mut settings = self.settings;
        validate::check(&self.name, &self.listen, self.forwards.len(), &settings)?;
        let relay = || self.name.clone();
        settings.listen = self
            .listen
            .iter()
            .map(|ip| SocketAddr::new(*ip, self.port))
            .collect();

        let mut forwards: Vec<Forward> = Vec::with_capacity(self.forwards.len());
        for spec in self.forwards {
            let select = match spec {
                ForwardSpec::Table(table) => (self.policy)(&table),
                ForwardSpec::Balancer(select) => select,
            };
            let table = select.table().clone();
            if forwards.iter().any(|f| f.table().name() == table.name()) {
                return Err(BuildError::DuplicateTable {
                    relay: relay(),
                    table: table.name().to_owned(),
                });
            }
            // Checked by `validate::check` above; an error here would be a missed check.
            let passive = Passive::new(table)
                .with_threshold(settings.passive_threshold)
                .and_then(|p| {
                    p.with_ejection_time(settings.ejection_time, settings.max_ejection_time)
                })
                .and_then(|p| p.with_max_ejected_percent(settings.max_ejected_percent))
                .map_err(|e| BuildError::Passive {
                    relay: relay(),
                    reason: e.to_string(),
                })?;
            forwards.push(Forward { select, passive });
        }
        let shared = Arc::new(Shared {
            counters: Counters::new(Windows::new(self.clock)),
            settings,
            forwards,
            enabled: AtomicBool::new(true),
            accepting: AtomicBool::new(false),
        });
        let service = self.layer.layer(SessionService::new(shared.clone()));
        Ok(Relay::new(shared, service))
    }
}
