//! Passive health's ejections, on a paused tokio clock: the timer ends them exactly at
//! their time, so the back-off is asserted to the millisecond.

use super::*;
use lb_core::{Change, Health, HostTable};
use std::net::SocketAddr;
use tokio::sync::mpsc;

const SEC: Duration = Duration::from_secs(1);

fn table(n: u8) -> Arc<HostTable<SocketAddr>> {
    let hosts = (1..=n).map(|last| SocketAddr::from(([10, 0, 0, last], 80)));
    HostTable::new("web", hosts).unwrap()
}

/// Every change of `t`, as it is made.
fn changes<T: Table<SocketAddr> + ?Sized>(t: &T) -> mpsc::UnboundedReceiver<Change> {
    let (tx, rx) = mpsc::unbounded_channel();
    t.add_listener(Arc::new(move |e: &lb_core::TableEvent| {
        let _ = tx.send(e.change.clone());
    }));
    rx
}

/// The next change, within a minute of (paused) time.
async fn next(rx: &mut mpsc::UnboundedReceiver<Change>) -> Change {
    tokio::time::timeout(60 * SEC, rx.recv())
        .await
        .expect("a change within a minute")
        .expect("the table lives")
}

fn ended() -> Change {
    Change::EjectionEnded {
        reason: "ejection time over".into(),
    }
}

/// Ejects host 0 of `t` and waits for the end: how long it stayed out.
async fn eject_and_wait(
    p: &Passive<SocketAddr>,
    rx: &mut mpsc::UnboundedReceiver<Change>,
) -> Duration {
    let t = p.table().clone();
    let id = t.snapshot().id(0);
    let start = Instant::now();
    assert!(p.report_failure(id, Reason::ConnectRefused));
    assert!(matches!(next(rx).await, Change::Ejected { .. }));
    assert_eq!(next(rx).await, ended());
    assert!(t.snapshot().is_usable(0));
    start.elapsed()
}

#[tokio::test(start_paused = true)]
async fn an_ejection_ends_by_itself_and_says_for_how_long() {
    let t = table(2);
    let mut rx = changes(&*t);
    let p = Passive::new(t.clone());
    let id = t.snapshot().id(0);
    assert!(p.report_failure(id, Reason::ConnectTimeout));
    assert_eq!(
        next(&mut rx).await,
        Change::Ejected {
            reason: "connect timeout, ejected for 10 s".into()
        }
    );
    let snap = t.snapshot();
    assert_eq!((snap.health(0), snap.is_ejected(0)), (Health::Up, true));
    // Already ejected: not again.
    assert!(!p.report_failure(id, Reason::ConnectRefused));
    let start = Instant::now();
    assert_eq!(next(&mut rx).await, ended());
    assert_eq!(start.elapsed(), 10 * SEC);
    assert_eq!(t.snapshot().usable(), &[0, 1]);
}

#[tokio::test(start_paused = true)]
async fn back_off_doubles_up_to_the_maximum() {
    let t = table(2);
    let mut rx = changes(&*t);
    let p = Passive::new(t.clone())
        .with_ejection_time(SEC, 5 * SEC)
        .unwrap();
    let mut seen = Vec::new();
    for _ in 0..5 {
        // No success in between: each ejection follows the last.
        seen.push(eject_and_wait(&p, &mut rx).await);
    }
    assert_eq!(seen, [SEC, 2 * SEC, 4 * SEC, 5 * SEC, 5 * SEC]);
}

#[tokio::test(start_paused = true)]
async fn back_off_resets_after_a_base_time_of_service() {
    let t = table(2);
    let mut rx = changes(&*t);
    let p = Passive::new(t.clone())
        .with_ejection_time(SEC, 60 * SEC)
        .unwrap();
    let id = t.snapshot().id(0);
    assert_eq!(eject_and_wait(&p, &mut rx).await, SEC);
    // A success right after the end proves little: the next ejection doubles.
    p.report_success(id);
    assert_eq!(eject_and_wait(&p, &mut rx).await, 2 * SEC);
    // A success one base time after the end: the back-off starts again.
    tokio::time::sleep(SEC).await;
    p.report_success(id);
    assert_eq!(eject_and_wait(&p, &mut rx).await, SEC);
    // Time alone, without a success, does not reset it.
    tokio::time::sleep(60 * SEC).await;
    assert_eq!(eject_and_wait(&p, &mut rx).await, 2 * SEC);
}

