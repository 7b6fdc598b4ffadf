//! Steps 4 and 5 of the demonstration: one server stops one service only (POP3, as on
//! an Exchange 2010 server where it was never started), then starts it again.
//!
//! With `--affinity service` only that service's relays lose the server: HTTPS, IMAP
//! and RPC clients stay exactly where they were, and only the server's POP3 clients
//! move. With `--affinity server` the whole server leaves every relay. Either way no
//! client connection fails: the relays fail over within the session.

use std::net::SocketAddr;

use lb::core::Health;
use lb::health::HostEvent;
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::cli::Affinity;
use crate::clients::Clients;
use crate::demo::{down_claim, per_relay, served, tables_phrase};
use crate::demo_servers::DemoServer;
use crate::modes::{Mode, Placement};
use crate::report::Expectations;
use crate::rounds::{print_sources, Round};
use crate::services::{Daemon, Service};
use crate::setup::Exchange;
use crate::waits::{drain, no_failure_claim, outage, patient, relay_totals, timing, wait_for};

/// What the steps work with.
pub struct Stage<'a> {
    /// The balancer.
    pub ex: &'a Exchange,
    /// The demo clients.
    pub clients: &'a Clients,
    /// Every relay with the address the clients use.
    pub targets: &'a [(Service, SocketAddr)],
    /// The balancing mode.
    pub mode: Mode,
    /// What the mode promises.
    pub placement: Placement,
    /// The demo servers' names, in their order.
    pub names: &'a [String],
}

