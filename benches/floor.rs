//! The decisions of `hashing.rs`, timed as the best of many batches: on a shared machine
//! a criterion median includes every preemption of the bench thread (medians there
//! varied 2-3x between runs on a loaded 2-core VM), while the fastest of 400 batches of
//! 20 000 decisions is what one decision costs when it runs. Same ids as `hashing.rs`
//! (see its docs), same 4096 client addresses, same tables, plus
//! `pick/<mode>/<N>/shared`: the decision through the shared snapshot
//! (`Balancer::with_plan`, `Policy::order`, the first usable candidate), what a caller
//! paid per decision before `Picker`; and `pick_lease/consistent/<N>/v4` for every N
//! (`hashing.rs` has N = 1024 only): the lease through `Balancer::pick`.
//!
//! Run with `cargo bench --bench floor` (optionally one filter: `-- consistent`).

use std::hash::Hasher;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use lb_core::{
    fast_hash_ip, siphash24_ip, Backend, Balancer, Context, HashKey, HostTable, Order, Policy,
    Snapshot,
};
use lb_policies::{Consistent, SourceHash};
use maglev::ConsistentHasher;
use siphasher::sip::SipHasher24;

const CLIENTS: usize = 4096;
const BATCHES: usize = 400;
const BATCH: usize = 20_000;

/// Prints the fastest batch's cost per call of `f` (given the client index), if `id`
/// matches the filter.
fn best(filter: &str, id: &str, mut f: impl FnMut(usize) -> u64) {
    if !id.contains(filter) {
        return;
    }
    let mut best = f64::MAX;
    let mut sink = 0u64;
    for _ in 0..BATCHES {
        let started = Instant::now();
        for k in 0..BATCH {
            sink = sink.wrapping_add(f(k % CLIENTS));
        }
        best = best.min(started.elapsed().as_nanos() as f64 / BATCH as f64);
    }
    black_box(sink);
    println!("{id:40} {best:6.2} ns");
}

fn hosts(n: usize) -> Vec<SocketAddr> {
    (0..n as u32)
        .map(|i| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a01_0000 + i)), 443))
        .collect()
}

/// The first usable candidate of an order, as `Candidates` walks it.
fn walk<B: Backend>(order: &Order, snap: &Snapshot<B>) -> u64 {
    let n = snap.len();
    let preferred = order.preferred().iter().map(|&i| i as usize);
    let scan = (0..n).map(|k| (order.scan_start() + k) % n);
    preferred
        .chain(scan)
        .find(|&i| snap.is_usable(i))
        .map_or(u64::MAX, |i| i as u64)
}

/// `pick/...` (through a picker) and `pick/.../shared` (through the shared snapshot).
fn decisions<P: Policy>(
    filter: &str,
    id: &str,
    balancer: &Arc<Balancer<P, SocketAddr>>,
    v4: &[SocketAddr],
) {
    let mut picker = balancer.picker();
    best(filter, id, |i| {
        picker
            .choose(&Context::from_client(v4[i]))
            .map_or(0, |h| Arc::as_ptr(h) as u64)
    });
    best(filter, &format!("{id}/shared"), |i| {
        balancer.with_plan(|snap, plan| {
            let mut order = Order::new();
            balancer
                .policy()
                .order(plan, snap, &Context::from_client(v4[i]), &mut order);
            walk(&order, snap)
        })
    });
}

fn main() {
    // `cargo bench` passes `--bench`; the first other argument filters the ids.
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .unwrap_or_default();
    let v4: Vec<SocketAddr> = (0..CLIENTS as u32)
        .map(|i| {
            let ip = Ipv4Addr::from(0x0a00_0000 | i.wrapping_mul(2_654_435_761) >> 8);
            SocketAddr::new(IpAddr::V4(ip), 40_000)
        })
        .collect();
    let key = HashKey::DEFAULT;
    let (k0, k1) = key.sip_keys();
    let f = filter.as_str();
    best(f, "hash/siphash24/v4", |i| {
        siphash24_ip(black_box(&key), v4[i].ip())
    });
    best(f, "hash/siphasher/v4", |i| {
        let mut h = SipHasher24::new_with_keys(black_box(k0), black_box(k1));
        if let IpAddr::V4(ip) = v4[i].ip() {
            h.write(&ip.octets());
        }
        h.finish()
    });
    best(f, "hash/fast/v4", |i| {
        fast_hash_ip(black_box(&key), v4[i].ip())
    });
    let size = Consistent::table_size_for(1024);
    let array: Vec<u16> = (0..size).map(|s| (s % 1024) as u16).collect();
    best(f, "baseline/index/v4", |i| {
        let h = fast_hash_ip(black_box(&key), v4[i].ip());
        u64::from(array[((u128::from(h) * size as u128) >> 64) as usize])
    });
    for n in [2, 8, 64, 1024] {
        let table = HostTable::new("bench", hosts(n)).expect("a valid table");
        let consistent = Balancer::new(&table, Consistent::new());
        let source_hash = Balancer::new(&table, SourceHash::new());
        decisions(f, &format!("pick/consistent/{n}/v4"), &consistent, &v4);
        decisions(
            f,
            &format!("pick/source_hash_relayd/{n}"),
            &source_hash,
            &v4,
        );
        let maglev = maglev::Maglev::new(hosts(n));
        best(f, &format!("pick/maglev_crate/{n}"), |i| {
            maglev.get(&v4[i].ip()).map_or(0, |a| u64::from(a.port()))
        });
        let mut picker = consistent.picker();
        best(f, &format!("pick_lease/consistent/{n}"), |i| {
            u64::from(picker.pick(&Context::from_client(v4[i])).is_ok())
        });
        best(f, &format!("pick_lease/consistent/{n}/v4"), |i| {
            u64::from(consistent.pick(&Context::from_client(v4[i])).is_ok())
        });
    }
}
