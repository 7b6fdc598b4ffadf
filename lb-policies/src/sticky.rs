//! [`StickyAddress`]: pf's `sticky-address` around any policy. A client keeps its host
//! while that host stays usable.
//!
//! Applications that keep session state on the server (Exchange's OWA, webmail, shopping
//! carts) need one client's connections on one host. A hash of the source address gives
//! that only while membership is fixed; pf and relayd add a *source table*: the first
//! connection of a source is placed by the balancing mode, and later ones follow the
//! entry. This module is that table, in front of any [`Policy`].
//!
//! # Semantics (pf's, see `pf.conf(5)` `sticky-address`, `src.track`, `src-nodes`)
//!
//! - **Placement.** A source with no entry is placed by the inner policy; the lease
//!   taken on the chosen host records the entry source -> host
//!   ([`Policy::leased`]). Entries are keyed by [`BackendId`], so
//!   they survive every membership change that keeps their host.
//! - **Stickiness.** A source with an entry whose host is usable (up, enabled, not
//!   ejected) gets that host first, then the inner policy's order as the failover order.
//! - **Drop.** An entry whose host is down, ejected by passive health, disabled,
//!   draining or no longer in the table is dropped at the source's next pick, which the
//!   inner policy then places again (an ejection drops entries as a down host does in
//!   pf: a client whose connect was just refused is better placed anew).
//!   When a lease lands on another host than the entry's (a relay failing over after a
//!   refused connect), the entry moves to that host.
//! - **Lifetime.** An entry lives while leases use it, plus the timeout (pf's
//!   `src.track`, default 0) after the last one ends. Released at `t` with timeout `T`,
//!   it is used by picks at any time before `t + T` and expired from `t + T` on: the
//!   bound is exclusive, as pf purges a source node once `expire <= now`. With `T = 0`
//!   the entry is removed when its last lease ends.
//! - **Capacity.** The table never holds more than its capacity (default 10 000, pf's
//!   `src-nodes`), which caps what spoofed sources can cost. When it is full, the entry
//!   idle the longest goes first (expired or not); entries with live leases are never
//!   evicted; when every entry is live, the client is placed by the inner policy
//!   without an entry ([`StickyStats::unrecorded`]).
//! - **Stale leases.** Each entry has a generation, renewed when it is created, moved or
//!   revived from idle; a lease's token carries it, so the end of a lease of a dropped or
//!   replaced entry never counts against its successor.
//!
//! # Cost
//!
//! Entries live in fixed slabs of slots split over 16 shards (by a hash keyed per
//! table, so spoofed sources cannot aim at one shard). Each shard has a `parking_lot`
//! mutex over a `hashbrown` index of its slots, its idle list and its counters. Every
//! field of a slot is an atomic, so the common case of a pick needs no lock:
//!
//! - **Lookup** ([`order`](Policy::order)): each source has two *home* slots, a
//!   function of its hash; a live entry in one of them is read without the lock (a
//!   seqlock on the slot's lease word, which packs its generation and live leases).
//!   Anything else, a new source, an idle entry (whose expiry needs the clock), an
//!   entry that found no free home, a host no longer usable, takes the lock and the
//!   index, which stay exact.
//! - **Lease** ([`leased`](Policy::leased)): `order` leaves the slot it found in a
//!   per-thread hand-off, and `leased` for the same source and host counts the lease
//!   with one compare-exchange on the lease word, valid only for the same generation.
//! - **Release**: the token names the slot; one compare-exchange, unless it is the last
//!   lease, which takes the lock to make the entry idle (reading the clock) or remove it.
//!
//! Only creation, idling, expiry, eviction and drops take a shard lock. The memory
//! orderings and the invariants that keep a late release off another entry's count are
//! in `sticky/lease.rs` and `sticky/slot.rs`; `tests/sticky_concurrent.rs` and the
//! token-exact test in `lease.rs` hammer them with threads. Nothing allocates per pick:
//! the IPv4 slabs are reserved for the whole capacity at build time, each shard's IPv6
//! slab on its first IPv6 source.
//!
//! Measured (`benches/sticky.rs`, criterion medians on a 2-core AMD EPYC VM, 4096
//! sources over `RoundRobin`, 8 hosts): the decision for a source with an entry
//! (`pick/sticky/hit`, the lock-free lookup) 30 to 38 ns; for a source without one
//! (`pick/sticky/miss`) 43 ns. A connection's whole life (`pick`, lease, drop) for a
//! source with an entry 54 to 55 ns (66 to 72 ns while a hit still asked the inner
//! policy, 87 to 100 ns with every step under the shard lock); for a new source 81 to
//! 91 ns; for a new source on a table full of idle entries (eviction) 287 to 320 ns;
//! round-robin alone 19 to 22 ns. The whole life of a hit costs five atomic
//! read-modify-writes on top of round-robin's (the hit counter, the lease and its
//! release, the lease hook's `Arc` count up and down) and one slot's cache line, which
//! 4096 sources do not keep in a core's cache.
//!
//! Eviction, only when the table is full, looks at each shard's oldest idle entry (each
//! shard keeps its idle entries in a list in release order) and removes the oldest:
//! O(shards). Among entries released in the same clock tick it takes the fullest
//! shard's, which keeps the shards even. Expired entries are removed when their source
//! is looked up, when eviction reaches them, or by [`StickyAddress::sweep`] (call it now
//! and then, as pf's purge does, to keep [`StickyStats::entries`] current).
//!
//! # Memory
//!
//! An entry lives in a 32-byte slot (lease word 8: generation and live leases, or the
//! release time; host id 8; IPv4 address 4; idle or free list links 4 + 4; the host's
//! index in the last snapshot 4) in its shard's slab, found through a `hashbrown` table
//! of 4-byte slot indices plus its 1 control byte per bucket. That index is reserved at
//! twice the entries so that it stays at most half full: a swiss table above half load
//! reallocates to twice its size once removals have left enough tombstones (measured:
//! after about 2 700 inserts and removals at 61 % load), while at or under half load it
//! always rehashes in place. Each shard reserves its even share plus 7 standard
//! deviations of uneven filling; slabs never grow (tokens name slots), so a shard that
//! outgrew that (odds below 10^-11) places its next new source without an entry.
//!
//! At the defaults (10 000 entries, 16 shards), a shard reserves 800 slots and an index
//! of 2048 buckets: 800 x 32 + 2048 x (4 + 1) + 16 bytes, plus the slabs' `Arc` counts
//! (2 x 16) and a 256-byte cache-padded shard (lock, hit counter, slab pointers), that
//! is 578 304 bytes or **57.8 bytes per IPv4 entry** of capacity (slots 41.0, index
//! 16.4, shards 0.5). `tests/sticky_memory.rs` measures the same with a counting
//! allocator (578 416 bytes with the table's `Arc`), and no allocation over 110 000
//! picks of new sources. For large capacities the slots tend to 32 bytes per entry and
//! the index to 2.3 to 4.6 buckets of 5 bytes (power-of-two rounding): 43 to 55 bytes.
//! IPv6 slots are 48 bytes; each shard's IPv6 slab is reserved on its first IPv6
//! source (or at build time with [`StickyBuilder::reserve_ipv6`]).
//!
//! ```
//! use lb_core::{Backend, Balancer, Context, Order, Policy, Snapshot, HostTable};
//! use lb_policies::sticky::StickyAddress;
//! use std::net::SocketAddr;
//!
//! /// Places each new client on the next host in turn.
//! #[derive(Default)]
//! struct Turns(std::sync::atomic::AtomicUsize);
//! impl Policy for Turns {
//!     type Plan = ();
//!     fn plan<B: Backend>(&self, _: &Snapshot<B>, _: Option<(&Snapshot<B>, &())>) {}
//!     fn order<B: Backend>(&self, _: &(), s: &Snapshot<B>, _: &Context<'_>, o: &mut Order) {
//!         o.scan_from(self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % s.len());
//!     }
//! }
//!
//! let hosts: Vec<SocketAddr> = vec!["10.0.0.1:443".parse()?, "10.0.0.2:443".parse()?];
//! let table = HostTable::new("owa", hosts)?;
//! let balancer = Balancer::new(&table, StickyAddress::new(Turns::default()));
//! let alice = Context::from_client("192.0.2.1:50000".parse()?);
//! let first = balancer.pick(&alice)?;
//! let second = balancer.pick(&alice)?; // Turns alone would move her
//! assert_eq!(first.id(), second.id());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cell;
mod config;
mod evict;
mod lease;
mod shard;
mod slot;
mod table;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use lb_core::{
    Backend, BackendId, Clock, Context, LeaseHook, Order, Policy, Snapshot, SystemClock,
};

