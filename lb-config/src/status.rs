//! What a running configuration reports: [`Status`] (relay stats and check results),
//! as Prometheus text exposition ([`Status::metrics`], through `prometheus-client`) or
//! as a JSON summary like `relayctl show summary` ([`Status::summary_json`]).

use std::fmt;

use lb_core::Health;
use lb_health::CheckStats;
use lb_relay::RelayStats;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::running::Running;

/// A snapshot of everything running.
#[derive(Clone, Debug, Default)]
pub struct Status {
    /// Each lb relay's stats (one per relay and listen port).
    pub relays: Vec<RelayStats>,
    /// Each checked table instance's check results.
    pub checks: Vec<(String, Vec<CheckStats>)>,
}

impl Running {
    /// The stats of every relay and the results of every check, now.
    pub fn status(&self) -> Status {
        let mut status = Status::default();
        for r in &self.relays {
            status.relays.extend(r.handles.iter().map(|h| h.stats()));
            status.checks.extend(
                r.monitors
                    .iter()
                    .map(|m| (m.table().name().to_owned(), m.stats())),
            );
        }
        status
    }
}

fn health_value(h: Health) -> i64 {
    match h {
        Health::Up => 1,
        Health::Down => 0,
        _ => -1,
    }
}

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// One metric family: its samples, each with labels.
fn family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    samples: Vec<(Labels, u64)>,
) -> Result<(), fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for (l, v) in samples {
        let m = metric.encode_family(&l)?;
        match kind {
            MetricType::Counter => ConstCounter::new(v).encode(m)?,
            _ => ConstGauge::new(v as i64).encode(m)?,
        }
    }
    Ok(())
}

impl Collector for Status {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), fmt::Error> {
        let per_relay = |f: fn(&RelayStats) -> u64| -> Vec<(Labels, u64)> {
            self.relays
                .iter()
                .map(|r| (labels(&[("relay", &r.name)]), f(r)))
                .collect()
        };
        family(
            &mut e,
            "lb_relay_sessions_active",
            "Sessions running now.",
            MetricType::Gauge,
            per_relay(|r| r.active),
        )?;
        family(
            &mut e,
            "lb_relay_sessions",
            "Sessions accepted.",
            MetricType::Counter,
            per_relay(|r| r.total),
        )?;
        family(
            &mut e,
            "lb_relay_sessions_failed",
            "Sessions closed because no host answered.",
            MetricType::Counter,
            per_relay(|r| r.failed),
        )?;
        family(
            &mut e,
            "lb_relay_sessions_refused",
            "Sessions refused (relay disabled).",
            MetricType::Counter,
            per_relay(|r| r.refused),
        )?;
        family(
            &mut e,
            "lb_relay_idle_timeouts",
            "Sessions closed by the session timeout.",
            MetricType::Counter,
            per_relay(|r| r.idle_timeouts),
        )?;
        family(
            &mut e,
            "lb_relay_connect_failures",
            "Backend connects that failed.",
            MetricType::Counter,
            per_relay(|r| r.connect_failures),
        )?;
        let bytes = self.relays.iter().flat_map(|r| {
            [
                (
                    labels(&[("relay", &r.name), ("direction", "client_to_server")]),
                    r.bytes_client_to_server,
                ),
                (
                    labels(&[("relay", &r.name), ("direction", "server_to_client")]),
                    r.bytes_server_to_client,
                ),
            ]
        });
        family(
            &mut e,
            "lb_relay_bytes",
            "Bytes copied.",
            MetricType::Counter,
            bytes.collect(),
        )?;
        let hosts: Vec<_> = self
            .relays
            .iter()
            .flat_map(|r| {
                r.tables.iter().flat_map(move |t| {
                    t.hosts.iter().map(move |h| {
                        (
                            labels(&[("relay", &r.name), ("table", &t.name), ("host", &h.name)]),
                            h,
                        )
                    })
                })
            })
            .collect();
        family(
            &mut e,
            "lb_host_sessions_active",
            "Active states (sessions) on the host.",
            MetricType::Gauge,
            hosts.iter().map(|(l, h)| (l.clone(), h.active)).collect(),
        )?;
        family(
            &mut e,
            "lb_host_sessions",
            "Sessions given to the host.",
            MetricType::Counter,
            hosts.iter().map(|(l, h)| (l.clone(), h.total)).collect(),
        )?;
        family(
            &mut e,
            "lb_host_connect_failures",
            "Connects to the host that failed.",
            MetricType::Counter,
            hosts
                .iter()
                .map(|(l, h)| (l.clone(), h.connect_failures))
                .collect(),
        )?;
        let mut health = e.encode_descriptor(
            "lb_host_health",
            "1 up, 0 down, -1 unknown.",
            None,
            MetricType::Gauge,
        )?;
        for (l, h) in &hosts {
            ConstGauge::new(health_value(h.health)).encode(health.encode_family(l)?)?;
        }
        let checks: Vec<_> = self
            .checks
            .iter()
            .flat_map(|(t, cs)| {
                cs.iter()
                    .map(move |c| (labels(&[("table", t), ("host", &c.host)]), c))
            })
            .collect();
        family(
            &mut e,
            "lb_checks",
            "Health checks run.",
            MetricType::Counter,
            checks.iter().map(|(l, c)| (l.clone(), c.checks)).collect(),
        )?;
        family(
            &mut e,
            "lb_check_successes",
            "Health checks passed.",
            MetricType::Counter,
            checks
                .iter()
                .map(|(l, c)| (l.clone(), c.successes))
                .collect(),
        )?;
        Ok(())
    }
}

impl Status {
    /// The Prometheus text exposition (OpenMetrics text, ending in `# EOF`).
    pub fn metrics(&self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self.clone()));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }

    /// A JSON summary like `relayctl show summary`: relays, their tables and hosts.
    pub fn summary_json(&self) -> String {
        let check = |table: &str, host: &str| {
            self.checks
                .iter()
                .find(|(t, _)| t == table)
                .and_then(|(_, cs)| cs.iter().find(|c| c.host == host))
        };
        let relays: Vec<_> = self
            .relays
            .iter()
            .map(|r| {
                let tables: Vec<_> = r
                    .tables
                    .iter()
                    .map(|t| {
                        let hosts: Vec<_> = t
                            .hosts
                            .iter()
                            .map(|h| {
                                let c = check(&t.name, &h.name);
                                serde_json::json!({
                                    "name": h.name, "health": h.health.to_string(), "admin": format!("{:?}", h.admin).to_lowercase(),
                                    "active": h.active, "total": h.total, "connect_failures": h.connect_failures,
                                    "checks": c.map(|c| c.checks), "availability": c.and_then(|c| c.availability()),
                                })
                            })
                            .collect();
                        serde_json::json!({ "name": t.name, "hosts": hosts })
                    })
                    .collect();
                serde_json::json!({
                    "name": r.name, "status": if r.enabled { "active" } else { "disabled" },
                    "active": r.active, "total": r.total, "failed": r.failed, "refused": r.refused,
                    "bytes_in": r.bytes_client_to_server, "bytes_out": r.bytes_server_to_client, "tables": tables,
                })
            })
            .collect();
        serde_json::json!({ "relays": relays }).to_string()
    }
}
