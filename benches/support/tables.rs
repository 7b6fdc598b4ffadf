//! The bench tables `policies.rs` and `table.rs` share (each includes this file with
//! `#[path]`): N hosts on 10.0.x.y:443, named `h<i>`.

use std::net::SocketAddr;
use std::sync::Arc;

use lb_core::{Host, HostTable};

/// N hosts, weights from `weight(i)`.
pub fn table(n: usize, weight: impl Fn(usize) -> u64) -> Arc<HostTable> {
    let hosts = (0..n).map(|i| {
        let addr = SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 443));
        Host::new(format!("h{i}"), addr)
            .with_weight(weight(i))
            .expect("bench weights are 1..=4")
    });
    HostTable::new("bench", hosts).expect("bench tables are valid")
}
