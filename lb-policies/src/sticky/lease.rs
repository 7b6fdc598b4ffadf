//! The lease paths: counting a lease on an entry and counting it down again, without
//! the shard lock whenever the entry stays live.
//!
//! A lease token names its entry's slot directly (hash, slot index, generation,
//! family), so the end of a lease does not search the index. While other leases remain
//! the release is one compare-exchange on the slot's lease word; only the last lease
//! takes the lock, to make the entry idle (with its release time, in the idle list)
//! or remove it.
//!
//! A pick calls the policy's `order` and then `leased` on the same thread, each with
//! the source address only. `order` has just found the entry (lock-free in one of its
//! home slots, or under the lock), so it leaves the slot and generation in a per-thread
//! [`Handoff`]; `leased` for the same table,
//! source and host then counts the lease with one compare-exchange instead of locking
//! and searching again. The hand-off is only a hint: the compare-exchange succeeds
//! only on a live word of the same generation, and every change of an entry's key,
//! host or life gives it a new generation (or makes it idle or free) under the lock,
//! so a stale hint (another thread's pick in between, an expired or moved entry, a
//! lease taken much later through `Balancer::candidates`) finds a different word and
//! takes the locked path. HostTable ids are never reused, so a hint cannot outlive its
//! table into a new one at the same address.
//!
//! # Memory orderings
//!
//! The lock-free compare-exchanges are `Relaxed`. They read no other memory: the
//! decision (same generation, at least one lease, not saturated) is taken on the word
//! itself, and all read-modify-writes of one atomic form a single total order, so every
//! increment and decrement is applied exactly once, to the value it checked. Nothing
//! else needs to be published by them: key, host and links are only written under the
//! lock, whose acquire and release order them between lock holders (the lock-free
//! lookup reads key and host under the seqlock described in `slot.rs`, whose fences
//! are on the writers' side of those changes). The invariants that make a count never
//! land on another entry:
//!
//! 1. lock-free steps go from live `(g, n)` to live `(g, n ± 1)` with `n ± 1 >= 1`;
//! 2. the step from 1 lease to none (idle or removed) is a compare-exchange under the
//!    lock, so a racing lock-free increment either comes first (the release then sees 2
//!    and just decrements) or sees idle or free and takes the lock;
//! 3. a slot gets a new key or host only under the lock and only with a new
//!    generation, after its word was free or idle or replaced by a swap, so a racing
//!    count of the old generation fails its compare-exchange;
//! 4. generations are 31 bits per shard and a token also names its slot: a stale lease
//!    could only count on a successor in the same slot after 2^31 new generations in
//!    that shard while it lived, not a practical concern.

use std::cell::Cell;
use std::sync::atomic::Ordering::Relaxed;

use lb_core::{BackendId, Clock, Release};

use super::slot::{SourceKey, Word, GEN_MASK};
use super::table::SourceTable;

/// What the last `order` on this thread found: a live entry's slot.
#[derive(Clone, Copy)]
pub(super) struct Handoff {
    table: u64,
    key: u128,
    v6: bool,
    hash: u64,
    slot: u32,
    gen: u32,
    host: BackendId,
}

thread_local! {
    static HANDOFF: Cell<Handoff> = const {
        Cell::new(Handoff {
            table: 0, // no table has id 0
            key: 0,
            v6: false,
            hash: 0,
            slot: 0,
            gen: 0,
            host: BackendId::from_raw(0),
        })
    };
}

impl Handoff {
    /// Leaves a live entry's slot for this thread's next lease.
    pub(super) fn set<K: SourceKey>(
        table: u64,
        key: K,
        hash: u64,
        slot: u32,
        gen: u32,
        host: BackendId,
    ) {
        HANDOFF.with(|h| {
            h.set(Handoff {
                table,
                key: key.bits(),
                v6: K::V6,
                hash,
                slot,
                gen,
                host,
            })
        });
    }
}

/// A lease token: the entry's hash (which finds its shard), its slot, its generation
/// and its family.
pub(super) fn token<K: SourceKey>(hash: u64, slot: u32, gen: u32) -> u128 {
    u128::from(hash) | u128::from(slot) << 64 | u128::from(gen) << 96 | u128::from(K::V6) << 127
}

impl<C: Clock> SourceTable<C> {
    /// Counts a lease on the entry this thread's last `order` found, without the lock,
    /// if the hand-off is for this table, source and host and the entry is still live
    /// in the same generation. `None`: take the locked path.
    pub(super) fn lease_handed_off<K: SourceKey>(&self, key: K, id: BackendId) -> Option<u128> {
        let h = HANDOFF.with(Cell::get);
        if h.table != self.id || h.key != key.bits() || h.v6 != K::V6 || h.host != id {
            return None;
        }
        let slot = K::slots(self.shard(h.hash))?.get(h.slot as usize)?;
        let mut w = slot.lease.load(Relaxed);
        loop {
            match Word::decode(w) {
                Word::Live { gen, count } if gen == h.gen && count < u32::MAX => {}
                _ => return None,
            }
            // Relaxed: see the module docs.
            match slot.lease.compare_exchange_weak(w, w + 1, Relaxed, Relaxed) {
                Ok(_) => return Some(token::<K>(h.hash, h.slot, h.gen)),
                Err(now) => w = now,
            }
        }
    }

