//! One sticky entry's slot, its lease word, and the source key types.
//!
//! Every field of a slot is an atomic so that the slot can be shared between the
//! shard's lock holder and the lock-free paths without `unsafe` (on x86-64 and AArch64
//! `Relaxed` atomic loads and stores are plain loads and stores). The rules:
//!
//! - `key`, `host`, `prev` and `next` are written only under the shard lock.
//! - `lease`, the lease word, is also changed without the lock, but only by
//!   compare-exchange from one *live* value of a generation to another live value of
//!   the same generation (one lease more or one less, never to or from zero). Every
//!   other transition (new entry, new generation, live to idle, removal) happens under
//!   the lock.
//! - The lease word is also the sequence word of a seqlock over `key` and `host`, for
//!   the lock-free lookup ([`Slot::read_live`]): a writer makes the word free (0)
//!   before it changes them, with a release fence in between, and publishes the new
//!   generation with a release store after ([`Slot::fill`], [`Slot::renew`]). Readers
//!   accept what they read only if the word showed the same live generation before
//!   and after. Lease counts changing in between do not matter: the key and host of a
//!   generation never change.
//! - `hint`, the host's index in the last snapshot that resolved it, is only a hint:
//!   anyone may overwrite it, and it is checked against the snapshot before use.
//!
//! The lease word packs the entry's state so that one compare-exchange both checks the
//! generation and counts:
//!
//! ```text
//! live: 0 | generation (31 bits) | live leases (32 bits, >= 1)
//! idle: 1 | release time in nanoseconds of the table's clock (63 bits)
//! free: 0 (a slot not in the index; a live word never has 0 leases)
//! ```
//!
//! A lock-free path that sees anything but a live word of its own generation gives up
//! and either ignores a stale lease or takes the lock.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{
    fence, AtomicU32, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};
use std::sync::Arc;

use lb_core::BackendId;

use super::cell::ShardCell;
use super::shard::{Counters, Family, Shard};

/// Set in a lease word while the entry is idle; the other 63 bits are its release time.
pub(super) const IDLE: u64 = 1 << 63;
/// Generations are 31 bits: the top bit of a lease word is [`IDLE`].
pub(super) const GEN_MASK: u32 = (1 << 31) - 1;
/// No slot: the end of a list.
pub(super) const NIL: u32 = u32::MAX;

/// A decoded lease word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Word {
    /// Not an entry.
    Free,
    /// `count` live leases (at least 1) of generation `gen`.
    Live { gen: u32, count: u32 },
    /// No live lease since `since` (nanoseconds).
    Idle { since: u64 },
}

impl Word {
    #[inline]
    pub(super) fn decode(w: u64) -> Word {
        if w & IDLE != 0 {
            Word::Idle { since: w & !IDLE }
        } else if w as u32 == 0 {
            Word::Free
        } else {
            Word::Live {
                gen: (w >> 32) as u32,
                count: w as u32,
            }
        }
    }

    /// The live word of `gen` with `count` leases.
    pub(super) fn live(gen: u32, count: u32) -> u64 {
        u64::from(gen & GEN_MASK) << 32 | u64::from(count)
    }

    /// The idle word released at `since` (below 2^63 nanoseconds, 292 years).
    pub(super) fn idle(since: u64) -> u64 {
        IDLE | since
    }
}

/// A source address as a key: 4 bytes for IPv4, 16 for IPv6, so that IPv4 entries stay
/// small.
pub(super) trait SourceKey: Copy + Eq + std::hash::Hash + Send + Sync + 'static {
    /// Set in a token for the IPv6 family.
    const V6: bool;
    /// The key's storage in a slot.
    type Cell: Default + Send + Sync;
    fn load(cell: &Self::Cell) -> Self;
    fn store(self, cell: &Self::Cell);
    /// This key's family in a shard, with the shard's counters and generation counter.
    fn family(shard: &mut Shard) -> (&mut Family<Self>, &mut Counters, &mut u32);
    /// This family's slots, for the lock-free paths (`None` before IPv6 is reserved).
    fn slots(cell: &ShardCell) -> Option<&[Slot<Self>]>;
    /// Shares a newly reserved slab with the lock-free paths (IPv6; IPv4 is shared at
    /// build time).
    fn publish(cell: &ShardCell, slots: &Arc<[Slot<Self>]>);
    /// The address, for logs.
    fn ip(self) -> IpAddr;
    /// The address as a number, for the pick-to-lease hand-off.
    fn bits(self) -> u128;
}

