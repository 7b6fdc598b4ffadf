//! One shard of the source table: an IPv4 and an IPv6 family of entries, the shard's
//! generation counter and its counters.
//!
//! A family stores its entries in a slab of fixed-size slots and finds them through a
//! `hashbrown` [`HashTable`] of slot indices (4 bytes a bucket). The index is reserved at
//! twice the entries it will hold, for a reason measured, not guessed: a swiss table
//! leaves tombstones when entries are removed, and once they use up its spare room it
//! rehashes *in place* only if it is at most half full; above that it allocates a table
//! twice as large. At 61 % load, hashbrown 0.15 did so after about 2 700 inserts and
//! removals (1024 buckets, 625 entries), which would put allocations on the pick path and
//! double the memory. At or under half load it never grew in 3 million operations. Small
//! index buckets make that affordable.
//!
//! Idle entries (no live lease) form a doubly linked list through their slots, in the
//! order they went idle, which is release-time order because the table reads its clock
//! under the shard lock: the oldest idle entry is the head, found, unlinked and evicted
//! in O(1).
//!
//! Everything here runs under the shard's lock; nothing here locks, reads the clock or
//! logs. [`SourceTable`](super::table::SourceTable) decides, a shard stores.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hashbrown::HashTable;
use lb_core::BackendId;

/// Set in [`Slot::state`] while the entry is idle; the other 63 bits are then the
/// release time in nanoseconds of the table's clock. While the bit is clear, the state
/// is the number of live leases (at least 1); 0 marks a free slot.
pub(super) const IDLE: u64 = 1 << 63;
/// The state of a free slot.
const FREE: u64 = 0;
/// No slot: the end of a list.
const NIL: u32 = u32::MAX;

/// A source address as a key: 4 bytes for IPv4, 16 for IPv6, so that IPv4 entries stay
/// small.
pub(super) trait SourceKey: Copy + Eq + std::hash::Hash + Send + 'static {
    /// Set in a token for the IPv6 family.
    const V6: bool;
    /// This key's family in a shard, with the shard's counters and generation counter.
    fn family(shard: &mut Shard) -> (&mut Family<Self>, &mut Counters, &mut u32);
    /// The address, for logs.
    fn ip(self) -> IpAddr;
}

impl SourceKey for u32 {
    const V6: bool = false;
    fn family(shard: &mut Shard) -> (&mut Family<u32>, &mut Counters, &mut u32) {
        (&mut shard.v4, &mut shard.counters, &mut shard.next_gen)
    }
    fn ip(self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(self))
    }
}

impl SourceKey for [u8; 16] {
    const V6: bool = true;
    fn family(shard: &mut Shard) -> (&mut Family<[u8; 16]>, &mut Counters, &mut u32) {
        (&mut shard.v6, &mut shard.counters, &mut shard.next_gen)
    }
    fn ip(self) -> IpAddr {
        IpAddr::V6(Ipv6Addr::from(self))
    }
}

/// One sticky entry, source -> host, in its slab slot: 32 bytes for IPv4, 48 for IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Slot<K> {
    pub(super) key: K,
    /// Changes whenever the entry is created, moved or revived from idle, so that a
    /// lease of an older generation never counts against this one.
    pub(super) gen: u32,
    pub(super) host: BackendId,
    /// Live leases, [`IDLE`] | release time, or [`FREE`].
    pub(super) state: u64,
    /// Idle list links while idle; `next` links the free list while free.
    prev: u32,
    next: u32,
}

impl<K> Slot<K> {
    pub(super) fn is_idle(&self) -> bool {
        self.state & IDLE != 0
    }

    /// The release time (nanoseconds), meaningful only while idle.
    pub(super) fn released_at(&self) -> u64 {
        self.state & !IDLE
    }
}

/// Counters of one shard, summed by [`StickyStats`](super::StickyStats).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Counters {
    pub(super) hits: u64,
    pub(super) misses: u64,
    pub(super) evictions: u64,
    pub(super) expired: u64,
    pub(super) dropped: u64,
    pub(super) unrecorded: u64,
}

/// The entries of one address family in one shard. `hash` arguments hash a key with the
/// table's hasher; every entry is in the index under the hash of its key.
pub(super) struct Family<K> {
    index: HashTable<u32>,
    slots: Vec<Slot<K>>,
    free: u32,
    idle_head: u32,
    idle_tail: u32,
    len: usize,
}

