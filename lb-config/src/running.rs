//! What runs: the relays, tables and monitors of a [`Plan`], and [`Running::reload`],
//! which applies only the difference to a new plan.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use lb_core::{Health, Host, Table, TableEvent};
use lb_health::Monitor;
use lb_relay::{BackendPort, Relay, RelayHandle, TcpOptions};

use crate::build::{listen_groups, make_balancer, make_monitor, make_table, Plan};
use crate::diag::Span;
use crate::model::RelayDef;

/// How long a relay removed or replaced by a reload lets its sessions run.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(600);

/// Why a relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A table could not be built.
    #[error("relay {relay}: {source}")]
    Table {
        /// The relay.
        relay: String,
        /// Why.
        source: lb_core::Error,
    },
    /// A monitor could not start.
    #[error("relay {relay}: {source}")]
    Monitor {
        /// The relay.
        relay: String,
        /// Why.
        source: lb_health::Error,
    },
    /// The relay's settings were refused.
    #[error("relay {relay}: {source}")]
    Build {
        /// The relay.
        relay: String,
        /// Why.
        source: lb_relay::BuildError,
    },
    /// The relay could not bind its addresses.
    #[error("relay {relay}: {source}")]
    Bind {
        /// The relay.
        relay: String,
        /// Why.
        source: lb_relay::StartError,
    },
}

/// One `relay` block running: one lb relay per listen port, its tables and monitors.
pub struct RunningRelay {
    def: RelayDef,
    shape: String,
    /// The relays (one per listen port).
    pub handles: Vec<Arc<RelayHandle>>,
    /// The monitors of its tables.
    pub monitors: Vec<Monitor>,
    /// (model table name, table instance).
    pub tables: Vec<(String, Arc<Table<Host>>)>,
}

impl RunningRelay {
    /// The relay's name in the file.
    pub fn name(&self) -> &str {
        &self.def.name
    }
}

/// Everything a configuration started.
pub struct Running {
    plan: Plan,
    /// The relays, in the file's order.
    pub relays: Vec<RunningRelay>,
}

/// What a reload did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Relays that kept running untouched (their sockets and sessions).
    pub kept: Vec<String>,
    /// Relays started.
    pub added: Vec<String>,
    /// Relays stopped (their sessions drain).
    pub removed: Vec<String>,
    /// Relays restarted with new settings.
    pub changed: Vec<String>,
    /// Hosts added, as `table:port host`.
    pub hosts_added: Vec<String>,
    /// Hosts removed, as `table:port host`.
    pub hosts_removed: Vec<String>,
}

impl Plan {
    /// Starts every relay (inside a tokio runtime).
    ///
    /// # Errors
    ///
    /// The first relay that cannot start; those started before it are stopped.
    pub fn start(self) -> Result<Running, StartError> {
        let mut relays = Vec::new();
        for def in &self.config.relays {
            relays.push(start_relay(&self, def)?);
        }
        Ok(Running { plan: self, relays })
    }
}

/// The settings of a relay that a reload compares (hosts are compared apart).
fn shape(plan: &Plan, def: &RelayDef) -> String {
    let mut d = def.clone();
    d.span = Span::default();
    for l in &mut d.listen {
        l.span = Span::default();
    }
    for f in &mut d.forwards {
        f.span = Span::default();
        if let Some(k) = &mut f.key {
            k.1 = Span::default();
        }
        if let Some(c) = &mut f.check {
            c.span = Span::default();
        }
    }
    if let Some(p) = &mut d.protocol {
        p.1 = Span::default();
    }
    let protocol = d
        .protocol
        .as_ref()
        .and_then(|(n, _)| plan.config.protocols.iter().find(|p| &p.name == n))
        .map(|p| (p.nodelay, p.backlog, p.socket_buffer, p.splice));
    let disabled: Vec<bool> = d
        .forwards
        .iter()
        .map(|f| {
            plan.config
                .tables
                .iter()
                .any(|t| t.name == f.table && t.disabled)
        })
        .collect();
    let retries: Vec<Option<u32>> = d
        .forwards
        .iter()
        .map(|f| {
            plan.config
                .tables
                .iter()
                .find(|t| t.name == f.table)
                // As `make_monitor` reads it: no hosts is retry 0, so that hosts added
                // to an empty table do not count as a changed relay.
                .map(|t| t.hosts.iter().map(|h| h.retry).max().unwrap_or(0))
        })
        .collect();
    let g = &plan.config.globals;
    format!(
        "{d:?} {protocol:?} {disabled:?} {retries:?} {:?} {:?} {}",
        g.interval, g.timeout, g.log_state_changes
    )
}

