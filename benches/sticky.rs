//! Sticky-address benches, registered by [`bench_sticky`] (called from `hashing.rs`).
//!
//! Every bench wraps `RoundRobin` over 8 hosts in `StickyAddress` with the defaults
//! (capacity 10 000, 16 shards, the system clock). The ids follow `hashing.rs`:
//! `pick/...` is the policy's decision alone (`Policy::order`, as `pick/consistent/...`),
//! `pick_lease/...` a connection's whole life as the relay sees it: `Balancer::pick`
//! (the decision, then the lease, which counts it on the entry) and dropping the lease
//! (which counts it down). For a live entry in its home slots none of these takes a
//! shard lock (see the `sticky` module docs); a new source locks its shard for the
//! lookup, the insert and the last release.
//!
//! - `pick/sticky/hit`, `pick_lease/sticky/hit`: a source with an entry. 4096 sources
//!   cycle, each holding one lease for the whole bench so that its entry stays (timeout
//!   0 would otherwise remove it with the measured lease).
//! - `pick/sticky/miss`: a source without an entry (a counter over 2^24 addresses):
//!   the locked lookup, then round-robin's order. `pick_lease/sticky/miss` also creates
//!   the entry with the lease and, with the default timeout 0, removes it when the lease
//!   is dropped, so the table never fills.
//! - `pick_lease/sticky/evict`: a new source every iteration on a table kept full of
//!   idle entries (timeout 1 hour): each lease evicts the oldest idle entry, visiting
//!   all 16 shards' locks. The cost of a flood of spoofed sources.
//! - `pick_lease/sticky/none`: round-robin alone, `pick` and drop: the floor sticky
//!   adds to.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use criterion::Criterion;
use lb_core::{Balancer, Context, HostTable, Order, Policy};
use lb_policies::{RoundRobin, StickyAddress};

const CLIENTS: u32 = 4096;

fn hosts() -> Arc<HostTable<SocketAddr>> {
    let hosts =
        (0..8u32).map(|i| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a01_0000 + i)), 443));
    HostTable::new("sticky-bench", hosts).expect("a valid table")
}

/// Distinct, scattered IPv4 sources.
fn source(i: u32) -> Context<'static> {
    let ip = Ipv4Addr::from(0x0b00_0000 | (i.wrapping_mul(2_654_435_761) >> 8));
    Context::from_client(SocketAddr::new(IpAddr::V4(ip), 40_000))
}

/// Registers `pick/sticky/{hit,miss}` and `pick_lease/sticky/{hit,miss,evict,none}`.
pub fn bench_sticky(c: &mut Criterion) {
    let table = hosts();

    let sticky = Balancer::new(&table, StickyAddress::new(RoundRobin::new()));
    let clients: Vec<Context<'static>> = (0..CLIENTS).map(source).collect();
    let held: Vec<_> = clients
        .iter()
        .map(|ctx| sticky.pick(ctx).expect("a usable host"))
        .collect();
    let mut i = 0;
    c.bench_function("pick_lease/sticky/hit", |b| {
        b.iter(|| {
            i = (i + 1) % clients.len();
            drop(black_box(sticky.pick(&clients[i])));
        })
    });
    c.bench_function("pick/sticky/hit", |b| {
        sticky.with_plan(|snap, plan| {
            b.iter(|| {
                i = (i + 1) % clients.len();
                let mut order = Order::new();
                sticky.policy().order(plan, snap, &clients[i], &mut order);
                black_box(order)
            })
        })
    });
    let stats = sticky.policy().stats();
    assert_eq!(
        stats.misses,
        u64::from(CLIENTS),
        "every measured pick was a hit"
    );
    drop(held);

    let mut n = CLIENTS;
    c.bench_function("pick/sticky/miss", |b| {
        sticky.with_plan(|snap, plan| {
            b.iter(|| {
                n = n.wrapping_add(1) & 0x00ff_ffff;
                let mut order = Order::new();
                sticky.policy().order(plan, snap, &source(n), &mut order);
                black_box(order)
            })
        })
    });
    c.bench_function("pick_lease/sticky/miss", |b| {
        b.iter(|| {
            n = n.wrapping_add(1) & 0x00ff_ffff;
            drop(black_box(sticky.pick(&source(n))));
        })
    });
    assert_eq!(
        sticky.policy().stats().entries,
        0,
        "misses leave no entry behind"
    );

    let full = StickyAddress::builder(RoundRobin::new())
        .timeout(Duration::from_secs(3600))
        .build()
        .expect("valid settings");
    let full = Balancer::new(&table, full);
    let mut n = 0u32;
    while full.policy().stats().entries < full.policy().capacity() {
        drop(full.pick(&source(n)));
        n += 1;
    }
    c.bench_function("pick_lease/sticky/evict", |b| {
        b.iter(|| {
            n = n.wrapping_add(1) & 0x00ff_ffff;
            drop(black_box(full.pick(&source(n))));
        })
    });

    let plain = Balancer::new(&table, RoundRobin::new());
    c.bench_function("pick_lease/sticky/none", |b| {
        b.iter(|| {
            i = (i + 1) % clients.len();
            drop(black_box(plain.pick(&clients[i])));
        })
    });
}
