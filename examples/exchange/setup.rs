//! The balancer itself: table `<exchange>`, its health monitor, one shared balancer
//! and the eight relays of the seed, and the listen map printed at start.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use lb::core::{Health, Host, Select, Table};
use lb::health::{EventKind, HostEvent, Monitor};
use lb::relay::{BackendPort, BuildError, Relay, RelayHandle, StartError};
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::cli::{CheckKind, Options};
use crate::health::{self, AllOf};
use crate::report::{since, Table as Columns};
use crate::services::{Service, SERVICES};

/// One relay of the seed, running.
pub struct Relayed {
    /// The seed's relay.
    pub service: Service,
    /// The port the relay connects to on a host.
    pub backend_port: u16,
    /// The running relay.
    pub handle: RelayHandle,
}

/// The running balancer.
pub struct Exchange {
    /// Table `<exchange>`.
    pub table: Arc<Table<Host>>,
    /// The balancer every relay shares.
    pub balancer: Arc<dyn Select<Host>>,
    /// The health monitor of the table.
    pub monitor: Arc<Monitor<Host>>,
    /// The relays, in the seed's order.
    pub relays: Vec<Relayed>,
    /// The check interval.
    pub interval: Duration,
    /// When the program started, for time stamps.
    pub started: Instant,
}

/// Why the balancer could not start.
pub type SetupError = Box<dyn std::error::Error>;

impl Exchange {
    /// Builds the table over `hosts`, starts its monitor, and starts the relays.
    /// Returns the balancer and a receiver of every health change since the start.
    pub async fn start(
        options: &Options,
        hosts: Vec<Host>,
        demo: bool,
        started: Instant,
    ) -> Result<(Self, broadcast::Receiver<HostEvent>), SetupError> {
        let table = Table::new("exchange", hosts)?;
        // Demo servers listen on the relays' (moved) ports; real servers on the seed's.
        let ports: Vec<(Service, u16)> = SERVICES
            .iter()
            .map(|s| {
                let backend = if demo {
                    s.listen_port(options.real_ports)
                } else {
                    s.seed_port
                };
                (*s, backend)
            })
            .collect();
        let interval = if demo {
            health::DEMO_INTERVAL
        } else {
            health::REAL_INTERVAL
        };
        let builder = Monitor::builder(table.clone())
            .check(AllOf::new(options.check, &ports)?)
            .interval(interval)
            .timeout(health::TIMEOUT);
        let events = builder.subscribe();
        let monitor = Arc::new(builder.start()?);
        let balancer = options.mode.balancer(&table)?;
        let mut relays = Vec::with_capacity(ports.len());
        for (service, backend_port) in ports {
            let port = service.listen_port(options.real_ports);
            let backend = if backend_port == port {
                BackendPort::Listen
            } else {
                BackendPort::Fixed(backend_port)
            };
            let make = || {
                Relay::builder(service.relay)
                    .listen(options.listen)
                    .port(port)
                    .forward_to_balancer(balancer.clone())
                    .backend_port(backend)
                    .build()
            };
            let handle = start_relay(make, port).await?;
            relays.push(Relayed {
                service,
                backend_port,
                handle,
            });
        }
        let exchange = Exchange {
            table,
            balancer,
            monitor,
            relays,
            interval,
            started,
        };
        Ok((exchange, events))
    }

