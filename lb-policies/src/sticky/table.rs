//! The source table: sharded entries, the global capacity, expiry and eviction. The
//! lease paths that avoid the lock are in [`lease`](super::lease).

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use hashbrown::DefaultHashBuilder;
use lb_core::{Backend, BackendId, Clock, Snapshot};
use tracing::debug;

use super::cell::ShardCell;
use super::lease::{token, Handoff};
use super::shard::homes;
use super::slot::{Slot, SourceKey, Word, GEN_MASK, IDLE};
use super::{StickyEntry, StickyStats};

/// HostTable ids for the pick-to-lease hand-off: never reused, unlike addresses.
static NEXT_TABLE_ID: AtomicU64 = AtomicU64::new(1);

/// A shard on its own cache lines, so that picks on different shards do not contend
/// through false sharing.
#[repr(align(128))]
pub(super) struct Padded<T>(T);

impl<T> Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Source address -> (host, live leases, release time), with a global capacity.
pub(super) struct SourceTable<C> {
    pub(super) shards: Box<[Padded<ShardCell>]>,
    /// Keyed with a random seed per table: a spoofing client cannot aim its sources at
    /// one shard or one probe chain.
    hasher: DefaultHashBuilder,
    /// Entries in all shards. Reserved before an insert, so it never exceeds `capacity`.
    pub(super) entries: AtomicUsize,
    capacity: usize,
    /// Entries each shard reserves per family (IPv6 on first use).
    per_shard: usize,
    pub(super) timeout_ns: u64,
    clock: C,
    /// This table's id in the pick-to-lease hand-off.
    pub(super) id: u64,
}

