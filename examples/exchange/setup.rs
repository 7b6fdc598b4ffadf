//! The balancer itself: the tables of the Exchange servers, their health monitors and
//! balancers, and the eight relays of the seed.
//!
//! `--affinity service` (the default) gives each relay its own table, as relayd does
//! for `forward to <exchange> port P` (relayctl shows them as `exchange:443`,
//! `exchange:110`, ...): the same hosts, checked on that relay's port only.
//! `--affinity server` gives all eight relays one table `exchange` whose check needs
//! every service ([`AllOf`]) and one shared balancer.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use lb::core::{Health, Host, HostTable, Select};
use lb::health::{HostEvent, Monitor, MonitorBuilder};
use lb::relay::{BackendPort, Relay, RelayHandle};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::cli::{Affinity, Options};
use crate::health::{self, AllOf, Schedule};
use crate::services::{Service, SERVICES};

/// Where one relay listens and which port it connects to on a server.
#[derive(Clone, Copy, Debug)]
pub struct Port {
    /// The seed's relay.
    pub service: Service,
    /// The listen port (0: any free port).
    pub listen: u16,
    /// The port of the service on every server.
    pub backend: u16,
}

/// The ports of the eight relays: demo servers listen on the relays' (moved) ports,
/// real servers on the seed's.
pub fn ports(options: &Options, demo: bool) -> Vec<Port> {
    SERVICES
        .iter()
        .map(|s| {
            let listen = s.listen_port(options.real_ports);
            Port {
                service: *s,
                listen,
                backend: if demo { listen } else { s.seed_port },
            }
        })
        .collect()
}

/// One table of the servers with its health monitor and its balancer.
pub struct Pool {
    /// The table.
    pub table: Arc<HostTable<Host>>,
    /// Its health monitor.
    pub monitor: Arc<Monitor<Host>>,
    /// The balancer its relays use.
    pub balancer: Arc<dyn Select<Host>>,
}

/// One relay of the seed, running.
pub struct Relayed {
    /// The seed's relay.
    pub service: Service,
    /// The port the relay connects to on a host.
    pub backend_port: u16,
    /// The running relay (shared: lb-config's relays are `Arc`s).
    pub handle: Arc<RelayHandle>,
    /// Index of its pool in [`Exchange::pools`].
    pub pool: usize,
}

/// The running balancer.
pub struct Exchange {
    /// The tables: one per relay, or one for all (`--affinity server`).
    pub pools: Vec<Pool>,
    /// The relays, in the seed's order.
    pub relays: Vec<Relayed>,
    /// What a failed check takes out of service.
    pub affinity: Affinity,
    /// How often the monitors check.
    pub schedule: Schedule,
    /// When the program started, for time stamps.
    pub started: Instant,
    /// The tasks that merge the monitors' event streams into one.
    forwarders: Vec<JoinHandle<()>>,
}

/// Why the balancer could not start.
pub type SetupError = Box<dyn std::error::Error>;

impl Exchange {
    /// Builds the tables over `hosts`, starts their monitors (checking on
    /// `schedule`), and starts the relays on `ports`. Returns the balancer and one
    /// receiver of every health change of every table since the start.
    pub async fn start(
        options: &Options,
        hosts: Vec<Host>,
        ports: &[Port],
        schedule: Schedule,
        started: Instant,
    ) -> Result<(Self, broadcast::Receiver<HostEvent>), SetupError> {
        let (merged, events) = broadcast::channel(1024);
        let mut pools = Vec::new();
        let mut forwarders = Vec::new();
        let mut add_pool = |table: Arc<HostTable<Host>>,
                            monitor: MonitorBuilder<Host>|
         -> Result<usize, SetupError> {
            let monitor = monitor
                .interval(schedule.interval)
                .retry(schedule.retry)
                .timeout(health::TIMEOUT);
            forwarders.push(tokio::spawn(forward(monitor.subscribe(), merged.clone())));
            pools.push(Pool {
                balancer: options.mode.balancer(&table)?,
                monitor: Arc::new(monitor.start()?),
                table,
            });
            Ok(pools.len() - 1)
        };
        let pool_of_relay: Vec<usize> = match options.affinity {
            Affinity::Server => {
                let table = HostTable::new("exchange", hosts)?;
                let parts: Vec<(Service, u16)> =
                    ports.iter().map(|p| (p.service, p.backend)).collect();
                let check = AllOf::new(options.check, &parts)?;
                let pool = add_pool(table.clone(), Monitor::builder(table).check(check))?;
                vec![pool; ports.len()]
            }
            Affinity::Service => ports
                .iter()
                .map(|p| {
                    // Same host names in every table: the same ids, so the same hash
                    // mapping on every relay.
                    let name = format!("exchange:{}", p.service.seed_port);
                    let table = HostTable::new(name, hosts.clone())?;
                    let check = health::check_for(options.check, p.service.protocol)?;
                    let monitor = Monitor::builder(table.clone()).check(check).port(p.backend);
                    add_pool(table, monitor)
                })
                .collect::<Result<_, SetupError>>()?,
        };
        let mut relays = Vec::with_capacity(ports.len());
        for (port, pool) in ports.iter().zip(pool_of_relay) {
            let backend = if port.backend == port.listen {
                BackendPort::Listen
            } else {
                BackendPort::Fixed(port.backend)
            };
            let balancer = pools[pool].balancer.clone();
            let make = || {
                Relay::builder(port.service.relay)
                    .listen(options.listen)
                    .port(port.listen)
                    .forward_to_balancer(balancer.clone())
                    .backend_port(backend)
                    .build()
            };
            let handle = crate::bind::start_relay(make, port.listen).await?;
            relays.push(Relayed {
                service: port.service,
                backend_port: port.backend,
                handle: Arc::new(handle),
                pool,
            });
        }
        let exchange = Exchange::assemble(
            pools,
            relays,
            options.affinity,
            schedule,
            started,
            forwarders,
        );
        Ok((exchange, events))
    }