#[test]
fn the_last_usable_host_is_never_ejected() {
    let t = table(2);
    let p = Passive::new(t.clone());
    let (a, b) = (t.snapshot().id(0), t.snapshot().id(1));
    // Host 1 down by a check: host 0 is the last usable one.
    t.set_health(b, Health::Down, "connect refused").unwrap();
    assert!(!p.report_failure(a, Reason::ConnectRefused));
    assert!(!p.report_failure(a, Reason::ConnectRefused));
    assert_eq!(t.snapshot().usable(), &[0]);
    // A table of one host: never ejected either.
    let one = table(1);
    let p1 = Passive::new(one.clone());
    assert!(!p1.report_failure(one.snapshot().id(0), Reason::ConnectRefused));
    assert!(one.snapshot().is_usable(0));
}

#[test]
fn at_most_the_maximum_share_is_ejected() {
    // Five hosts at 50 %: two may be out (5 * 50 / 100, rounded down).
    let t = table(5);
    let p = Passive::new(t.clone());
    let snap = t.snapshot();
    let ejected: Vec<bool> = (0..5)
        .map(|i| p.report_failure(snap.id(i), Reason::ConnectRefused))
        .collect();
    assert_eq!(ejected, [true, true, false, false, false]);
    assert_eq!(t.snapshot().usable(), &[2, 3, 4]);
    // 100 %: all but the last usable one; 0 %: none.
    let t = table(3);
    let p = Passive::new(t.clone())
        .with_max_ejected_percent(100)
        .unwrap();
    let ejected: Vec<bool> = (0..3)
        .map(|i| p.report_failure(t.snapshot().id(i), Reason::ConnectRefused))
        .collect();
    assert_eq!(ejected, [true, true, false]);
    let t = table(3);
    let p = Passive::new(t.clone()).with_max_ejected_percent(0).unwrap();
    assert!(!p.report_failure(t.snapshot().id(0), Reason::ConnectRefused));
    // Two hosts at 1 %: still one ejectable.
    let t = table(2);
    let p = Passive::new(t.clone()).with_max_ejected_percent(1).unwrap();
    assert!(p.report_failure(t.snapshot().id(0), Reason::ConnectRefused));
}

#[tokio::test(start_paused = true)]
async fn a_check_ends_an_ejection_early_and_the_old_timer_ends_nothing() {
    let t = table(2);
    let mut rx = changes(&*t);
    let p = Passive::new(t.clone())
        .with_ejection_time(10 * SEC, 60 * SEC)
        .unwrap();
    let id = t.snapshot().id(0);
    let start = Instant::now();
    assert!(p.report_failure(id, Reason::ConnectRefused));
    next(&mut rx).await;
    tokio::time::sleep(SEC).await;
    assert!(t.end_ejection(id, "tcp ok").unwrap());
    assert_eq!(
        next(&mut rx).await,
        Change::EjectionEnded {
            reason: "tcp ok".into()
        }
    );
    // Ejected again at 15 s (back-off: 20 s); the first timer (due at 10 s) must not
    // end this one.
    tokio::time::sleep(14 * SEC).await;
    assert!(p.report_failure(id, Reason::ConnectRefused));
    assert!(
        matches!(next(&mut rx).await, Change::Ejected { reason } if reason.ends_with("ejected for 20 s"))
    );
    assert_eq!(next(&mut rx).await, ended());
    assert_eq!(start.elapsed(), 35 * SEC);
}

#[tokio::test(start_paused = true)]
async fn a_check_that_says_down_wins_when_the_ejection_ends() {
    let t = table(2);
    let mut rx = changes(&*t);
    let p = Passive::new(t.clone());
    let id = t.snapshot().id(0);
    assert!(p.report_failure(id, Reason::ConnectRefused));
    next(&mut rx).await;
    t.set_health(id, Health::Down, "connect refused").unwrap();
    next(&mut rx).await;
    assert_eq!(next(&mut rx).await, ended());
    let snap = t.snapshot();
    assert_eq!(
        (snap.health(0), snap.is_ejected(0), snap.usable()),
        (Health::Down, false, &[1][..])
    );
}

