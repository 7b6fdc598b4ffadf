//! Hash-mode picks allocate nothing: `SourceHash`, `LoadBalance` and `Consistent`
//! (all hosts up, one down, and most down so that picks take the fallback), 4 000
//! picks each under a counting global allocator.

mod alloc_support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use lb_core::{Backend, Balancer, Context, Health, HostTable, Policy};
use lb_policies::{Consistent, LoadBalance, SourceHash};

#[global_allocator]
static GLOBAL: alloc_support::Counting = alloc_support::Counting;

use alloc_support::allocations;

fn client(i: u32) -> SocketAddr {
    if i.is_multiple_of(2) {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0xc633_6400 ^ i)), 5000)
    } else {
        SocketAddr::new(
            IpAddr::V6(Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(i))),
            5000,
        )
    }
}

/// Picks 4 000 times (dropping each lease) and returns the allocations made.
fn allocations_of_picks<P: Policy, B: Backend>(balancer: &Balancer<P, B>) -> u64 {
    let listen: SocketAddr = "203.0.113.1:443".parse().unwrap();
    // Warm up thread-locals and lazy state outside the count.
    drop(balancer.pick(&Context::from_client(client(0))));
    let before = allocations();
    for i in 0..4000 {
        let ctx = Context::from_client(client(i)).with_listen(listen);
        let lease = balancer.pick(&ctx).unwrap();
        std::hint::black_box(&lease);
    }
    allocations() - before
}

fn table(n: usize) -> std::sync::Arc<HostTable<SocketAddr>> {
    let hosts =
        (0..n).map(|i| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0001 + i as u32)), 80));
    HostTable::new("t", hosts).unwrap()
}

#[test]
fn hash_picks_do_not_allocate() {
    let t = table(16);
    let source = Balancer::new(&t, SourceHash::new());
    let loadbalance = Balancer::new(&t, LoadBalance::new());
    let consistent = Balancer::new(&t, Consistent::new());
    let failover = Balancer::new(&t, Consistent::new().with_failover(8).unwrap());
    assert_eq!(allocations_of_picks(&source), 0);
    assert_eq!(allocations_of_picks(&loadbalance), 0);
    assert_eq!(allocations_of_picks(&consistent), 0);
    assert_eq!(allocations_of_picks(&failover), 0);
    // One host down: its keys probe further.
    let snap = t.snapshot();
    t.set_health(snap.id(3), Health::Down, "test").unwrap();
    assert_eq!(allocations_of_picks(&source), 0);
    assert_eq!(allocations_of_picks(&consistent), 0);
    assert_eq!(allocations_of_picks(&failover), 0);
    // All but one down: most Consistent picks exhaust their probes and fall back.
    for i in 1..16 {
        t.set_health(snap.id(i), Health::Down, "test").unwrap();
    }
    assert_eq!(allocations_of_picks(&source), 0);
    assert_eq!(allocations_of_picks(&consistent), 0);
    assert_eq!(allocations_of_picks(&failover), 0);
}
