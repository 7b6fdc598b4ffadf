//! When each host is checked: the first round at once, then a grid spread across the
//! interval.
//!
//! HAProxy's `spread-checks` exists because probing every server at the same instant
//! makes bursts on the balancer and on shared backends. We give host `i` of `n` the
//! phase `i * period / n` and check it at `origin + k * period - phase` for `k >= 1`:
//! the first round still runs at start-up (relayd does), later checks are evenly spread,
//! and no gap between two checks of a host is longer than one period.

use std::time::Duration;

use tokio::time::Instant;

/// The phase of host `index` of `count` within `period`.
pub(crate) fn phase(index: usize, count: usize, period: Duration) -> Duration {
    if count == 0 || index >= count {
        return Duration::ZERO;
    }
    let nanos = period.as_nanos() * index as u128 / count as u128;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// The first tick later than `last`: the smallest `origin + k * period - phase`, `k >= 1`.
/// `period` must not be zero (the builder refuses it) and `phase < period`.
pub(crate) fn next_tick(
    origin: Instant,
    last: Instant,
    period: Duration,
    phase: Duration,
) -> Instant {
    let period_ns = period.as_nanos().max(1);
    let phase_ns = phase.as_nanos() % period_ns;
    let elapsed = last.saturating_duration_since(origin).as_nanos() + phase_ns;
    let k = elapsed / period_ns + 1;
    let at = k * period_ns - phase_ns;
    crate::check::deadline_after(
        origin,
        Duration::from_nanos(u64::try_from(at).unwrap_or(u64::MAX)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn phases_spread_evenly() {
        let p = 1000 * MS;
        let phases: Vec<_> = (0..4).map(|i| phase(i, 4, p)).collect();
        assert_eq!(phases, [Duration::ZERO, 250 * MS, 500 * MS, 750 * MS]);
        assert_eq!(phase(5, 4, p), Duration::ZERO);
    }

    #[test]
    fn grid() {
        // Host 1 of 4, period 1 s: checks at 0 (start), then 0.75 s, 1.75 s, 2.75 s.
        let o = Instant::now();
        let p = 1000 * MS;
        let ph = phase(1, 4, p);
        assert_eq!(next_tick(o, o, p, ph), o + 750 * MS);
        assert_eq!(next_tick(o, o + 750 * MS, p, ph), o + 1750 * MS);
        assert_eq!(next_tick(o, o + 1000 * MS, p, ph), o + 1750 * MS);
        // Host 0: on the whole seconds.
        assert_eq!(next_tick(o, o, p, Duration::ZERO), o + p);
        assert_eq!(next_tick(o, o + p, p, Duration::ZERO), o + 2 * p);
        // Late by more than a period: the next grid point, not a burst of missed ones.
        assert_eq!(next_tick(o, o + 3500 * MS, p, ph), o + 3750 * MS);
    }
}
