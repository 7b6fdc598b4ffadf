//! What the sticky-address tests share: a policy the test steers, hosts and clients.

#![allow(dead_code)] // each test binary uses its own part

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use lb_core::{Backend, Context, Order, Policy, Snapshot};

/// An inner policy that prefers the host the test names (by index, modulo the table
/// size) and scans on from it, so every placement is known in advance. Clones share
/// the steering wheel.
#[derive(Clone, Debug, Default)]
pub struct Steer(Arc<AtomicUsize>);

impl Steer {
    /// Sends the next placements to the host at `index`.
    pub fn to(&self, index: usize) {
        self.0.store(index, Ordering::SeqCst);
    }
}

impl Policy for Steer {
    type Plan = ();
    fn plan<B: Backend>(&self, _: &Snapshot<B>, _: Option<(&Snapshot<B>, &())>) {}
    fn order<B: Backend>(&self, _: &(), snap: &Snapshot<B>, _: &Context<'_>, order: &mut Order) {
        // An empty table (its last host removed) has nothing to steer to.
        let Some(i) = self.0.load(Ordering::SeqCst).checked_rem(snap.len()) else {
            return;
        };
        order.prefer(i);
        order.scan_from(i + 1);
    }
}

/// `10.0.0.<n>:80`.
pub fn host(n: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, n], 80))
}

/// `10.0.0.1:80` .. `10.0.0.<n>:80`.
pub fn hosts(n: u8) -> Vec<SocketAddr> {
    (1..=n).map(host).collect()
}

/// A client context from IPv4 `198.51.<n / 256>.<n % 256>` (port 40000) or any IP.
pub fn client(n: u16) -> Context<'static> {
    let [hi, lo] = n.to_be_bytes();
    Context::from_client(SocketAddr::from(([198, 51, hi, lo], 40000)))
}

/// A client context for any address.
pub fn client_ip(ip: IpAddr) -> Context<'static> {
    Context::from_client(SocketAddr::new(ip, 40000))
}
