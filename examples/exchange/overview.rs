//! What the balancer prints about itself: the listen map, the hosts' health, the
//! health settings and what `--affinity` means, and one line per health change.

use lb::core::Health;
use lb::health::{EventKind, HostEvent, Source};
use tokio::time::Instant;

use crate::cli::{Affinity, CheckKind, Options};
use crate::health::{self, Schedule};
use crate::report::{since, Table as Columns};
use crate::setup::Exchange;

impl Exchange {
    /// Prints the listen map: every relay, where it listens, its table and its check.
    pub fn print_listen_map(&self, options: &Options) {
        let shared = match self.affinity {
            Affinity::Server => "one table <exchange> and one balancer shared by all eight",
            Affinity::Service => "each relay its own table of the same servers",
        };
        println!(
            "Relays: listen on {}, mode {}, {shared}",
            options.listen, options.mode
        );
        let mut t = Columns::new([
            "relay",
            "seed port",
            "listen",
            "backend port",
            "table",
            "health check",
        ]);
        for r in &self.relays {
            let check = match self.affinity {
                Affinity::Service => health::describe(options.check, r.service.protocol),
                Affinity::Server => format!(
                    "every service's (this one: {})",
                    health::describe(options.check, r.service.protocol)
                ),
            };
            t.row([
                r.service.relay.to_owned(),
                r.service.seed_port.to_string(),
                r.handle.local_addrs()[0].to_string(),
                r.backend_port.to_string(),
                format!("<{}>", self.pool_of(r).table.name()),
                check,
            ]);
        }
        t.print("  ");
        if !options.real_ports {
            println!("  (ports below 1024 moved up by 10000 so that no privilege is needed; --real-ports keeps them)");
        }
        println!();
    }

    /// Prints every host's health now: with one table per relay, a host per line and
    /// a relay per column; then why each host that is not up is not, from its
    /// monitor's last error.
    pub fn print_hosts(&self) {
        let mut whys = Vec::new();
        let first = self.pools[0].table.snapshot();
        let mut header = vec!["host".to_owned(), "address".to_owned()];
        header.extend((0..self.pools.len()).map(|p| self.pool_label(p)));
        let mut rows = vec![header];
        for i in 0..first.len() {
            let host = first.host(i);
            let mut row = vec![
                host.name().to_owned(),
                host.backend().address().ip().to_string(),
            ];
            for (p, pool) in self.pools.iter().enumerate() {
                let snapshot = pool.table.snapshot();
                let health = snapshot.health(i);
                row.push(health.to_string());
                if health == Health::Up {
                    continue;
                }
                let stats = pool.monitor.host_stats(host.id());
                let why = match stats.and_then(|s| s.last_error) {
                    Some(error) => error.to_string(),
                    None if health == Health::Unknown => "not checked yet".to_owned(),
                    None => "marked down by a relay's failed connect".to_owned(),
                };
                let place = match self.pools.len() {
                    1 => String::new(),
                    _ => format!(" on {}", self.pool_label(p)),
                };
                whys.push(format!("{}{place}: {why}", host.name()));
            }
            rows.push(row);
        }
        print_rows("  ", &rows);
        for why in whys {
            println!("    {why}");
        }
    }
}

impl Exchange {
    /// A pool's column title: its relay's name, or `health` for the one shared table.
    fn pool_label(&self, pool: usize) -> String {
        match self.relays.iter().find(|r| r.pool == pool) {
            Some(r) if self.pools.len() > 1 => r.service.relay.to_owned(),
            _ => "health".to_owned(),
        }
    }
}

/// Prints rows of cells in left-aligned columns.
fn print_rows(indent: &str, rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{indent}{}", line.join("  ").trim_end());
    }
}

/// What `--affinity` means, in two sentences.
pub fn affinity_summary(affinity: Affinity) -> &'static str {
    match affinity {
        Affinity::Service => {
            "Health per service (--affinity service, the default, as relayd): each relay \
             checks its own service on its own table, so a server whose POP3 is stopped \
             leaves the POP3 relays only; with a hash mode a client still reaches the same \
             server on every relay whose service runs there. --affinity server takes a \
             server out of every relay when any service fails instead."
        }
        Affinity::Server => {
            "Health per server (--affinity server): one table shared by all eight relays, \
             a server up only while all eight services answer, so a client's OWA, mail and \
             RPC sessions always stay on one server, but one stopped service (POP3 is \
             installed stopped on Exchange 2010) takes the whole server out of every relay."
        }
    }
}

/// The health settings, and why they are what they are.
pub fn check_summary(
    kind: CheckKind,
    affinity: Affinity,
    schedule: Schedule,
    demo: bool,
) -> String {
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
    let retry = match (schedule.retry, demo) {
        (0, _) => "retry 0 (relayd's default: one failed check takes a host down)".to_owned(),
        (r, true) => format!(
            "retry {r} ({} failed checks in a row take a host down, so that one check slowed \
             past its timeout on a busy machine is not an outage; clients still mark a \
             stopped server down at their first failed connect)",
            r + 1
        ),
        (r, false) => format!(
            "retry {r} ({} failed checks in a row take a host down)",
            r + 1
        ),
    };
    let timeout = match affinity {
        Affinity::Service => "per check",
        Affinity::Server => "for all eight, run together",
    };
    format!(
        "{what} Interval {} s ({why}), timeout {} ms {timeout} (relayd's is 200 ms per \
         check; the margin is for a busy machine running an unoptimised build), {retry}.",
        schedule.interval.as_secs(),
        health::TIMEOUT.as_millis()
    )
}

/// One line for a health change: when (from `origin`), which host in which table, what,
/// why and who decided.
pub fn describe_event(ex: &Exchange, origin: Instant, event: &HostEvent) -> String {
    let mut why = event.reason.to_string();
    if event.kind == EventKind::Health && event.new != Health::Up && event.source == Source::Check {
        if let Some(detail) = ex
            .monitor_of(&event.table)
            .and_then(|m| m.host_stats(event.id))
            .and_then(|s| s.last_error)
            .and_then(|f| f.detail().map(str::to_owned))
        {
            why = format!("{why}: {detail}");
        }
    }
    let by = match event.source {
        Source::Check => "by the health check",
        Source::Passive => "by a relay's failed connect (passive health)",
        Source::External => "by an operator",
    };
    let when = since(origin, event.at);
    let (host, table) = (&event.host, &event.table);
    match event.kind {
        EventKind::Health => format!(
            "[{when}] {host} in <{table}>: {} -> {} ({why}), {by}",
            event.old, event.new
        ),
        EventKind::Ejected => format!("[{when}] {host} in <{table}>: ejected ({why}), {by}"),
        // The reason says who: the ejection time ran out, or a check succeeded.
        EventKind::EjectionEnded => format!("[{when}] {host} in <{table}>: ejection ended ({why})"),
    }
}