impl SourceKey for u32 {
    const V6: bool = false;
    type Cell = AtomicU32;
    #[inline]
    fn load(cell: &AtomicU32) -> u32 {
        cell.load(Relaxed)
    }
    #[inline]
    fn store(self, cell: &AtomicU32) {
        cell.store(self, Relaxed)
    }
    fn family(shard: &mut Shard) -> (&mut Family<u32>, &mut Counters, &mut u32) {
        (&mut shard.v4, &mut shard.counters, &mut shard.next_gen)
    }
    #[inline]
    fn slots(cell: &ShardCell) -> Option<&[Slot<u32>]> {
        Some(&cell.v4)
    }
    fn publish(_: &ShardCell, _: &Arc<[Slot<u32>]>) {}
    fn ip(self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(self))
    }
    #[inline]
    fn bits(self) -> u128 {
        u128::from(self)
    }
}

impl SourceKey for [u8; 16] {
    const V6: bool = true;
    type Cell = [AtomicU64; 2];
    #[inline]
    fn load(cell: &[AtomicU64; 2]) -> [u8; 16] {
        let hi = cell[0].load(Relaxed).to_be_bytes();
        let lo = cell[1].load(Relaxed).to_be_bytes();
        let mut key = [0; 16];
        key[..8].copy_from_slice(&hi);
        key[8..].copy_from_slice(&lo);
        key
    }
    #[inline]
    fn store(self, cell: &[AtomicU64; 2]) {
        let n = u128::from_be_bytes(self);
        cell[0].store((n >> 64) as u64, Relaxed);
        cell[1].store(n as u64, Relaxed);
    }
    fn family(shard: &mut Shard) -> (&mut Family<[u8; 16]>, &mut Counters, &mut u32) {
        (&mut shard.v6, &mut shard.counters, &mut shard.next_gen)
    }
    #[inline]
    fn slots(cell: &ShardCell) -> Option<&[Slot<[u8; 16]>]> {
        cell.v6.get().map(|s| &s[..])
    }
    fn publish(cell: &ShardCell, slots: &Arc<[Slot<[u8; 16]>]>) {
        // Only under the shard lock, once: a second `set` cannot happen.
        let _ = cell.v6.set(slots.clone());
    }
    fn ip(self) -> IpAddr {
        IpAddr::V6(Ipv6Addr::from(self))
    }
    #[inline]
    fn bits(self) -> u128 {
        u128::from_be_bytes(self)
    }
}

/// One sticky entry, source -> host, in its slab slot: 32 bytes for IPv4, 48 for IPv6.
pub(super) struct Slot<K: SourceKey> {
    /// The lease word (see the module docs).
    pub(super) lease: AtomicU64,
    host: AtomicU64,
    key: K::Cell,
    /// The idle list's links while idle, the free list's while free.
    prev: AtomicU32,
    next: AtomicU32,
    /// Where the host was in the last snapshot that looked it up.
    hint: AtomicU32,
}

impl<K: SourceKey> Default for Slot<K> {
    fn default() -> Self {
        Slot {
            lease: AtomicU64::new(0),
            host: AtomicU64::new(0),
            key: K::Cell::default(),
            prev: AtomicU32::new(NIL),
            next: AtomicU32::new(NIL),
            hint: AtomicU32::new(NIL),
        }
    }
}

