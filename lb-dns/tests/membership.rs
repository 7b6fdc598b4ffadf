//! A membership against a real DNS server on loopback: the table follows A/AAAA and
//! SRV answers within their TTL, ids stay stable, TTLs are bounded.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use lb_core::{Health, Host, HostTable};
use lb_dns::{DnsEvent, Member, Membership, Source};

#[tokio::test]
async fn a_and_aaaa_addresses_become_hosts_with_the_port() {
    let server = DnsServer::start().await;
    server.set_ips(
        "www.test",
        60,
        &[ip("127.0.0.11"), ip("127.0.0.12"), ip("::1")],
    );
    let table = empty_table("web");
    let membership = Membership::builder(resolver(&server))
        .ip("www.test", 443)
        .start(table.clone())
        .unwrap();
    membership.ready().await;
    assert_eq!(
        hosts(&table),
        vec![
            (sa("127.0.0.11:443"), 1),
            (sa("127.0.0.12:443"), 1),
            (sa("[::1]:443"), 1)
        ]
    );
    // Ids derive from the address, as for hosts written as addresses.
    let snap = table.snapshot();
    for addr in ["127.0.0.11:443", "127.0.0.12:443", "[::1]:443"] {
        let i = snap.index_of(id_of(addr)).expect(addr);
        assert_eq!(snap.host(i).name(), addr);
        assert_eq!(snap.health(i), Health::Up);
    }
    assert_eq!(membership.members().len(), 3);
    membership.shutdown().await;
}

#[tokio::test]
async fn the_table_follows_a_changed_answer_within_the_ttl_and_ids_stay() {
    let server = DnsServer::start().await;
    server.set_ips("www.test", 1, &[ip("127.0.0.11"), ip("127.0.0.12")]);
    let table = empty_table("web");
    let builder = Membership::builder(resolver(&server)).ip("www.test", 80);
    let mut events = builder.subscribe();
    let membership = builder.start(table.clone()).unwrap();
    let first = changed(&mut events).await;
    let member = |a: &str| Member {
        addr: sa(a),
        weight: lb_core::Weight::ONE,
    };
    assert_eq!(
        first,
        DnsEvent::TableChanged {
            table: "web".into(),
            added: vec![member("127.0.0.11:80"), member("127.0.0.12:80")],
            removed: vec![],
            reweighted: vec![],
        }
    );
    let kept = table.snapshot();
    let kept_slot = kept
        .host(kept.index_of(id_of("127.0.0.12:80")).unwrap())
        .clone();

    // .11 leaves, .13 comes: seen at the next lookup, one TTL (1 s) later.
    server.set_ips("www.test", 1, &[ip("127.0.0.12"), ip("127.0.0.13")]);
    let second = changed(&mut events).await;
    assert_eq!(
        second,
        DnsEvent::TableChanged {
            table: "web".into(),
            added: vec![member("127.0.0.13:80")],
            removed: vec![member("127.0.0.11:80")],
            reweighted: vec![],
        }
    );
    assert_eq!(
        hosts(&table),
        vec![(sa("127.0.0.12:80"), 1), (sa("127.0.0.13:80"), 1)]
    );
    // The host that stayed is the same host: same id, same state block.
    let snap = table.snapshot();
    let i = snap.index_of(id_of("127.0.0.12:80")).unwrap();
    assert!(Arc::ptr_eq(snap.host(i), &kept_slot));
    assert!(server.queries("www.test") >= 4, "A and AAAA, twice");
    membership.shutdown().await;
}

#[tokio::test]
async fn srv_targets_give_ports_and_weights_of_the_lowest_priority() {
    let server = DnsServer::start().await;
    // priority 10: a (weight 5, port 8001), b (weight 0 -> 1, port 8002);
    // priority 20: c, a fallback the membership ignores.
    server.set_srv(
        "_imap._tcp.test",
        1,
        &[
            (10, 5, 8001, "a.test"),
            (10, 0, 8002, "b.test"),
            (20, 9, 8003, "c.test"),
        ],
    );
    server.set_ips("a.test", 60, &[ip("127.0.0.21"), ip("::1")]);
    server.set_ips("b.test", 60, &[ip("127.0.0.22")]);
    server.set_ips("c.test", 60, &[ip("127.0.0.23")]);
    let table = empty_table("imap");
    let builder = Membership::builder(resolver(&server)).srv("_imap._tcp.test");
    let mut events = builder.subscribe();
    let membership = builder.start(table.clone()).unwrap();
    membership.ready().await;
    assert_eq!(
        hosts(&table),
        vec![
            (sa("127.0.0.21:8001"), 5),
            (sa("127.0.0.22:8002"), 1),
            (sa("[::1]:8001"), 5)
        ]
    );
    assert_eq!(
        server.queries("c.test"),
        0,
        "a fallback target is not even looked up"
    );

    // A weight change is a reweight, not a remove and add: the id stays.
    server.set_srv(
        "_imap._tcp.test",
        1,
        &[(10, 7, 8001, "a.test"), (10, 0, 8002, "b.test")],
    );
    let event = wait_for(
        &mut events,
        "a reweight",
        |e| matches!(e, DnsEvent::TableChanged { reweighted, .. } if !reweighted.is_empty()),
    )
    .await;
    let DnsEvent::TableChanged { added, removed, .. } = event else {
        unreachable!()
    };
    assert!(added.is_empty() && removed.is_empty());
    assert_eq!(
        hosts(&table),
        vec![
            (sa("127.0.0.21:8001"), 7),
            (sa("127.0.0.22:8002"), 1),
            (sa("[::1]:8001"), 7)
        ]
    );
    membership.shutdown().await;
}

