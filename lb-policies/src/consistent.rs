//! [`Consistent`]: the recommended source-hash. Maglev-style lookup table, stable host ids,
//! health changes that move only the failed host's clients.
//!
//! # How a pick works
//!
//! The key hash `h` is the fast keyed hash ([`lb_core::fast_hash`], XXH3) of the
//! context's key bytes when it has some ([`Context::with_key`]: a user id, a session
//! cookie), else of the client IP (4 or 16 bytes, IPv4-mapped IPv6 as IPv4), else of
//! nothing (every such context then goes to the same host). Slot `(h * M) >> 64` of
//! the Maglev table (see [`maglev`]) names the host: one multiply and one load. While
//! every host is usable (a count the snapshot already has) that host is the pick;
//! otherwise one more load checks that it is usable. [`Policy::first`] does just that
//! (the pick, without filling an [`Order`]). Measured through a
//! [`Picker`](lb_core::Picker) (`pick/consistent/<N>/v4` in `benches/floor.rs`: the
//! context built from the address, the picker's check for a new snapshot and the
//! decision, 4096 clients, the fastest of 400 batches): 5.6-6.0 ns up to 64 hosts and
//! 6.2-7.8 ns at 1024 (a 2.5 MiB table), against 3.7-7.1 ns for the fast hash and one
//! load from an array of that size (`baseline/index/v4`) and 12.9-20.8 ns for the
//! `maglev` crate's lookup (same runs; 2-core AMD EPYC and Intel Xeon VMs).
//!
//! # Health and admin changes never rebuild the table
//!
//! The table depends only on the configured hosts and weights. When the host in a
//! key's slot is not usable, the key looks again with independent rehashes
//! `h_i = mix(h + i * phi)`: each probe lands on a host with probability proportional
//! to its weight, so a down host's keys spread over the survivors in proportion to
//! their weights, not onto a neighbour. A key whose host is usable never moves, and
//! when the host comes back its keys return to it exactly. After
//! [`MAX_PROBES`] probes that all hit unusable hosts (probability `f^8` when a share
//! `f` of the slots is down) the key takes `usable[h % usable.len()]`: O(1), uniform
//! over the survivors (not weighted). So a pick costs at most nine lookups however
//! many hosts are down.
//!
//! # Candidates
//!
//! The [`Order`] holds the first `failover` distinct usable hosts of the probe
//! sequence: by default ([`DEFAULT_FAILOVER`]) only the pick, since each more costs a
//! probe on every pick (a rehash and a table load, about 5 ns). The other hosts follow
//! in a forward scan starting at a position drawn from `h`, so keys of one host fail
//! over to different hosts. With [`Consistent::with_failover`], the first failover
//! candidates are exactly where the key goes once its host is marked down.
//!
//! # Membership changes rebuild, minimally
//!
//! Adding, removing or re-weighting a host builds a new table (off the pick path: in
//! [`Policy::plan`], on the thread that made the membership change, outside the table's
//! lock, while the previous table serves picks) shared by every snapshot until the
//! next membership change. Maglev moves more than the ideal `1/N` of the keys when one
//! of `N` hosts leaves or joins, and the excess grows with `N^2 / M` (Katran measures
//! 1.55/N at N = 100, M = 65537). So the size `M` grows with `N` in steps: 65 537 slots
//! up to 57 hosts (`20 N^2 <= M`, filled by Maglev's turns), then 262 147 up to 209
//! hosts and 1 310 723 beyond (`6 N^2 <= M`, filled by rendezvous with capacities,
//! which moves about half Maglev's excess and costs less per slot: see [`maglev`]).
//! The size changes in these steps only, never host by host, because a table of
//! another size is a different table: **a change that crosses a step (57 <-> 58 and
//! 209 <-> 210 hosts) remaps almost every key**, once. A fleet that grows across a
//! step and cannot afford that pins its size with [`Consistent::with_table_size`] (the
//! fill depends on the size only, so a pinned size keeps its fill too). Measured
//! (`tests/consistent_props.rs`, worst of six host sets, removing one host and adding
//! one, at the size chosen for N; balance is the largest host's slots over `M / N`):
//!
//! | N    | M         | table   | build          | keys moved | balance |
//! |------|-----------|---------|----------------|------------|---------|
//! | 2    | 65 537    | 128 KiB | 0.52-0.66 ms   | 1.002/N    |         |
//! | 8    | 65 537    | 128 KiB | 1.04-1.39 ms   | 1.034/N    |         |
//! | 32   | 65 537    | 128 KiB |                | 1.133/N    |         |
//! | 57   | 65 537    | 128 KiB |                | 1.290/N    | 1.00020 |
//! | 64   | 262 147   | 512 KiB | 2.84-3.14 ms   | 1.101/N    | 1.00023 |
//! | 209  | 262 147   | 512 KiB |                | 1.336/N    | 1.00056 |
//! | 256  | 1 310 723 | 2.5 MiB | 16.9-19.3 ms   | 1.195/N    | 1.00019 |
//! | 1024 | 1 310 723 | 2.5 MiB | 19.6-25.5 ms   | 1.878/N    | 1.00078 |
//!
//! (Builds: criterion medians of `rebuild/consistent/<N>` in `benches/hashing.rs`,
//! release, 2-core Intel Xeon VM at load 0.5-1.5, five runs alternating with the fill
//! before its looks noted takes as bits: 3.63-4.38, 25.2-31.8 and 31.7-40.1 ms at 64,
//! 256 and 1024 hosts. On a loaded 2-core AMD VM that fill took 6.9-8.8, 71-108 and
//! 50-94 ms, Maglev's (262 147 slots at 64 hosts, 4 194 319 beyond) 8.1-14.7, 214-317
//! and 179-459 ms.) Beyond 467 hosts the table stops growing, so disruption rises
//! again (1.878/N at 1024); a pinned larger table brings it down (a prototype of the
//! fill: 1.42/N at N = 1024 over 4 194 319 slots).
//!
//! Entries are 2-byte host indexes up to 65 536 hosts, 4 bytes beyond. Both fills give
//! every host its weighted share of slots to within one slot, so balance depends only
//! on `M / N`.
//!
//! ```
//! use lb_core::{Balancer, Context, Health, HostTable};
//! use lb_policies::Consistent;
//! use std::net::SocketAddr;
//!
//! let hosts: Vec<SocketAddr> = (1..=4).map(|i| format!("10.0.0.{i}:443").parse().unwrap()).collect();
//! let table = HostTable::new("exchange", hosts)?;
//! let balancer = Balancer::new(&table, Consistent::new());
//! let client = Context::from_client("198.51.100.7:50000".parse()?);
//! let home = balancer.pick(&client)?.id();
//! table.set_health(home, Health::Down, "connect refused")?;
//! assert_ne!(balancer.pick(&client)?.id(), home); // failed over
//! table.set_health(home, Health::Up, "check ok")?;
//! assert_eq!(balancer.pick(&client)?.id(), home); // and back, exactly
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod maglev;

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use lb_core::{fast_hash, fast_hash_ip, Backend, Context, Error, HashKey, Order, Policy, Snapshot};

