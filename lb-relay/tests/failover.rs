//! A backend dies between two health checks: no client may notice.
//!
//! ```text
//!   before:  relay ─┬─> a  up
//!                   └─> b  up
//!   a stops listening; the table still says up (no check has run since)
//!   session 1: a refuses ──> passive health ejects a ──> b answers
//!   sessions 2..200: a is no longer a candidate ──> b
//! ```

mod common;

use std::time::Duration;

use common::{relay, table, who, Backend, Run};
use lb_core::Health;
use lb_health::{EventKind, Monitor, Source, Tcp};
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
    // An ejection far longer than the test, however slow the machine: a stays out.
    let relay = relay("failover")
        .forward_to(web.clone())
        .policy_fn(RoundRobin::new)
        .ejection(Duration::from_secs(600), Duration::from_secs(600))
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
    // Ejected, its health untouched: that is the checks' to say.
    assert_eq!(snapshot.health(a_index), Health::Up);
    assert!(snapshot.is_ejected(a_index));
    let stats = relay.stats();
    let a_stats = stats.host("web", "a").unwrap();
    // Ejected by the first failed connect: no second session tried it.
    assert_eq!(a_stats.connect_failures, 1);
    assert_eq!((a_stats.ejected, a_stats.usable), (true, false));
    assert_eq!(stats.host("web", "b").unwrap().total, 201);
    assert_eq!(stats.failed, 0);
    assert_eq!(stats.connect_failures, 1);
    assert_eq!(stats.total, 202);
    // The monitor saw one change, made by the relay's passive health, not by a check.
    let event = events.try_recv().unwrap();
    assert_eq!(
        (event.host.as_str(), event.kind, event.source),
        ("a", EventKind::Ejected, Source::Passive)
    );
    assert_eq!(event.reason, "connect refused, ejected for 600 s");
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
    // 200 clients at once: several may pick a before it is ejected; each of them
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
    assert!(stats.host("web", "a").unwrap().ejected);
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
    // The last usable host is never ejected: the next client tries it again, and is
    // closed when it refuses again.
    let mut s = common::connect(to).await.unwrap();
    assert_eq!(common::read_to_close(&mut s).await, b"");
    common::eventually("two failed sessions", || relay.stats().failed == 2).await;
    let stats = relay.stats();
    assert_eq!(stats.connect_failures, 2);
    assert_eq!(stats.active, 0);
    let a = stats.host("web", "a").unwrap();
    assert_eq!(
        (a.health, a.ejected, a.connect_failures),
        (Health::Up, false, 2)
    );
}