pub use config::{StickyBuilder, DEFAULT_CAPACITY, DEFAULT_SHARDS, MAX_CAPACITY, MAX_SHARDS};
use table::SourceTable;

/// pf's `sticky-address` around the policy `P`: see the [module docs](self).
///
/// Each `StickyAddress` has its own source table, shared by the picks and leases made
/// through it (a lease's hook holds the table, so it may outlive the balancer).
pub struct StickyAddress<P, C = SystemClock> {
    inner: P,
    table: Arc<SourceTable<C>>,
    timeout: Duration,
    capacity: usize,
    shards: usize,
}

impl<P: Policy> StickyAddress<P> {
    /// Wraps `inner` with the defaults of [`StickyBuilder`]: timeout 0, capacity
    /// 10 000, 16 shards, the system clock.
    pub fn new(inner: P) -> Self {
        StickyBuilder::new(inner)
            .build()
            .unwrap_or_else(|_| unreachable!("the default settings are valid"))
    }

    /// Starts configuring a sticky wrapper around `inner`.
    pub fn builder(inner: P) -> StickyBuilder<P> {
        StickyBuilder::new(inner)
    }
}

impl<P: Policy, C: Clock> StickyAddress<P, C> {
    /// The wrapped policy.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// The most entries the table holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How long an entry outlives its last lease.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The number of shards.
    pub fn shards(&self) -> usize {
        self.shards
    }