fn start_relay(plan: &Plan, def: &RelayDef) -> Result<RunningRelay, StartError> {
    let relay = || def.name.clone();
    let mut out = RunningRelay {
        def: def.clone(),
        shape: shape(plan, def),
        handles: Vec::new(),
        monitors: Vec::new(),
        tables: Vec::new(),
    };
    let protocol = def
        .protocol
        .as_ref()
        .and_then(|(n, _)| plan.config.protocols.iter().find(|p| &p.name == n));
    for (i, (port, ips)) in listen_groups(def).into_iter().enumerate() {
        let name = if i == 0 {
            def.name.clone()
        } else {
            format!("{}:{port}", def.name)
        };
        let mut builder = Relay::builder(name)
            .port(port)
            .idle_timeout(def.session_timeout);
        for ip in ips {
            builder = builder.listen(ip);
        }
        for f in &def.forwards {
            let table = make_table(plan, f, port).map_err(|source| StartError::Table {
                relay: relay(),
                source,
            })?;
            if plan.config.globals.log_state_changes {
                table.on_change(|e: &TableEvent| tracing::info!(table = %e.table, host = %e.host, change = ?e.change, "state change"));
            }
            if let Some(m) =
                make_monitor(plan, &table, f, port).map_err(|source| StartError::Monitor {
                    relay: relay(),
                    source,
                })?
            {
                out.monitors.push(m);
            }
            builder = builder.forward_to_balancer(make_balancer(&table, f, def.sticky));
            out.tables.push((f.table.clone(), table));
        }
        if let Some(p) = def.forwards.first().and_then(|f| f.port) {
            builder = builder.backend_port(BackendPort::Fixed(p));
        }
        if let Some(p) = protocol {
            let mut tcp = TcpOptions::default();
            if let Some(n) = p.nodelay {
                tcp.nodelay = n;
            }
            if let Some(b) = p.backlog {
                tcp.backlog = b;
            }
            if let Some(b) = p.socket_buffer {
                tcp.send_buffer = Some(b);
                tcp.recv_buffer = Some(b);
            }
            builder = builder.tcp(tcp);
            if let Some(s) = p.splice {
                builder = builder.splice(s);
            }
        }
        let handle = builder
            .build()
            .map_err(|source| StartError::Build {
                relay: relay(),
                source,
            })?
            .start()
            .map_err(|source| StartError::Bind {
                relay: relay(),
                source,
            })?;
        if def.disabled {
            handle.disable();
        }
        out.handles.push(Arc::new(handle));
    }
    Ok(out)
}

/// Lets a relay's sessions finish in the background, and stops its monitors.
fn retire(old: RunningRelay) {
    tokio::spawn(async move {
        for h in &old.handles {
            h.stop_accepting().await;
        }
        for m in old.monitors {
            m.shutdown().await;
        }
        for h in &old.handles {
            h.shutdown(DRAIN_DEADLINE).await;
        }
    });
}

