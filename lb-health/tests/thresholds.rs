//! The monitor's rules, exactly: retry, rise, interval timeouts, spreading, the fast
//! interval, unknown outcomes, start-up health, demotion, and shutdown. A scripted check
//! and tokio's paused clock make every check time exact.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::next_event;
use common::scripted::{Scripted, Step};
use lb_core::{Health, HostTable};
use lb_health::{Demotion, HostEvent, Monitor, Reason, Source};
use parking_lot::Mutex;
use tokio::sync::broadcast;
use tokio::time::Instant;

const SEC: Duration = Duration::from_secs(1);
const WAIT: Duration = Duration::from_secs(120);
const REFUSED: Step = Step::Fail(Reason::ConnectRefused);

fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i], 80))
}

/// `(seconds since origin, old, new, reason)`, for comparing with the expected sketch.
fn brief(e: &HostEvent, origin: Instant) -> (f64, Health, Health, String) {
    (
        (e.at - origin).as_secs_f64(),
        e.old,
        e.new,
        e.reason.to_string(),
    )
}

/// The next `n` events, each [`brief`].
async fn events(
    rx: &mut broadcast::Receiver<HostEvent>,
    n: usize,
    origin: Instant,
) -> Vec<(f64, Health, Health, String)> {
    let mut seen = Vec::with_capacity(n);
    for _ in 0..n {
        seen.push(brief(&next_event(rx, WAIT).await, origin));
    }
    seen
}

#[tokio::test(start_paused = true)]
async fn retry_needs_n_plus_one_failures() {
    // interval 1 s, retry 2. Checks at t = 0, 1, 2, ...
    //   t:      0 1 2 3 4 5 6 7 8 9
    //   check:  F F F S F F S F F F
    //   health: ? ? D U U U U U U D
    let table = HostTable::new("t", [addr(1)]).unwrap();
    let check = Scripted::new();
    use Step::Ok as S;
    check.plan(
        addr(1),
        [
            REFUSED, REFUSED, REFUSED, S, REFUSED, REFUSED, S, REFUSED, REFUSED, REFUSED,
        ],
    );
    let origin = Instant::now();
    let builder = Monitor::builder(table.clone())
        .check(check.clone())
        .interval(SEC)
        .timeout(Duration::from_millis(100))
        .retry(2);
    let mut rx = builder.subscribe();
    let monitor = builder.start().unwrap();
    let seen = events(&mut rx, 4, origin).await;
    use Health::*;
    assert_eq!(
        seen,
        [
            (0.0, Up, Unknown, "not checked yet".to_owned()),
            (2.0, Unknown, Down, "connect refused".to_owned()),
            (3.0, Down, Up, "scripted ok".to_owned()),
            (9.0, Up, Down, "connect refused".to_owned()),
        ]
    );
    let stats = &monitor.stats()[0];
    assert_eq!((stats.checks, stats.successes), (10, 2));
    assert_eq!(stats.availability(), Some(20.0));
    assert_eq!(stats.consecutive_failures, 3);
    assert_eq!(
        stats.last_error.as_ref().map(|f| f.reason()),
        Some(Reason::ConnectRefused)
    );
    assert_eq!(stats.last_change, Some(origin + 9 * SEC));
}

#[tokio::test(start_paused = true)]
async fn rise_needs_m_successes() {
    // interval 1 s, rise 3, retry 0.
    //   t:      0 1 2 3 4 5 6 7 8
    //   check:  F S S F S S S F S
    //   health: D D D D D D U D D
    let table = HostTable::new("t", [addr(1)]).unwrap();
    let check = Scripted::new();
    use Step::Ok as S;
    check.plan(addr(1), [REFUSED, S, S, REFUSED, S, S, S, REFUSED, S]);
    let origin = Instant::now();
    let builder = Monitor::builder(table.clone())
        .check(check.clone())
        .interval(SEC)
        .rise(3);
    let mut rx = builder.subscribe();
    let _monitor = builder.start().unwrap();
    let seen = events(&mut rx, 4, origin).await;
    use Health::*;
    assert_eq!(
        seen,
        [
            (0.0, Up, Unknown, "not checked yet".to_owned()),
            (0.0, Unknown, Down, "connect refused".to_owned()),
            (6.0, Down, Up, "scripted ok".to_owned()),
            (7.0, Up, Down, "connect refused".to_owned()),
        ]
    );
    // Rise also applies to the first success after start: two of three by t = 8.
    tokio::time::sleep_until(origin + 8 * SEC + Duration::from_millis(500)).await;
    assert_eq!(table.snapshot().health(0), Down);
}

