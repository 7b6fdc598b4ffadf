//! A pick and the drop of its lease allocate nothing, for every policy, on a prepared
//! table: 10 000 of each under a counting global allocator. A failed pick (no usable
//! host, an outage, or an empty table) allocates nothing either: its error shares the
//! table's name.

mod alloc_support;

use std::net::SocketAddr;

use lb_core::{Admin, Balancer, Context, Error, Health, Host, HostTable, Policy};
use lb_policies::{
    Consistent, LeastStates, LoadBalance, PowerOfTwo, Random, RoundRobin, SourceHash, StickyAddress,
};

#[global_allocator]
static GLOBAL: alloc_support::Counting = alloc_support::Counting;

use alloc_support::allocations;

/// 64 hosts with weights 1..=4, host 5 down, one lease held on every usable host.
fn prepared_table() -> std::sync::Arc<HostTable> {
    let hosts = (0..64u16).map(|i| {
        let addr = SocketAddr::from(([10, 0, 0, 1], 8000 + i));
        Host::new(format!("h{i}"), addr)
            .with_weight(u64::from(i % 4 + 1))
            .expect("valid weight")
    });
    let table = HostTable::new("t", hosts).expect("valid table");
    let id = table.snapshot().id(5);
    table
        .set_health(id, Health::Down, "test")
        .expect("host 5 exists");
    table
}

/// Allocations made by 10 000 picks and lease drops through `policy`.
fn allocations_of<P: Policy>(policy: P) -> u64 {
    let table = prepared_table();
    let balancer = Balancer::new(&table, policy);
    let ctx = Context::from_client(SocketAddr::from(([192, 0, 2, 1], 5555)));
    let held: Vec<_> = (0..63)
        .map(|_| balancer.pick(&ctx).expect("usable"))
        .collect();
    // The first load through arc-swap on a thread registers that thread's debt slot
    // (once per thread), and fastrand seeds its thread-local generator: done above.
    let before = allocations();
    for _ in 0..10_000 {
        let lease = balancer.pick(&ctx).expect("usable");
        drop(lease);
    }
    let after = allocations();
    drop(held);
    after - before
}

#[test]
fn picks_allocate_nothing() {
    assert_eq!(
        allocations_of(RoundRobin::new()),
        0,
        "round-robin (weighted schedule)"
    );
    assert_eq!(
        allocations_of(RoundRobin::new().with_schedule_limit(0)),
        0,
        "round-robin (weighted, live)"
    );
    assert_eq!(allocations_of(Random::new()), 0, "random");
    assert_eq!(allocations_of(Random::with_seed(1)), 0, "random, seeded");
    assert_eq!(allocations_of(LeastStates::new()), 0, "least-states");
    assert_eq!(allocations_of(PowerOfTwo::new()), 0, "p2c");
}

#[test]
fn unweighted_round_robin_allocates_nothing() {
    let table = HostTable::new(
        "t",
        (0..8u16).map(|i| SocketAddr::from(([10, 0, 0, 2], 80 + i))),
    )
    .expect("valid table");
    let balancer = Balancer::new(&table, RoundRobin::new());
    let ctx = Context::new();
    drop(balancer.pick(&ctx));
    let before = allocations();
    for _ in 0..10_000 {
        drop(balancer.pick(&ctx).expect("usable"));
    }
    assert_eq!(allocations() - before, 0);
}

/// Allocations made by 10 000 failed picks through `policy` on a table whose hosts are
/// all down or disabled (an outage: every request fails).
fn allocations_of_failures<P: Policy>(policy: P) -> u64 {
    let table = prepared_table();
    let snap = table.snapshot();
    for i in 0..snap.len() {
        if i % 2 == 0 {
            table
                .set_health(snap.id(i), Health::Down, "test")
                .expect("host exists");
        } else {
            table
                .set_admin(snap.id(i), Admin::Disabled)
                .expect("host exists");
        }
    }
    let balancer = Balancer::new(&table, policy);
    let ctx = Context::from_client(SocketAddr::from(([192, 0, 2, 1], 5555)))
        .with_listen(SocketAddr::from(([0, 0, 0, 0], 443)));
    // Warm up thread-locals outside the count, and check the failure is the typed one.
    match balancer.pick(&ctx) {
        Err(Error::NoUsableHost { table, hosts }) => {
            assert_eq!((&*table, hosts), ("t", 64));
        }
        other => panic!("expected NoUsableHost, got {other:?}"),
    }
    let before = allocations();
    for _ in 0..10_000 {
        let error = balancer.pick(&ctx).expect_err("no usable host");
        std::hint::black_box(&error);
    }
    allocations() - before
}

#[test]
fn failed_picks_allocate_nothing() {
    assert_eq!(allocations_of_failures(RoundRobin::new()), 0, "round-robin");
    assert_eq!(allocations_of_failures(Random::new()), 0, "random");
    assert_eq!(
        allocations_of_failures(LeastStates::new()),
        0,
        "least-states"
    );
    assert_eq!(allocations_of_failures(PowerOfTwo::new()), 0, "p2c");
    assert_eq!(allocations_of_failures(SourceHash::new()), 0, "source-hash");
    assert_eq!(
        allocations_of_failures(LoadBalance::new()),
        0,
        "loadbalance"
    );
    assert_eq!(allocations_of_failures(Consistent::new()), 0, "consistent");
    assert_eq!(
        allocations_of_failures(StickyAddress::new(LeastStates::new())),
        0,
        "sticky-address"
    );
}

/// Allocations made by 10 000 failed picks through `policy` on a table with no hosts.
fn allocations_on_empty<P: Policy>(policy: P) -> u64 {
    let table = HostTable::<Host>::builder("t")
        .allow_empty()
        .build()
        .expect("an empty table is allowed");
    let balancer = Balancer::new(&table, policy);
    let ctx = Context::from_client(SocketAddr::from(([192, 0, 2, 1], 5555)))
        .with_listen(SocketAddr::from(([0, 0, 0, 0], 443)));
    match balancer.pick(&ctx) {
        Err(Error::NoUsableHost { table, hosts }) => {
            assert_eq!((&*table, hosts), ("t", 0));
        }
        other => panic!("expected NoUsableHost, got {other:?}"),
    }
    let before = allocations();
    for _ in 0..10_000 {
        let error = balancer.pick(&ctx).expect_err("no hosts");
        std::hint::black_box(&error);
    }
    allocations() - before
}

#[test]
fn picks_from_an_empty_table_allocate_nothing() {
    assert_eq!(allocations_on_empty(RoundRobin::new()), 0, "round-robin");
    assert_eq!(allocations_on_empty(Random::new()), 0, "random");
    assert_eq!(allocations_on_empty(LeastStates::new()), 0, "least-states");
    assert_eq!(allocations_on_empty(PowerOfTwo::new()), 0, "p2c");
    assert_eq!(allocations_on_empty(SourceHash::new()), 0, "source-hash");
    assert_eq!(allocations_on_empty(LoadBalance::new()), 0, "loadbalance");
    assert_eq!(allocations_on_empty(Consistent::new()), 0, "consistent");
    assert_eq!(
        allocations_on_empty(StickyAddress::new(LeastStates::new())),
        0,
        "sticky-address"
    );
}

#[test]
fn the_counter_sees_allocations() {
    let before = allocations();
    let v: Vec<u8> = Vec::with_capacity(16);
    assert_eq!(allocations() - before, 1);
    drop(v);
}
