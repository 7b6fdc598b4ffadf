//! The cost of a health change per policy and table size. IDs
//! `table/set_health/<policy>/<N>` for every policy of `lb-policies` and N in 8, 1024.
//!
//! One iteration marks one host down and back up (two `HostTable::set_health` calls, two
//! snapshots published): the table's own work, and the plan each policy derives for a
//! health change, on a table with one balancer of that policy. The host alternates
//! between iterations so that no policy can keep an answer for one host. Weights are 1,
//! except for the `weighted_*` variants, whose hosts weigh 1, 2, 3, 4, 1, 2, ...
//!
//! Target: at most 20 µs per iteration at N = 1024 for every policy (a health change is
//! O(N) with a small constant; rebuilds of what depends on membership only run when
//! hosts are added, removed or re-weighted).
//!
//! Measured in CPU time of the benchmark thread (`CLOCK_THREAD_CPUTIME_ID`), not wall
//! time: on a machine whose cores other work shares, wall time counts the time the
//! thread waits for a core, and a microsecond-scale figure would mostly measure the
//! load. Run with `cargo bench --bench table -- --warm-up-time 1 --measurement-time 2`.

use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lb_core::{Balancer, Health, Policy};
use lb_policies::{
    Consistent, LeastStates, LoadBalance, PowerOfTwo, Random, RoundRobin, SourceHash, StickyAddress,
};

const SIZES: [usize; 2] = [8, 1024];

#[path = "support/tables.rs"]
mod tables;
use tables::table;

/// Benches `table/set_health/<name>/<N>` for every size.
fn bench_policy<P: Policy>(
    c: &mut Criterion<ThreadCpu>,
    name: &str,
    weight: impl Fn(usize) -> u64 + Copy,
    policy: impl Fn() -> P,
) {
    let mut group = c.benchmark_group(format!("table/set_health/{name}"));
    for n in SIZES {
        let table = table(n, weight);
        let balancer = Balancer::new(&table, policy());
        let ids: Vec<_> = (0..n).map(|i| table.snapshot().id(i)).collect();
        let mut next = 0;
        group.bench_function(n.to_string(), |b| {
            b.iter(|| {
                let id = ids[next % n];
                next += 1;
                table
                    .set_health(id, Health::Down, "bench")
                    .expect("the host is in the table");
                table
                    .set_health(id, Health::Up, "bench")
                    .expect("the host is in the table");
            })
        });
        assert_eq!(balancer.snapshot().usable().len(), n);
    }
    group.finish();
}

fn policies(c: &mut Criterion<ThreadCpu>) {
    let one = |_| 1;
    let uneven = |i| i as u64 % 4 + 1;
    bench_policy(c, "round_robin", one, RoundRobin::new);
    bench_policy(c, "weighted_round_robin", uneven, RoundRobin::new);
    bench_policy(c, "random", one, Random::new);
    bench_policy(c, "weighted_random", uneven, Random::new);
    bench_policy(c, "least_states", one, LeastStates::new);
    bench_policy(c, "p2c", one, PowerOfTwo::new);
    bench_policy(c, "source_hash", one, SourceHash::new);
    bench_policy(c, "loadbalance", one, LoadBalance::new);
    bench_policy(c, "consistent", uneven, Consistent::new);
    bench_policy(c, "sticky_round_robin", one, || {
        StickyAddress::new(RoundRobin::new())
    });
}

/// CPU time of the calling thread.
struct ThreadCpu;

fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant the kernel
    // supports since Linux 2.6.12. On failure `ts` stays zero (the bench shows it).
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

impl Measurement for ThreadCpu {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        thread_cpu_time()
    }
    fn end(&self, started: Duration) -> Duration {
        thread_cpu_time().saturating_sub(started)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &Nanos
    }
}

/// Formats nanoseconds as criterion does for wall time.
struct Nanos;

impl ValueFormatter for Nanos {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = match typical {
            t if t < 1e3 => (1.0, "ns"),
            t if t < 1e6 => (1e-3, "µs"),
            t if t < 1e9 => (1e-6, "ms"),
            _ => (1e-9, "s"),
        };
        values.iter_mut().for_each(|v| *v *= factor);
        unit
    }
    fn scale_throughputs(&self, _: f64, _: &Throughput, values: &mut [f64]) -> &'static str {
        // No throughput is set in this bench: per-iteration times only.
        values.iter_mut().for_each(|v| *v = 1e9 / *v);
        "iter/s"
    }
    fn scale_for_machines(&self, _: &mut [f64]) -> &'static str {
        "ns"
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = policies
}
criterion_main!(benches);
