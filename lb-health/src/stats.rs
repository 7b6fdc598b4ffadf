//! Per-host check statistics: [`CheckStats`].

use lb_core::{BackendId, Health};
use tokio::time::Instant;

use crate::Failure;

/// What a monitor knows about one host: relayd's `relayctl show hosts` line.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckStats {
    /// The host's id.
    pub id: BackendId,
    /// The host's name.
    pub host: String,
    /// Its health in the table now.
    pub health: Health,
    /// Checks run (including those aborted at the interval).
    pub checks: u64,
    /// Checks that found the host up.
    pub successes: u64,
    /// Failures in a row, up to now.
    pub consecutive_failures: u32,
    /// Successes in a row, up to now.
    pub consecutive_successes: u32,
    /// The last failure: from a check, or a mark by someone else.
    pub last_error: Option<Failure>,
    /// When the host's health last changed (by anyone), since the monitor started.
    pub last_change: Option<Instant>,
    /// Times the host was marked down by someone else than the monitor (an operator).
    pub marks: u64,
    /// Whether the host is ejected now (passive health, see [`Passive`](crate::Passive)).
    pub ejected: bool,
    /// Times the host was ejected since the monitor started.
    pub ejections: u64,
}

impl CheckStats {
    /// The share of checks that found the host up, in percent; `None` before the first
    /// check.
    pub fn availability(&self) -> Option<f64> {
        (self.checks > 0).then(|| self.successes as f64 * 100.0 / self.checks as f64)
    }
}

/// The monitor's running record of one host.
#[derive(Clone, Debug, Default)]
pub(crate) struct HostRecord {
    pub(crate) checks: u64,
    pub(crate) successes: u64,
    pub(crate) consecutive_failures: u32,
    pub(crate) consecutive_successes: u32,
    pub(crate) last_error: Option<Failure>,
    pub(crate) last_change: Option<Instant>,
    pub(crate) marks: u64,
    pub(crate) ejections: u64,
    /// Waiting for its first check: a table is not demoted while a host is.
    pub(crate) pending: bool,
}

impl HostRecord {
    pub(crate) fn pending() -> Self {
        HostRecord {
            pending: true,
            ..Self::default()
        }
    }

    pub(crate) fn stats(
        &self,
        id: BackendId,
        host: &str,
        (health, ejected): (Health, bool),
    ) -> CheckStats {
        CheckStats {
            id,
            host: host.to_owned(),
            health,
            checks: self.checks,
            successes: self.successes,
            consecutive_failures: self.consecutive_failures,
            consecutive_successes: self.consecutive_successes,
            last_error: self.last_error.clone(),
            last_change: self.last_change,
            marks: self.marks,
            ejected,
            ejections: self.ejections,
        }
    }
}