    /// Counts down a lease of generation `gen` on slot `i`. Stale leases (the entry was
    /// dropped, replaced, moved or is idle) count nothing.
    fn release_in<K: SourceKey>(&self, hash: u64, i: u32, gen: u32) {
        let cell = self.shard(hash);
        let Some(slot) = K::slots(cell).and_then(|s| s.get(i as usize)) else {
            return;
        };
        let mut w = slot.lease.load(Relaxed);
        loop {
            match Word::decode(w) {
                Word::Live { gen: g, count } if g == gen => {
                    if count == 1 {
                        break; // the last lease: under the lock
                    }
                }
                _ => return, // stale
            }
            match slot.lease.compare_exchange_weak(w, w - 1, Relaxed, Relaxed) {
                Ok(_) => return,
                Err(now) => w = now,
            }
        }
        let mut guard = cell.lock.lock();
        let (family, counters, _) = K::family(&mut guard);
        // Read under the lock, so that idle entries are listed in release-time order.
        let mut now = None;
        let mut w = slot.lease.load(Relaxed);
        loop {
            let last = match Word::decode(w) {
                Word::Live { gen: g, count } if g == gen => count == 1,
                _ => return, // dropped or replaced since
            };
            let next = match (last, self.timeout_ns) {
                (false, _) => w - 1,
                (true, 0) => 0,
                (true, _) => Word::idle(*now.get_or_insert_with(|| self.now())),
            };
            // Lock-free increments may still race with this step (invariant 2).
            match slot.lease.compare_exchange(w, next, Relaxed, Relaxed) {
                Ok(_) if !last => return,
                Ok(_) => break,
                Err(seen) => w = seen,
            }
        }
        if self.timeout_ns == 0 {
            // A timeout of 0 runs out with the last lease: counted as an expiry, not
            // logged (that would be once per connection).
            family.remove(hash, i);
            counters.expired += 1;
            drop(guard);
            self.entries.fetch_sub(1, Relaxed);
        } else {
            family.link_idle(i);
        }
    }
}

impl<C: Clock> Release for SourceTable<C> {
    fn release(&self, token: u128) {
        let hash = token as u64;
        let slot = (token >> 64) as u32;
        let gen = (token >> 96) as u32 & GEN_MASK;
        if token >> 127 == 1 {
            self.release_in::<[u8; 16]>(hash, slot, gen);
        } else {
            self.release_in::<u32>(hash, slot, gen);
        }
    }
}

#[cfg(test)]
mod tests {
    //! Lease counting under real threads, checked against the tokens themselves: after
    //! the threads are joined, every live entry must count exactly the outstanding
    //! tokens of its slot and generation, whatever was dropped, moved, evicted, expired
    //! or swept meanwhile (`tests/sticky_concurrent.rs` checks the same through the
    //! public API, where stale leases cannot be told apart).

    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use std::sync::Arc;
    use std::thread;
    use std::time::Duration;

    use lb_core::{Backend, Clock, Health, HostTable, ManualClock, Release};

    use super::super::slot::{SourceKey, Word, GEN_MASK};
    use super::super::table::SourceTable;

    /// Shared sources; each worker also has 4 private ones, `SOURCES + 4w ..`.
    const SOURCES: usize = 12;

