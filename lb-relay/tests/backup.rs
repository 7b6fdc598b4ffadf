//! Backup tables: `forward to <main>` then `forward to <backup>`; the first table with
//! a host that answers wins.
//!
//! ```text
//!   relay ──> main:   m1, m2     (preferred)
//!         └─> backup: b1         (only when no main host answers)
//! ```

mod common;

use std::time::Duration;

use common::{eventually, relay, table, who, Backend, Run};
use lb_core::{Admin, Health};
use lb_health::{Monitor, Tcp};
use tokio::net::TcpListener;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_go_to_the_backup_while_main_is_down_and_come_back() {
    let (m1, m2, b1) = (
        Backend::start("m1").await,
        Backend::start("m2").await,
        Backend::start("b1").await,
    );
    let main = table("main", &[&m1, &m2]);
    let backup = table("backup", &[&b1]);
    let relay = relay("backup")
        .forward_to(main.clone())
        .forward_to(backup)
        .run();
    let to = relay.local_addrs()[0];
    assert_eq!(who(to).await, "m1");
    assert_eq!(who(to).await, "m2");

    // A health monitor marks every main host down.
    main.set_health(m1.id(), Health::Down, "check failed")
        .unwrap();
    main.set_health(m2.id(), Health::Down, "check failed")
        .unwrap();
    for _ in 0..4 {
        assert_eq!(who(to).await, "b1");
    }

    // m2 comes back: sessions return to the main table.
    main.set_health(m2.id(), Health::Up, "check ok").unwrap();
    for _ in 0..4 {
        assert_eq!(who(to).await, "m2");
    }

    // Disabling the whole main table through the relay sends sessions to the backup.
    relay.disable_table("main").unwrap();
    assert_eq!(who(to).await, "b1");
    relay.enable_table("main").unwrap();
    main.set_health(m1.id(), Health::Up, "check ok").unwrap();
    let picks = [who(to).await, who(to).await];
    assert!(picks.contains(&"m1".to_owned()) && picks.contains(&"m2".to_owned()));
    assert_eq!(relay.stats().failed, 0);
    assert_eq!(main.stats()[0].admin, Admin::Enabled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_main_hosts_fail_over_to_the_backup_within_the_session() {
    let (m1, m2, b1) = (
        Backend::start("m1").await,
        Backend::start("m2").await,
        Backend::start("b1").await,
    );
    let main = table("main", &[&m1, &m2]);
    let relay = relay("backup-failover")
        .forward_to(main.clone())
        .forward_to(table("backup", &[&b1]))
        .run();
    let to = relay.local_addrs()[0];
    // Both main hosts die between checks, still marked up.
    m1.stop().await;
    m2.stop().await;
    // One session: m1 refused (ejected), m2 refused (kept: the table's last usable
    // host is never ejected), b1 answers (failover 2 = three tries).
    assert_eq!(who(to).await, "b1");
    // The next: m2 refused again, still counted, and b1 answers.
    assert_eq!(who(to).await, "b1");
    let stats = relay.stats();
    assert_eq!(stats.connect_failures, 3);
    assert_eq!(stats.failed, 0);
    let snap = main.snapshot();
    assert_eq!((snap.is_ejected(0), snap.is_ejected(1)), (true, false));
    assert_eq!(snap.usable(), &[1]);
    let failures: Vec<u64> = main.stats().iter().map(|h| h.connect_failures).collect();
    assert_eq!(failures, [1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failover_limit_bounds_the_tries() {
    let (m1, m2, b1) = (
        Backend::start("m1").await,
        Backend::start("m2").await,
        Backend::start("b1").await,
    );
    let relay = relay("limited")
        .forward_to(table("main", &[&m1, &m2]))
        .forward_to(table("backup", &[&b1]))
        .failover(1)
        .run();
    let to = relay.local_addrs()[0];
    m1.stop().await;
    m2.stop().await;
    // Two tries (m1, m2) and no third: this client is closed...
    let mut s = common::connect(to).await.unwrap();
    assert_eq!(common::read_to_close(&mut s).await, b"");
    // ...but m1 was ejected, so the next one tries m2 (the last usable main host, never
    // ejected) and then the backup.
    assert_eq!(who(to).await, "b1");
    common::eventually("one failed session", || relay.stats().failed == 1).await;
    assert_eq!(relay.stats().connect_failures, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_health_monitor_sessions_leave_the_main_table_and_return() {
    let (m1, b1) = (Backend::start("m1").await, Backend::start("b1").await);
    let main = table("main", &[&m1]);
    // relayd's `check tcp`, every 50 ms.
    let monitor = Monitor::builder(main.clone())
        .check(Tcp)
        .interval(Duration::from_millis(50))
        .timeout(Duration::from_millis(40))
        .spread(false)
        .keep_initial_health(true)
        .start()
        .unwrap();
    let relay = relay("monitored")
        .forward_to(main.clone())
        .forward_to(table("backup", &[&b1]))
        .run();
    let to = relay.local_addrs()[0];
    assert_eq!(who(to).await, "m1");

    // m1 dies: whichever notices first (a check or a session's failed connect) marks
    // it down, and no client sees an error meanwhile.
    let m1_addr = m1.addr;
    m1.stop().await;
    assert_eq!(who(to).await, "b1");
    eventually("m1 to be down", || {
        main.snapshot().health(0) == Health::Down
    })
    .await;
    assert_eq!(who(to).await, "b1");

    // m1 returns on the same address: the next check brings it up, and sessions
    // return to the main table.
    let _m1 = Backend::serve("m1", TcpListener::bind(m1_addr).await.unwrap());
    eventually("m1 to be up", || main.snapshot().health(0) == Health::Up).await;
    assert_eq!(who(to).await, "m1");
    assert_eq!(relay.stats().failed, 0);
    monitor.shutdown().await;
}
