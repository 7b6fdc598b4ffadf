//! relayd's hash modes: [`SourceHash`] (`mode source-hash`) and [`LoadBalance`]
//! (`mode loadbalance`), bit for bit, for users migrating from relayd.
//!
//! # The algorithm (relayd `relay.c`, `relay_from_table`)
//!
//! 1. `p` = SipHash-2-4 under the table's key of the client IP (4 bytes for IPv4, 16
//!    for IPv6, no port); `loadbalance` continues the same hash with the relay's
//!    *configured* listen IP and its port (2 bytes, big-endian): `rl_conf.ss`, so a
//!    wildcard listener (`0.0.0.0`, `::`) hashes 4 or 16 zero bytes whatever address
//!    the client dialled. That is [`Context::listen`]; [`Context::local`] (the dialled
//!    address) takes no part.
//! 2. `idx = p % nhosts`, over **all configured hosts**, up or down, in configuration
//!    order. If that host is not usable, `p >>= 1` and try again: at most
//!    `min(nhosts, 5)` tries (`RELAY_MAX_HASH_RETRIES`).
//! 3. If every try hit an unusable host, scan forward from the last tried index,
//!    wrapping, to the first usable host.
//!
//! Here the tries are the [`Order`]'s preferred hosts (in order, duplicates dropped)
//! and step 3 is its scan, starting just after the last try. The first candidate is
//! therefore exactly relayd's pick, and the rest is what relayd would pick if that
//! host were down too: the remaining tries, then the forward scan.
//!
//! # Known weaknesses, kept on purpose
//!
//! Any change of the host count remaps almost every client, and a down host's clients
//! pile onto the few hosts its shifted hashes and its right-hand neighbour point at.
//! [`Consistent`](crate::consistent::Consistent) fixes both; use these modes only
//! where relayd's exact mapping matters.
//!
//! # Without a client address
//!
//! relayd always has one. A [`Context`] without a client address hashes the empty
//! input (and, for `loadbalance`, whatever listen address it has), so all such
//! contexts go to the same host: a documented, deterministic fallback.
//!
//! ```
//! use lb_core::{Balancer, Context, HashKey, HostTable};
//! use lb_policies::source_hash::SourceHash;
//! use std::net::SocketAddr;
//!
//! let hosts: Vec<SocketAddr> = (1..=5).map(|i| format!("10.0.0.{i}:80").parse().unwrap()).collect();
//! let table = HostTable::new("web", hosts)?;
//! let key: HashKey = "0x000102030405060708090a0b0c0d0e0f".parse()?;
//! let balancer = Balancer::new(&table, SourceHash::with_key(key));
//! let lease = balancer.pick(&Context::from_client("192.0.2.10:40000".parse()?))?;
//! assert_eq!(lease.backend().to_string(), "10.0.0.3:80"); // index 2, as relayd picks
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use lb_core::{Backend, Context, HashKey, Order, Policy, SipHash24, Snapshot};

/// relayd's `RELAY_MAX_HASH_RETRIES`: how many shifted hashes are tried.
pub const MAX_HASH_TRIES: usize = 5;

/// relayd's `mode source-hash [key]`: SipHash-2-4 of the client IP, modulo the
/// configured hosts, with relayd's shift-and-retry and forward scan. See the
/// [module docs](self).
///
/// Defaults: [`HashKey::DEFAULT`] (relayd draws a random key at every load unless one
/// is configured; give [`with_key`](SourceHash::with_key) the key from `relayd.conf`
/// to reproduce its mapping).
#[derive(Clone, Debug, Default)]
pub struct SourceHash {
    key: HashKey,
}

impl SourceHash {
    /// With [`HashKey::DEFAULT`].
    pub fn new() -> Self {
        Self::default()
    }

    /// With this key (relayd: `mode source-hash "key"`).
    pub fn with_key(key: HashKey) -> Self {
        SourceHash { key }
    }

    /// The key.
    pub fn key(&self) -> &HashKey {
        &self.key
    }

    /// relayd's `p` for this context: SipHash-2-4 of the client IP (empty input when
    /// there is none).
    pub fn hash(&self, ctx: &Context<'_>) -> u64 {
        let mut h = SipHash24::new(&self.key);
        if let Some(ip) = ctx.client_ip() {
            h.write_ip(ip);
        }
        h.finish()
    }
}

impl Policy for SourceHash {
    type Plan = ();