    /// The table's counters. Takes each shard's lock in turn: for reports, not for
    /// every pick.
    pub fn stats(&self) -> StickyStats {
        self.table.stats()
    }

    /// Removes every expired entry and returns how many. Expired entries are never used
    /// either way; sweeping only frees their slots early and keeps
    /// [`StickyStats::entries`] current.
    pub fn sweep(&self) -> usize {
        self.table.sweep()
    }

    /// Bytes held by the table: its shards, their maps and idle queues (not the
    /// `StickyAddress` itself).
    pub fn memory_bytes(&self) -> usize {
        self.table.allocation_size()
    }

    /// The entry of `source`, if the table holds one: its host and the leases counted
    /// on it now (for tests and audits, like `pfctl -s Sources`). Takes one shard lock.
    /// An idle entry past its timeout is reported until a pick or
    /// [`sweep`](Self::sweep) removes it.
    pub fn entry(&self, source: IpAddr) -> Option<StickyEntry> {
        self.table.entry(source)
    }

    /// Entries present in the maps, counted shard by shard (for tests and audits; equal
    /// to [`StickyStats::entries`] while no pick is in flight).
    pub fn stored_entries(&self) -> usize {
        self.table.stored()
    }
}

impl<P: Policy, C: Clock> Policy for StickyAddress<P, C> {
    type Plan = P::Plan;

    fn plan<B: Backend>(
        &self,
        snapshot: &Snapshot<B>,
        previous: Option<(&Snapshot<B>, &P::Plan)>,
    ) -> P::Plan {
        self.inner.plan(snapshot, previous)
    }

    /// The sticky host first, if the source has an entry and the host is usable; then
    /// the inner policy's preferences and scan start. Without a client address, or
    /// without a usable entry, exactly the inner policy's order.
    fn order<B: Backend>(
        &self,
        plan: &P::Plan,
        snapshot: &Snapshot<B>,
        ctx: &Context<'_>,
        order: &mut Order,
    ) {
        let sticky = ctx
            .client_ip()
            .and_then(|ip| self.table.lookup(ip, snapshot));
        let Some(index) = sticky else {
            return self.inner.order(plan, snapshot, ctx, order);
        };
        // A hit does not ask the inner policy: that would move a round-robin cursor, or
        // scan least-states' hosts, for a client it does not place. The failover order
        // after the sticky host is the table's order after it; a failed connect marks
        // ejects the host (passive health), and the next pick places the client anew.
        order.prefer(index);
        order.scan_from(index + 1);
    }

    /// Records the source -> `id` entry (or counts one more lease on it) and returns the
    /// hook that counts the lease down. A lease carries one hook: the inner policy's
    /// `leased` is asked only when no entry is recorded (no client address, or a table
    /// full of live entries). Every policy of this crate tracks load through the hosts'
    /// state blocks and needs no hook.
    fn leased(&self, ctx: &Context<'_>, id: BackendId) -> Option<LeaseHook> {
        match ctx.client_ip().and_then(|ip| self.table.record(ip, id)) {
            Some(token) => Some(LeaseHook::new(self.table.clone(), token)),
            None => self.inner.leased(ctx, id),
        }
    }
}

impl<P: fmt::Debug, C> fmt::Debug for StickyAddress<P, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StickyAddress")
            .field("inner", &self.inner)
            .field("timeout", &self.timeout)
            .field("shards", &self.shards)
            .finish_non_exhaustive()
    }
}

/// One entry of a [`StickyAddress`] table, as [`StickyAddress::entry`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StickyEntry {
    /// The host the source sticks to.
    pub host: BackendId,
    /// Leases counted on the entry now; 0 while it is idle.
    pub live_leases: u32,
    /// When its last lease ended, by the table's clock, while it is idle.
    pub idle_since: Option<Duration>,
}

/// The counters of a [`StickyAddress`] table. Hits and misses count picks of clients
/// with an address; the rest count entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StickyStats {
    /// Entries in the table now, live or idle (expired ones until they are removed).
    pub entries: usize,
    /// The most entries the table holds.
    pub capacity: usize,
    /// Picks that found a usable entry.
    pub hits: u64,
    /// Picks that found none (including those that dropped or expired one).
    pub misses: u64,
    /// Idle, unexpired entries removed to make room.
    pub evictions: u64,
    /// Entries removed because their timeout ran out.
    pub expired: u64,
    /// Entries dropped because their host was unusable or gone.
    pub dropped: u64,
    /// Leases taken without an entry because the table was full of live entries.
    pub unrecorded: u64,
}
