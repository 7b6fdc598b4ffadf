//! Supervised checks: a check that panics kills its host's task; the monitor counts it
//! as a failed check (through the retry counter, like any failure), logs it, and starts
//! the task again at the next interval, so the host's health never freezes. tokio's
//! clock is paused: every time below is exact.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::event_to;
use futures_util::future::BoxFuture;
use lb_core::{Health, HostTable};
use lb_health::{Check, Monitor, Outcome, Probe, Reason, Source};
use tokio::time::Instant;

const SEC: Duration = Duration::from_secs(1);
const WAIT: Duration = Duration::from_secs(60);

/// Panics on its first `panics` checks, then finds the host up.
struct Panicky {
    panics: u32,
    checks: Arc<AtomicU32>,
}

impl Check for Panicky {
    fn name(&self) -> &'static str {
        "panicky"
    }

    fn check<'a>(&'a self, _probe: &'a Probe) -> BoxFuture<'a, Outcome> {
        let n = self.checks.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            if n < self.panics {
                panic!("check {n} panics, as planned");
            }
            Outcome::Up
        })
    }
}

fn table() -> Arc<HostTable> {
    let addr: SocketAddr = "10.0.0.1:443".parse().unwrap();
    HostTable::new("owa", [lb_core::Host::from(addr)]).unwrap()
}

/// `retry` 2 and a check that panics five times: down at the third panic (t = 2 s),
/// each panic counted as a failure; the checks go on every second and the first one
/// that succeeds (t = 5 s) brings the host up.
#[tokio::test(start_paused = true)]
async fn panics_count_as_failures_and_checks_go_on() {
    let checks = Arc::new(AtomicU32::new(0));
    let t = table();
    let origin = Instant::now();
    let builder = Monitor::builder(t.clone())
        .check(Panicky {
            panics: 5,
            checks: checks.clone(),
        })
        .interval(SEC)
        .retry(2)
        .spread(false);
    let mut rx = builder.subscribe();
    let monitor = builder.start().unwrap();

    let down = event_to(&mut rx, Health::Down, WAIT).await;
    assert_eq!(
        (down.at - origin, &*down.reason, down.source),
        (2 * SEC, "check panicked", Source::Check)
    );
    let stats = &monitor.stats()[0];
    assert_eq!(
        (stats.checks, stats.successes, stats.consecutive_failures),
        (3, 0, 3)
    );
    assert_eq!(
        stats.last_error.as_ref().map(|f| f.reason()),
        Some(Reason::CheckPanicked)
    );

    let up = event_to(&mut rx, Health::Up, WAIT).await;
    assert_eq!((up.at - origin, &*up.reason), (5 * SEC, "panicky ok"));
    assert_eq!(checks.load(Ordering::SeqCst), 6);
    let stats = &monitor.stats()[0];
    assert_eq!((stats.checks, stats.successes), (6, 1));
    // And on: the task keeps its interval after the restarts.
    tokio::time::sleep_until(origin + 7 * SEC + SEC / 2).await;
    assert_eq!(checks.load(Ordering::SeqCst), 8);
    assert_eq!(t.snapshot().health(0), Health::Up);
}

/// One panic with `retry` 0: down at once, up at the next interval.
#[tokio::test(start_paused = true)]
async fn a_single_panic_is_one_failed_check() {
    let checks = Arc::new(AtomicU32::new(0));
    let t = table();
    let origin = Instant::now();
    let builder = Monitor::builder(t.clone())
        .check(Panicky {
            panics: 1,
            checks: checks.clone(),
        })
        .interval(SEC)
        .retry(0)
        .spread(false);
    let mut rx = builder.subscribe();
    let _monitor = builder.start().unwrap();
    let down = event_to(&mut rx, Health::Down, WAIT).await;
    assert_eq!(
        (down.at - origin, &*down.reason),
        (Duration::ZERO, "check panicked")
    );
    let up = event_to(&mut rx, Health::Up, WAIT).await;
    assert_eq!(up.at - origin, SEC);
    assert_eq!(checks.load(Ordering::SeqCst), 2);
}