    fn source(n: usize) -> IpAddr {
        if n >= SOURCES {
            IpAddr::V4(Ipv4Addr::new(203, 0, 113, n as u8))
        } else if n % 3 == 2 {
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, n as u16))
        } else {
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, n as u8))
        }
    }

    fn next(rng: &mut u64) -> u64 {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        *rng
    }

    /// Checks that `ip`'s entry, if live, counts exactly the tokens of `held` that name
    /// its slot and generation.
    fn check<C: Clock>(t: &SourceTable<C>, s: usize, held: &[(usize, u128)]) {
        if let Some((slot, Word::Live { gen, count })) = probe(t, source(s)) {
            let outstanding = held
                .iter()
                .filter(|&&(src, t)| {
                    src == s && (t >> 64) as u32 == slot && (t >> 96) as u32 & GEN_MASK == gen
                })
                .count();
            assert_eq!(count as usize, outstanding, "source {s}");
        }
    }

    /// The entry of `ip`: its slot and lease word.
    fn probe<C: Clock>(t: &SourceTable<C>, ip: IpAddr) -> Option<(u32, Word)> {
        match ip {
            IpAddr::V4(a) => probe_in(t, u32::from(a)),
            IpAddr::V6(a) => probe_in(t, a.octets()),
        }
    }

    fn probe_in<K: SourceKey, C: Clock>(t: &SourceTable<C>, key: K) -> Option<(u32, Word)> {
        let hash = t.hash(&key);
        let mut guard = t.shard(hash).lock.lock();
        let (family, _, _) = K::family(&mut guard);
        let i = family.find(hash, key)?;
        Some((i, family.slot(i).word()))
    }

    #[test]
    fn every_live_count_equals_its_outstanding_tokens() {
        for timeout_ns in [0, 5_000] {
            let clock = ManualClock::new();
            let table = Arc::new(SourceTable::new(8, 2, timeout_ns, false, clock.clone()));
            let addrs = (1..=3).map(|n| SocketAddr::from(([10, 0, 0, n], 80)));
            let hosts = HostTable::new("stress", addrs).unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            // Hosts fail and recover (entries dropped under live leases, slots reused),
            // time passes (idle entries expire) and sweeps run, all while leases move.
            let helper = {
                let (table, hosts, stop) = (table.clone(), hosts.clone(), stop.clone());
                let clock = clock.clone();
                thread::spawn(move || {
                    let mut rng = 7u64;
                    let mut n = 0u64;
                    while !stop.load(SeqCst) {
                        n += 1;
                        let r = next(&mut rng);
                        let id = SocketAddr::from(([10, 0, 0, 1 + (r % 3) as u8], 80)).id();
                        let health = if r >> 8 & 3 == 0 {
                            Health::Down
                        } else {
                            Health::Up
                        };
                        hosts.set_health(id, health, "stress").unwrap();
                        clock.advance(Duration::from_nanos(1_000));
                        if n.is_multiple_of(8) {
                            table.sweep();
                        }
                        thread::yield_now();
                    }
                })
            };
            let workers: Vec<_> = (0..4u64)
                .map(|w| {
                    let (table, hosts) = (table.clone(), hosts.clone());
                    thread::spawn(move || {
                        let mut rng = 0x9e37_79b9_7f4a_7c15 ^ (w + 1);
                        let mut held = Vec::new();
                        // At least 20 000 steps, and on until a host's failure has
                        // dropped an entry and a lookup has hit one: on a loaded
                        // machine the helper may barely run during the first steps.
                        for step in 0..2_000_000u32 {
                            if step >= 20_000 && step % 1_000 == 0 {
                                let stats = table.stats();
                                if stats.dropped > 0 && stats.hits > 0 {
                                    break;
                                }
                            }
                            let r = next(&mut rng);
                            if held.len() < 6 && r.is_multiple_of(2) {
                                // As a pick does: the sticky host (the lookup leaves
                                // the hand-off), else a usable host from a random turn;
                                // one in eight leases fails over to that host anyway,
                                // moving the entry and leaving its leases stale.
                                let s = if r >> 50 & 3 == 0 {
                                    SOURCES + 4 * w as usize + (r >> 8) as usize % 4
                                } else {
                                    (r >> 8) as usize % SOURCES
                                };
                                let snap = hosts.snapshot();
                                let turn = (r >> 20) as usize;
                                let other =
                                    (0..3).map(|k| (turn + k) % 3).find(|&i| snap.is_usable(i));
                                let sticky = table.lookup(source(s), &snap);
                                let chosen = if r >> 40 & 7 == 0 {
                                    other
                                } else {
                                    sticky.or(other)
                                };
                                let Some(i) = chosen else {
                                    continue;
                                };
                                if let Some(token) = table.record(source(s), snap.id(i)) {
                                    held.push((s, token));
                                }
                                if s >= SOURCES {
                                    // Only this thread leases its private sources: their
                                    // counts must be exact at any time, whatever the
                                    // others' (possibly stale) releases do to the slab.
                                    check(&table, s, &held);
                                }
                            } else if !held.is_empty() {
                                let (s, token) = held.swap_remove((r >> 8) as usize % held.len());
                                table.release(token);
                                if s >= SOURCES {
                                    check(&table, s, &held);
                                }
                            }
                        }
                        held
                    })
                })
                .collect();
            let held: Vec<(usize, u128)> = workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect();
            stop.store(true, SeqCst);
            helper.join().unwrap();

            let stats = table.stats();
            assert!(stats.dropped > 0 && stats.hits > 0, "{stats:?}");
            for s in 0..SOURCES + 16 {
                check(&table, s, &held);
            }
            for &(_, token) in &held {
                table.release(token);
            }
            for s in 0..SOURCES + 16 {
                let word = probe(&table, source(s)).map(|(_, w)| w);
                assert!(
                    !matches!(word, Some(Word::Live { .. })),
                    "source {s}: {word:?}"
                );
            }
            clock.advance(Duration::from_nanos(timeout_ns));
            table.sweep();
            assert_eq!((table.stored(), table.stats().entries), (0, 0));
        }
    }
}