#[tokio::test]
async fn ttls_are_bounded_below_and_above() {
    let server = DnsServer::start().await;
    server.set_ips("zero.test", 0, &[ip("127.0.0.31")]);
    server.set_ips("long.test", 3600, &[ip("127.0.0.41")]);
    let table = empty_table("bounded");
    let builder = Membership::builder(resolver(&server))
        .ip("zero.test", 80)
        .ip("long.test", 80)
        .min_ttl(Duration::from_millis(500))
        .max_ttl(Duration::from_secs(1));
    let mut events = builder.subscribe();
    let membership = builder.start(table.clone()).unwrap();
    let next_in = |name: &'static str| move |e: &DnsEvent| matches!(e, DnsEvent::Resolved { source, .. } if source.name() == name);
    let DnsEvent::Resolved {
        ttl,
        next_in: zero_next,
        ..
    } = wait_for(&mut events, "zero.test", next_in("zero.test")).await
    else {
        unreachable!()
    };
    assert_eq!(
        (ttl, zero_next),
        (Duration::ZERO, Duration::from_millis(500))
    );
    let DnsEvent::Resolved {
        ttl,
        next_in: long_next,
        ..
    } = wait_for(&mut events, "long.test", next_in("long.test")).await
    else {
        unreachable!()
    };
    assert_eq!(
        (ttl, long_next),
        (Duration::from_secs(3600), Duration::from_secs(1))
    );

    // The maximum takes effect although the resolver's cache would keep the answer
    // for an hour: the new address shows up.
    server.set_ips("long.test", 3600, &[ip("127.0.0.42")]);
    wait_for(&mut events, "long.test's new address", |e| {
        matches!(e, DnsEvent::TableChanged { added, .. } if added.iter().any(|m| m.addr == sa("127.0.0.42:80")))
    })
    .await;
    assert_eq!(
        hosts(&table),
        vec![(sa("127.0.0.31:80"), 1), (sa("127.0.0.42:80"), 1)]
    );
    membership.shutdown().await;
}

#[tokio::test]
async fn hosts_already_in_the_table_are_left_to_their_owner() {
    let server = DnsServer::start().await;
    server.set_ips("www.test", 1, &[ip("127.0.0.11"), ip("127.0.0.12")]);
    let table = HostTable::new("web", [Host::from(sa("127.0.0.11:80"))]).unwrap();
    let builder = Membership::builder(resolver(&server)).ip("www.test", 80);
    let mut events = builder.subscribe();
    let membership = builder.start(table.clone()).unwrap();
    let DnsEvent::TableChanged { added, .. } = changed(&mut events).await else {
        unreachable!()
    };
    assert_eq!(
        added.iter().map(|m| m.addr).collect::<Vec<_>>(),
        vec![sa("127.0.0.12:80")]
    );
    // DNS drops both: the membership removes the host it added, not the static one.
    server.set_ips("www.test", 1, &[ip("127.0.0.13")]);
    let DnsEvent::TableChanged { removed, .. } = changed(&mut events).await else {
        unreachable!()
    };
    assert_eq!(
        removed.iter().map(|m| m.addr).collect::<Vec<_>>(),
        vec![sa("127.0.0.12:80")]
    );
    assert_eq!(
        hosts(&table),
        vec![(sa("127.0.0.11:80"), 1), (sa("127.0.0.13:80"), 1)]
    );
    membership.shutdown().await;
}

#[tokio::test]
async fn hosts_start_with_the_initial_health_and_sources_merge() {
    let server = DnsServer::start().await;
    server.set_ips("one.test", 60, &[ip("127.0.0.11")]);
    server.set_ips("two.test", 60, &[ip("127.0.0.11"), ip("127.0.0.12")]);
    let table = empty_table("merged");
    let membership = Membership::builder(resolver(&server))
        .source(Source::ip("one.test", 80))
        .source(Source::ip("two.test", 80))
        .source(Source::ip("127.0.0.99", 81))
        .initial_health(Health::Unknown)
        .start(table.clone())
        .unwrap();
    membership.ready().await;
    assert_eq!(
        hosts(&table),
        vec![
            (sa("127.0.0.11:80"), 1),
            (sa("127.0.0.12:80"), 1),
            (sa("127.0.0.99:81"), 1)
        ]
    );
    let snap = table.snapshot();
    assert!((0..snap.len()).all(|i| snap.health(i) == Health::Unknown));
    membership.shutdown().await;
}

#[tokio::test]
async fn each_answer_is_one_batch_of_table_changes() {
    let server = DnsServer::start().await;
    let v4 = |n: u8| ip(&format!("127.0.0.{n}"));
    server.set_ips("www.test", 1, &[v4(11), v4(12), v4(13)]);
    let table = empty_table("web");
    let first = table.snapshot().version();
    let membership = Membership::builder(resolver(&server))
        .ip("www.test", 443)
        .start(table.clone())
        .unwrap();
    membership.ready().await;
    let mut events = membership.subscribe();
    let snap = table.snapshot();
    assert_eq!(
        (snap.len(), snap.version()),
        (3, first + 1),
        "three hosts, one snapshot"
    );
    // Two come, one goes: one more snapshot, so balancers rebuild once.
    server.set_ips("www.test", 1, &[v4(11), v4(13), v4(14), v4(15)]);
    changed(&mut events).await;
    let snap = table.snapshot();
    assert_eq!((snap.len(), snap.version()), (4, first + 2));
    membership.shutdown().await;
}