impl Running {
    /// The plan running now.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Applies a new plan by difference: a relay whose settings are the same keeps its
    /// listening sockets and sessions, and only its tables' hosts change (hosts keep
    /// their ids, so with `consistent` only the clients of a removed host move);
    /// relays gone are stopped (their sessions drain for [`DRAIN_DEADLINE`]), new ones
    /// started, changed ones restarted (listeners closed, then opened again).
    ///
    /// A plan is already checked (parsed and resolved): a broken file never gets here,
    /// so nothing changes for it.
    ///
    /// # Errors
    ///
    /// A relay that could not start; the relays handled before it stay changed.
    pub async fn reload(&mut self, plan: Plan) -> Result<ReloadReport, StartError> {
        let mut report = ReloadReport::default();
        let mut old: Vec<RunningRelay> = std::mem::take(&mut self.relays);
        // Relays gone from the file let go of their ports first: a new relay may take one.
        let (gone, kept): (Vec<_>, Vec<_>) = old
            .into_iter()
            .partition(|r| !plan.config.relays.iter().any(|d| d.name == r.def.name));
        old = kept;
        for r in gone {
            for h in &r.handles {
                h.stop_accepting().await;
            }
            report.removed.push(r.def.name.clone());
            retire(r);
        }
        let mut next = Vec::new();
        let mut failed = None;
        for def in &plan.config.relays {
            let current = match old.iter().position(|r| r.def.name == def.name) {
                Some(at) => old.remove(at),
                None => match start_relay(&plan, def) {
                    Ok(r) => {
                        report.added.push(def.name.clone());
                        next.push(r);
                        continue;
                    }
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                },
            };
            if current.shape == shape(&plan, def) {
                update_hosts(&plan, &current, &mut report).await;
                report.kept.push(def.name.clone());
                next.push(RunningRelay {
                    def: def.clone(),
                    ..current
                });
                continue;
            }
            // Changed: the new relay binds the same ports, so the old one lets go first.
            for h in &current.handles {
                h.stop_accepting().await;
            }
            match start_relay(&plan, def) {
                Ok(r) => {
                    retire(current);
                    report.changed.push(def.name.clone());
                    next.push(r);
                }
                Err(e) => {
                    retire(current);
                    failed = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = failed {
            // Whatever was not reached keeps running as it was.
            next.append(&mut old);
            self.relays = next;
            return Err(e);
        }
        self.relays = next;
        self.plan = plan;
        Ok(report)
    }
}

/// Adds the hosts a table gained and removes those it lost, through the relay handle
/// (adds first, so that a table whose hosts are replaced never refuses clients on the
/// way; a table whose file lists no hosts any more is left empty).
async fn update_hosts(plan: &Plan, relay: &RunningRelay, report: &mut ReloadReport) {
    for (model, table) in &relay.tables {
        let wanted = plan.hosts.get(model).cloned().unwrap_or_default();
        let snap = table.snapshot();
        let port = table
            .name()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let have: HashSet<String> = (0..snap.len())
            .map(|i| snap.host(i).name().to_owned())
            .collect();
        let Some(handle) = relay
            .handles
            .iter()
            .find(|h| h.tables().iter().any(|t| Arc::ptr_eq(t, table)))
        else {
            continue;
        };
        // A checked table takes a new host once its first check passes, as relayd.
        let checked = relay.monitors.iter().any(|m| Arc::ptr_eq(m.table(), table));
        let health = if checked { Health::Unknown } else { Health::Up };
        for (name, ip) in &wanted {
            if !have.contains(name) {
                let host = Host::new(name.clone(), std::net::SocketAddr::new(*ip, port));
                // Off the runtime's workers: a large consistent table takes a while to rebuild.
                match handle.add_host(table.name(), host, health).await {
                    Ok(_) => report.hosts_added.push(format!("{} {name}", table.name())),
                    Err(error) => {
                        tracing::warn!(table = %table.name(), host = %name, %error, "reload: host not added")
                    }
                }
            }
        }
        for i in 0..snap.len() {
            let slot = snap.host(i);
            if wanted.iter().any(|(n, _)| n == slot.name()) {
                continue;
            }
            match handle.remove_host(table.name(), slot.id()).await {
                Ok(()) => report
                    .hosts_removed
                    .push(format!("{} {}", table.name(), slot.name())),
                Err(error) => {
                    tracing::warn!(table = %table.name(), host = %slot.name(), %error, "reload: host not removed")
                }
            }
        }
    }
}