impl Stage<'_> {
    /// Stops `daemon` on the server that serves most of its clients in `before`, checks
    /// what moved, starts it again and checks that its clients come back.
    pub async fn run(
        &self,
        checks: &mut Expectations,
        servers: &mut [DemoServer],
        events: &mut broadcast::Receiver<HostEvent>,
        before: &Round,
        daemon: Daemon,
    ) {
        let ex = self.ex;
        let hit: Vec<usize> = (0..before.relays.len())
            .filter(|&r| before.relays[r].protocol.daemon() == daemon)
            .collect();
        let on = |name: &str| {
            let visits = before.visits.iter().filter(|v| hit.contains(&v.relay));
            visits.filter(|v| v.result.as_deref() == Ok(name)).count()
        };
        let victim = if on(&self.names[1]) > on(&self.names[0]) {
            1
        } else {
            0
        };
        let (name, other) = (self.names[victim].as_str(), self.names[1 - victim].as_str());
        let affected = ex.pools_where(|s| s.protocol.daemon() == daemon);
        let schedule = ex.schedule;

        println!(
            "4. {name} stops its {} only, as on a server where it was never started.",
            daemon.describe()
        );
        println!("   The clients connect again at once.");
        let failed_before = relay_totals(ex);
        let t0 = Instant::now();
        servers[victim].stop_daemon(daemon).await;
        let round = Round::run(self.clients, self.targets, &before.sources, 1);
        let (during, seen) = outage(events, ex, t0, name, &affected, round).await;
        println!("   Where each source went (before -> now; relays whose server changed):");
        print_sources(&before.sources, |s| changes(before, &during, s));
        during.print_failures();
        checks.check(
            seen.down.len() == affected.len(),
            down_claim(name, &seen.down, affected.len(), t0, schedule),
        );
        checks.check(
            seen.confirmed.is_some(),
            format!(
                "{} {name}'s {} down{}",
                if affected.len() > 1 {
                    "the health checks find"
                } else {
                    "the health check finds"
                },
                daemon.label(),
                seen.confirmed.map_or(String::new(), |after| format!(
                    ", {}",
                    timing(
                        after,
                        "the stop",
                        "interval + timeout",
                        schedule.fail_bound()
                    )
                ))
            ),
        );
        let lost = during
            .visits
            .iter()
            .filter(|v| hit.contains(&v.relay) && v.result.as_deref() == Ok(name))
            .count();
        let total = during.visits.len();
        let ok = total - during.failures().len();
        checks.check(
            ok == total && lost == 0,
            format!(
                "{ok} of {total} connections served, {lost} of {} by {name}",
                relay_names(before, &hit)
            ),
        );
        let (connects, failed) = relay_totals(ex);
        checks.check(
            failed == failed_before.1,
            no_failure_claim(connects - failed_before.0, name, other),
        );
        let latest = match ex.affinity {
            Affinity::Service => {
                self.check_service_only(checks, before, &during, &hit, (name, other), &affected);
                during
            }
            Affinity::Server => {
                self.check_whole_server(checks, before, name, other, &affected)
                    .await
            }
        };

        println!();
        println!("5. {name} starts its {} service again.", daemon.label());
        let t1 = Instant::now();
        let restarted = servers[victim].start_daemon(daemon).await;
        if let Err(e) = &restarted {
            println!("  ! {e}");
        }
        let up_bound = schedule.up_bound();
        let up = match restarted {
            Ok(()) => {
                let deadline = patient(t1, up_bound);
                wait_for(events, ex, t1, name, Health::Up, &affected, deadline).await
            }
            Err(_) => Vec::new(),
        };
        checks.check(
            up.len() == affected.len(),
            format!(
                "{name} is up again{} by the health check{}",
                tables_phrase(affected.len()),
                up.iter()
                    .map(|e| e.at - t1)
                    .max()
                    .map_or(String::new(), |after| format!(
                        ", {}",
                        timing(after, "the start", "two intervals + timeout", up_bound)
                    ))
            ),
        );
        let back = Round::run(self.clients, self.targets, &before.sources, 1).await;
        drain(events, ex, t1);
        println!("   Where each source went (before step 4 -> now):");
        print_sources(&before.sources, |s| changes(before, &back, s));
        back.print_failures();
        served(checks, &back, None);
        if self.mode.returns_after_recovery() {
            checks.check(
                per_relay(&back, |s, r| {
                    back.home_on(s, r).is_some() && back.home_on(s, r) == before.home_on(s, r)
                }),
                format!(
                    "every source is back on the server it had before {name}'s {} stopped",
                    daemon.label()
                ),
            );
        } else if self.mode.sticky {
            checks.check(
                per_relay(&back, |s, r| {
                    back.home_on(s, r).is_some() && back.home_on(s, r) == latest.home_on(s, r)
                }),
                "every source stays where its sticky entry points (pf's sticky-address keeps a moved client until its entry expires)",
            );
        } else {
            let relays: &[usize] = match ex.affinity {
                Affinity::Service => &hit,
                Affinity::Server => &[],
            };
            let n = back
                .visits
                .iter()
                .filter(|v| relays.is_empty() || relays.contains(&v.relay))
                .filter(|v| v.result.as_deref() == Ok(name))
                .count();
            checks.check(n > 0, format!("{name} serves again ({n} connections)"));
        }
        println!();
    }

    /// `--affinity service`: the server left only the stopped service's tables, and
    /// only the clients of that service on that server moved.
    /// `who` is the server that stopped the service and the other one.
    fn check_service_only(
        &self,
        checks: &mut Expectations,
        before: &Round,
        during: &Round,
        hit: &[usize],
        who: (&str, &str),
        affected: &[usize],
    ) {
        let (ex, (name, other)) = (self.ex, who);
        let wrong: Vec<String> = (0..ex.pools.len())
            .filter(|p| {
                let want = if affected.contains(p) {
                    Health::Down
                } else {
                    Health::Up
                };
                ex.health(*p, name) != Some(want)
            })
            .map(|p| format!("<{}>", ex.pools[p].table.name()))
            .collect();
        let down_in: Vec<String> = affected
            .iter()
            .map(|&p| format!("<{}>", ex.pools[p].table.name()))
            .collect();
        checks.check(
            wrong.is_empty(),
            format!(
                "{name} is down in {} and still up in the {} other tables{}",
                down_in.join(" and "),
                ex.pools.len() - affected.len(),
                if wrong.is_empty() {
                    String::new()
                } else {
                    format!(" (not so in {})", wrong.join(", "))
                }
            ),
        );
        if self.placement == Placement::None {
            println!("  (mode {} places each connection on its own: which server a client reached is not checked)", self.mode);
            return;
        }
        let others: Vec<usize> = (0..before.relays.len())
            .filter(|r| !hit.contains(r))
            .collect();
        let stayed = per_relay(during, |s, r| {
            hit.contains(&r) || during.home_on(s, r) == before.home_on(s, r)
        });
        let kept = during
            .visits
            .iter()
            .filter(|v| others.contains(&v.relay) && v.result.as_deref() == Ok(name))
            .count();
        checks.check(
            stayed,
            format!(
                "every {} client stayed exactly on the server it had ({kept} connections still on {name})",
                relay_names(before, &others)
            ),
        );
        let movers = (0..before.sources.len())
            .filter(|&s| hit.iter().any(|&r| before.home_on(s, r) == Some(name)))
            .count();
        let only = per_relay(during, |s, r| {
            !hit.contains(&r) || during.home_on(s, r) == Some(other)
        });
        checks.check(
            only,
            format!(
                "only {name}'s {} clients moved ({movers} sources, to {other}); {other}'s stayed",
                relay_names(before, hit)
            ),
        );
    }

    /// `--affinity server`: one failed service takes the whole server out of every
    /// relay. Once the check has confirmed it, a new round finds none of its clients
    /// on it. Returns that round.
    async fn check_whole_server(
        &self,
        checks: &mut Expectations,
        before: &Round,
        name: &str,
        other: &str,
        affected: &[usize],
    ) -> Round {
        let ex = self.ex;
        checks.check(
            affected
                .iter()
                .all(|&p| ex.health(p, name) == Some(Health::Down)),
            format!("{name} is down in <exchange>, for all eight relays (--affinity server)"),
        );
        let after = Round::run(self.clients, self.targets, &before.sources, 1).await;
        println!("   A round after the check (before step 4 -> now):");
        print_sources(&before.sources, |s| changes(before, &after, s));
        after.print_failures();
        served(checks, &after, Some(name));
        if self.placement != Placement::None {
            let stayed = per_relay(&after, |s, r| {
                before.home_on(s, r) != Some(other) || after.home_on(s, r) == Some(other)
            });
            checks.check(
                stayed,
                format!("the whole server left: every client of {name} moved to {other} on every relay; {other}'s clients stayed"),
            );
        }
        after
    }
}

