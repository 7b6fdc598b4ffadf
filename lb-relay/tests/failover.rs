//! A backend dies between two health checks: no client may notice.
//!
//! ```text
//!   before:  relay ─┬─> a  up
//!                   └─> b  up
//!   a stops listening; the table still says up (no check has run since)
//!   session 1: a refuses ──> passive health marks a down ──> b answers
//!   sessions 2..200: a is no longer a candidate ──> b
//! ```

mod common;

use std::time::Duration;

use common::{relay, table, who, Backend, Run};
use lb_core::Health;
use lb_health::{Monitor, Source, Tcp};
use lb_policies::RoundRobin;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_host_costs_no_client_a_failure() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let web = table("web", &[&a, &b]);
    // relayd's default check: tcp every 10 s. Its first round runs at start; the next
    // one is 10 s away, far beyond this test.
    let builder = Monitor::builder(web.clone())
        .check(Tcp)
        .interval(Duration::from_secs(10))
        .spread(false)
        .keep_initial_health(true);
    let mut events = builder.subscribe();
    let monitor = builder.start().unwrap();
    let relay = relay("failover")
        .forward_to(web.clone())
        .policy_fn(RoundRobin::new)
        .run();
    let to = relay.local_addrs()[0];
    common::eventually("the first round of checks", || {
        monitor.stats().iter().all(|s| s.checks >= 1)
    })
    .await;
    assert_eq!(who(to).await, "a");
    assert_eq!(who(to).await, "b");

    let a_id = a.id();
    a.stop().await;
    // The next round-robin pick is a, which now refuses: the session fails over to b.
    for i in 0..200 {
        assert_eq!(who(to).await, "b", "connection {i}");
    }

    let snapshot = web.snapshot();
    let a_index = snapshot.index_of(a_id).unwrap();
    assert_eq!(snapshot.health(a_index), Health::Down);
    let stats = relay.stats();
    let a_stats = stats.host("web", "a").unwrap();
    // Marked down by the first failed connect: no second session tried it.
    assert_eq!(a_stats.connect_failures, 1);
    assert_eq!(a_stats.health, Health::Down);
    assert_eq!(stats.host("web", "b").unwrap().total, 201);
    assert_eq!(stats.failed, 0);
    assert_eq!(stats.connect_failures, 1);
    assert_eq!(stats.total, 202);
    // The monitor saw one change, made by the relay's passive health, not by a check.
    let event = events.try_recv().unwrap();
    assert_eq!(
        (event.host.as_str(), event.new, event.source),
        ("a", Health::Down, Source::External)
    );
    assert_eq!(event.reason, "connect refused");
    assert!(events.try_recv().is_err());
    monitor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_see_no_failure_either() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let c = Backend::start("c").await;
    let web = table("web", &[&a, &b, &c]);
    let relay = relay("failover-concurrent").forward_to(web.clone()).run();
    let to = relay.local_addrs()[0];
    a.stop().await;
    // 200 clients at once: several may pick a before it is marked down; each of them
    // fails over within its own session.
    let clients: Vec<_> = (0..200).map(|_| tokio::spawn(who(to))).collect();
    for client in clients {
        let name = client.await.unwrap();
        assert!(name == "b" || name == "c", "{name}");
    }
    let stats = relay.stats();
    assert_eq!(stats.failed, 0);
    assert_eq!(stats.total, 200);
    assert!(stats.connect_failures >= 1);
    assert_eq!(stats.host("web", "a").unwrap().health, Health::Down);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_usable_host_closes_the_client_and_counts_it() {
    let a = Backend::start("a").await;
    let web = table("web", &[&a]);
    let relay = relay("nothing").forward_to(web).run();
    let to = relay.local_addrs()[0];
    a.stop().await;
    let mut s = common::connect(to).await.unwrap();
    assert_eq!(common::read_to_close(&mut s).await, b"");
    // Now a is down: the next client is closed without a connect attempt.
    let mut s = common::connect(to).await.unwrap();
    assert_eq!(common::read_to_close(&mut s).await, b"");
    common::eventually("two failed sessions", || relay.stats().failed == 2).await;
    let stats = relay.stats();
    assert_eq!(stats.connect_failures, 1);
    assert_eq!(stats.active, 0);
}
