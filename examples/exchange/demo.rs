//! The demonstration with the demo servers: where 20 clients go, what happens when a
//! server dies, and what happens when it comes back (steps 1 to 3); then what happens
//! when one service of a server stops and starts again (`demo_service.rs`). Every
//! claim the output makes is checked, and `--exit-after-demo` turns the verdict into
//! the exit status.

use std::net::SocketAddr;

use lb::core::Health;
use lb::health::{HostEvent, Source};
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::cli::Affinity;
use crate::clients::Clients;
use crate::demo_servers::DemoServer;
use crate::health::Schedule;
use crate::modes::{Mode, Placement};
use crate::report::Expectations;
use crate::rounds::{print_sources, sources, Round};
use crate::services::{Daemon, Service};
use crate::setup::Exchange;
use crate::waits::{no_failure_claim, outage, patient, relay_totals, timing, wait_for};

/// Runs the demonstration against the demo servers.
pub async fn run(
    ex: &Exchange,
    servers: &mut [DemoServer],
    mode: Mode,
    events: &mut broadcast::Receiver<HostEvent>,
) -> Result<Expectations, Box<dyn std::error::Error>> {
    let mut checks = Expectations::default();
    let clients = Clients::new()?;
    let targets: Vec<(Service, SocketAddr)> = ex
        .relays
        .iter()
        .map(|r| (r.service, ex.target(r)))
        .collect();
    let sources = sources();
    let placement = mode.placement(ex.affinity == Affinity::Server);
    let names: Vec<String> = servers.iter().map(|s| s.name().to_owned()).collect();
    let all_pools = ex.pools_where(|_| true);

    println!("Demonstration, mode {mode}, affinity {}", ex.affinity);
    println!();
    println!(
        "1. 20 clients ({} to {}) connect through all eight relays, twice each: HTTPS (GET /),",
        sources[0],
        sources[sources.len() - 1]
    );
    println!("   POP3 and POP3S (USER, PASS, STAT, QUIT), IMAP and IMAPS (LOGIN, LOGOUT), RPC (banner, echo).");
    println!("   Where each source went:");
    let first = Round::run(&clients, &targets, &sources, 2).await;
    print_sources(&sources, |s| first.cell(s));
    first.print_failures();
    served(&mut checks, &first, None);
    match placement {
        Placement::Source => checks.check(
            (0..sources.len()).all(|s| first.home(s).is_some()),
            "every source reached one server, on all eight relays and in both rounds",
        ),
        Placement::SourceAndRelay => checks.check(
            per_relay(&first, |s, r| first.home_on(s, r).is_some()),
            "every source reached one server per relay in both rounds (loadbalance hashes the listen \
             address too; a sticky mode keeps a source table per relay)",
        ),
        Placement::None => println!("  (mode {mode} places each connection on its own: no affinity to check)"),
    }
    println!("  {}", spread(&first, &names));

    // Stop a server that has clients, so that some of them have to move.
    let victim = if first.count_on(&names[1]) > 0 { 1 } else { 0 };
    let (victim_name, survivor) = (names[victim].clone(), names[1 - victim].clone());
    println!();
    println!("2. {victim_name} stops: all its listeners close and its sessions are cut. The clients connect again at once.");
    let failed_before = relay_totals(ex);
    let t0 = Instant::now();
    servers[victim].stop().await;
    let round = Round::run(&clients, &targets, &sources, 1);
    let (second, seen) = outage(events, ex, t0, &victim_name, &all_pools, round).await;
    println!("   Where each source went (before -> after):");
    print_sources(&sources, |s| moved(first.cell(s), second.cell(s)));
    second.print_failures();
    let schedule = ex.schedule;
    checks.check(
        seen.down.len() == all_pools.len(),
        down_claim(&victim_name, &seen.down, all_pools.len(), t0, schedule),
    );
    checks.check(
        seen.confirmed.is_some(),
        match seen.confirmed {
            Some(after) => format!(
                "the health check{} on {victim_name} too, {}",
                if all_pools.len() > 1 {
                    "s fail"
                } else {
                    " fails"
                },
                timing(
                    after,
                    "the stop",
                    "interval + timeout",
                    schedule.fail_bound()
                )
            ),
            None => format!("the health check finds {victim_name} down"),
        },
    );
    served(&mut checks, &second, Some(&victim_name));
    let (connect_failures, failed) = relay_totals(ex);
    checks.check(
        failed == failed_before.1,
        no_failure_claim(connect_failures - failed_before.0, &victim_name, &survivor),
    );
    if placement != Placement::None {
        let stayed = per_relay(&second, |s, r| {
            first.home_on(s, r) != Some(&survivor) || second.home_on(s, r) == Some(&survivor)
        });
        let movers = (0..sources.len())
            .filter(|&s| first.servers_of(s).contains_key(victim_name.as_str()))
            .count();
        checks.check(
            stayed,
            format!("only {victim_name}'s clients moved ({movers} sources); {survivor}'s clients stayed where they were"),
        );
    }

    println!();
    println!("3. {victim_name} starts again on the same ports.");
    let t1 = Instant::now();
    let restarted = servers[victim].start().await;
    if let Err(e) = &restarted {
        println!("  ! {e}");
    }
    let up_bound = schedule.up_bound();
    let up = match restarted {
        Ok(()) => {
            wait_for(
                events,
                ex,
                t1,
                &victim_name,
                Health::Up,
                &all_pools,
                patient(t1, up_bound),
            )
            .await
        }
        Err(_) => Vec::new(),
    };
    checks.check(
        up.len() == all_pools.len(),
        match up.iter().map(|e| e.at - t1).max() {
            Some(after) if up.len() == all_pools.len() => format!(
                "{victim_name} is up again{} by the health check, {}",
                tables_phrase(all_pools.len()),
                timing(after, "its start", "two intervals + timeout", up_bound)
            ),
            _ => format!("{victim_name} up again{}", tables_phrase(all_pools.len())),
        },
    );
    let third = Round::run(&clients, &targets, &sources, 1).await;
    println!("   Where each source went (during the outage -> now):");
    print_sources(&sources, |s| moved(second.cell(s), third.cell(s)));
    third.print_failures();
    served(&mut checks, &third, None);
    if mode.returns_after_recovery() {
        checks.check(
            per_relay(&third, |s, r| third.home_on(s, r).is_some() && third.home_on(s, r) == first.home_on(s, r)),
            "every source is back on the server it had before the outage: the mapping depends only on the configured hosts",
        );
    } else if mode.sticky {
        checks.check(
            per_relay(&third, |s, r| third.home_on(s, r).is_some() && third.home_on(s, r) == second.home_on(s, r)),
            "every source stays where its sticky entry points (pf's sticky-address keeps a moved client until its entry expires)",
        );
    } else {
        let n = third.count_on(&victim_name);
        checks.check(
            n > 0,
            format!(
                "{victim_name} serves again ({n} of {} connections)",
                third.visits.len()
            ),
        );
    }
    println!();

    let stage = crate::demo_service::Stage {
        ex,
        clients: &clients,
        targets: &targets,
        mode,
        placement,
        names: &names,
    };
    stage
        .run(&mut checks, servers, events, &third, Daemon::Pop3)
        .await;
    Ok(checks)
}

