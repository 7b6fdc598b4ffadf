//! Health: what each relay's check is, and the whole-server check of `--affinity server`.
//!
//! relayd checks each relay's table on that relay's own port: with one `table
//! <exchange>` and eight relays, a server whose POP3 service is stopped is down for the
//! POP3 relays and up for the others. `--affinity service` (the default) does the same
//! with one lb table per relay ([`check_for`] gives each its check). A client then
//! reaches the same server on every relay whose service runs there (the hash modes map
//! alike in every table), and only the clients of a broken service move.
//!
//! `--affinity server` keeps one table for all relays and makes its single health state
//! mean something definite: a server is up when **every** one of its eight services
//! answers ([`AllOf`], a check of checks, run concurrently under one deadline). A server
//! that lost any service leaves all relays, so a client's OWA, mail and RPC sessions
//! always stay on one server; but on Exchange 2010, which installs POP3 and IMAP4
//! stopped, one service nobody uses takes every server out of every relay.
//!
//! The checks, where a protocol check says more than relayd's `check tcp`:
//! - HTTPS: `check https "/owa/auth/logon.aspx" code 200`: TLS works and OWA's logon
//!   page answers (a TCP connect succeeds even when IIS answers 503);
//! - POP3, IMAP and their TLS versions: `send nothing expect "+OK*"` / `"* OK*"`, with
//!   `tls` for the secure ports: the banner shows that the mail service itself is up;
//! - RPC: `check tcp`, as in the seed: a DCE/RPC bind is more than a health check
//!   should speak.
//!
//! `--check tcp` uses `check tcp` everywhere, exactly as the seed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::{join_all, BoxFuture};
use lb::health::{Check, Failure, Http, Outcome, Probe, SendExpect, Tcp, TlsOptions};

use crate::cli::CheckKind;
use crate::services::{Protocol, Service};

/// The HTTPS check's path: OWA's logon page, present on Exchange 2010 and later.
pub const OWA_PATH: &str = "/owa/auth/logon.aspx";

/// How often hosts are checked, and how many failures in a row take one down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// The time between two checks of a host.
    pub interval: Duration,
    /// relayd's `retry N`: a host goes down after N+1 failed checks in a row.
    pub retry: u32,
}

/// The schedule with the demo servers: a check every second, so that the
/// demonstration is short (relayd's default is 10 s), and `retry 1`, so that one check
/// slowed past its timeout by a busy machine (the demo runs in CI, next to builds) is
/// not taken for an outage. A stopped server is still marked down at the first failed
/// connect of a client (passive health).
pub const DEMO: Schedule = Schedule {
    interval: Duration::from_secs(1),
    retry: 1,
};
/// The schedule with real servers: relayd's defaults (interval 10 s, no retry).
pub const REAL: Schedule = Schedule {
    interval: Duration::from_secs(10),
    retry: 0,
};

impl Schedule {
    /// The latest a check fails after a service stops: the next check comes within an
    /// interval and fails within the timeout.
    pub fn fail_bound(&self) -> Duration {
        self.interval + TIMEOUT
    }

    /// The latest the checks alone take a stopped service's host down: `retry + 1`
    /// failures, an interval apart.
    pub fn down_bound(&self) -> Duration {
        self.interval * (self.retry + 1) + TIMEOUT
    }

    /// The bound of [`down_bound`](Self::down_bound) in words.
    pub fn down_rule(&self) -> String {
        match self.retry {
            0 => "interval + timeout".to_owned(),
            r => format!("{} intervals + timeout", r + 1),
        }
    }

    /// The latest the checks bring a restarted service's host back: the check in
    /// progress may have started just before the restart, the next one succeeds.
    pub fn up_bound(&self) -> Duration {
        self.interval * 2 + TIMEOUT
    }
}
/// The time a check may take (with `--affinity server`, the eight checks of a host
/// together: they run concurrently). relayd's 200 ms is enough on a LAN; a round takes
/// 10 to 25 ms on loopback in a debug build, and the rest is margin for a machine busy
/// with other work.
pub const TIMEOUT: Duration = Duration::from_millis(500);