use maglev::{fastrange, mix64, Slots};

/// How many probes a pick makes before falling back to a uniform choice among the
/// usable hosts.
pub const MAX_PROBES: u32 = 8;

/// How many distinct usable hosts [`Consistent`] probes into an order by default: the
/// pick only (see the [module docs](self#candidates)).
pub const DEFAULT_FAILOVER: usize = 1;

/// Consistent hashing over a Maglev table. See the [module docs](self).
///
/// Defaults:
/// - key [`HashKey::DEFAULT`], so every instance maps the same way;
/// - table size chosen from the number of hosts ([`Consistent::table_size_for`]:
///   65 537 slots up to 57 hosts, then in steps up to 1 310 723);
/// - [`DEFAULT_FAILOVER`] hosts probed for the candidate order.
#[derive(Clone)]
pub struct Consistent {
    key: HashKey,
    size: Option<usize>,
    failover: usize,
}

impl Default for Consistent {
    fn default() -> Self {
        Consistent {
            key: HashKey::DEFAULT,
            size: None,
            failover: DEFAULT_FAILOVER,
        }
    }
}

impl fmt::Debug for Consistent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consistent")
            .field("key", &self.key)
            .field("size", &self.size)
            .field("failover", &self.failover)
            .finish()
    }
}

impl Consistent {
    /// With the defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// With this hash key: instances that must agree need the same key.
    pub fn with_key(mut self, key: HashKey) -> Self {
        self.key = key;
        self
    }

