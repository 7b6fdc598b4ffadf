//! A round of the demonstration: every source address connects through every relay,
//! and what each connection found is kept for the checks and the printout.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use crate::clients::Clients;
use crate::services::Service;

/// The demo clients' source addresses: 127.0.0.10 to 127.0.0.29.
pub fn sources() -> Vec<IpAddr> {
    (10..30)
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
        .collect()
}

/// One connection of a round.
#[derive(Clone, Debug)]
pub struct Visit {
    /// Index of the source address.
    pub source: usize,
    /// Index of the relay.
    pub relay: usize,
    /// The server that answered, or what went wrong.
    pub result: Result<String, String>,
}

/// Every connection of one round.
pub struct Round {
    /// The source addresses.
    pub sources: Vec<IpAddr>,
    /// The relays, in the seed's order.
    pub relays: Vec<Service>,
    /// What each connection found.
    pub visits: Vec<Visit>,
}

impl Round {
    /// Each source connects through every relay `repeats` times, one connection after
    /// the other; the sources run concurrently.
    pub async fn run(
        clients: &Clients,
        targets: &[(Service, SocketAddr)],
        sources: &[IpAddr],
        repeats: usize,
    ) -> Round {
        let targets: Arc<[(Service, SocketAddr)]> = targets.into();
        let mut tasks = Vec::with_capacity(sources.len());
        for (s, &source) in sources.iter().enumerate() {
            let (clients, targets) = (clients.clone(), targets.clone());
            tasks.push(tokio::spawn(async move {
                let mut visits = Vec::with_capacity(targets.len() * repeats);
                for _ in 0..repeats {
                    for (r, (service, addr)) in targets.iter().enumerate() {
                        let result = clients.visit(*service, source, *addr).await;
                        visits.push(Visit {
                            source: s,
                            relay: r,
                            result,
                        });
                    }
                }
                visits
            }));
        }
        let mut visits = Vec::new();
        for (s, task) in tasks.into_iter().enumerate() {
            match task.await {
                Ok(v) => visits.extend(v),
                Err(e) => visits.push(Visit {
                    source: s,
                    relay: 0,
                    result: Err(format!("client task failed: {e}")),
                }),
            }
        }
        Round {
            sources: sources.to_vec(),
            relays: targets.iter().map(|(s, _)| *s).collect(),
            visits,
        }
    }

    /// The connections that failed.
    pub fn failures(&self) -> Vec<&Visit> {
        self.visits.iter().filter(|v| v.result.is_err()).collect()
    }

    /// Connections served by `server`.
    pub fn count_on(&self, server: &str) -> usize {
        self.visits
            .iter()
            .filter(|v| v.result.as_deref() == Ok(server))
            .count()
    }

    /// How many of a source's connections each server served.
    pub fn servers_of(&self, source: usize) -> BTreeMap<&str, usize> {
        let mut out = BTreeMap::new();
        for v in self.visits.iter().filter(|v| v.source == source) {
            if let Ok(server) = &v.result {
                *out.entry(server.as_str()).or_insert(0) += 1;
            }
        }
        out
    }

    /// The one server that served every connection of `source`, if there is one.
    pub fn home(&self, source: usize) -> Option<&str> {
        let all_ok = self
            .visits
            .iter()
            .filter(|v| v.source == source)
            .all(|v| v.result.is_ok());
        let servers = self.servers_of(source);
        (all_ok && servers.len() == 1)
            .then(|| servers.keys().next().copied())
            .flatten()
    }

    /// The one server that served every connection of `source` through relay `relay`.
    pub fn home_on(&self, source: usize, relay: usize) -> Option<&str> {
        let mut seen: Option<&str> = None;
        for v in self
            .visits
            .iter()
            .filter(|v| v.source == source && v.relay == relay)
        {
            match (&v.result, seen) {
                (Err(_), _) => return None,
                (Ok(s), None) => seen = Some(s),
                (Ok(s), Some(prev)) if prev != s => return None,
                _ => {}
            }
        }
        seen
    }

    /// A source's servers in one cell: the server, or each server with its count.
    pub fn cell(&self, source: usize) -> String {
        if let Some(home) = self.home(source) {
            return home.to_owned();
        }
        let failed = self
            .visits
            .iter()
            .filter(|v| v.source == source && v.result.is_err())
            .count();
        let mut parts: Vec<String> = self
            .servers_of(source)
            .iter()
            .map(|(s, n)| format!("{s} x{n}"))
            .collect();
        if failed > 0 {
            parts.push(format!("failed x{failed}"));
        }
        parts.join(", ")
    }

    /// Prints failures, at most five, with what went wrong.
    pub fn print_failures(&self) {
        let failures = self.failures();
        for v in failures.iter().take(5) {
            println!(
                "  ! {} through {}: {}",
                self.sources[v.source],
                self.relays[v.relay].relay,
                v.result.as_ref().err().map_or("", String::as_str)
            );
        }
        if failures.len() > 5 {
            println!("  ! ... and {} more", failures.len() - 5);
        }
    }
}

/// Prints one cell per source, in two columns: 127.0.0.10 to .19 on the left,
/// .20 to .29 on the right.
pub fn print_sources(sources: &[IpAddr], cell: impl Fn(usize) -> String) {
    let half = sources.len().div_ceil(2);
    let cells: Vec<String> = (0..sources.len()).map(&cell).collect();
    let width = cells[..half]
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(0);
    for i in 0..half {
        let left = format!("{:<11} {:<width$}", sources[i].to_string(), cells[i]);
        match sources.get(i + half) {
            Some(right) => println!(
                "    {left}    {:<11} {}",
                right.to_string(),
                cells[i + half]
            ),
            None => println!("    {}", left.trim_end()),
        }
    }
}
