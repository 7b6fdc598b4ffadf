//! Shared by the integration tests: tables of weighted hosts, health by index, picks
//! read back as configured indexes, and the chi-square critical value.
// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use lb_core::{Admin, Balancer, Context, Health, Host, HostTable, Policy};

/// A table `t` with one host per weight, named `h0`, `h1`, ..., all up and enabled.
pub fn table(weights: &[u16]) -> Arc<HostTable> {
    let hosts = weights.iter().enumerate().map(|(i, &w)| {
        let addr = SocketAddr::from(([10, 0, 0, 1], 8000 + i as u16));
        Host::new(format!("h{i}"), addr)
            .with_weight(u64::from(w))
            .expect("test weights are 1..=65535")
    });
    HostTable::new("t", hosts).expect("test tables are valid")
}

/// Sets the health of the host at `index`.
pub fn set_health(table: &HostTable, index: usize, health: Health) {
    let id = table.snapshot().id(index);
    table
        .set_health(id, health, "test")
        .expect("index is in the table");
}

/// Sets the admin state of the host at `index`.
pub fn set_admin(table: &HostTable, index: usize, admin: Admin) {
    let id = table.snapshot().id(index);
    table.set_admin(id, admin).expect("index is in the table");
}

/// One pick, its lease dropped at once, as a configured index.
pub fn pick<P: Policy>(b: &Balancer<P>) -> usize {
    let lease = b.pick(&Context::new()).expect("a usable host");
    b.table()
        .snapshot()
        .index_of(lease.id())
        .expect("leased host is in the table")
}

/// How many of `picks` picks landed on each configured index.
pub fn counts<P: Policy>(b: &Balancer<P>, picks: usize) -> Vec<u64> {
    let mut counts = vec![0; b.table().snapshot().len()];
    for _ in 0..picks {
        counts[pick(b)] += 1;
    }
    counts
}

/// The upper 0.1 % quantile of the normal distribution: P(Z > 3.090232) = 0.001.
const Z_999: f64 = 3.090_232_306_167_813;

/// The chi-square critical value at p = 0.001 for `df` degrees of freedom, by the
/// Wilson–Hilferty approximation (Wilson and Hilferty, PNAS 1931): chi²(df) / df is
/// close to normal after a cube root, so the quantile is
/// `df · (1 − 2/(9 df) + z · sqrt(2/(9 df)))³`. At p = 0.001 it errs on the safe side
/// (slightly above the exact quantile): 11.16 against 10.83 at df = 1, 16.55 against
/// 16.27 at df = 3, 29.76 against 29.59 at df = 10, 59.81 against 59.70 at df = 30.
pub fn chi_square_critical_001(df: usize) -> f64 {
    let df = df as f64;
    let a = 2.0 / (9.0 * df);
    df * (1.0 - a + Z_999 * a.sqrt()).powi(3)
}

/// Pearson's statistic of `observed` against `expected` counts (cells with an
/// expectation of 0 must observe 0 and are skipped).
pub fn chi_square(observed: &[u64], expected: &[f64]) -> f64 {
    observed
        .iter()
        .zip(expected)
        .filter(|(_, &e)| e > 0.0)
        .map(|(&o, &e)| (o as f64 - e).powi(2) / e)
        .sum()
}