#[tokio::test(start_paused = true)]
async fn a_hanging_check_is_an_interval_timeout() {
    let table = HostTable::new("t", [addr(1)]).unwrap();
    let check = Scripted::new();
    check.plan(addr(1), [Step::Hang]);
    let origin = Instant::now();
    let builder = Monitor::builder(table.clone())
        .check(check.clone())
        .interval(SEC);
    let mut rx = builder.subscribe();
    let monitor = builder.start().unwrap();
    next_event(&mut rx, WAIT).await; // up -> unknown at start
    let down = next_event(&mut rx, WAIT).await;
    assert_eq!(
        brief(&down, origin),
        (
            1.0,
            Health::Unknown,
            Health::Down,
            "interval timeout".to_owned()
        )
    );
    // The hung check was dropped, and the next one (at the same tick) succeeds.
    let up = next_event(&mut rx, WAIT).await;
    assert_eq!(
        brief(&up, origin),
        (1.0, Health::Down, Health::Up, "scripted ok".to_owned())
    );
    assert_eq!(check.running.load(Ordering::SeqCst), 0);
    assert_eq!(monitor.stats()[0].checks, 2);
}

#[tokio::test(start_paused = true)]
async fn unknown_outcomes_apply_at_once() {
    let table = HostTable::new("t", [addr(1)]).unwrap();
    let check = Scripted::new();
    check.plan(addr(1), [Step::Ok, Step::Unknown, Step::Ok]);
    let origin = Instant::now();
    let builder = Monitor::builder(table).check(check).interval(SEC).retry(5);
    let mut rx = builder.subscribe();
    let _monitor = builder.start().unwrap();
    let out = events(&mut rx, 4, origin).await;
    use Health::*;
    assert_eq!(
        out,
        [
            (0.0, Up, Unknown, "not checked yet".to_owned()),
            (0.0, Unknown, Up, "scripted ok".to_owned()),
            (1.0, Up, Unknown, "script timeout".to_owned()),
            (2.0, Unknown, Up, "scripted ok".to_owned()),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn checks_spread_across_the_interval() {
    // Four hosts, interval 1 s: all at t = 0, then host i at k - i/4 s.
    let hosts: Vec<SocketAddr> = (1..=4).map(addr).collect();
    let table = HostTable::new("t", hosts.clone()).unwrap();
    let check = Scripted::new();
    let origin = Instant::now();
    let _monitor = Monitor::builder(table)
        .check(check.clone())
        .interval(SEC)
        .start()
        .unwrap();
    tokio::time::sleep_until(origin + 2 * SEC + Duration::from_millis(1)).await;
    let mut starts: Vec<(SocketAddr, u128)> = check
        .starts
        .lock()
        .iter()
        .map(|&(a, t)| (a, (t - origin).as_millis()))
        .collect();
    starts.sort_by_key(|&(a, t)| (t, a));
    assert_eq!(
        starts,
        [
            (hosts[0], 0),
            (hosts[1], 0),
            (hosts[2], 0),
            (hosts[3], 0),
            (hosts[3], 250),
            (hosts[2], 500),
            (hosts[1], 750),
            (hosts[0], 1000),
            (hosts[3], 1250),
            (hosts[2], 1500),
            (hosts[1], 1750),
            (hosts[0], 2000),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn fast_interval_while_down_or_failing() {
    // interval 10 s, fast 1 s, retry 1. Checks: t=0 ok; t=10 fail (failing: fast);
    // t=11 fail -> down; t=12 fail; t=13 ok -> up (normal again); next at t=20.
    let table = HostTable::new("t", [addr(1)]).unwrap();
    let check = Scripted::new();
    check.plan(addr(1), [Step::Ok, REFUSED, REFUSED, REFUSED, Step::Ok]);
    let origin = Instant::now();
    let _monitor = Monitor::builder(table)
        .check(check.clone())
        .interval(10 * SEC)
        .fast_interval(SEC)
        .retry(1)
        .start()
        .unwrap();
    tokio::time::sleep_until(origin + 25 * SEC).await;
    let times: Vec<u64> = check
        .starts
        .lock()
        .iter()
        .map(|&(_, t)| (t - origin).as_secs())
        .collect();
    assert_eq!(times, [0, 10, 11, 12, 13, 20]);
}

#[tokio::test(start_paused = true)]
async fn keep_initial_health_lets_traffic_flow() {
    let table = HostTable::new("t", [addr(1)]).unwrap();
    let check = Scripted::new();
    check.plan(addr(1), [REFUSED, REFUSED]);
    let origin = Instant::now();
    let builder = Monitor::builder(table.clone())
        .check(check)
        .interval(SEC)
        .retry(1)
        .keep_initial_health(true);
    let mut rx = builder.subscribe();
    let _monitor = builder.start().unwrap();
    assert_eq!(table.snapshot().health(0), Health::Up);
    // No "not checked yet"; one failure is tolerated (retry 1), the second is not.
    let e = next_event(&mut rx, WAIT).await;
    assert_eq!(
        brief(&e, origin),
        (1.0, Health::Up, Health::Down, "connect refused".to_owned())
    );
}

#[tokio::test(start_paused = true)]
async fn demote_when_no_host_is_left_and_restore() {
    let table = HostTable::new("t", [addr(1), addr(2)]).unwrap();
    let check = Scripted::new();
    check.plan(addr(1), [REFUSED, REFUSED, Step::Ok]);
    check.plan(addr(2), [Step::Ok, REFUSED, REFUSED]);
    let calls = Arc::new(Mutex::new(Vec::new()));
    let c = calls.clone();
    let origin = Instant::now();
    let monitor = Monitor::builder(table)
        .check(check)
        .interval(SEC)
        .spread(false)
        .on_demote(move |table, d| c.lock().push((table.to_owned(), d, Instant::now())))
        .start()
        .unwrap();
    // t=0: 1 down, 2 up. t=1: both down: demoted. t=2: 1 up: restored.
    tokio::time::sleep_until(origin + 3 * SEC + Duration::from_millis(500)).await;
    assert_eq!(
        *calls.lock(),
        [
            ("t".to_owned(), Demotion::Demoted, origin + SEC),
            ("t".to_owned(), Demotion::Restored, origin + 2 * SEC),
        ]
    );
    assert!(!monitor.is_demoted());
}

#[tokio::test(start_paused = true)]
async fn external_marks_are_counted_and_reset_rise() {
    let table = HostTable::new("t", [addr(1)]).unwrap();
    let check = Scripted::new();
    let origin = Instant::now();
    let builder = Monitor::builder(table.clone())
        .check(check)
        .interval(SEC)
        .rise(2);
    let mut rx = builder.subscribe();
    let monitor = builder.start().unwrap();
    // t=0 ok, t=1 ok: up at t=1 (rise 2).
    let up = common::event_to(&mut rx, Health::Up, WAIT).await;
    assert_eq!((up.at - origin), SEC);
    tokio::time::sleep_until(origin + SEC + Duration::from_millis(500)).await;
    // An operator's mark (passive health ejects instead, and never the last host).
    let id = table.snapshot().id(0);
    table
        .set_health(id, Health::Down, "connect timeout")
        .unwrap();
    let down = next_event(&mut rx, WAIT).await;
    assert_eq!(
        (down.new, down.source, &*down.reason),
        (Health::Down, Source::External, "connect timeout")
    );
    // Rise starts again from the mark: successes at t=2 and t=3, up at t=3.
    let up = next_event(&mut rx, WAIT).await;
    assert_eq!(
        (up.new, up.source, up.at - origin),
        (Health::Up, Source::Check, 3 * SEC)
    );
    let stats = &monitor.stats()[0];
    assert_eq!(stats.marks, 1);
    assert_eq!(
        stats.last_error.as_ref().map(|f| f.reason()),
        Some(Reason::ConnectTimeout)
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_and_drop_end_every_task() {
    for by_drop in [false, true] {
        let table = HostTable::new("t", [addr(1), addr(2)]).unwrap();
        let check = Scripted::new();
        check.plan(addr(1), [Step::Hang]);
        let monitor = Monitor::builder(table.clone())
            .check(check.clone())
            .interval(SEC)
            .start()
            .unwrap();
        assert_eq!(table.listener_count(), 1);
        // Host 2 is next checked at 0.5 s (spread); stop before.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            check.running.load(Ordering::SeqCst),
            1,
            "the hung check runs"
        );
        let started = check.started();
        if by_drop {
            drop(monitor);
        } else {
            monitor.shutdown().await;
        }
        assert_eq!(
            table.listener_count(),
            0,
            "listener removed (drop: {by_drop})"
        );
        tokio::time::sleep(5 * SEC).await;
        assert_eq!(check.running.load(Ordering::SeqCst), 0, "drop: {by_drop}");
        assert_eq!(
            check.started(),
            started,
            "no check after stopping (drop: {by_drop})"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn added_hosts_are_checked_and_removed_ones_are_not() {
    let table = HostTable::new("t", [addr(1)]).unwrap();
    let check = Scripted::new();
    let monitor = Monitor::builder(table.clone())
        .check(check.clone())
        .interval(SEC)
        .start()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let id2 = table.add(addr(2), Health::Unknown).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(table.snapshot().health(1), Health::Up, "checked at once");
    table.remove(table.snapshot().id(0)).unwrap();
    let before = check
        .starts
        .lock()
        .iter()
        .filter(|(a, _)| *a == addr(1))
        .count();
    tokio::time::sleep(3 * SEC).await;
    let after = check
        .starts
        .lock()
        .iter()
        .filter(|(a, _)| *a == addr(1))
        .count();
    assert_eq!(before, after);
    assert_eq!(monitor.stats().len(), 1);
    assert!(monitor.host_stats(id2).is_some_and(|s| s.checks >= 3));
}