impl<K: SourceKey> Slot<K> {
    #[inline]
    pub(super) fn key(&self) -> K {
        K::load(&self.key)
    }

    #[inline]
    pub(super) fn host(&self) -> BackendId {
        BackendId::from_raw(self.host.load(Relaxed))
    }

    /// The lease word, read under the lock: live or idle for an entry in the index.
    pub(super) fn word(&self) -> Word {
        Word::decode(self.lease.load(Relaxed))
    }

    /// The key and host of a live entry and its lease word's generation, read without
    /// the lock; `None` if the slot is not live or changed while being read (the seqlock
    /// read, see the module docs).
    #[inline]
    pub(super) fn read_live(&self) -> Option<(K, BackendId, u32)> {
        // Acquire: pairs with the release store that published this generation, so
        // the key and host read below are at least that generation's.
        let Word::Live { gen, .. } = Word::decode(self.lease.load(Acquire)) else {
            return None;
        };
        let key = K::load(&self.key);
        let host = self.host();
        // If either read saw a later writer's value, this fence synchronises with the
        // release fence that writer put after freeing the word: the load below then
        // sees the free word or a later generation.
        fence(Acquire);
        match Word::decode(self.lease.load(Relaxed)) {
            Word::Live { gen: now, .. } if now == gen => Some((key, host, gen)),
            _ => None,
        }
    }

    /// Fills a free slot (under the lock) and publishes it with lease word `word`.
    pub(super) fn fill(&self, key: K, host: BackendId, word: u64) {
        // The word is free since the slot's removal; order that before the writes
        // (see `read_live`).
        fence(Release);
        key.store(&self.key);
        self.host.store(host.get(), Relaxed);
        self.hint.store(NIL, Relaxed);
        self.lease.store(word, Release);
    }

    /// Gives a live or idle entry (under the lock) a new host and lease word.
    pub(super) fn renew(&self, host: BackendId, word: u64) {
        // Free first: racing lock-free counts of the old generation fail and take the
        // lock, and readers discard a host read from the middle of the change.
        self.lease.swap(0, Relaxed);
        fence(Release);
        self.host.store(host.get(), Relaxed);
        self.hint.store(NIL, Relaxed);
        self.lease.store(word, Release);
    }

    /// The host's index in the snapshot that last resolved it (check before use).
    #[inline]
    pub(super) fn hint(&self) -> u32 {
        self.hint.load(Relaxed)
    }

    #[inline]
    pub(super) fn set_hint(&self, index: usize) {
        self.hint.store(index as u32, Relaxed);
    }

    pub(super) fn prev(&self) -> u32 {
        self.prev.load(Relaxed)
    }

    pub(super) fn next(&self) -> u32 {
        self.next.load(Relaxed)
    }

    pub(super) fn set_links(&self, prev: u32, next: u32) {
        self.prev.store(prev, Relaxed);
        self.next.store(next, Relaxed);
    }

    pub(super) fn set_prev(&self, prev: u32) {
        self.prev.store(prev, Relaxed);
    }

    pub(super) fn set_next(&self, next: u32) {
        self.next.store(next, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    #[test]
    fn slots_are_small() {
        assert_eq!(size_of::<Slot<u32>>(), 32);
        assert_eq!(size_of::<Slot<[u8; 16]>>(), 48);
    }

    #[test]
    fn words_round_trip() {
        assert_eq!(Word::decode(0), Word::Free);
        assert_eq!(
            Word::decode(Word::live(GEN_MASK, u32::MAX)),
            Word::Live {
                gen: GEN_MASK,
                count: u32::MAX
            }
        );
        // A generation never spills into the idle bit.
        assert_eq!(
            Word::decode(Word::live(u32::MAX, 1)),
            Word::Live {
                gen: GEN_MASK,
                count: 1
            }
        );
        assert_eq!(
            Word::decode(Word::idle(IDLE - 1)),
            Word::Idle { since: IDLE - 1 }
        );
    }
}