    /// Waits until the first round of checks has decided every host (or `limit`).
    pub async fn first_round(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let snapshot = self.table.snapshot();
            if (0..snapshot.len()).all(|i| snapshot.health(i) != Health::Unknown) {
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

    /// Prints the listen map: every relay, where it listens and what it checks.
    pub fn print_listen_map(&self, options: &Options) {
        println!(
            "Relays: listen on {}, forward to <exchange>, mode {} (one balancer shared by all eight)",
            options.listen, options.mode
        );
        let mut t = Columns::new([
            "relay",
            "seed port",
            "listen",
            "backend port",
            "health check of the service",
        ]);
        for r in &self.relays {
            t.row([
                r.service.relay.to_owned(),
                r.service.seed_port.to_string(),
                r.handle.local_addrs()[0].to_string(),
                r.backend_port.to_string(),
                health::describe(options.check, r.service.protocol),
            ]);
        }
        t.print("  ");
        if !options.real_ports {
            println!("  (ports below 1024 moved up by 10000 so that no privilege is needed; --real-ports keeps them)");
        }
        println!();
    }

    /// Prints every host's health now, with the monitor's last error for hosts that
    /// are not up.
    pub fn print_hosts(&self) {
        let snapshot = self.table.snapshot();
        let mut t = Columns::new(["host", "address", "health", "checks", "why"]);
        for i in 0..snapshot.len() {
            let host = snapshot.host(i);
            let stats = self.monitor.host_stats(host.id());
            let health = snapshot.health(i);
            let why = match (health, stats.as_ref().and_then(|s| s.last_error.as_ref())) {
                (Health::Up, _) => "every service answers".to_owned(),
                (_, Some(error)) => error.to_string(),
                (Health::Unknown, None) => "not checked yet".to_owned(),
                (_, None) => String::new(),
            };
            t.row([
                host.name().to_owned(),
                host.backend().address().ip().to_string(),
                health.to_string(),
                stats.map_or(0, |s| s.checks).to_string(),
                why,
            ]);
        }
        t.print("  ");
    }

    /// Stops the relays gracefully, then the monitor.
    pub async fn shutdown(self) {
        for r in &self.relays {
            r.handle.shutdown(Duration::from_secs(5)).await;
        }
        drop(self.monitor);
    }
}

/// How long a relay waits for a port held by closing connections: Linux keeps a
/// connection in TIME_WAIT for 60 s.
const TIME_WAIT_LIMIT: Duration = Duration::from_secs(65);

/// Starts a relay. 59532 and 59533 lie in Linux's ephemeral port range, so an outgoing
/// connection of any program may have used 127.0.0.1:59532 and left it in TIME_WAIT,
/// which blocks the bind for up to a minute; when nothing listens there, wait for it.
async fn start_relay(
    make: impl Fn() -> Result<Relay, BuildError>,
    port: u16,
) -> Result<RelayHandle, SetupError> {
    let deadline = Instant::now() + TIME_WAIT_LIMIT;
    let mut told = false;
    loop {
        let error = match make()?.start() {
            Ok(handle) => return Ok(handle),
            Err(error) => error,
        };
        let busy = match &error {
            StartError::Bind { addr, source, .. }
                if source.kind() == std::io::ErrorKind::AddrInUse =>
            {
                Some(*addr)
            }
            _ => None,
        };
        match busy {
            Some(addr) if Instant::now() < deadline && !listening(addr).await => {
                if !told {
                    println!(
                        "  {addr} is busy but nothing listens there: a closed connection that used it \
                         (TIME_WAIT) holds it; the kernel frees it within 60 s. Waiting..."
                    );
                    told = true;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            _ => return Err(start_error(error, port)),
        }
    }
}

/// Whether something accepts connections at `addr`.
async fn listening(addr: SocketAddr) -> bool {
    let addr = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => {
            SocketAddr::new([127, 0, 0, 1].into(), addr.port())
        }
        ip if ip.is_unspecified() => {
            SocketAddr::new(std::net::Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    };
    // Through the demo's client socket (SO_REUSEADDR): this probe closes first, and its
    // TIME_WAIT must not block a later bind of its port.
    let any: IpAddr = if addr.is_ipv4() {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    };
    let connect = crate::clients::connect_from(any, addr);
    matches!(
        tokio::time::timeout(Duration::from_millis(500), connect).await,
        Ok(Ok(_))
    )
}

fn start_error(error: StartError, port: u16) -> SetupError {
    match &error {
        StartError::Bind {
            relay,
            addr,
            source,
            ..
        } => format!(
            "relay `{relay}` cannot listen on {addr}: {}",
            crate::demo_servers::bind_hint(source, port)
        )
        .into(),
        _ => error.into(),
    }
}

/// The health settings, and why they are what they are.
pub fn check_summary(kind: CheckKind, interval: Duration, demo: bool) -> String {
    let what = match kind {
        CheckKind::Protocol => {
            "Checks are protocol-aware where that tells more than the seed's `check tcp` \
             (listed above): https proves that TLS and OWA answer, the banners that the mail \
             service itself runs; --check tcp restores `check tcp`."
        }
        CheckKind::Tcp => "Checks are the seed's `check tcp` on every port (--check tcp).",
    };
    let why = if demo {
        "relayd's default is 10 s; 1 s keeps the demonstration short"
    } else {
        "relayd's default"
    };
    format!(
        "A server is up when all eight of its services answer: one check of checks, so a \
         server that lost any service leaves every relay and a client's OWA, mail and RPC \
         sessions stay on one server. {what} Interval {} s ({why}), timeout {} ms for all \
         eight (relayd's is 200 ms per check; the margin is for a busy machine running an \
         unoptimised build).",
        interval.as_secs(),
        health::TIMEOUT.as_millis()
    )
}

/// One line for a health change: when (from `origin`), what, why and who decided.
pub fn describe_event(monitor: &Monitor<Host>, origin: Instant, event: &HostEvent) -> String {
    let mut why = event.reason.to_string();
    if event.kind == EventKind::Health
        && event.new != Health::Up
        && event.source == lb::health::Source::Check
    {
        if let Some(detail) = monitor
            .host_stats(event.id)
            .and_then(|s| s.last_error)
            .and_then(|f| f.detail().map(str::to_owned))
        {
            why = format!("{why}: {detail}");
        }
    }
    let by = match event.source {
        lb::health::Source::Check => "by the health check",
        lb::health::Source::Passive => "by a relay's failed connect (passive health)",
        lb::health::Source::External => "by an operator",
    };
    let when = since(origin, event.at);
    match event.kind {
        EventKind::Health => {}
        EventKind::Ejected => return format!("[{when}] {}: ejected ({why}), {by}", event.host),
        // The reason says who: "ejection time over" or the check's success.
        EventKind::EjectionEnded => {
            return format!("[{when}] {}: ejection ended ({why})", event.host)
        }
    }
    format!(
        "[{when}] {}: {} -> {} ({why}), {by}",
        event.host, event.old, event.new
    )
}
