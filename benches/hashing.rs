//! The hashing hot path: keyed hashes, hash-mode decisions as a caller pays for them,
//! Maglev rebuilds, and the floor a consistent pick cannot beat. IDs (see issues 3, 13):
//!
//! - `hash/siphash24/v4`, `hash/fast/v4`, `hash/fast/v6`: one keyed hash of an address;
//!   `hash/siphasher/v4`: `siphasher`'s `SipHasher24` over the same 4 bytes, the
//!   reference ours wraps;
//! - `pick/source_hash_relayd/<N>`, `pick/consistent/<N>/v4`, `pick/consistent/<N>/v6`:
//!   one decision through the public API, everything a caller pays: the context built
//!   from the address, a [`Picker`]'s check for a new snapshot (one atomic load) and
//!   `Policy::first`, all hosts up. No lease: `pick_lease/...` adds it;
//! - `pick/maglev_crate/<N>`: the `maglev` 0.2 crate's lookup (`ConsistentHasher::get`
//!   with its default hasher) of the same client addresses over N hosts, for scale;
//! - `pick_lease/consistent/<N>` for N = 8, 64, 1024: `Picker::pick` and the lease's
//!   drop (the Arc clone, two counters up, one down, the Arc released);
//!   `pick_lease/consistent/1024/v4`: the same through `Balancer::pick`, which loads the
//!   shared snapshot every time;
//! - `rebuild/consistent/<N>`: building the Maglev table for N hosts;
//! - `baseline/index/v4`: the fast hash plus one index into an array of the size
//!   `Consistent` picks for 1024 hosts;
//! - `pick/sticky/{hit,miss}` and `pick_lease/sticky/{hit,miss,evict,none}`: see
//!   `sticky.rs`.
//!
//! Addresses cycle through 4096 distinct clients so table lookups are not all L1 hits.
//! Run with `cargo bench --bench hashing -- --warm-up-time 1 --measurement-time 3`.
//!
//! [`Picker`]: lb_core::Picker

mod sticky;

use std::hash::Hasher;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use lb_core::{fast_hash_ip, siphash24_ip, Balancer, Context, HashKey, HostTable, Policy};
use lb_policies::{Consistent, SourceHash};
use maglev::ConsistentHasher;
use siphasher::sip::SipHasher24;

const SIZES: [usize; 4] = [2, 8, 64, 1024];
/// Rebuilds also at 256 hosts, the largest N the disruption bound of 1.5/N covers.
const REBUILD_SIZES: [usize; 5] = [2, 8, 64, 256, 1024];
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

fn hosts(n: usize) -> Vec<SocketAddr> {
    (0..n)
        .map(|i| {
            let ip = Ipv4Addr::from(0x0a01_0000 + i as u32);
            SocketAddr::new(IpAddr::V4(ip), 443)
        })
        .collect()
}

fn table(n: usize) -> Arc<HostTable<SocketAddr>> {
    HostTable::new("bench", hosts(n)).expect("a valid table")
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
    let (k0, k1) = key.sip_keys();
    c.bench_function("hash/siphasher/v4", |b| {
        b.iter(|| {
            i = (i + 1) % CLIENTS;
            let IpAddr::V4(ip) = v4[i].ip() else {
                unreachable!("v4 clients")
            };
            let mut h = SipHasher24::new_with_keys(black_box(k0), black_box(k1));
            h.write(&ip.octets());
            h.finish()
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

/// `pick/...`: one decision through a picker, the context built from the address.
fn bench_decision<P: Policy>(
    c: &mut Criterion,
    id: &str,
    balancer: &Arc<Balancer<P, SocketAddr>>,
    clients: &[SocketAddr],
) {
    let mut picker = balancer.picker();
    let mut i = 0;
    c.bench_function(id, |b| {
        b.iter(|| {
            i = (i + 1) % CLIENTS;
            // `clients[i]` is opaque to the optimiser already; a `black_box(&ctx)` here
            // would add a store-forwarding stall to every v6 pick, a bench artifact.
            picker
                .choose(&Context::from_client(clients[i]))
                .map(Arc::as_ptr)
        })
    });
}

fn bench_pick(c: &mut Criterion) {
    let v4 = v4_clients();
    let v6 = v6_clients();
    for n in SIZES {
        let table = table(n);
        let source_hash = Balancer::new(&table, SourceHash::new());
        bench_decision(
            c,
            &format!("pick/source_hash_relayd/{n}"),
            &source_hash,
            &v4,
        );
        let consistent = Balancer::new(&table, Consistent::new());
        bench_decision(c, &format!("pick/consistent/{n}/v4"), &consistent, &v4);
        bench_decision(c, &format!("pick/consistent/{n}/v6"), &consistent, &v6);
        let maglev = maglev::Maglev::new(hosts(n));
        let mut i = 0;
        c.bench_function(&format!("pick/maglev_crate/{n}"), |b| {
            b.iter(|| {
                i = (i + 1) % CLIENTS;
                maglev.get(&v4[i].ip()).copied()
            })
        });
        if n == 2 {
            continue;
        }
        // The decision and its lease, taken and dropped, through the picker.
        let mut picker = consistent.picker();
        let mut i = 0;
        c.bench_function(&format!("pick_lease/consistent/{n}"), |b| {
            b.iter(|| {
                i = (i + 1) % CLIENTS;
                picker.pick(&Context::from_client(v4[i])).is_ok()
            })
        });
        if n == 1024 {
            // The same through the balancer, which loads the shared snapshot each time.
            c.bench_function("pick_lease/consistent/1024/v4", |b| {
                b.iter(|| {
                    i = (i + 1) % CLIENTS;
                    consistent.pick(&Context::from_client(v4[i])).is_ok()
                })
            });
        }
    }
}

fn bench_rebuild(c: &mut Criterion) {
    let mut group = c.benchmark_group("rebuild/consistent");
    group.sample_size(10);
    for n in REBUILD_SIZES {
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
