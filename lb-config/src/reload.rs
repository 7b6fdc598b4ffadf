//! [`Running::reload`]: applies a new plan by difference, block by block.

use std::collections::HashSet;
use std::sync::Arc;

use lb_core::Health;
use lb_core::Host;

use crate::build::Plan;
use crate::running::{
    remove_redirects, shape, start_block, Running, RunningRelay, StartError, DRAIN_DEADLINE,
};

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

/// Lets a relay's sessions finish in the background, and stops its monitors.
fn retire(mut old: RunningRelay) {
    tokio::spawn(async move {
        remove_redirects(&mut old).await;
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
    /// Applies a new plan by difference: a relay whose settings are the same keeps its
    /// listening sockets and sessions, and only its tables' hosts change (hosts keep
    /// their ids, so with `consistent` only the clients of a removed host move);
    /// relays gone are stopped (their sessions drain for [`DRAIN_DEADLINE`]), new ones
    /// started, changed ones restarted (listeners closed, then opened again).
    ///
    /// Layer-3 redirects likewise: an unchanged one keeps its nftables table (its hosts
    /// change in place, one transaction each), a changed one is rebuilt (the old table
    /// deleted, a new one made), a removed one has its table deleted before `reload`
    /// returns. New redirects start with the options the running set was started with
    /// ([`Running::options`]); their `nft` runs on the calling thread.
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
        for mut r in gone {
            for h in &r.handles {
                h.stop_accepting().await;
            }
            // Gone when the reload returns, and before a new block may take its name.
            remove_redirects(&mut r).await;
            report.removed.push(r.def.name.clone());
            retire(r);
        }
        let mut next = Vec::new();
        let mut failed = None;
        for def in &plan.config.relays {
            let mut current = match old.iter().position(|r| r.def.name == def.name) {
                Some(at) => old.remove(at),
                None => match start_block(&plan, def, &self.options) {
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
            // Changed: the new relay binds the same ports (a redirect: the same nftables
            // table), so the old one lets go first.
            for h in &current.handles {
                h.stop_accepting().await;
            }
            remove_redirects(&mut current).await;
            match start_block(&plan, def, &self.options) {
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
        // A redirect at layer 3 has no relay: its table is changed directly, and the
        // kernel redirect follows the table.
        let handle = relay
            .handles
            .iter()
            .find(|h| h.tables().iter().any(|t| same_table(t, table)));
        // A checked table takes a new host once its first check passes, as relayd.
        let checked = relay.monitors.iter().any(|m| same_table(m.table(), table));
        let health = if checked { Health::Unknown } else { Health::Up };
        for (name, ip) in &wanted {
            if !have.contains(name) {
                let host = Host::new(name.clone(), std::net::SocketAddr::new(*ip, port));
                // Off the runtime's workers: a large consistent table takes a while to rebuild.
                let added = match handle {
                    Some(h) => h
                        .add_host(table.name(), host, health)
                        .await
                        .map_err(|e| e.to_string()),
                    None => table.add(host, health).map_err(|e| e.to_string()),
                };
                match added {
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
            let removed = match handle {
                Some(h) => h
                    .remove_host(table.name(), slot.id())
                    .await
                    .map_err(|e| e.to_string()),
                None => table.remove(slot.id()).map_err(|e| e.to_string()),
            };
            match removed {
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

/// Whether a relay's or monitor's table is `table` (the same object: compared by address,
/// since one is held as a trait object).
fn same_table(held: &Arc<dyn lb_core::Table<Host>>, table: &Arc<lb_core::HostTable<Host>>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(held), Arc::as_ptr(table))
}
