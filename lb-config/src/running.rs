//! What runs: the relays, redirects, tables and monitors of a [`Plan`]. A reload
//! ([`Running::reload`]) applies only the difference to a new plan.

use std::sync::Arc;
use std::time::Duration;

use lb_core::{Host, HostTable, TableEvent};
use lb_health::Monitor;
use lb_relay::{BackendPort, Relay, RelayHandle, TcpOptions};

use crate::build::{listen_groups, make_balancer, make_monitor, make_table, Plan};
use crate::diag::Span;
use crate::model::{RelayDef, RelayKind};
use crate::redirect::{unsupported, Fallback, Layer, RedirectMode, StartOptions};
pub use crate::reload::ReloadReport;

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
    /// A redirect could not run at layer 3 and [`RedirectMode::Layer3`] forbids the
    /// layer-4 fallback.
    #[error("redirect {relay} cannot run at layer 3: {source}")]
    Redirect {
        /// The redirect.
        relay: String,
        /// Why.
        source: Fallback,
    },
}

/// One `relay` or `redirect` block running: one lb relay (or, for a redirect at
/// layer 3, one kernel redirect) per listen port, its tables and monitors.
pub struct RunningRelay {
    pub(crate) def: RelayDef,
    pub(crate) shape: String,
    pub(crate) layer: Layer,
    /// The relays (one per listen port); none for a redirect at layer 3.
    pub handles: Vec<Arc<RelayHandle>>,
    /// The monitors of its tables.
    pub monitors: Vec<Monitor>,
    /// (model table name, table instance).
    pub tables: Vec<(String, Arc<HostTable<Host>>)>,
    /// The kernel redirects (one per listen port) of a redirect at layer 3.
    #[cfg(target_os = "linux")]
    pub redirects: Vec<lb_redirect::Redirect>,
}

impl RunningRelay {
    /// The block's name in the file.
    pub fn name(&self) -> &str {
        &self.def.name
    }

    /// What the block runs as: a relay (and, for a `redirect` block, why it fell back
    /// to layer 4), or a layer-3 redirect and its nftables tables.
    pub fn layer(&self) -> &Layer {
        &self.layer
    }

    /// Takes the kernel redirects out, to remove them before a rebuild.
    #[cfg(target_os = "linux")]
    fn take_redirects(&mut self) -> Vec<lb_redirect::Redirect> {
        std::mem::take(&mut self.redirects)
    }
}

/// Removes a block's kernel redirects and waits until their tables are gone.
pub(crate) async fn remove_redirects(r: &mut RunningRelay) {
    #[cfg(target_os = "linux")]
    crate::redirect::remove(r.take_redirects()).await;
    #[cfg(not(target_os = "linux"))]
    let _ = r;
}

/// Everything a configuration started.
pub struct Running {
    pub(crate) plan: Plan,
    pub(crate) options: StartOptions,
    /// The relays, in the file's order.
    pub relays: Vec<RunningRelay>,
}

impl Plan {
    /// Starts every block (inside a tokio runtime) with the default [`StartOptions`]:
    /// `redirect` blocks at layer 3 on Linux where nftables can be used.
    ///
    /// # Errors
    ///
    /// The first block that cannot start; those started before it are stopped.
    pub fn start(self) -> Result<Running, StartError> {
        self.start_with(StartOptions::default())
    }

    /// Starts every block (inside a tokio runtime) with `options`; a reload keeps them.
    /// Starting a layer-3 redirect runs `nft` on the calling thread.
    ///
    /// # Errors
    ///
    /// The first block that cannot start; those started before it are stopped.
    pub fn start_with(self, options: StartOptions) -> Result<Running, StartError> {
        let mut relays = Vec::new();
        for def in &self.config.relays {
            relays.push(start_block(&self, def, &options)?);
        }
        Ok(Running {
            plan: self,
            options,
            relays,
        })
    }
}

/// Starts a `relay` block, or a `redirect` block at the layer `options` and the system
/// allow (a fallback to layer 4 is logged with its reason).
pub(crate) fn start_block(
    plan: &Plan,
    def: &RelayDef,
    options: &StartOptions,
) -> Result<RunningRelay, StartError> {
    if def.kind == RelayKind::Relay {
        return start_relay(plan, def, Layer::Relay { fallback: None });
    }
    let reason = match (options.redirects, unsupported(def, &plan.config.relays)) {
        (RedirectMode::Layer4, _) => Fallback::Chosen,
        (_, Some(why)) => why,
        (_, None) => match layer3(plan, def, options)? {
            Ok(running) => return Ok(running),
            Err(why) => why,
        },
    };
    if options.redirects == RedirectMode::Layer3 {
        return Err(StartError::Redirect {
            relay: def.name.clone(),
            source: reason,
        });
    }
    tracing::warn!(redirect = %def.name, reason = %reason, "redirect runs as a layer-4 relay: the backend sees the relay's address (unless PROXY protocol is on), not the client's");
    start_relay(
        plan,
        def,
        Layer::Relay {
            fallback: Some(reason),
        },
    )
}

/// A redirect block in the kernel, or why it cannot be.
#[cfg(target_os = "linux")]
fn layer3(
    plan: &Plan,
    def: &RelayDef,
    options: &StartOptions,
) -> Result<Result<RunningRelay, Fallback>, StartError> {
    let Some(f) = def.forwards.first() else {
        return Ok(Err(Fallback::Unsupported("no table".into())));
    };
    Ok(crate::redirect::start_layer3(plan, def, f, options)?.map_err(Fallback::Nftables))
}

#[cfg(not(target_os = "linux"))]
fn layer3(
    _: &Plan,
    _: &RelayDef,
    _: &StartOptions,
) -> Result<Result<RunningRelay, Fallback>, StartError> {
    Ok(Err(Fallback::NotLinux))
}

/// The settings of a relay that a reload compares (hosts are compared apart).
pub(crate) fn shape(plan: &Plan, def: &RelayDef) -> String {
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

fn start_relay(plan: &Plan, def: &RelayDef, layer: Layer) -> Result<RunningRelay, StartError> {
    let relay = || def.name.clone();
    let mut out = RunningRelay {
        def: def.clone(),
        shape: shape(plan, def),
        layer,
        handles: Vec::new(),
        monitors: Vec::new(),
        tables: Vec::new(),
        #[cfg(target_os = "linux")]
        redirects: Vec::new(),
    };
    let protocol = def
        .protocol
        .as_ref()
        .and_then(|(n, _)| plan.config.protocols.iter().find(|p| &p.name == n));
    for (i, (port, ips)) in listen_groups(plan, def).into_iter().enumerate() {
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

impl Running {
    /// The plan running now.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The options it was started with (reloads keep them).
    pub fn options(&self) -> &StartOptions {
        &self.options
    }

    /// Stops everything: relays stop accepting and their sessions get `deadline` to
    /// finish, monitors stop, and layer-3 redirects remove their nftables tables (their
    /// connections then lose their translation). Afterwards nothing runs.
    pub async fn shutdown(&mut self, deadline: Duration) {
        let mut relays = std::mem::take(&mut self.relays);
        for r in &mut relays {
            for h in &r.handles {
                h.stop_accepting().await;
            }
            remove_redirects(r).await;
        }
        for r in relays {
            for m in r.monitors {
                m.shutdown().await;
            }
            for h in &r.handles {
                h.shutdown(deadline).await;
            }
        }
    }
}
