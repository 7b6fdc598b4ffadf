//! Helpers for the unit tests: small tables of weighted hosts, health changes by index,
//! and picks read back as configured indexes.

use std::sync::Arc;

use lb_core::{Balancer, Context, Health, Host, HostTable, Policy};

/// A table `t` with one host per weight, named `h0`, `h1`, ..., all up.
pub(crate) fn table(weights: &[u64]) -> Arc<HostTable> {
    let hosts = weights.iter().enumerate().map(|(i, &w)| {
        let addr = std::net::SocketAddr::from(([10, 0, 0, 1], 8000 + i as u16));
        Host::new(format!("h{i}"), addr)
            .with_weight(w)
            .expect("test weights are valid")
    });
    HostTable::new("t", hosts).expect("test tables are valid")
}

/// Marks the host at `index` down.
pub(crate) fn down(table: &HostTable, index: usize) {
    let id = table.snapshot().id(index);
    table
        .set_health(id, Health::Down, "test")
        .expect("index is in the table");
}

/// Marks the host at `index` up.
pub(crate) fn up(table: &HostTable, index: usize) {
    let id = table.snapshot().id(index);
    table
        .set_health(id, Health::Up, "test")
        .expect("index is in the table");
}

/// The configured index of the host a lease is on.
pub(crate) fn index_of<T: lb_core::Table + ?Sized>(
    table: &Arc<T>,
    lease: &lb_core::Lease<Host>,
) -> usize {
    table
        .snapshot()
        .index_of(lease.id())
        .expect("leased host is in the table")
}

/// `n` picks, each lease dropped at once, as configured indexes.
pub(crate) fn picks<P: Policy>(b: &Balancer<P>, n: usize) -> Vec<usize> {
    (0..n)
        .map(|_| {
            let lease = b.pick(&Context::new()).expect("a usable host");
            index_of(b.table(), &lease)
        })
        .collect()
}

/// The candidates of one pick, as configured indexes.
pub(crate) fn candidates<P: Policy>(b: &Balancer<P>) -> Vec<usize> {
    b.candidates(&Context::new()).map(|c| c.index()).collect()
}