#[test]
fn without_a_runtime_reports_end_ejections_that_are_due() {
    let t = table(2);
    let p = Passive::new(t.clone())
        .with_ejection_time(Duration::from_millis(1), SEC)
        .unwrap();
    let id = t.snapshot().id(0);
    assert!(p.report_failure(id, Reason::ConnectRefused));
    assert!(t.snapshot().is_ejected(0));
    // Polled, bounded: the ejection is due 1 ms after it began.
    let give_up = std::time::Instant::now() + 10 * SEC;
    while p.end_expired_ejections() == 0 {
        assert!(std::time::Instant::now() < give_up, "never ended");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(t.snapshot().is_usable(0));
    // A report ends a due ejection too.
    assert!(p.report_failure(id, Reason::ConnectRefused));
    let give_up = std::time::Instant::now() + 10 * SEC;
    while t.snapshot().is_ejected(0) {
        assert!(std::time::Instant::now() < give_up, "never ended");
        std::thread::sleep(Duration::from_millis(1));
        p.report_success(t.snapshot().id(1));
    }
}

#[test]
fn dropping_the_last_handle_ends_its_ejections_and_removes_the_listener() {
    let t = table(2);
    let p = Passive::new(t.clone());
    let q = p.clone();
    let other = Passive::new(t.clone());
    assert_eq!(t.listener_count(), 2);
    assert!(p.report_failure(t.snapshot().id(0), Reason::ConnectRefused));
    drop(p);
    assert!(t.snapshot().is_ejected(0));
    drop(q);
    assert_eq!(t.listener_count(), 1);
    assert_eq!(t.snapshot().usable(), &[0, 1]);
    drop(other);
    assert_eq!(t.listener_count(), 0);
}

#[test]
fn threshold_counts_consecutive_failures_and_recovery_resets_it() {
    let t = table(3);
    let p = Passive::new(t.clone()).with_threshold(3).unwrap();
    let id = t.snapshot().id(1);
    assert!(!p.report_failure(id, Reason::ConnectRefused));
    assert!(!p.report_failure(id, Reason::ConnectRefused));
    p.report_success(id);
    assert!(!p.report_failure(id, Reason::ConnectRefused));
    assert!(!p.report_failure(id, Reason::ConnectRefused));
    t.set_health(id, Health::Down, "operator").unwrap();
    t.set_health(id, Health::Up, "tcp ok").unwrap();
    assert!(!p.report_failure(id, Reason::ConnectRefused));
    assert!(!p.report_failure(id, Reason::ConnectRefused));
    assert!(t.snapshot().is_usable(1));
    assert!(p.report_failure(id, Reason::ConnectRefused));
    assert!(t.snapshot().is_ejected(1));
}

#[test]
fn settings_are_checked_and_unknown_ids_ignored() {
    let t = table(2);
    let bad = |r: Result<Passive<SocketAddr>, Error>| match r {
        Err(Error::InvalidSetting { setting, .. }) => setting,
        other => panic!("expected InvalidSetting, got {other:?}"),
    };
    let p = || Passive::new(t.clone());
    assert_eq!(bad(p().with_threshold(0)), "passive threshold");
    assert_eq!(
        bad(p().with_ejection_time(Duration::ZERO, SEC)),
        "ejection time"
    );
    assert_eq!(
        bad(p().with_ejection_time(SEC, Duration::ZERO)),
        "ejection time"
    );
    assert_eq!(bad(p().with_ejection_time(2 * SEC, SEC)), "ejection time");
    assert_eq!(
        bad(p().with_max_ejected_percent(101)),
        "max ejected percent"
    );
    let ok = p()
        .with_ejection_time(SEC, SEC)
        .unwrap()
        .with_max_ejected_percent(100)
        .unwrap();
    assert_eq!(
        (ok.ejection_time(), ok.max_ejected_percent()),
        ((SEC, SEC), 100)
    );
    assert_eq!(
        Passive::new(t.clone()).ejection_time(),
        (10 * SEC, 300 * SEC)
    );
    assert!(!p().report_failure(BackendId::from_raw(7), Reason::ConnectRefused));
}

#[test]
fn ejection_times_and_their_words() {
    assert_eq!(ejection_time(SEC, 300 * SEC, 1), SEC);
    assert_eq!(ejection_time(10 * SEC, 300 * SEC, 5), 160 * SEC);
    assert_eq!(ejection_time(10 * SEC, 300 * SEC, 6), 300 * SEC);
    assert_eq!(ejection_time(10 * SEC, 300 * SEC, u32::MAX), 300 * SEC);
    let words = |ms| Seconds(Duration::from_millis(ms)).to_string();
    assert_eq!(
        [words(10_000), words(300), words(1_250)],
        ["10", "0.3", "1.25"]
    );
}

#[test]
fn failures_while_ejected_start_no_count_after_the_end() {
    let t = table(2);
    let p = Passive::new(t.clone()).with_threshold(2).unwrap();
    let id = t.snapshot().id(0);
    assert!(!p.report_failure(id, Reason::ConnectRefused));
    assert!(p.report_failure(id, Reason::ConnectRefused));
    // A session that picked the host before the ejection fails late.
    assert!(!p.report_failure(id, Reason::ConnectRefused));
    assert!(t.end_ejection(id, "tcp ok").unwrap());
    assert!(!p.report_failure(id, Reason::ConnectRefused));
    assert!(t.snapshot().is_usable(0));
    assert!(p.report_failure(id, Reason::ConnectRefused));
}
