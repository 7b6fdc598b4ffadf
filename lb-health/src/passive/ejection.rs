//! The bookkeeping behind [`Passive`](super::Passive)'s ejections: per-host counts, the
//! back-off, the share rule, and how durations read in events.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use lb_core::{Admin, Backend, BackendId, Health, Snapshot};
use tokio::time::Instant;

/// Passive health's settings, validated by the `with_*` methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Settings {
    pub(super) threshold: u32,
    pub(super) base: Duration,
    pub(super) max: Duration,
    pub(super) max_percent: u8,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            threshold: 1,
            base: Duration::from_secs(10),
            max: Duration::from_secs(300),
            max_percent: 50,
        }
    }
}

/// What passive health remembers of one host.
#[derive(Debug, Default)]
pub(super) struct Record {
    /// Consecutive failures since the last success, ejection or recovery.
    pub(super) failures: u32,
    /// Consecutive ejections: the back-off exponent. Reset by the rule in
    /// [`Record::success`].
    pub(super) ejections: u32,
    /// When this handle's ejection of the host ends, while one is in force.
    pub(super) until: Option<Instant>,
    /// Names the ejection in force, so that a timer of an earlier one ends nothing.
    pub(super) generation: u64,
    /// When the host's last ejection ended.
    pub(super) ended_at: Option<Instant>,
}

impl Record {
    /// A success at `now`: the failure count starts again, and the back-off too once
    /// the host has served at least one base ejection time since its last ejection
    /// ended (a success right after the end proves little: the next failure still
    /// doubles).
    pub(super) fn success(&mut self, now: Instant, base: Duration) {
        self.failures = 0;
        if self.until.is_none()
            && self
                .ended_at
                .is_some_and(|end| now.saturating_duration_since(end) >= base)
        {
            self.ejections = 0;
            self.ended_at = None;
        }
    }

    /// Nothing worth keeping: the record may go.
    pub(super) fn is_idle(&self) -> bool {
        self.failures == 0 && self.ejections == 0 && self.until.is_none()
    }
}

/// Every host's record, and the earliest end among ejections in force (for the sweep).
#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) settings: Settings,
    pub(super) hosts: HashMap<BackendId, Record>,
    /// No ejection of this handle ends before this; `None` when none is in force.
    pub(super) next_end: Option<Instant>,
}

impl State {
    /// The ejections due at `now` (host and generation), recomputing `next_end` from
    /// those still in force.
    pub(super) fn due(&mut self, now: Instant) -> Vec<(BackendId, u64)> {
        if self.next_end.is_none_or(|end| end > now) {
            return Vec::new();
        }
        let mut due = Vec::new();
        let mut next = None::<Instant>;
        for (id, rec) in &self.hosts {
            match rec.until {
                Some(until) if until <= now => due.push((*id, rec.generation)),
                Some(until) => next = Some(next.map_or(until, |n| n.min(until))),
                None => {}
            }
        }
        self.next_end = next;
        due
    }
}

/// The `k`-th consecutive ejection's duration (`k >= 1`): `base * 2^(k-1)`, at most
/// `max`.
pub(super) fn ejection_time(base: Duration, max: Duration, k: u32) -> Duration {
    let factor = 1u32.checked_shl(k.saturating_sub(1)).unwrap_or(u32::MAX);
    base.checked_mul(factor).unwrap_or(max).min(max)
}

/// Why a host that reached the threshold stays in: `None` if it may be ejected.
///
/// The hosts that count are those up and enabled (ejected or not): at most
/// `max_percent` % of them, rounded down but at least one when `max_percent > 0`, may be
/// ejected at once, and never the last one that is usable.
pub(super) fn held<B: Backend>(snap: &Snapshot<B>, max_percent: u8) -> Option<&'static str> {
    let (mut eligible, mut ejected) = (0usize, 0usize);
    for i in 0..snap.len() {
        if snap.health(i) == Health::Up && snap.admin(i) == Admin::Enabled {
            eligible += 1;
            ejected += usize::from(snap.is_ejected(i));
        }
    }
    let allowed = match max_percent {
        0 => 0,
        p => (eligible * usize::from(p) / 100).max(1),
    };
    if eligible - ejected <= 1 {
        Some("last usable host")
    } else if ejected >= allowed {
        Some("max ejected share reached")
    } else {
        None
    }
}

/// A duration in seconds as people write it: `10`, `0.3`, `1.25`.
pub(super) struct Seconds(pub(super) Duration);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (s, ms) = (self.0.as_secs(), self.0.subsec_millis());
        if ms == 0 {
            return write!(f, "{s}");
        }
        let frac = format!("{ms:03}");
        write!(f, "{s}.{}", frac.trim_end_matches('0'))
    }
}
