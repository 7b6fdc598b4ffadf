//! Sliding-window session counts: how many sessions started in the last minute, hour
//! and day.
//!
//! relayctl's `show relays` keeps "last minute/hour/day" counters that are really
//! cumulative per period and never reset the daily one (relayd's `relay_statistics`
//! only rolls a bucket when a session happens to arrive, and its `tick` arithmetic
//! skips empty periods). Here each window is a ring of time buckets stamped with the
//! period they count: a bucket from an earlier lap of the ring is recognised by its
//! stamp and counts as zero, so an idle relay reads 0 an hour later, whatever happened
//! in between.
//!
//! Resolution: the minute is counted in 60 one-second buckets, the hour and the day in
//! 1440 one-minute buckets; each window covers its last full buckets plus the current,
//! partial one. Memory: about 24 KiB per relay, fixed.

use std::sync::Arc;
use std::time::Duration;

use lb_core::Clock;
use parking_lot::Mutex;

/// A ring of `(period, count)` buckets of `width` seconds each.
struct Ring {
    width: u64,
    buckets: Box<[(u64, u64)]>,
}

impl Ring {
    fn new(width: u64, len: usize) -> Self {
        // Period u64::MAX never occurs, so fresh buckets count as empty.
        Ring {
            width,
            buckets: vec![(u64::MAX, 0); len].into(),
        }
    }

    fn record(&mut self, now_secs: u64) {
        let period = now_secs / self.width;
        let len = self.buckets.len() as u64;
        let bucket = &mut self.buckets[(period % len) as usize];
        if bucket.0 != period {
            *bucket = (period, 0);
        }
        bucket.1 += 1;
    }

    /// The count over the last `periods` periods, the current one included.
    fn sum(&self, now_secs: u64, periods: u64) -> u64 {
        let current = now_secs / self.width;
        let oldest = current.saturating_sub(periods.saturating_sub(1));
        self.buckets
            .iter()
            .filter(|(p, _)| *p != u64::MAX && *p >= oldest && *p <= current)
            .map(|(_, n)| n)
            .sum()
    }
}

/// Session starts in the last minute, hour and day, from a [`Clock`].
pub(crate) struct Windows {
    clock: Arc<dyn Clock>,
    rings: Mutex<(Ring, Ring)>,
}

/// The three windows at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowCounts {
    /// Sessions started in the last minute.
    pub last_minute: u64,
    /// Sessions started in the last hour.
    pub last_hour: u64,
    /// Sessions started in the last day.
    pub last_day: u64,
}

impl Windows {
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Self {
        Windows {
            clock,
            rings: Mutex::new((Ring::new(1, 60), Ring::new(60, 1440))),
        }
    }

    fn now_secs(&self) -> u64 {
        let now: Duration = self.clock.now();
        now.as_secs()
    }

    /// Counts one session starting now.
    pub(crate) fn record(&self) {
        let now = self.now_secs();
        let mut rings = self.rings.lock();
        rings.0.record(now);
        rings.1.record(now);
    }

    /// The counts as of now.
    pub(crate) fn counts(&self) -> WindowCounts {
        let now = self.now_secs();
        let rings = self.rings.lock();
        WindowCounts {
            last_minute: rings.0.sum(now, 60),
            last_hour: rings.1.sum(now, 60),
            last_day: rings.1.sum(now, 1440),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_core::ManualClock;

    fn counts(w: &Windows) -> (u64, u64, u64) {
        let c = w.counts();
        (c.last_minute, c.last_hour, c.last_day)
    }

    #[test]
    fn windows_slide_and_forget() {
        let clock = ManualClock::new();
        let w = Windows::new(Arc::new(clock.clone()));
        assert_eq!(counts(&w), (0, 0, 0));
        // t = 0 s: 3 sessions.
        for _ in 0..3 {
            w.record();
        }
        assert_eq!(counts(&w), (3, 3, 3));
        // t = 30 s: 2 more; all within the minute.
        clock.advance(Duration::from_secs(30));
        w.record();
        w.record();
        assert_eq!(counts(&w), (5, 5, 5));
        // t = 60 s: the t = 0 bucket left the minute, the t = 30 one has not.
        clock.advance(Duration::from_secs(30));
        assert_eq!(counts(&w), (2, 5, 5));
        // t = 90 s: the minute is empty, the hour still has everything.
        clock.advance(Duration::from_secs(30));
        assert_eq!(counts(&w), (0, 5, 5));
        // t = 60 min: the minute-0 bucket (all 5) left the hour.
        clock.advance(Duration::from_secs(3600 - 90));
        w.record();
        assert_eq!(counts(&w), (1, 1, 6));
        // t = 24 h: only the session of minute 60 remains in the day.
        clock.advance(Duration::from_secs(23 * 3600));
        assert_eq!(counts(&w), (0, 0, 1));
        // t = 25 h: everything is gone, no counter is stuck (relayctl's daily one is).
        clock.advance(Duration::from_secs(3600));
        assert_eq!(counts(&w), (0, 0, 0));
    }

    #[test]
    fn a_lap_of_the_ring_resets_buckets() {
        let clock = ManualClock::new();
        let w = Windows::new(Arc::new(clock.clone()));
        w.record();
        // Exactly one lap later the same bucket is reused: it must restart from 0.
        clock.advance(Duration::from_secs(60));
        w.record();
        assert_eq!(w.counts().last_minute, 1);
        clock.advance(Duration::from_secs(1440 * 60));
        w.record();
        assert_eq!(counts(&w), (1, 1, 1));
    }
}