impl<K: SourceKey> Family<K> {
    pub(super) fn new() -> Self {
        Family {
            index: HashTable::new(),
            slots: Vec::new(),
            free: NIL,
            idle_head: NIL,
            idle_tail: NIL,
            len: 0,
        }
    }

    /// Reserves slots for `entries` entries and an index for twice as many (see the
    /// module docs: at most half full, hashbrown never reallocates).
    pub(super) fn reserve(&mut self, entries: usize, hash: &impl Fn(&K) -> u64) {
        let slots = &self.slots;
        self.index
            .reserve(entries.saturating_mul(2), |&i| hash(&slots[i as usize].key));
        self.slots
            .reserve_exact(entries.saturating_sub(self.slots.len()));
    }

    /// Whether nothing was reserved yet (IPv6 families are reserved on first use).
    pub(super) fn is_unreserved(&self) -> bool {
        self.slots.capacity() == 0
    }

    /// The slot of `key`'s entry.
    pub(super) fn find(&self, hash: u64, key: K) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(hash, |&i| slots[i as usize].key == key)
            .copied()
    }

    /// The slot of the entry a lease token points at: same hash, same generation.
    pub(super) fn find_gen(&self, hash: u64, gen: u32) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(hash, |&i| slots[i as usize].gen == gen)
            .copied()
    }

    pub(super) fn slot(&self, i: u32) -> &Slot<K> {
        &self.slots[i as usize]
    }

    pub(super) fn slot_mut(&mut self, i: u32) -> &mut Slot<K> {
        &mut self.slots[i as usize]
    }

    /// Adds a new entry with one live lease. The key must not be present.
    pub(super) fn insert(
        &mut self,
        hash: u64,
        key: K,
        gen: u32,
        host: BackendId,
        rehash: &impl Fn(&K) -> u64,
    ) {
        let slot = Slot {
            key,
            gen,
            host,
            state: 1,
            prev: NIL,
            next: NIL,
        };
        let i = if self.free != NIL {
            let i = self.free;
            self.free = self.slots[i as usize].next;
            self.slots[i as usize] = slot;
            i
        } else {
            // Grows only past the reservation: a shard far above its even share.
            self.slots.push(slot);
            (self.slots.len() - 1) as u32
        };
        let slots = &self.slots;
        self.index
            .insert_unique(hash, i, |&j| rehash(&slots[j as usize].key));
        self.len += 1;
    }

    /// Removes the entry in slot `i` (`hash` is its key's) and returns it.
    pub(super) fn remove(&mut self, hash: u64, i: u32) -> Slot<K> {
        if let Ok(found) = self.index.find_entry(hash, |&j| j == i) {
            found.remove();
        }
        if self.slots[i as usize].is_idle() {
            self.unlink(i);
        }
        let gone = self.slots[i as usize];
        let slot = &mut self.slots[i as usize];
        slot.state = FREE;
        slot.next = self.free;
        self.free = i;
        self.len -= 1;
        gone
    }

    /// Gives slot `i` a new generation, host and one live lease (from idle or live).
    pub(super) fn renew(&mut self, i: u32, gen: u32, host: BackendId) {
        if self.slots[i as usize].is_idle() {
            self.unlink(i);
        }
        let slot = &mut self.slots[i as usize];
        slot.gen = gen;
        slot.host = host;
        slot.state = 1;
    }

    /// Marks the entry in slot `i` idle since `now` and appends it to the idle list.
    pub(super) fn make_idle(&mut self, i: u32, now: u64) {
        let tail = self.idle_tail;
        let slot = &mut self.slots[i as usize];
        slot.state = IDLE | now;
        slot.prev = tail;
        slot.next = NIL;
        if tail == NIL {
            self.idle_head = i;
        } else {
            self.slots[tail as usize].next = i;
        }
        self.idle_tail = i;
    }

    fn unlink(&mut self, i: u32) {
        let Slot { prev, next, .. } = self.slots[i as usize];
        if prev == NIL {
            self.idle_head = next;
        } else {
            self.slots[prev as usize].next = next;
        }
        if next == NIL {
            self.idle_tail = prev;
        } else {
            self.slots[next as usize].prev = prev;
        }
    }

    /// The release time of the oldest idle entry.
    pub(super) fn oldest_idle(&self) -> Option<u64> {
        (self.idle_head != NIL).then(|| self.slots[self.idle_head as usize].released_at())
    }

    /// Removes the oldest idle entry.
    pub(super) fn pop_oldest_idle(&mut self, hash: &impl Fn(&K) -> u64) -> Option<Slot<K>> {
        let i = self.idle_head;
        if i == NIL {
            return None;
        }
        let h = hash(&self.slots[i as usize].key);
        Some(self.remove(h, i))
    }

    /// Entries stored.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Bytes allocated by the index and the slots.
    pub(super) fn allocation_size(&self) -> usize {
        self.index.allocation_size() + self.slots.capacity() * std::mem::size_of::<Slot<K>>()
    }
}

