//! The demonstration with the demo servers: where 20 clients go, what happens when a
//! server dies, and what happens when it comes back. Every claim the output makes is
//! checked, and `--exit-after-demo` turns the verdict into the exit status.

use std::net::SocketAddr;
use std::time::Duration;

use lb::core::{Health, Host};
use lb::health::{EventKind, HostEvent, Monitor, Source};
use tokio::sync::broadcast::{self, error::TryRecvError};
use tokio::time::Instant;

use crate::clients::Clients;
use crate::demo_servers::DemoServer;
use crate::health::TIMEOUT;
use crate::modes::{Affinity, Mode};
use crate::report::Expectations;
use crate::rounds::{print_sources, sources, Round};
use crate::services::Service;
use crate::setup::{describe_event, Exchange};

/// How much longer than a bound the demonstration waits, so that a late event is
/// still shown (and reported as late) rather than missed.
const ALLOWANCE: Duration = Duration::from_millis(500);

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
    let affinity = mode.affinity();
    let names: Vec<String> = servers.iter().map(|s| s.name().to_owned()).collect();

    println!("Demonstration, mode {mode}");
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
    match affinity {
        Affinity::Source => checks.check(
            (0..sources.len()).all(|s| first.home(s).is_some()),
            "every source reached one server, on all eight relays and in both rounds",
        ),
        Affinity::SourceAndRelay => checks.check(
            per_relay(&first, |s, r| first.home_on(s, r).is_some()),
            "every source reached one server per relay in both rounds (loadbalance hashes the listen address too)",
        ),
        Affinity::None => println!("  (mode {mode} places each connection on its own: no affinity to check)"),
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
    let second = Round::run(&clients, &targets, &sources, 1).await;
    let down = wait_for(
        events,
        &ex.monitor,
        t0,
        &victim_name,
        Health::Down,
        t0 + ex.interval + TIMEOUT + ALLOWANCE,
    )
    .await;
    let confirmed =
        wait_for_check_failure(ex, &victim_name, t0, t0 + ex.interval + TIMEOUT + ALLOWANCE).await;
    println!("   Where each source went (before -> after):");
    print_sources(&sources, |s| moved(first.cell(s), second.cell(s)));
    second.print_failures();
    let bound = ex.interval + TIMEOUT;
    checks.check(
        down.as_ref().is_some_and(|e| e.at - t0 <= bound),
        match &down {
            Some(e) => format!(
                "{victim_name} marked down {} ms after it stopped, {} (bound: interval + timeout = {} ms)",
                (e.at - t0).as_millis(),
                if e.source == Source::Check { "by the health check" } else { "at the first failed connect (passive health)" },
                bound.as_millis()
            ),
            None => format!("{victim_name} marked down within {} ms of its stop", bound.as_millis()),
        },
    );
    checks.check(
        confirmed.is_some_and(|after| after <= bound),
        match confirmed {
            Some(after) => format!(
                "the health check fails on {victim_name} too, {} ms after the stop (bound: {} ms)",
                after.as_millis(),
                bound.as_millis()
            ),
            None => format!(
                "the health check finds {victim_name} down within {} ms",
                bound.as_millis()
            ),
        },
    );
    served(&mut checks, &second, Some(&victim_name));
    let (connect_failures, failed) = relay_totals(ex);
    checks.check(
        failed == failed_before.1,
        format!(
            "no client saw a failure: {} connects to {victim_name} failed and each session failed over to {survivor} within itself",
            connect_failures - failed_before.0
        ),
    );
    if affinity != Affinity::None {
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
    let up_bound = ex.interval * 2 + TIMEOUT;
    let up = match restarted {
        Ok(()) => {
            wait_for(
                events,
                &ex.monitor,
                t1,
                &victim_name,
                Health::Up,
                t1 + up_bound + ALLOWANCE,
            )
            .await
        }
        Err(_) => None,
    };
    checks.check(
        up.as_ref().is_some_and(|e| e.at - t1 <= up_bound),
        match &up {
            Some(e) => format!("{victim_name} is up again {} ms after it started, by the health check (bound: two intervals + timeout = {} ms)", (e.at - t1).as_millis(), up_bound.as_millis()),
            None => format!("{victim_name} up again within {} ms", up_bound.as_millis()),
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
    Ok(checks)
}

/// Checks that every connection of `round` was served (and none by `not_by`).
fn served(checks: &mut Expectations, round: &Round, not_by: Option<&str>) {
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
fn per_relay(round: &Round, holds: impl Fn(usize, usize) -> bool) -> bool {
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

fn moved(before: String, after: String) -> String {
    if before == after {
        format!("{after}  (stayed)")
    } else {
        format!("{before} -> {after}")
    }
}

/// Failed connects and failed sessions, over all relays.
fn relay_totals(ex: &Exchange) -> (u64, u64) {
    ex.relays.iter().fold((0, 0), |(c, f), r| {
        let s = r.handle.stats();
        (c + s.connect_failures, f + s.failed)
    })
}

/// Prints health events until `host` reaches `health` (returned) or `deadline`.
async fn wait_for(
    events: &mut broadcast::Receiver<HostEvent>,
    monitor: &Monitor<Host>,
    origin: Instant,
    host: &str,
    health: Health,
    deadline: Instant,
) -> Option<HostEvent> {
    loop {
        let event = match events.try_recv() {
            Ok(e) => e,
            Err(TryRecvError::Empty) => {
                match tokio::time::timeout_at(deadline, events.recv()).await {
                    Ok(Ok(e)) => e,
                    Ok(Err(broadcast::error::RecvError::Lagged(n))) => {
                        println!("   ({n} health events missed)");
                        continue;
                    }
                    Ok(Err(broadcast::error::RecvError::Closed)) | Err(_) => return None,
                }
            }
            Err(TryRecvError::Lagged(n)) => {
                println!("   ({n} health events missed)");
                continue;
            }
            Err(TryRecvError::Closed) => return None,
        };
        println!(
            "   {}",
            describe_event(monitor, origin, &event).replacen('[', "[+", 1)
        );
        if event.host == host && event.kind == EventKind::Health && event.new == health {
            return Some(event);
        }
    }
}

/// Waits until the monitor's own check of `host` has failed since `origin`; returns
/// how long after `origin` it was seen.
async fn wait_for_check_failure(
    ex: &Exchange,
    host: &str,
    origin: Instant,
    deadline: Instant,
) -> Option<Duration> {
    let id = ex
        .table
        .snapshot()
        .hosts()
        .iter()
        .find(|h| h.name() == host)?
        .id();
    while Instant::now() < deadline {
        if let Some(stats) = ex.monitor.host_stats(id) {
            if stats.consecutive_failures > 0 {
                let at = Instant::now() - origin;
                let why = stats
                    .last_error
                    .map_or(String::new(), |e| format!(" ({e})"));
                println!(
                    "   [+{:7.3} s] {host}: the health check fails{why}",
                    at.as_secs_f64()
                );
                return Some(at);
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}