/// One service of a host, checked on its own port.
struct Part {
    relay: &'static str,
    port: u16,
    check: Arc<dyn Check>,
}

/// Up when every part is up: a host-level check made of per-service checks.
///
/// The parts run concurrently against the probe's IP, each on its own port, all under
/// the probe's deadline. The first failing part (in configuration order) decides the
/// outcome, with its relay and address in the detail.
pub struct AllOf {
    parts: Vec<Part>,
}

impl AllOf {
    /// The check of every service in `services`, on the given backend ports.
    pub fn new(kind: CheckKind, services: &[(Service, u16)]) -> Result<Self, lb::health::Error> {
        let parts = services
            .iter()
            .map(|(service, port)| {
                Ok(Part {
                    relay: service.relay,
                    port: *port,
                    check: check_for(kind, service.protocol)?,
                })
            })
            .collect::<Result<_, lb::health::Error>>()?;
        Ok(AllOf { parts })
    }
}

impl Check for AllOf {
    fn name(&self) -> &'static str {
        "every service"
    }

    fn check<'a>(&'a self, probe: &'a Probe) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let probes: Vec<Probe> = self
                .parts
                .iter()
                .map(|p| {
                    let addr = SocketAddr::new(probe.addr().ip(), p.port);
                    Probe::with_deadline(addr, probe.deadline())
                })
                .collect();
            let outcomes = join_all(
                self.parts
                    .iter()
                    .zip(&probes)
                    .map(|(part, probe)| part.check.check(probe)),
            )
            .await;
            for ((part, probe), outcome) in self.parts.iter().zip(&probes).zip(outcomes) {
                let explain = |f: &Failure| {
                    let what = f.detail().map_or(String::new(), |d| format!(": {d}"));
                    Failure::new(f.reason()).with_detail(format!(
                        "{} {}{what}",
                        part.relay,
                        probe.addr()
                    ))
                };
                match outcome {
                    Outcome::Up => {}
                    Outcome::Down(f) => return Outcome::Down(explain(&f)),
                    Outcome::Unknown(f) => return Outcome::Unknown(explain(&f)),
                }
            }
            Outcome::Up
        })
    }
}

/// The check of one service, on the probe's port.
pub fn check_for(kind: CheckKind, protocol: Protocol) -> Result<Arc<dyn Check>, lb::health::Error> {
    if kind == CheckKind::Tcp {
        return Ok(Arc::new(Tcp));
    }
    Ok(match protocol {
        Protocol::Https => Arc::new(Http::code(OWA_PATH, 200)?.tls(TlsOptions::new())),
        Protocol::Pop3 => Arc::new(SendExpect::pop3()),
        Protocol::Pop3s => Arc::new(SendExpect::pop3().tls(TlsOptions::new())),
        Protocol::Imap => Arc::new(SendExpect::imap()),
        Protocol::Imaps => Arc::new(SendExpect::imap().tls(TlsOptions::new())),
        Protocol::Rpc => Arc::new(Tcp),
    })
}

/// The check of one service in relayd's configuration syntax, for the listen map.
pub fn describe(kind: CheckKind, protocol: Protocol) -> String {
    if kind == CheckKind::Tcp {
        return "check tcp".to_owned();
    }
    match protocol {
        Protocol::Https => format!("check https \"{OWA_PATH}\" code 200"),
        Protocol::Pop3 => "check send nothing expect \"+OK*\"".to_owned(),
        Protocol::Pop3s => "check send nothing expect \"+OK*\" tls".to_owned(),
        Protocol::Imap => "check send nothing expect \"* OK*\"".to_owned(),
        Protocol::Imaps => "check send nothing expect \"* OK*\" tls".to_owned(),
        Protocol::Rpc => "check tcp (as the seed)".to_owned(),
    }
}