/// One shard: both families, the generation counter and the counters.
pub(super) struct Shard {
    v4: Family<u32>,
    v6: Family<[u8; 16]>,
    next_gen: u32,
    pub(super) counters: Counters,
}

/// An entry removed by [`Shard::pop_oldest_idle`], for logs.
pub(super) struct Evicted {
    pub(super) source: IpAddr,
    pub(super) host: BackendId,
    pub(super) released_at: u64,
}

impl Shard {
    pub(super) fn new() -> Self {
        Shard {
            v4: Family::new(),
            v6: Family::new(),
            next_gen: 0,
            counters: Counters::default(),
        }
    }

    pub(super) fn v4(&mut self) -> &mut Family<u32> {
        &mut self.v4
    }

    pub(super) fn v6(&mut self) -> &mut Family<[u8; 16]> {
        &mut self.v6
    }

    /// The release time of this shard's oldest idle entry, either family.
    pub(super) fn oldest_idle(&self) -> Option<u64> {
        match (self.v4.oldest_idle(), self.v6.oldest_idle()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Removes this shard's oldest idle entry (IPv4 first on a tie).
    pub(super) fn pop_oldest_idle(
        &mut self,
        h4: &impl Fn(&u32) -> u64,
        h6: &impl Fn(&[u8; 16]) -> u64,
    ) -> Option<Evicted> {
        let take_v4 = match (self.v4.oldest_idle(), self.v6.oldest_idle()) {
            (Some(a), Some(b)) => a <= b,
            (a, _) => a.is_some(),
        };
        if take_v4 {
            self.v4.pop_oldest_idle(h4).map(|e| Evicted {
                source: e.key.ip(),
                host: e.host,
                released_at: e.released_at(),
            })
        } else {
            self.v6.pop_oldest_idle(h6).map(|e| Evicted {
                source: e.key.ip(),
                host: e.host,
                released_at: e.released_at(),
            })
        }
    }

    /// Entries in both families.
    pub(super) fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Bytes allocated by both families.
    pub(super) fn allocation_size(&self) -> usize {
        self.v4.allocation_size() + self.v6.allocation_size()
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

    fn h(k: &u32) -> u64 {
        u64::from(*k).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    #[test]
    fn idle_list_keeps_release_order_through_revivals_and_removals() {
        let mut f = Family::<u32>::new();
        f.reserve(4, &h);
        let host = BackendId::from_raw(7);
        for k in 0..4 {
            f.insert(h(&k), k, k, host, &h);
        }
        // Idle in the order 2, 0, 3, 1, at times 10..13.
        for (t, k) in [2u32, 0, 3, 1].into_iter().enumerate() {
            let i = f.find(h(&k), k).unwrap();
            f.make_idle(i, 10 + t as u64);
        }
        // 0 is revived (leaves the list), 3 is removed outright.
        let i0 = f.find(h(&0), 0).unwrap();
        f.renew(i0, 50, host);
        let i3 = f.find(h(&3), 3).unwrap();
        assert_eq!(f.remove(h(&3), i3).key, 3);
        assert_eq!(f.oldest_idle(), Some(10));
        assert_eq!(f.pop_oldest_idle(&h).map(|e| e.key), Some(2));
        assert_eq!(f.pop_oldest_idle(&h).map(|e| e.key), Some(1));
        assert_eq!(f.pop_oldest_idle(&h), None);
        assert_eq!(f.len(), 1);
        assert_eq!(f.find_gen(h(&0), 50), Some(i0));
        assert_eq!(f.find(h(&2), 2), None);
        // Freed slots are reused: no growth past the reservation.
        let cap = f.slots.capacity();
        for k in 10..13 {
            f.insert(h(&k), k, k, host, &h);
        }
        assert_eq!((f.slots.capacity(), f.len()), (cap, 4));
    }
}
