//! Distribution over 3 backends, from 30 clients bound to 127.0.0.2 ... 127.0.0.31.
//!
//! ```text
//!   127.0.0.2 ─┐                    ┌─> a (127.0.0.1:pa)
//!   ...        ├─> relay 127.0.0.1 ─┼─> b (127.0.0.1:pb)
//!   127.0.0.31 ┘   (backend port =  └─> c (127.0.0.1:pc)
//!                   host's own)
//! ```
//!
//! Linux only: every address of 127.0.0.0/8 answers on Linux's loopback; other systems
//! configure 127.0.0.1 alone.
#![cfg(target_os = "linux")]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};

use common::{connect_from, read_line, relay, table, Backend, Run};
use lb_policies::{Consistent, RoundRobin, SourceHash};

fn source(i: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_spreads_evenly() {
    let (a, b, c) = (
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
    );
    let relay = relay("rr")
        .forward_to(table("web", &[&a, &b, &c]))
        .policy_fn(RoundRobin::new)
        .run();
    let to = relay.local_addrs()[0];
    let mut picks = Vec::new();
    for i in 0..30 {
        let mut s = connect_from(source(i), to).await;
        picks.push(read_line(&mut s).await);
    }
    // relayd's cursor: a, b, c, a, b, c, ... whatever the source.
    for (i, pick) in picks.iter().enumerate() {
        assert_eq!(pick, ["a", "b", "c"][i % 3], "pick {i}");
    }
    let mut counts = BTreeMap::new();
    for p in &picks {
        *counts.entry(p.as_str()).or_insert(0) += 1;
    }
    assert_eq!(counts, BTreeMap::from([("a", 10), ("b", 10), ("c", 10)]));
    let stats = relay.stats();
    for name in ["a", "b", "c"] {
        let host = stats.host("web", name).unwrap();
        assert_eq!(host.total, 10, "{name}");
        assert_eq!(host.connect_failures, 0, "{name}");
    }
    assert_eq!(stats.total, 30);
    assert_eq!(stats.failed, 0);
    assert_eq!(stats.sessions.last_minute, 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_hash_sends_each_source_to_one_backend() {
    let (a, b, c) = (
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
    );
    let relay = relay("sh")
        .forward_to(table("web", &[&a, &b, &c]))
        .policy_fn(SourceHash::new)
        .run();
    let to = relay.local_addrs()[0];
    let mut first: HashMap<u8, String> = HashMap::new();
    // Three rounds over the 30 sources: every source lands where it landed first.
    for round in 0..3 {
        for i in 0..30 {
            let mut s = connect_from(source(i), to).await;
            let pick = read_line(&mut s).await;
            let expected = first.entry(i).or_insert_with(|| pick.clone());
            assert_eq!(&pick, expected, "source {} in round {round}", source(i));
        }
    }
    // The mapping is a hash, not a constant: with 30 sources every backend gets some.
    let mut counts = BTreeMap::new();
    for p in first.values() {
        *counts.entry(p.as_str()).or_insert(0) += 1;
    }
    assert_eq!(counts.len(), 3, "{counts:?}");
    assert_eq!(counts.values().sum::<i32>(), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_hash_moves_only_the_clients_of_a_dead_host() {
    let (a, b, c) = (
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
    );
    let relay = relay("ch")
        .forward_to(table("web", &[&a, &b, &c]))
        .policy(Consistent::new())
        .run();
    let to = relay.local_addrs()[0];
    let mut before: HashMap<u8, String> = HashMap::new();
    for i in 0..30 {
        let mut s = connect_from(source(i), to).await;
        before.insert(i, read_line(&mut s).await);
    }
    let on_c = before.values().filter(|p| *p == "c").count();
    assert!(on_c > 0, "{before:?}");
    // c dies between checks: the first of its clients to come back ejects it.
    c.stop().await;
    for i in 0..30 {
        let mut s = connect_from(source(i), to).await;
        let now = read_line(&mut s).await;
        if before[&i] == "c" {
            assert!(
                now == "a" || now == "b",
                "source {} went to {now}",
                source(i)
            );
        } else {
            assert_eq!(now, before[&i], "source {} moved", source(i));
        }
    }
    let stats = relay.stats();
    assert_eq!(stats.failed, 0);
    assert_eq!(stats.host("web", "c").unwrap().connect_failures, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_port_on_ipv4_and_ipv6() {
    if tokio::net::TcpListener::bind("[::1]:0").await.is_err() {
        eprintln!("no ::1 on this machine: dual-stack test not run");
        return;
    }
    let a = Backend::start("a").await;
    let relay = relay("dual")
        .listen("::1".parse().unwrap())
        .forward_to(table("web", &[&a]))
        .run();
    let addrs = relay.local_addrs();
    assert_eq!(addrs.len(), 2);
    assert!(addrs[0].is_ipv4() && addrs[1].is_ipv6());
    // Port 0 picked a free port once; both families listen on it.
    assert_eq!(addrs[0].port(), addrs[1].port());
    for addr in addrs {
        let mut s = connect_from(addr.ip(), *addr).await;
        assert_eq!(read_line(&mut s).await, "a");
    }
}
