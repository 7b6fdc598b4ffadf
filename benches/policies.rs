//! The cost of one pick per policy and table size. IDs `pick/<policy>/<N>` for policy in
//! `round_robin`, `weighted_round_robin`, `random`, `least_states`, `p2c` and N in
//! 2, 8, 64, 1024.
//!
//! One iteration is one `Balancer::pick` (snapshot load, the policy's order, the first
//! usable candidate, the lease's two atomic increments) and the drop of its lease, on a
//! prepared table: N hosts, all up, one lease held on each so that least-states and P2C
//! compare real counts (with every host at 0, least-states would stop at the first
//! host it reads). Weights are 1 except for `weighted_round_robin`, whose hosts weigh
//! 1, 2, 3, 4, 1, 2, ...
//!
//! Targets: round-robin, random and P2C cost the same at N = 1024 as at N = 2 (within
//! 1.5x); least-states is an O(N) scan.
//! Run with `cargo bench --bench policies -- --warm-up-time 1 --measurement-time 2`.

use std::net::SocketAddr;

use criterion::{criterion_group, criterion_main, Criterion};
use lb_core::{Balancer, Context, Host, Lease, Policy};
use lb_policies::{LeastStates, PowerOfTwo, Random, RoundRobin};

const SIZES: [usize; 4] = [2, 8, 64, 1024];

#[path = "support/tables.rs"]
mod tables;
use tables::table;

/// Benches `pick/<name>/<N>` for every size.
fn bench_policy<P: Policy>(
    c: &mut Criterion,
    name: &str,
    weight: impl Fn(usize) -> u64 + Copy,
    policy: impl Fn() -> P,
) {
    let mut group = c.benchmark_group(format!("pick/{name}"));
    for n in SIZES {
        let table = table(n, weight);
        let balancer = Balancer::new(&table, policy());
        let ctx = Context::from_client(SocketAddr::from(([192, 0, 2, 1], 40000)));
        // One lease on every host: LeastStates spreads them one per host.
        let loader = Balancer::new(&table, LeastStates::new());
        let held: Vec<Lease<Host>> = (0..n)
            .map(|_| loader.pick(&ctx).expect("all hosts are up"))
            .collect();
        assert!(table.stats().iter().all(|s| s.active == 1));
        group.bench_function(n.to_string(), |b| {
            b.iter(|| drop(balancer.pick(&ctx).expect("all hosts are up")))
        });
        drop(held);
    }
    group.finish();
}

fn policies(c: &mut Criterion) {
    let one = |_| 1;
    bench_policy(c, "round_robin", one, RoundRobin::new);
    bench_policy(
        c,
        "weighted_round_robin",
        |i| i as u64 % 4 + 1,
        RoundRobin::new,
    );
    bench_policy(c, "random", one, Random::new);
    bench_policy(c, "least_states", one, LeastStates::new);
    bench_policy(c, "p2c", one, PowerOfTwo::new);
}

criterion_group!(benches, policies);
criterion_main!(benches);
