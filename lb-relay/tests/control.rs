//! Runtime control through the API (relayctl parity): disabling, draining and enabling
//! a host changes where new sessions go and never cuts existing ones; the same for a
//! whole relay; hosts can be added and removed.
//!
//! ```text
//!   relay ──> web: a, b        (round-robin: a, b, a, b, ...)
//!   a long session to a stays open through every change below
//! ```

mod common;

use common::{echo, read_line, read_to_close, relay, table, who, Backend, Run};
use lb_core::{Admin, Health};
use lb_relay::ControlError;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_drain_enable_move_new_sessions_only() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let relay = relay("control").forward_to(table("web", &[&a, &b])).run();
    let to = relay.local_addrs()[0];
    let mut long = common::connect(to).await.unwrap();
    assert_eq!(read_line(&mut long).await, "a");
    assert_eq!(who(to).await, "b");

    assert_eq!(relay.disable_host("web", a.id()).unwrap(), Admin::Enabled);
    for _ in 0..4 {
        assert_eq!(who(to).await, "b");
    }
    echo(&mut long, b"still here after disable").await;
    assert_eq!(relay.stats().host("web", "a").unwrap().active, 1);

    assert_eq!(relay.drain_host("web", a.id()).unwrap(), Admin::Disabled);
    for _ in 0..4 {
        assert_eq!(who(to).await, "b");
    }
    echo(&mut long, b"still here while draining").await;
    let a_stats = relay.stats().host("web", "a").unwrap().clone();
    assert_eq!((a_stats.admin, a_stats.active), (Admin::Draining, 1));

    assert_eq!(relay.enable_host("web", a.id()).unwrap(), Admin::Draining);
    let picks: Vec<String> = [who(to).await, who(to).await].into();
    let mut sorted = picks.clone();
    sorted.sort();
    assert_eq!(sorted, ["a", "b"], "{picks:?}");
    echo(&mut long, b"still here after enable").await;

    // The long session ends: a's active count returns to 0.
    drop(long);
    common::eventually("a's session to end", || {
        relay.stats().host("web", "a").unwrap().active == 0
    })
    .await;
    // a: the long session, and one after enabling.
    assert_eq!(relay.stats().host("web", "a").unwrap().total, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_relay_refuses_new_sessions_and_keeps_running_ones() {
    let a = Backend::start("a").await;
    let relay = relay("switch").forward_to(table("web", &[&a])).run();
    let to = relay.local_addrs()[0];
    let mut running = common::connect(to).await.unwrap();
    assert_eq!(read_line(&mut running).await, "a");

    relay.disable();
    assert!(!relay.is_enabled());
    let mut refused = common::connect(to).await.unwrap();
    assert_eq!(read_to_close(&mut refused).await, b"");
    echo(&mut running, b"unaffected").await;
    let stats = relay.stats();
    assert_eq!((stats.enabled, stats.refused, stats.total), (false, 1, 1));

    relay.enable();
    assert_eq!(who(to).await, "a");
    assert_eq!(relay.stats().total, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_can_be_added_and_removed() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let relay = relay("members").forward_to(table("web", &[&a])).run();
    let to = relay.local_addrs()[0];
    assert_eq!(who(to).await, "a");

    let b_id = relay.add_host("web", b.host(), Health::Up).await.unwrap();
    assert_eq!(b_id, b.id());
    let mut picks = vec![who(to).await, who(to).await];
    picks.sort();
    assert_eq!(picks, ["a", "b"]);

    let mut on_b = common::connect(to).await.unwrap();
    let first = read_line(&mut on_b).await;
    if first != "b" {
        // Round-robin put this one on a; the next goes to b.
        on_b = common::connect(to).await.unwrap();
        assert_eq!(read_line(&mut on_b).await, "b");
    }
    relay.remove_host("web", b_id).await.unwrap();
    for _ in 0..3 {
        assert_eq!(who(to).await, "a");
    }
    // The session on the removed host is not cut.
    echo(&mut on_b, b"removed but served").await;

    // Removing the last host empties the table: the relay refuses clients (closes
    // their connections) until a host is back.
    relay.remove_host("web", a.id()).await.unwrap();
    let mut refused = common::connect(to).await.unwrap();
    assert_eq!(read_to_close(&mut refused).await, b"");
    relay.add_host("web", a.host(), Health::Up).await.unwrap();
    assert_eq!(who(to).await, "a");

    // Errors name what is wrong.
    let unknown = relay.disable_host("nope", a.id()).unwrap_err();
    assert_eq!(
        unknown.to_string(),
        "relay `members` has no table `nope`: expected one of the tables it forwards to"
    );
    assert!(matches!(
        relay.add_host_blocking("web", a.host(), Health::Up),
        Err(ControlError::Table(lb_core::Error::DuplicateHost { .. }))
    ));
}

/// relayd's `table <web> { }`: a relay forwarding to a table with no hosts starts,
/// refuses clients like a table whose hosts are all down, and serves once a host is
/// added at run time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_on_an_empty_table_serves_once_a_host_is_added() {
    let a = Backend::start("a").await;
    let web = lb_core::HostTable::builder("web")
        .allow_empty()
        .build()
        .unwrap();
    let relay = relay("dynamic").forward_to(web.clone()).run();
    let to = relay.local_addrs()[0];
    for _ in 0..2 {
        let mut refused = common::connect(to).await.unwrap();
        assert_eq!(read_to_close(&mut refused).await, b"");
    }
    common::eventually("both refusals counted", || relay.stats().failed == 2).await;
    assert!(relay.stats().host("web", "a").is_none());

    let id = relay.add_host("web", a.host(), Health::Up).await.unwrap();
    assert_eq!(who(to).await, "a");
    assert_eq!(relay.stats().host("web", "a").unwrap().total, 1);

    relay.remove_host("web", id).await.unwrap();
    assert!(web.snapshot().is_empty());
    let mut refused = common::connect(to).await.unwrap();
    assert_eq!(read_to_close(&mut refused).await, b"");
}