/// The claim that `host` went down in every one of `tables` tables, timed against
/// `bound`.
pub fn down_claim(
    host: &str,
    down: &[HostEvent],
    tables: usize,
    t0: Instant,
    schedule: Schedule,
) -> String {
    let last = down.iter().max_by_key(|e| e.at);
    match last {
        Some(e) if down.len() == tables => format!(
            "{host} marked down{}: {}, {}{}",
            tables_phrase(tables),
            match (tables, e.source) {
                (1, Source::Check) => "by the health check".to_owned(),
                (1, _) => "at the first failed connect (passive health)".to_owned(),
                (n, _) => match down.iter().filter(|e| e.source != Source::Check).count() {
                    0 => "by their health checks".to_owned(),
                    p if p == n => "each at its relay's first failed connect (passive health)".to_owned(),
                    p => format!("{p} of them at a relay's first failed connect (passive health), the others by their check"),
                },
            },
            if tables > 1 { "the last " } else { "" },
            timing(e.at - t0, "the stop", &schedule.down_rule(), schedule.down_bound())
        ),
        _ => format!(
            "{host} marked down{} ({} of {tables} seen)",
            tables_phrase(tables),
            down.len()
        ),
    }
}

/// " in both tables", " in all N tables", or nothing for one.
pub fn tables_phrase(tables: usize) -> String {
    match tables {
        1 => String::new(),
        2 => " in both tables".to_owned(),
        n => format!(" in all {n} tables"),
    }
}

/// Checks that every connection of `round` was served (and none by `not_by`).
pub fn served(checks: &mut Expectations, round: &Round, not_by: Option<&str>) {
    let total = round.visits.len();
    let ok = total - round.failures().len();
    match not_by {
        None => checks.check(ok == total, format!("{ok} of {total} connections served")),
        Some(server) => {
            let on = round.count_on(server);
            checks.check(
                ok == total && on == 0,
                format!("{ok} of {total} connections served, {on} by {server}"),
            );
        }
    }
}

/// Whether `holds` for every (source, relay) pair of the round.
pub fn per_relay(round: &Round, holds: impl Fn(usize, usize) -> bool) -> bool {
    (0..round.sources.len()).all(|s| (0..round.relays.len()).all(|r| holds(s, r)))
}

/// How the connections and sources of a round spread over the servers.
fn spread(round: &Round, names: &[String]) -> String {
    let parts: Vec<String> = names
        .iter()
        .map(|n| {
            let homes = (0..round.sources.len())
                .filter(|&s| round.home(s) == Some(n.as_str()))
                .count();
            format!(
                "{n}: {} connections, {homes} sources entirely",
                round.count_on(n)
            )
        })
        .collect();
    parts.join("; ")
}

/// A cell of the before/after table.
pub fn moved(before: String, after: String) -> String {
    if before == after {
        format!("{after}  (stayed)")
    } else {
        format!("{before} -> {after}")
    }
}