/// The relays' names, joined.
fn relay_names(round: &Round, relays: &[usize]) -> String {
    let names: Vec<&str> = relays.iter().map(|&r| round.relays[r].relay).collect();
    names.join("/")
}

/// A source's server before, and the relays on which it changed with where they went.
fn changes(before: &Round, after: &Round, s: usize) -> String {
    let mut moves: Vec<(String, Vec<&str>)> = Vec::new();
    for r in 0..before.relays.len() {
        let (from, to) = (before.home_on(s, r), after.home_on(s, r));
        if from == to {
            continue;
        }
        let to = to.map_or_else(|| after.cell(s), str::to_owned);
        match moves.iter_mut().find(|(t, _)| *t == to) {
            Some((_, relays)) => relays.push(before.relays[r].relay),
            None => moves.push((to, vec![before.relays[r].relay])),
        }
    }
    let was = before.cell(s);
    match moves.as_slice() {
        [] => format!("{was}  (stayed)"),
        [(to, relays)] if relays.len() == before.relays.len() => format!("{was} -> {to}"),
        // Most relays moved: name the ones that did not.
        [(to, relays)] if relays.len() * 2 > before.relays.len() => {
            let kept: Vec<&str> = before
                .relays
                .iter()
                .map(|s| s.relay)
                .filter(|r| !relays.contains(r))
                .collect();
            format!("{was} -> {to} (not {})", kept.join(", "))
        }
        _ => {
            let parts: Vec<String> = moves
                .iter()
                .map(|(to, relays)| format!("{} -> {to}", relays.join(", ")))
                .collect();
            format!("{was}; {}", parts.join("; "))
        }
    }
}