    /// With a fixed table size instead of one chosen from the number of hosts: a prime
    /// from 2 to 16 777 259. A table smaller than the number of hosts leaves some hosts
    /// without slots (they get keys only as failover). [`Error::InvalidSetting`]
    /// otherwise.
    pub fn with_table_size(mut self, size: usize) -> Result<Self, Error> {
        if !(2..=maglev::MAX_TABLE_SIZE).contains(&size) || !maglev::is_prime(size as u64) {
            return Err(Error::InvalidSetting {
                setting: "table_size",
                expected: format!("a prime from 2 to {}, got {size}", maglev::MAX_TABLE_SIZE),
            });
        }
        self.size = Some(size);
        Ok(self)
    }

    /// With `hosts` distinct usable hosts probed into each order (1 to
    /// [`Order::CAPACITY`]): more gives a better failover order for one more lookup
    /// each. [`Error::InvalidSetting`] otherwise.
    pub fn with_failover(mut self, hosts: usize) -> Result<Self, Error> {
        if !(1..=Order::CAPACITY).contains(&hosts) {
            return Err(Error::InvalidSetting {
                setting: "failover",
                expected: format!("1 to {} hosts, got {hosts}", Order::CAPACITY),
            });
        }
        self.failover = hosts;
        Ok(self)
    }

    /// The key.
    pub fn key(&self) -> &HashKey {
        &self.key
    }

    /// The table size chosen for `hosts` hosts by default (see the [module docs](self)).
    pub fn table_size_for(hosts: usize) -> usize {
        maglev::table_size_for(hosts)
    }

    /// The key hash of a context: fast hash of the key bytes, else of the client IP,
    /// else of nothing.
    #[inline(always)]
    pub fn hash(&self, ctx: &Context<'_>) -> u64 {
        if let Some(bytes) = ctx.key() {
            fast_hash(&self.key, bytes)
        } else if let Some(ip) = ctx.client_ip() {
            fast_hash_ip(&self.key, ip)
        } else {
            fast_hash(&self.key, &[])
        }
    }
}

/// What [`Consistent`] precomputes: the Maglev table of one membership, shared by every
/// snapshot until the membership changes.
#[derive(Clone)]
pub struct ConsistentPlan {
    table: Arc<HostTable>,
}

struct HostTable {
    membership: u64,
    size: u64,
    slots: Slots,
}

impl ConsistentPlan {
    /// The number of slots: 0 for a table with no hosts.
    pub fn table_size(&self) -> usize {
        self.table.size as usize
    }

    /// The snapshot index of the host owning `slot`, or `None` past the end.
    pub fn slot(&self, slot: usize) -> Option<usize> {
        (slot < self.table_size()).then(|| self.table.slots.get(slot))
    }

    /// The slot a key hash falls in.
    #[inline]
    pub fn slot_of(&self, hash: u64) -> usize {
        fastrange(hash, self.table.size as usize)
    }

    /// How many slots each host owns, by snapshot index (O(table size)).
    pub fn slot_counts(&self, hosts: usize) -> Vec<usize> {
        let mut counts = vec![0; hosts];
        for s in 0..self.table_size() {
            if let Some(c) = counts.get_mut(self.table.slots.get(s)) {
                *c += 1;
            }
        }
        counts
    }

    /// Bytes held by the table.
    pub fn memory_bytes(&self) -> usize {
        self.table.slots.bytes()
    }

    /// The membership version the table was built for.
    pub fn membership_version(&self) -> u64 {
        self.table.membership
    }

    /// Whether two plans share one table (no rebuild happened between them).
    pub fn shares_table_with(&self, other: &ConsistentPlan) -> bool {
        Arc::ptr_eq(&self.table, &other.table)
    }

    #[inline(always)]
    fn host(&self, hash: u64) -> usize {
        self.table.slots.host_of(hash)
    }
}