impl<C: Clock> SourceTable<C> {
    pub(super) fn new(
        capacity: usize,
        shards: usize,
        timeout_ns: u64,
        reserve_ipv6: bool,
        clock: C,
    ) -> Self {
        let per_shard = per_shard_reserve(capacity, shards);
        let hasher = DefaultHashBuilder::default();
        let h4 = |k: &u32| hasher.hash_one(k);
        let h6 = |k: &[u8; 16]| hasher.hash_one(k);
        let shards = (0..shards)
            .map(|_| Padded(ShardCell::new(per_shard, reserve_ipv6, &h4, &h6)))
            .collect();
        SourceTable {
            shards,
            hasher,
            entries: AtomicUsize::new(0),
            capacity,
            per_shard,
            timeout_ns,
            clock,
            id: NEXT_TABLE_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    pub(super) fn hash<K: SourceKey>(&self, key: &K) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The shard of a hash. Uses bits 24..56: hashbrown takes the bucket from the low
    /// bits and its control tag from the top 7, which must stay varied within a shard.
    pub(super) fn shard(&self, hash: u64) -> &ShardCell {
        let mid = u64::from((hash >> 24) as u32);
        let i = (mid * self.shards.len() as u64) >> 32;
        &self.shards[i as usize]
    }

    pub(super) fn now(&self) -> u64 {
        u64::try_from(self.clock.now().as_nanos())
            .unwrap_or(u64::MAX)
            .min(IDLE - 1)
    }

    /// Whether an entry released at `released_at` has expired by `now`: it is valid
    /// while `now < released_at + timeout`.
    pub(super) fn is_expired(&self, released_at: u64, now: u64) -> bool {
        now.saturating_sub(released_at) >= self.timeout_ns
    }

    /// The order path: the index of `ip`'s sticky host if it has a live or unexpired
    /// entry whose host is usable in `snap`. Drops entries that expired or whose host is
    /// down or gone. A live hit leaves its slot in this thread's hand-off for the lease.
    pub(super) fn lookup<B: Backend>(&self, ip: IpAddr, snap: &Snapshot<B>) -> Option<usize> {
        match ip {
            IpAddr::V4(a) => self.lookup_in(u32::from(a), snap),
            IpAddr::V6(a) => self.lookup_in(a.octets(), snap),
        }
    }

    fn lookup_in<K: SourceKey, B: Backend>(&self, key: K, snap: &Snapshot<B>) -> Option<usize> {
        let hash = self.hash(&key);
        let cell = self.shard(hash);
        if let Some(index) = self.lookup_home(cell, hash, key, snap) {
            return Some(index);
        }
        let mut guard = cell.lock.lock();
        let (family, counters, _) = K::family(&mut guard);
        let Some(i) = family.find(hash, key) else {
            counters.misses += 1;
            return None;
        };
        let slot = family.slot(i);
        let (word, host) = (slot.word(), slot.host());
        let reason = match word {
            Word::Idle { since } if self.is_expired(since, self.now()) => "expired",
            _ => match resolve(snap, slot, host) {
                Some(index) if snap.is_usable(index) => {
                    cell.hits.fetch_add(1, Ordering::Relaxed);
                    if let Word::Live { gen, .. } = word {
                        Handoff::set(self.id, key, hash, i, gen, host);
                    }
                    return Some(index);
                }
                Some(_) => "unusable",
                None => "removed",
            },
        };
        family.remove(hash, i);
        counters.misses += 1;
        if reason == "expired" {
            counters.expired += 1;
        } else {
            counters.dropped += 1;
        }
        drop(guard);
        self.entries.fetch_sub(1, Ordering::Relaxed);
        debug!(source = %key.ip(), %host, reason, "sticky entry dropped");
        None
    }

    /// The lock-free lookup: a live entry in a home slot whose host is usable. Every
    /// other case (no entry there, idle, being changed, host unusable or gone) is left
    /// to the locked path, which is exact.
    fn lookup_home<K: SourceKey, B: Backend>(
        &self,
        cell: &ShardCell,
        hash: u64,
        key: K,
        snap: &Snapshot<B>,
    ) -> Option<usize> {
        let slots = K::slots(cell)?;
        if slots.is_empty() {
            return None;
        }
        let (i, slot, host, gen) = homes(hash, slots.len()).into_iter().find_map(|i| {
            let slot = &slots[i];
            let (found, host, gen) = slot.read_live()?;
            (found == key).then_some((i, slot, host, gen))
        })?;
        let index = resolve(snap, slot, host).filter(|&index| snap.is_usable(index))?;
        cell.hits.fetch_add(1, Ordering::Relaxed);
        Handoff::set(self.id, key, hash, i as u32, gen, host);
        Some(index)
    }

    /// The lease path: records (or refreshes) `ip` -> `id` and counts one live lease on
    /// the entry. Returns the lease's token, or `None` when the table is full of live
    /// entries and the client goes without one.
    pub(super) fn record(&self, ip: IpAddr, id: BackendId) -> Option<u128> {
        match ip {
            IpAddr::V4(a) => self.record_in(u32::from(a), id),
            IpAddr::V6(a) => self.record_in(a.octets(), id),
        }
    }

    fn record_in<K: SourceKey>(&self, key: K, id: BackendId) -> Option<u128> {
        if let Some(token) = self.lease_handed_off(key, id) {
            return Some(token);
        }
        let hash = self.hash(&key);
        let rehash = |k: &K| self.hash(k);
        let cell = self.shard(hash);
        let mut reserved = false;
        let mut attempts = 0;
        loop {
            let mut guard = cell.lock.lock();
            let (family, counters, next_gen) = K::family(&mut guard);
            if let Some(i) = family.find(hash, key) {
                if reserved {
                    self.entries.fetch_sub(1, Ordering::Relaxed);
                }
                let slot = family.slot(i);
                let word = slot.word();
                if let (Word::Live { gen, .. }, true) = (word, slot.host() == id) {
                    // One more lease. Lock-free counts of other leases may land at the
                    // same time (never to or from 0), hence the update loop.
                    let more = slot
                        .lease
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
                            (w as u32 != u32::MAX).then_some(w + 1)
                        });
                    if more.is_err() {
                        counters.unrecorded += 1; // 2^32 - 1 live leases on one source
                        return None;
                    }
                    return Some(token::<K>(hash, i, gen));
                }
                // Revived from idle, re-placed after expiry, or moved to another host
                // (a failover): a new generation, so older leases no longer count.
                if let Word::Idle { since } = word {
                    if self.is_expired(since, self.now()) {
                        counters.expired += 1;
                        debug!(source = %key.ip(), host = %slot.host(), "sticky entry expired");
                    }
                }
                let gen = bump(next_gen);
                family.renew(i, id, Word::live(gen, 1));
                return Some(token::<K>(hash, i, gen));
            }
            if reserved || self.reserve_slot() {
                cell.ensure_reserved(family, self.per_shard, &rehash);
                let gen = bump(next_gen);
                if let Some(i) = family.insert(hash, key, id, Word::live(gen, 1), &rehash) {
                    return Some(token::<K>(hash, i, gen));
                }
                // This shard's slab is full (odds below 10^-11 at random sources).
                counters.unrecorded += 1;
                drop(guard);
                self.entries.fetch_sub(1, Ordering::Relaxed);
                return None;
            }
            drop(guard);
            attempts += 1;
            if attempts > 1 || !self.evict_one() {
                // Counted, not logged: under a flood this happens on every pick.
                cell.lock.lock().counters.unrecorded += 1;
                return None;
            }
            // The evicted entry's slot is ours now.
            reserved = true;
        }
    }

