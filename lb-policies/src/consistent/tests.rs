//! Unit tests of `Consistent`: settings, key choice, rebuild policy, failover order.

use std::net::SocketAddr;

use lb_core::{fast_hash, Balancer, Context, HashKey, Health, HostTable};

use super::*;

fn table(n: usize) -> Arc<HostTable<SocketAddr>> {
    let hosts = (1..=n).map(|i| format!("10.0.0.{i}:443").parse().unwrap());
    HostTable::new("t", hosts).unwrap()
}

fn ctx(addr: &str) -> Context<'static> {
    Context::from_client(addr.parse().unwrap())
}

#[test]
fn settings_are_checked() {
    for bad in [0, 1, 4, 65_536, maglev::MAX_TABLE_SIZE + 2] {
        let err = Consistent::new().with_table_size(bad).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidSetting {
                    setting: "table_size",
                    ..
                }
            ),
            "{bad}"
        );
    }
    assert_eq!(
        Consistent::new()
            .with_table_size(4)
            .unwrap_err()
            .to_string(),
        "invalid setting `table_size`: a prime from 2 to 16777259, got 4"
    );
    assert!(Consistent::new().with_table_size(65_537).is_ok());
    assert!(Consistent::new().with_failover(0).is_err());
    assert!(Consistent::new()
        .with_failover(Order::CAPACITY + 1)
        .is_err());
    assert!(Consistent::new().with_failover(Order::CAPACITY).is_ok());
}

#[test]
fn key_bytes_take_precedence_over_the_client() {
    let policy = Consistent::new();
    let keyed = ctx("192.0.2.1:1").with_key(b"user-42");
    assert_eq!(
        policy.hash(&keyed),
        fast_hash(&HashKey::DEFAULT, b"user-42")
    );
    let elsewhere = ctx("198.51.100.9:2").with_key(b"user-42");
    assert_eq!(policy.hash(&keyed), policy.hash(&elsewhere));
    // A dual-stack socket's IPv4-mapped client hashes as the IPv4 client.
    assert_eq!(
        policy.hash(&ctx("192.0.2.1:1")),
        policy.hash(&ctx("[::ffff:192.0.2.1]:1"))
    );
    // Another key, another mapping.
    let other = Consistent::new().with_key(HashKey::parse("another").unwrap());
    assert_ne!(
        other.hash(&ctx("192.0.2.1:1")),
        policy.hash(&ctx("192.0.2.1:1"))
    );
}

#[test]
fn the_table_is_rebuilt_on_membership_changes_only() {
    let t = table(5);
    let balancer = Balancer::new(&t, Consistent::new());
    let first = balancer.with_plan(|_, p| p.clone());
    assert_eq!(first.table_size(), 65_537);
    assert_eq!(first.memory_bytes(), 2 * 65_537);
    let id = t.snapshot().id(2);
    t.set_health(id, Health::Down, "test").unwrap();
    t.set_admin(t.snapshot().id(0), lb_core::Admin::Draining)
        .unwrap();
    assert!(balancer.with_plan(|_, p| p.shares_table_with(&first)));
    t.add("10.0.0.9:443".parse().unwrap(), Health::Up).unwrap();
    let second = balancer.with_plan(|_, p| p.clone());
    assert!(!second.shares_table_with(&first));
    assert_eq!(
        second.membership_version(),
        t.snapshot().membership_version()
    );
    t.set_weight(id, lb_core::Weight::new(3).unwrap()).unwrap();
    assert!(!balancer.with_plan(|_, p| p.shares_table_with(&second)));
}

#[test]
fn failover_candidates_are_where_the_key_goes_when_its_host_fails() {
    // With failover 3, candidates 2 and 3 are the next distinct hosts of the probe
    // sequence: marking the pick down makes candidate 2 the pick, and so on.
    let t = table(8);
    let balancer = Balancer::new(&t, Consistent::new().with_failover(3).unwrap());
    for k in 0..50 {
        let c = ctx(&format!("198.51.100.{k}:1"));
        let order: Vec<usize> = balancer.candidates(&c).map(|c| c.index()).collect();
        assert_eq!(order.len(), 8, "every host is a candidate once");
        assert_eq!(balancer.candidates(&c).order().preferred().len(), 3);
        let snap = t.snapshot();
        t.set_health(snap.id(order[0]), Health::Down, "test")
            .unwrap();
        assert_eq!(balancer.candidates(&c).next().unwrap().index(), order[1]);
        t.set_health(snap.id(order[1]), Health::Down, "test")
            .unwrap();
        assert_eq!(balancer.candidates(&c).next().unwrap().index(), order[2]);
        t.set_health(snap.id(order[0]), Health::Up, "test").unwrap();
        t.set_health(snap.id(order[1]), Health::Up, "test").unwrap();
        assert_eq!(balancer.candidates(&c).next().unwrap().index(), order[0]);
    }
}

#[test]
fn default_order_prefers_only_the_pick() {
    let t = table(4);
    let balancer = Balancer::new(&t, Consistent::new());
    let c = ctx("203.0.113.5:1");
    let candidates = balancer.candidates(&c);
    assert_eq!(candidates.order().preferred().len(), 1);
    assert_eq!(candidates.count(), 4);
}

#[test]
fn no_usable_host_is_an_error_not_a_panic() {
    let t = table(3);
    let balancer = Balancer::new(&t, Consistent::new());
    for i in 0..3 {
        t.set_health(t.snapshot().id(i), Health::Down, "test")
            .unwrap();
    }
    assert!(matches!(
        balancer.pick(&ctx("192.0.2.1:1")),
        Err(Error::NoUsableHost { hosts: 3, .. })
    ));
    assert_eq!(balancer.candidates(&ctx("192.0.2.1:1")).count(), 0);
}

#[test]
fn a_tiny_fixed_table_still_places_every_key() {
    // 3 slots for 5 hosts: two hosts own no slot and are reached only by the scan.
    let t = table(5);
    let balancer = Balancer::new(&t, Consistent::new().with_table_size(3).unwrap());
    let owners = balancer.with_plan(|_, p| p.slot_counts(5));
    assert_eq!(owners.iter().sum::<usize>(), 3);
    assert_eq!(owners.iter().filter(|&&c| c == 0).count(), 2);
    for k in 0..100 {
        let c = ctx(&format!("192.0.2.{k}:1"));
        let pick = balancer.candidates(&c).next().unwrap().index();
        assert!(owners[pick] > 0);
    }
}

#[test]
fn a_plan_of_another_membership_prefers_only_hosts_in_range() {
    // `Policy::order` is public: a caller could pair a plan with another table's
    // snapshot. The all-usable shortcut still prefers only indexes of that snapshot.
    let policy = Consistent::new();
    let plan = policy.plan(&table(8).snapshot(), None);
    let small = table(3).snapshot();
    for k in 0..200 {
        let mut order = Order::new();
        policy.order(&plan, &small, &ctx(&format!("192.0.2.{k}:1")), &mut order);
        assert!(order.preferred().iter().all(|&i| i < 3), "{order:?}");
        assert_eq!(order.preferred().len(), 1);
    }
}
