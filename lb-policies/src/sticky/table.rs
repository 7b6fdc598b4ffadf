//! The source table: sharded entries, the global capacity, expiry and eviction, and the
//! [`Release`] hook that counts leases down.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};

use hashbrown::DefaultHashBuilder;
use lb_core::{Backend, BackendId, Clock, Release, Snapshot};
use parking_lot::Mutex;
use tracing::debug;

use super::shard::{Shard, SourceKey, IDLE};
use super::StickyStats;

/// How many times an eviction looks for the oldest idle entry again when another thread
/// changed it between the search and the removal. Past that, the client is placed
/// without an entry: contention on a full table must not spin.
const EVICT_ATTEMPTS: usize = 8;

/// A shard lock on its own cache lines, so that picks on different shards do not
/// contend through false sharing.
#[repr(align(128))]
struct Padded<T>(T);

impl<T> Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Source address -> (host, live leases, release time), with a global capacity.
pub(super) struct SourceTable<C> {
    shards: Box<[Padded<Mutex<Shard>>]>,
    /// Keyed with a random seed per table: a spoofing client cannot aim its sources at
    /// one shard or one probe chain.
    hasher: DefaultHashBuilder,
    /// Entries in all shards. Reserved before an insert, so it never exceeds `capacity`.
    entries: AtomicUsize,
    capacity: usize,
    /// Entries each shard reserves per family (IPv6 on first use).
    per_shard: usize,
    timeout_ns: u64,
    clock: C,
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
        let shards = (0..shards)
            .map(|_| {
                let mut shard = Shard::new();
                shard.v4().reserve(per_shard, &|k| hasher.hash_one(k));
                if reserve_ipv6 {
                    shard.v6().reserve(per_shard, &|k| hasher.hash_one(k));
                }
                Padded(Mutex::new(shard))
            })
            .collect();
        SourceTable {
            shards,
            hasher,
            entries: AtomicUsize::new(0),
            capacity,
            per_shard,
            timeout_ns,
            clock,
        }
    }

    fn hash<K: SourceKey>(&self, key: &K) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The shard of a hash. Uses bits 24..56: hashbrown takes the bucket from the low
    /// bits and its control tag from the top 7, which must stay varied within a shard.
    fn shard(&self, hash: u64) -> &Mutex<Shard> {
        let mid = u64::from((hash >> 24) as u32);
        let i = (mid * self.shards.len() as u64) >> 32;
        &self.shards[i as usize]
    }

    fn now(&self) -> u64 {
        u64::try_from(self.clock.now().as_nanos())
            .unwrap_or(u64::MAX)
            .min(IDLE - 1)
    }

    /// Whether an entry released at `released_at` has expired by `now`: it is valid
    /// while `now < released_at + timeout`.
    fn is_expired(&self, released_at: u64, now: u64) -> bool {
        now.saturating_sub(released_at) >= self.timeout_ns
    }

    /// The order path: the index of `ip`'s sticky host if it has a live or unexpired
    /// entry whose host is usable in `snap`. Drops entries that expired or whose host is
    /// down or gone.
    pub(super) fn lookup<B: Backend>(&self, ip: IpAddr, snap: &Snapshot<B>) -> Option<usize> {
        match ip {
            IpAddr::V4(a) => self.lookup_in(u32::from(a), snap),
            IpAddr::V6(a) => self.lookup_in(a.octets(), snap),
        }
    }

    fn lookup_in<K: SourceKey, B: Backend>(&self, key: K, snap: &Snapshot<B>) -> Option<usize> {
        let hash = self.hash(&key);
        let mut guard = self.shard(hash).lock();
        let (family, counters, _) = K::family(&mut guard);
        let Some(i) = family.find(hash, key) else {
            counters.misses += 1;
            return None;
        };
        let entry = *family.slot(i);
        if entry.is_idle() && self.is_expired(entry.released_at(), self.now()) {
            family.remove(hash, i);
            counters.expired += 1;
            counters.misses += 1;
            drop(guard);
            self.entries.fetch_sub(1, Ordering::Relaxed);
            debug!(source = %key.ip(), host = %entry.host, "sticky entry expired");
            return None;
        }
        match snap.index_of(entry.host) {
            Some(i) if snap.is_usable(i) => {
                counters.hits += 1;
                Some(i)
            }
            index => {
                family.remove(hash, i);
                counters.dropped += 1;
                counters.misses += 1;
                drop(guard);
                self.entries.fetch_sub(1, Ordering::Relaxed);
                let reason = if index.is_some() {
                    "unusable"
                } else {
                    "removed"
                };
                debug!(source = %key.ip(), host = %entry.host, reason, "sticky entry dropped: host not usable");
                None
            }
        }
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
        let hash = self.hash(&key);
        let rehash = |k: &K| self.hash(k);
        let mut reserved = false;
        let mut attempts = 0;
        loop {
            let mut guard = self.shard(hash).lock();
            let (family, counters, next_gen) = K::family(&mut guard);
            if let Some(i) = family.find(hash, key) {
                if reserved {
                    self.entries.fetch_sub(1, Ordering::Relaxed);
                }
                let entry = family.slot_mut(i);
                if !entry.is_idle() && entry.host == id {
                    entry.state += 1;
                    return Some(token::<K>(hash, entry.gen));
                }
                // Revived from idle, re-placed after expiry, or moved to another host
                // (a failover): a new generation, so older leases no longer count.
                if entry.is_idle() && self.is_expired(entry.released_at(), self.now()) {
                    counters.expired += 1;
                    debug!(source = %key.ip(), host = %entry.host, "sticky entry expired");
                }
                let gen = bump(next_gen);
                family.renew(i, gen, id);
                return Some(token::<K>(hash, gen));
            }
            if reserved || self.reserve_slot() {
                if family.is_unreserved() {
                    family.reserve(self.per_shard, &rehash);
                }
                let gen = bump(next_gen);
                family.insert(hash, key, gen, id, &rehash);
                return Some(token::<K>(hash, gen));
            }
            drop(guard);
            attempts += 1;
            if attempts > 1 || !self.evict_one() {
                // Counted, not logged: under a flood this happens on every pick.
                self.shard(hash).lock().counters.unrecorded += 1;
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

    /// Removes the oldest idle entry of the whole table, keeping its slot reserved for
    /// the caller. `false` when every entry has live leases.
    fn evict_one(&self) -> bool {
        let h4 = |k: &u32| self.hash(k);
        let h6 = |k: &[u8; 16]| self.hash(k);
        for _ in 0..EVICT_ATTEMPTS {
            // The oldest release time; among equal ones, the fullest shard. Without
            // that tie-break, entries released in the same clock tick would all be
            // taken from the first shard while new ones land everywhere, and shards
            // would outgrow their reservations.
            let mut oldest: Option<(u64, usize, usize)> = None;
            for (i, shard) in self.shards.iter().enumerate() {
                let shard = shard.lock();
                if let Some(t) = shard.oldest_idle() {
                    let len = shard.len();
                    if oldest.is_none_or(|(bt, blen, _)| t < bt || (t == bt && len > blen)) {
                        oldest = Some((t, len, i));
                    }
                }
            }
            let Some((t, _, i)) = oldest else {
                return false;
            };
            let mut shard = self.shards[i].lock();
            if shard.oldest_idle() != Some(t) {
                continue; // changed meanwhile: search again
            }
            let Some(gone) = shard.pop_oldest_idle(&h4, &h6) else {
                continue;
            };
            let now = self.now();
            let expired = self.is_expired(gone.released_at, now);
            if expired {
                shard.counters.expired += 1;
            } else {
                shard.counters.evictions += 1;
            }
            drop(shard);
            let idle_ns = now.saturating_sub(gone.released_at);
            debug!(source = %gone.source, host = %gone.host, idle_ns, expired, "sticky entry evicted: table full");
            return true;
        }
        false
    }

    /// Removes every expired entry; returns how many.
    pub(super) fn sweep(&self) -> usize {
        let h4 = |k: &u32| self.hash(k);
        let h6 = |k: &[u8; 16]| self.hash(k);
        let mut removed = 0;
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            let now = self.now();
            while let Some(t) = shard.oldest_idle() {
                if !self.is_expired(t, now) {
                    break;
                }
                let Some(gone) = shard.pop_oldest_idle(&h4, &h6) else {
                    break;
                };
                shard.counters.expired += 1;
                self.entries.fetch_sub(1, Ordering::Relaxed);
                removed += 1;
                debug!(source = %gone.source, host = %gone.host, "sticky entry expired");
            }
        }
        removed
    }

    fn release_in<K: SourceKey>(&self, hash: u64, gen: u32) {
        let mut guard = self.shard(hash).lock();
        let (family, counters, _) = K::family(&mut guard);
        let Some(i) = family.find_gen(hash, gen) else {
            return; // a lease of a replaced or dropped entry
        };
        let entry = family.slot_mut(i);
        if entry.is_idle() {
            return;
        }
        entry.state -= 1;
        if entry.state > 0 {
            return;
        }
        if self.timeout_ns == 0 {
            // A timeout of 0 runs out with the last lease: counted as an expiry, not
            // logged (that would be once per connection).
            family.remove(hash, i);
            counters.expired += 1;
            drop(guard);
            self.entries.fetch_sub(1, Ordering::Relaxed);
        } else {
            family.make_idle(i, self.now());
        }
    }

    pub(super) fn stats(&self) -> StickyStats {
        let mut stats = StickyStats {
            entries: self.entries.load(Ordering::Relaxed),
            capacity: self.capacity,
            ..StickyStats::default()
        };
        for shard in self.shards.iter() {
            let c = shard.lock().counters;
            stats.hits += c.hits;
            stats.misses += c.misses;
            stats.evictions += c.evictions;
            stats.expired += c.expired;
            stats.dropped += c.dropped;
            stats.unrecorded += c.unrecorded;
        }
        stats
    }

    /// Bytes the shards' maps and idle queues hold.
    pub(super) fn allocation_size(&self) -> usize {
        let shards = self.shards.len() * std::mem::size_of::<Padded<Mutex<Shard>>>();
        shards
            + self
                .shards
                .iter()
                .map(|s| s.lock().allocation_size())
                .sum::<usize>()
    }

    /// Entries actually stored (equals `stats().entries` when no pick is in flight).
    pub(super) fn stored(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }
}

impl<C: Clock> Release for SourceTable<C> {
    fn release(&self, token: u128) {
        let hash = token as u64;
        let gen = (token >> 64) as u32;
        if token >> 96 & 1 == 1 {
            self.release_in::<[u8; 16]>(hash, gen);
        } else {
            self.release_in::<u32>(hash, gen);
        }
    }
}

/// The entries each shard reserves per family: its even share plus room for uneven
/// filling. A full table spreads its entries binomially over the shards (standard
/// deviation just under the square root of the share), so the reserve adds 7
/// deviations: a shard outgrows it with odds below 10^-11 (it would then allocate once).
/// 10 000 over 16 shards: 625 + 175 = 800.
pub(super) fn per_shard_reserve(capacity: usize, shards: usize) -> usize {
    let share = capacity.div_ceil(shards);
    let deviations = 7 * (share as f64).sqrt().ceil() as usize;
    share.saturating_add(deviations).min(capacity)
}

/// A lease token: the entry's hash (which finds its shard and bucket), its generation
/// and its family. The hash rather than the address, so that IPv6 fits in 128 bits.
fn token<K: SourceKey>(hash: u64, gen: u32) -> u128 {
    u128::from(hash) | u128::from(gen) << 64 | u128::from(K::V6) << 96
}

fn bump(next_gen: &mut u32) -> u32 {
    let gen = *next_gen;
    *next_gen = gen.wrapping_add(1);
    gen
}
