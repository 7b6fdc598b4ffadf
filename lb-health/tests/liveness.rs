//! How fast a dead host stops getting traffic and a live one gets it back, against real
//! listeners on 127.0.0.1: by active checks alone, and with passive ejections.
//!
//! tokio's clock is paused: virtual time only moves when every task waits, so each
//! bound below is checked exactly, however loaded the machine is. Loopback connects
//! and refusals complete inside the system call, before the clock can move.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{event_of, event_to, servers};
use lb_core::{Health, HostTable};
use lb_health::{EventKind, Monitor, Passive, Reason, Script, Source};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

const INTERVAL: Duration = Duration::from_millis(100);
const TIMEOUT: Duration = Duration::from_millis(50);
const WAIT: Duration = Duration::from_secs(5);
/// Added to bounded waits: a timer due at the same instant as the awaited check must
/// not win the race. The assertions themselves are exact.
const TICK: Duration = Duration::from_millis(1);

/// The socket tests below close a listener and count on its port staying free (refused
/// connects, then a rebind). Run in parallel, one test's `bind(0)` could be handed the
/// port another just freed; so they take turns. The script test takes its turn too: a
/// child process holds a copy of every descriptor of ours from its fork to its exec
/// (close-on-exec closes them only then), so a listener closed meanwhile would keep
/// accepting in the child, which on a loaded machine can take milliseconds to exec.
static PORTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn rebind(addr: SocketAddr) -> TcpListener {
    TcpListener::bind(addr).await.expect("rebind the same port")
}