    fn plan<B: Backend>(&self, _: &Snapshot<B>, _: Option<(&Snapshot<B>, &())>) {}

    fn order<B: Backend>(&self, _: &(), snap: &Snapshot<B>, ctx: &Context<'_>, order: &mut Order) {
        relayd_order(self.hash(ctx), snap.len(), order);
    }
}

/// relayd's `mode loadbalance [key]`: like [`SourceHash`], but the hash continues with
/// the configured listen IP and port ([`Context::listen`]; 2 bytes, big-endian), so the same client may land on
/// different hosts through different relays. See the [module docs](self).
///
/// Defaults: [`HashKey::DEFAULT`]. Parts missing from the [`Context`] are skipped.
#[derive(Clone, Debug, Default)]
pub struct LoadBalance {
    key: HashKey,
}

impl LoadBalance {
    /// With [`HashKey::DEFAULT`].
    pub fn new() -> Self {
        Self::default()
    }

    /// With this key (relayd: `mode loadbalance "key"`).
    pub fn with_key(key: HashKey) -> Self {
        LoadBalance { key }
    }

    /// The key.
    pub fn key(&self) -> &HashKey {
        &self.key
    }

    /// relayd's `p`: SipHash-2-4 of client IP, listen IP, listen port (big-endian).
    pub fn hash(&self, ctx: &Context<'_>) -> u64 {
        let mut h = SipHash24::new(&self.key);
        if let Some(ip) = ctx.client_ip() {
            h.write_ip(ip);
        }
        if let Some(listen) = ctx.listen() {
            h.write_ip(listen.ip());
            h.write(&listen.port().to_be_bytes());
        }
        h.finish()
    }
}

impl Policy for LoadBalance {
    type Plan = ();

    fn plan<B: Backend>(&self, _: &Snapshot<B>, _: Option<(&Snapshot<B>, &())>) {}

    fn order<B: Backend>(&self, _: &(), snap: &Snapshot<B>, ctx: &Context<'_>, order: &mut Order) {
        relayd_order(self.hash(ctx), snap.len(), order);
    }
}

/// relayd's tries for hash `p` over `hosts` configured hosts: `p % hosts`, then with
/// `p` shifted right once per try, `min(hosts, 5)` tries; the scan starts after the
/// last one.
fn relayd_order(mut p: u64, hosts: usize, order: &mut Order) {
    if hosts == 0 {
        return;
    }
    let n = hosts as u64;
    let mut last = 0;
    for _ in 0..hosts.min(MAX_HASH_TRIES) {
        last = (p % n) as usize;
        order.prefer(last);
        p >>= 1;
    }
    order.scan_from((last + 1) % hosts);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tries_shift_the_hash_and_scan_after_the_last() {
        // p = 0b1011 = 11 over 5 hosts: 11 % 5 = 1, 5 % 5 = 0, 2, 1 (dup), 0 (dup).
        let mut order = Order::new();
        relayd_order(11, 5, &mut order);
        assert_eq!(order.preferred(), &[1, 0, 2]);
        assert_eq!(order.scan_start(), 1);
        // Fewer hosts than tries: min(hosts, 5) tries. 11 % 2 = 1, 5 % 2 = 1.
        let mut order = Order::new();
        relayd_order(11, 2, &mut order);
        assert_eq!(order.preferred(), &[1]);
        assert_eq!(order.scan_start(), 0);
        // One host: one try, index 0.
        let mut order = Order::new();
        relayd_order(u64::MAX, 1, &mut order);
        assert_eq!(order.preferred(), &[0]);
    }

    #[test]
    fn loadbalance_hashes_listen_address_after_the_client() {
        let key = HashKey::DEFAULT;
        let client = Context::from_client("192.0.2.1:1000".parse().unwrap());
        let with_listen = client.with_listen("203.0.113.1:443".parse().unwrap());
        let mut h = SipHash24::new(&key);
        h.write(&[192, 0, 2, 1, 203, 0, 113, 1, 0x01, 0xbb]);
        assert_eq!(LoadBalance::with_key(key).hash(&with_listen), h.finish());
        // Without a listen address it is source-hash.
        assert_eq!(
            LoadBalance::with_key(key).hash(&client),
            SourceHash::with_key(key).hash(&client)
        );
        // The client port never matters.
        let other_port = Context::from_client("192.0.2.1:2000".parse().unwrap());
        assert_eq!(
            SourceHash::new().hash(&client),
            SourceHash::new().hash(&other_port)
        );
    }
}