impl fmt::Debug for ConsistentPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsistentPlan")
            .field("membership_version", &self.table.membership)
            .field("table_size", &self.table.size)
            .finish()
    }
}

/// The `i`-th rehash of a key hash: independent of it and of each other.
#[inline]
fn rehash(hash: u64, i: u32) -> u64 {
    mix64(hash.wrapping_add(u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15)))
}

impl Policy for Consistent {
    type Plan = ConsistentPlan;

    fn plan<B: Backend>(
        &self,
        snap: &Snapshot<B>,
        previous: Option<(&Snapshot<B>, &ConsistentPlan)>,
    ) -> ConsistentPlan {
        if let Some((_, plan)) = previous {
            if plan.table.membership == snap.membership_version() {
                return plan.clone();
            }
        }
        let started = Instant::now();
        // An empty table gets an empty lookup table: no slot, so every key misses
        // (`host_of` answers an index out of range) and the pick finds no usable host.
        let size = match self.size {
            _ if snap.is_empty() => 0,
            Some(size) => size,
            None => maglev::table_size_for(snap.len()),
        };
        let ids: Vec<_> = (0..snap.len()).map(|i| snap.id(i)).collect();
        let slots = Slots::build(&ids, snap.weights(), size);
        tracing::debug!(
            table = snap.table(),
            hosts = snap.len(),
            table_size = size,
            bytes = slots.bytes(),
            micros = started.elapsed().as_micros() as u64,
            "consistent table built"
        );
        ConsistentPlan {
            table: Arc::new(HostTable {
                membership: snap.membership_version(),
                size: size as u64,
                slots,
            }),
        }
    }

    #[inline(always)]
    fn order<B: Backend>(
        &self,
        plan: &ConsistentPlan,
        snap: &Snapshot<B>,
        ctx: &Context<'_>,
        order: &mut Order,
    ) {
        let h = self.hash(ctx);
        let n = snap.len();
        // The scan after the preferred hosts starts at a position drawn from other bits
        // of the hash, so that two keys of one host fail over to different hosts.
        order.scan_from(fastrange(h.rotate_left(32), n));
        // Slot entries are indexes of this membership (the balancer keeps plan and
        // snapshot together); `is_usable` is false for anything out of range.
        let first = plan.host(h);
        let mut found = 0;
        // With every host usable (the usual case) the table's host is the pick: no load
        // of its state, whose address depends on the table load.
        let all_usable = snap.usable().len() == n;
        if (all_usable && first < n) || snap.is_usable(first) {
            order.prefer(first);
            found = 1;
            if self.failover == 1 {
                return;
            }
        }
        for i in 1..MAX_PROBES {
            let host = plan.host(rehash(h, i));
            if snap.is_usable(host) && !order.contains(host as u32) {
                order.prefer(host);
                found += 1;
                if found >= self.failover {
                    return;
                }
            }
        }
        if found == 0 {
            if let Some(i) = fallback(h, snap) {
                order.prefer(i);
            }
        }
    }

    /// `order`'s first candidate without the order: the first usable probe, else the
    /// fallback (the scan could only offer hosts the fallback already chooses among).
    #[inline(always)]
    fn first<B: Backend>(
        &self,
        plan: &ConsistentPlan,
        snap: &Snapshot<B>,
        ctx: &Context<'_>,
    ) -> Option<usize> {
        let h = self.hash(ctx);
        let first = plan.host(h);
        if (snap.usable().len() == snap.len() && first < snap.len()) || snap.is_usable(first) {
            return Some(first);
        }
        (1..MAX_PROBES)
            .map(|i| plan.host(rehash(h, i)))
            .find(|&host| snap.is_usable(host))
            .or_else(|| fallback(h, snap))
    }
}

/// Where a key goes when all its probes hit unusable hosts: uniform over the usable.
#[inline]
fn fallback<B: Backend>(h: u64, snap: &Snapshot<B>) -> Option<usize> {
    let usable = snap.usable();
    (!usable.is_empty()).then(|| usable[fastrange(rehash(h, MAX_PROBES), usable.len())] as usize)
}

#[cfg(test)]
mod tests;