    /// Takes one slot of the capacity, if any is left.
    fn reserve_slot(&self) -> bool {
        self.entries
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.capacity).then_some(n + 1)
            })
            .is_ok()
    }

    /// The entry of `ip`, read under its shard's lock.
    pub(super) fn entry(&self, ip: IpAddr) -> Option<StickyEntry> {
        match ip {
            IpAddr::V4(a) => self.entry_in(u32::from(a)),
            IpAddr::V6(a) => self.entry_in(a.octets()),
        }
    }

    fn entry_in<K: SourceKey>(&self, key: K) -> Option<StickyEntry> {
        let hash = self.hash(&key);
        let mut guard = self.shard(hash).lock.lock();
        let (family, _, _) = K::family(&mut guard);
        let slot = family.slot(family.find(hash, key)?);
        let (live_leases, idle_since) = match slot.word() {
            Word::Live { count, .. } => (count, None),
            Word::Idle { since } => (0, Some(Duration::from_nanos(since))),
            Word::Free => return None,
        };
        Some(StickyEntry {
            host: slot.host(),
            live_leases,
            idle_since,
        })
    }

    pub(super) fn stats(&self) -> StickyStats {
        let mut stats = StickyStats {
            entries: self.entries.load(Ordering::Relaxed),
            capacity: self.capacity,
            ..StickyStats::default()
        };
        for cell in self.shards.iter() {
            let c = cell.lock.lock().counters;
            stats.hits += cell.hits.load(Ordering::Relaxed);
            stats.misses += c.misses;
            stats.evictions += c.evictions;
            stats.expired += c.expired;
            stats.dropped += c.dropped;
            stats.unrecorded += c.unrecorded;
        }
        stats
    }

    /// Bytes the shards and their slabs and indexes hold.
    pub(super) fn allocation_size(&self) -> usize {
        let shards = self.shards.len() * std::mem::size_of::<Padded<ShardCell>>();
        shards
            + self
                .shards
                .iter()
                .map(|s| s.allocation_size())
                .sum::<usize>()
    }

    /// Entries actually stored (equals `stats().entries` when no pick is in flight).
    pub(super) fn stored(&self) -> usize {
        self.shards.iter().map(|s| s.lock.lock().len()).sum()
    }
}

/// The entries each shard reserves per family: its even share plus room for uneven
/// filling. A full table spreads its entries binomially over the shards (standard
/// deviation just under the square root of the share), so the reserve adds 7
/// deviations: a shard outgrows it with odds below 10^-11 (its next new source is then
/// placed without an entry). 10 000 over 16 shards: 625 + 175 = 800.
pub(super) fn per_shard_reserve(capacity: usize, shards: usize) -> usize {
    let share = capacity.div_ceil(shards);
    let deviations = 7 * (share as f64).sqrt().ceil() as usize;
    share.saturating_add(deviations).min(capacity)
}

/// The index of `host` in `snap`: the slot's hint if it still names it, else the
/// snapshot's map (and the hint is updated).
fn resolve<K: SourceKey, B: Backend>(
    snap: &Snapshot<B>,
    slot: &Slot<K>,
    host: BackendId,
) -> Option<usize> {
    let hint = slot.hint() as usize;
    if hint < snap.len() && snap.id(hint) == host {
        return Some(hint);
    }
    let index = snap.index_of(host)?;
    slot.set_hint(index);
    Some(index)
}

/// The next generation of a shard (31 bits, wrapping).
fn bump(next_gen: &mut u32) -> u32 {
    let gen = *next_gen;
    *next_gen = gen.wrapping_add(1) & GEN_MASK;
    gen
}