#[tokio::test(start_paused = true)]
async fn active_checks_alone_down_within_interval_plus_timeout_and_up_within_interval() {
    let _turn = PORTS.lock().await;
    let (listener, addr) = servers::listener().await;
    let table = HostTable::new("smtp", [addr]).unwrap();
    let builder = Monitor::builder(table.clone())
        .interval(INTERVAL)
        .timeout(TIMEOUT);
    let mut rx = builder.subscribe();
    let monitor = builder.start().unwrap();
    event_to(&mut rx, Health::Up, WAIT).await;

    // Let the host be up for a while, then close the listener between two checks.
    tokio::time::sleep(INTERVAL * 3 + INTERVAL / 3).await;
    drop(listener);
    let died = Instant::now();
    let down = event_to(&mut rx, Health::Down, INTERVAL + TIMEOUT + TICK).await;
    assert!(down.at - died <= INTERVAL + TIMEOUT, "{:?}", down.at - died);
    assert_eq!(
        (&*down.reason, down.source),
        ("connect refused", Source::Check)
    );
    assert!(table.snapshot().usable().is_empty());

    let _listener = rebind(addr).await;
    let back = Instant::now();
    let up = event_to(&mut rx, Health::Up, INTERVAL + TICK).await;
    assert!(up.at - back <= INTERVAL, "{:?}", up.at - back);
    assert_eq!((&*up.reason, up.source), ("tcp ok", Source::Check));
    assert_eq!(table.snapshot().usable(), &[0]);

    let stats = &monitor.stats()[0];
    assert_eq!(
        stats.last_error.as_ref().map(|f| f.reason()),
        Some(Reason::ConnectRefused)
    );
    assert!(
        stats.checks > stats.successes && stats.successes >= 5,
        "{stats:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn passive_ejects_at_the_first_failed_connect_and_a_check_ends_it() {
    let _turn = PORTS.lock().await;
    // A long interval: only passive health can be this fast.
    let interval = Duration::from_secs(10);
    let (listener, addr) = servers::listener().await;
    let (_other, other) = servers::listener().await;
    let table = HostTable::new("smtp", [addr, other]).unwrap();
    let builder = Monitor::builder(table.clone())
        .interval(interval)
        .timeout(TIMEOUT);
    let mut rx = builder.subscribe();
    let monitor = builder.start().unwrap();
    let passive = Passive::new(table.clone());
    let id = table.snapshot().id(0);
    event_to(&mut rx, Health::Up, WAIT).await;

    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(listener);
    let died = Instant::now();
    // The relay's next connect is refused and reported.
    let err = TcpStream::connect(addr).await.expect_err("nothing listens");
    assert!(passive.report_failure(id, Reason::from_connect_error(&err)));
    let snap = table.snapshot();
    assert_eq!((snap.health(0), snap.is_ejected(0)), (Health::Up, true));
    let out = event_of(&mut rx, EventKind::Ejected, WAIT).await;
    assert_eq!(
        out.at, died,
        "ejected at the failed connect, not at a check"
    );
    assert_eq!(
        (&*out.reason, out.source, out.old, out.new),
        (
            "connect refused, ejected for 10 s",
            Source::Passive,
            Health::Up,
            Health::Up
        )
    );
    assert_eq!(
        (monitor.stats()[0].ejected, monitor.stats()[0].ejections),
        (true, 1)
    );

    // Back: the next active check (t = 10 s, before the ejection's end at 13 s) ends
    // the ejection, within one interval.
    let _listener = rebind(addr).await;
    let back = Instant::now();
    let end = event_of(&mut rx, EventKind::EjectionEnded, interval + TICK).await;
    assert!(end.at - back <= interval);
    assert_eq!((&*end.reason, end.source), ("tcp ok", Source::Check));
    assert!(table.snapshot().is_usable(0));
    assert_eq!(
        (monitor.stats()[0].ejected, monitor.stats()[0].marks),
        (false, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn n_refused_connects_eject_and_a_check_ends_it() {
    let _turn = PORTS.lock().await;
    let (listener, addr) = servers::listener().await;
    let (_other, other) = servers::listener().await;
    let table = HostTable::new("pop3", [addr, other]).unwrap();
    let builder = Monitor::builder(table.clone())
        .interval(INTERVAL)
        .timeout(TIMEOUT);
    let mut rx = builder.subscribe();
    let monitor = builder.start().unwrap();
    let passive = Passive::new(table.clone()).with_threshold(3).unwrap();
    let id = table.snapshot().id(0);
    event_to(&mut rx, Health::Up, WAIT).await;

    // The host stops listening just after a check; three refused connects follow at
    // once, before the next check.
    tokio::time::sleep(INTERVAL + INTERVAL / 2).await;
    drop(listener);
    let mut ejected = Vec::new();
    for _ in 0..3 {
        let err = TcpStream::connect(addr).await.expect_err("nothing listens");
        ejected.push(passive.report_failure(id, Reason::from_connect_error(&err)));
        ejected.push(table.snapshot().is_ejected(0));
    }
    assert_eq!(ejected, [false, false, false, false, true, true]);
    let out = event_of(&mut rx, EventKind::Ejected, WAIT).await;
    assert_eq!(out.source, Source::Passive);
    assert_eq!(monitor.stats()[0].ejections, 1);

    let _listener = rebind(addr).await;
    let end = event_of(&mut rx, EventKind::EjectionEnded, INTERVAL + TICK).await;
    assert_eq!(end.source, Source::Check);
    assert!(monitor.stats()[0].consecutive_successes >= 1);
    assert_eq!(table.snapshot().health(0), Health::Up);
}

#[tokio::test]
async fn a_script_past_the_timeout_takes_the_host_down() {
    let _turn = PORTS.lock().await;
    // Real time: a child process runs outside tokio's clock.
    let host: SocketAddr = "127.0.0.1:25".parse().unwrap();
    let table = HostTable::new("scripted", [host]).unwrap();
    let builder = Monitor::builder(table.clone())
        .check(Script::new("sh").args(["-c", "sleep 30"]))
        .interval(Duration::from_secs(10))
        .timeout(Duration::from_millis(200))
        .keep_initial_health(true);
    let mut rx = builder.subscribe();
    let monitor = builder.start().unwrap();
    // relayd counts the killed child as exit status 0: down, through `retry` (0 here).
    let down = event_to(&mut rx, Health::Down, WAIT).await;
    assert_eq!((down.old, &*down.reason), (Health::Up, "script timeout"));
    monitor.shutdown().await;
}
