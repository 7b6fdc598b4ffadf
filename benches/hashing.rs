//! The hashing hot path: keyed hashes, hash-mode picks, Maglev rebuilds, and the floor
//! a consistent pick cannot beat. IDs (see issue 3):
//!
//! - `hash/siphash24/v4`, `hash/fast/v4`, `hash/fast/v6`: one keyed hash of an address;
//! - `pick/source_hash_relayd/<N>`, `pick/consistent/<N>/v4`, `pick/consistent/<N>/v6`:
//!   one decision, `Policy::order` plus finding the first usable candidate, all hosts
//!   up (no lease: `pick_lease/...` adds `Balancer::pick`'s lease, two atomics);
//! - `rebuild/consistent/<N>`: building the Maglev table for N hosts;
//! - `baseline/index/v4`: the fast hash plus one index into an array of the size
//!   `Consistent` picks for 1024 hosts;
//! - `pick/sticky/{hit,miss}` and `pick_lease/sticky/{hit,miss,evict,none}`: see
//!   `sticky.rs`.
//!
//! Addresses cycle through 4096 distinct clients so table lookups are not all L1 hits.
//! Run with `cargo bench --bench hashing -- --warm-up-time 1 --measurement-time 2`.

mod sticky;

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use criterion::{criterion_group, criterion_main, Criterion};
use lb_core::{
    fast_hash_ip, siphash24_ip, Balancer, Context, HashKey, HostTable, Order, Policy, Snapshot,
};
use lb_policies::{Consistent, SourceHash};

const SIZES: [usize; 4] = [2, 8, 64, 1024];
const CLIENTS: usize = 4096;

fn v4_clients() -> Vec<SocketAddr> {
    (0..CLIENTS as u32)
        .map(|i| {
            let ip = Ipv4Addr::from(0x0a00_0000 | i.wrapping_mul(2_654_435_761) >> 8);
            SocketAddr::new(IpAddr::V4(ip), 40_000)
        })
        .collect()
}

fn v6_clients() -> Vec<SocketAddr> {
    (0..CLIENTS as u64)
        .map(|i| {
            let low = u128::from(i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let ip = Ipv6Addr::from(0x2001_0db8_u128 << 96 | low);
            SocketAddr::new(IpAddr::V6(ip), 40_000)
        })
        .collect()
}

fn table(n: usize) -> std::sync::Arc<HostTable<SocketAddr>> {
    let hosts = (0..n).map(|i| {
        let ip = Ipv4Addr::from(0x0a01_0000 + i as u32);
        SocketAddr::new(IpAddr::V4(ip), 443)
    });
    HostTable::new("bench", hosts).expect("a valid table")
}

/// The pick a balancer makes from an order: the first usable preferred host, else the
/// scan's first usable host.
#[inline]
fn first_usable<B: lb_core::Backend>(order: &Order, snap: &Snapshot<B>) -> Option<usize> {
    if let Some(&i) = order
        .preferred()
        .iter()
        .find(|&&i| snap.is_usable(i as usize))
    {
        return Some(i as usize);
    }
    let n = snap.len();
    (0..n)
        .map(|k| (order.scan_start() + k) % n)
        .find(|&i| snap.is_usable(i))
}

fn bench_hash(c: &mut Criterion) {
    let key = HashKey::DEFAULT;
    let v4 = v4_clients();
    let v6 = v6_clients();
    let mut i = 0;
    c.bench_function("hash/siphash24/v4", |b| {
        b.iter(|| {
            i = (i + 1) % CLIENTS;
            siphash24_ip(black_box(&key), v4[i].ip())
        })
    });
    c.bench_function("hash/fast/v4", |b| {
        b.iter(|| {
            i = (i + 1) % CLIENTS;
            fast_hash_ip(black_box(&key), v4[i].ip())
        })
    });
    c.bench_function("hash/fast/v6", |b| {
        b.iter(|| {
            i = (i + 1) % CLIENTS;
            fast_hash_ip(black_box(&key), v6[i].ip())
        })
    });
    let size = Consistent::table_size_for(1024);
    let array: Vec<u16> = (0..size).map(|s| (s % 1024) as u16).collect();
    c.bench_function("baseline/index/v4", |b| {
        b.iter(|| {
            i = (i + 1) % CLIENTS;
            let h = fast_hash_ip(black_box(&key), v4[i].ip());
            array[((u128::from(h) * size as u128) >> 64) as usize]
        })
    });
}

fn bench_pick_with<P: Policy>(
    c: &mut Criterion,
    id: &str,
    policy: &P,
    snap: &Snapshot<SocketAddr>,
    clients: &[SocketAddr],
) {
    let plan = policy.plan(snap, None);
    let mut i = 0;
    c.bench_function(id, |b| {
        b.iter(|| {
            i = (i + 1) % CLIENTS;
            let ctx = Context::from_client(clients[i]);
            let mut order = Order::new();
            // `clients[i]` is opaque to the optimiser already; a `black_box(&ctx)` here
            // would add a store-forwarding stall to every v6 pick, a bench artifact.
            policy.order(&plan, snap, &ctx, &mut order);
            first_usable(&order, snap)
        })
    });
}

fn bench_pick(c: &mut Criterion) {
    let v4 = v4_clients();
    let v6 = v6_clients();
    for n in SIZES {
        let snap = table(n).snapshot();
        bench_pick_with(
            c,
            &format!("pick/source_hash_relayd/{n}"),
            &SourceHash::new(),
            &snap,
            &v4,
        );
        let consistent = Consistent::new();
        bench_pick_with(
            c,
            &format!("pick/consistent/{n}/v4"),
            &consistent,
            &snap,
            &v4,
        );
        bench_pick_with(
            c,
            &format!("pick/consistent/{n}/v6"),
            &consistent,
            &snap,
            &v6,
        );
    }
    // The same decision through a balancer, with its lease taken and dropped.
    let table = table(1024);
    let balancer = Balancer::new(&table, Consistent::new());
    let mut i = 0;
    c.bench_function("pick_lease/consistent/1024/v4", |b| {
        b.iter(|| {
            i = (i + 1) % CLIENTS;
            balancer.pick(&Context::from_client(v4[i])).is_ok()
        })
    });
}

fn bench_rebuild(c: &mut Criterion) {
    let mut group = c.benchmark_group("rebuild/consistent");
    group.sample_size(10);
    for n in SIZES {
        let snap = table(n).snapshot();
        let policy = Consistent::new();
        group.bench_function(n.to_string(), |b| {
            b.iter(|| policy.plan(black_box(&snap), None))
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_hash,
    bench_pick,
    bench_rebuild,
    sticky::bench_sticky
);
criterion_main!(benches);