    /// The balancer from its parts, however they were built (here, or from a file by
    /// `from_file.rs`); `forwarders` copy the monitors' events into one stream.
    pub fn assemble(
        pools: Vec<Pool>,
        relays: Vec<Relayed>,
        affinity: Affinity,
        schedule: Schedule,
        started: Instant,
        forwarders: Vec<JoinHandle<()>>,
    ) -> Self {
        Exchange {
            pools,
            relays,
            affinity,
            schedule,
            started,
            forwarders,
        }
    }

    /// The pool a relay forwards to.
    pub fn pool_of(&self, relay: &Relayed) -> &Pool {
        &self.pools[relay.pool]
    }

    /// The monitor of the table called `table`.
    pub fn monitor_of(&self, table: &str) -> Option<&Arc<Monitor<Host>>> {
        self.pools
            .iter()
            .find(|p| p.table.name() == table)
            .map(|p| &p.monitor)
    }

    /// The indices of the pools that the relays selected by `which` use, each once.
    pub fn pools_where(&self, which: impl Fn(Service) -> bool) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        for r in self.relays.iter().filter(|r| which(r.service)) {
            if !out.contains(&r.pool) {
                out.push(r.pool);
            }
        }
        out
    }

    /// `host`'s health in pool `pool`.
    pub fn health(&self, pool: usize, host: &str) -> Option<Health> {
        let snapshot = self.pools[pool].table.snapshot();
        (0..snapshot.len())
            .find(|&i| snapshot.host(i).name() == host)
            .map(|i| snapshot.health(i))
    }

    /// Waits until the first round of checks has decided every host of every table
    /// (or `limit`).
    pub async fn first_round(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let decided = self.pools.iter().all(|p| {
                let snapshot = p.table.snapshot();
                (0..snapshot.len()).all(|i| snapshot.health(i) != Health::Unknown)
            });
            if decided {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits (at most `limit`) until no relay has a session left: a session ends a
    /// moment after its client, once the server has closed its side too.
    pub async fn settle(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline && self.relays.iter().any(|r| r.handle.stats().active > 0) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Where the demo clients reach the relay of `relay`: its listen address, or the
    /// loopback address when it listens on all addresses.
    pub fn target(&self, relay: &Relayed) -> SocketAddr {
        let addr = relay.handle.local_addrs()[0];
        match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => {
                SocketAddr::new([127, 0, 0, 1].into(), addr.port())
            }
            IpAddr::V6(ip) if ip.is_unspecified() => {
                SocketAddr::new(std::net::Ipv6Addr::LOCALHOST.into(), addr.port())
            }
            _ => addr,
        }
    }

    /// Stops the relays gracefully, then the monitors.
    pub async fn shutdown(self) {
        for r in &self.relays {
            r.handle.shutdown(Duration::from_secs(5)).await;
        }
        for task in &self.forwarders {
            task.abort();
        }
        drop(self.pools);
    }
}

/// Copies one monitor's events into the merged stream, until the monitor is gone.
pub async fn forward(mut from: broadcast::Receiver<HostEvent>, to: broadcast::Sender<HostEvent>) {
    loop {
        match from.recv().await {
            // No receiver left is not an error: nobody listens at the moment.
            Ok(event) => drop(to.send(event)),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "health events missed by the merged stream");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
