//! One shard's maps: an IPv4 and an IPv6 family of entries, the shard's generation
//! counter and its counters, all behind the shard's lock
//! ([`ShardCell`](super::cell::ShardCell)).
//!
//! A family stores its entries in a fixed slab of slots ([`Slot`]) and finds them
//! through a `hashbrown` [`HashTable`] of slot indices (4 bytes a bucket). The slab never
//! moves or grows, so that a lease token can name a slot by its index and count a lease
//! on it without the lock; a shard whose slab is full (its share plus 7 standard
//! deviations, see [`per_shard_reserve`](super::table::per_shard_reserve)) places the
//! client without an entry.
//!
//! Each key has two *home* slots, functions of its hash ([`homes`]): a slot and the
//! next one. A new entry takes the first free one (the free list is doubly linked, so
//! any free slot leaves it in O(1)), any free slot otherwise. The lock-free lookup
//! reads only the homes: with the slab at most 80 % full (the share over the share
//! plus 7 deviations), most entries live at home, and the others are found through the
//! index under the lock.
//!
//! The index is reserved at twice the entries it will hold,
//! for a reason measured, not guessed: a swiss table leaves tombstones when entries are
//! removed, and once they use up its spare room it rehashes *in place* only if it is at
//! most half full; above that it allocates a table twice as large. At 61 % load,
//! hashbrown 0.15 did so after about 2 700 inserts and removals (1024 buckets, 625
//! entries), which would put allocations on the pick path and double the memory. At or
//! under half load it never grew in 3 million operations. Small index buckets make that
//! affordable.
//!
//! Idle entries (no live lease) form a doubly linked list through their slots, in the
//! order they went idle, which is release-time order because the table reads its clock
//! under the shard lock: the oldest idle entry is the head, found, unlinked and evicted
//! in O(1).
//!
//! Everything here runs under the shard's lock; nothing here locks, reads the clock or
//! logs. [`SourceTable`](super::table::SourceTable) decides, a shard stores.

use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use hashbrown::HashTable;
use lb_core::BackendId;

use super::slot::{Slot, SourceKey, Word, NIL};

/// Counters of one shard, summed by [`StickyStats`](super::StickyStats).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Counters {
    pub(super) misses: u64,
    pub(super) evictions: u64,
    pub(super) expired: u64,
    pub(super) dropped: u64,
    pub(super) unrecorded: u64,
}

/// The entries of one address family in one shard. `hash` arguments hash a key with the
/// table's hasher; every entry is in the index under the hash of its key.
pub(super) struct Family<K: SourceKey> {
    index: HashTable<u32>,
    pub(super) slots: Arc<[Slot<K>]>,
    free: u32,
    idle_head: u32,
    idle_tail: u32,
    len: usize,
}

/// An entry removed from its family, for counters and logs.
pub(super) struct Removed {
    pub(super) source: IpAddr,
    pub(super) host: BackendId,
}

impl<K: SourceKey> Family<K> {
    pub(super) fn new() -> Self {
        Family {
            index: HashTable::new(),
            slots: Arc::from([]),
            free: NIL,
            idle_head: NIL,
            idle_tail: NIL,
            len: 0,
        }
    }

    /// Allocates `entries` slots and an index for twice as many (see the module docs:
    /// at most half full, hashbrown never reallocates). Only on an empty family.
    pub(super) fn reserve(&mut self, entries: usize, hash: &impl Fn(&K) -> u64) {
        let entries = entries.min(NIL as usize);
        self.slots = (0..entries).map(|_| Slot::default()).collect();
        for i in 0..entries as u32 {
            let next = if i as usize + 1 == entries {
                NIL
            } else {
                i + 1
            };
            self.slots[i as usize].set_links(i.checked_sub(1).unwrap_or(NIL), next);
        }
        self.free = if entries == 0 { NIL } else { 0 };
        let slots = &self.slots;
        self.index.reserve(entries.saturating_mul(2), |&i| {
            hash(&slots[i as usize].key())
        });
    }

    /// The slot of `key`'s entry.
    pub(super) fn find(&self, hash: u64, key: K) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(hash, |&i| slots[i as usize].key() == key)
            .copied()
    }

    pub(super) fn slot(&self, i: u32) -> &Slot<K> {
        &self.slots[i as usize]
    }

    /// Adds a new entry with lease word `word` and returns its slot, or `None` when the
    /// slab is full. The key must not be present.
    pub(super) fn insert(
        &mut self,
        hash: u64,
        key: K,
        host: BackendId,
        word: u64,
        rehash: &impl Fn(&K) -> u64,
    ) -> Option<u32> {
        if self.free == NIL {
            return None;
        }
        // A slot outside the index has a free word (entries are live or idle).
        let i = homes(hash, self.slots.len())
            .into_iter()
            .find(|&h| self.slots[h].word() == Word::Free)
            .map_or(self.free, |h| h as u32);
        let (prev, next) = (self.slots[i as usize].prev(), self.slots[i as usize].next());
        self.unlink_from(prev, next, List::Free);
        self.slots[i as usize].fill(key, host, word);
        let slots = &self.slots;
        self.index
            .insert_unique(hash, i, |&j| rehash(&slots[j as usize].key()));
        self.len += 1;
        Some(i)
    }

    /// Removes the entry in slot `i` (`hash` is its key's) and frees the slot. Its lease
    /// word becomes free: lock-free paths holding its generation see it and give up.
    pub(super) fn remove(&mut self, hash: u64, i: u32) -> Removed {
        if let Ok(found) = self.index.find_entry(hash, |&j| j == i) {
            found.remove();
        }
        // A swap, not a load and a store: a lock-free count may land in between, and
        // the word must end free whatever it was.
        let word = Word::decode(self.slots[i as usize].lease.swap(0, Relaxed));
        if let Word::Idle { .. } = word {
            self.unlink(i);
        }
        // To the free list's head, whose `prev` it becomes.
        let slot = &self.slots[i as usize];
        let gone = Removed {
            source: slot.key().ip(),
            host: slot.host(),
        };
        self.slots[i as usize].set_links(NIL, self.free);
        if self.free != NIL {
            self.slots[self.free as usize].set_prev(i);
        }
        self.free = i;
        self.len -= 1;
        gone
    }

    /// Gives slot `i`, live or idle, a new host and lease word (a new generation).
    pub(super) fn renew(&mut self, i: u32, host: BackendId, word: u64) {
        if matches!(self.slots[i as usize].word(), Word::Idle { .. }) {
            self.unlink(i);
        }
        self.slots[i as usize].renew(host, word);
    }

    /// Appends slot `i`, whose lease word was just made idle, to the idle list.
    pub(super) fn link_idle(&mut self, i: u32) {
        let tail = self.idle_tail;
        self.slots[i as usize].set_links(tail, NIL);
        if tail == NIL {
            self.idle_head = i;
        } else {
            self.slots[tail as usize].set_next(i);
        }
        self.idle_tail = i;
    }

    /// Takes slot `i` out of the idle list.
    fn unlink(&mut self, i: u32) {
        let (prev, next) = (self.slots[i as usize].prev(), self.slots[i as usize].next());
        self.unlink_from(prev, next, List::Idle);
    }

    /// Joins the neighbours `prev` and `next` of a slot leaving `list`.
    fn unlink_from(&mut self, prev: u32, next: u32, list: List) {
        if prev != NIL {
            self.slots[prev as usize].set_next(next);
        } else if list == List::Idle {
            self.idle_head = next;
        } else {
            self.free = next;
        }
        if next != NIL {
            self.slots[next as usize].set_prev(prev);
        } else if list == List::Idle {
            self.idle_tail = prev;
        }
    }

    /// The release time of the oldest idle entry.
    pub(super) fn oldest_idle(&self) -> Option<u64> {
        if self.idle_head == NIL {
            return None;
        }
        match self.slots[self.idle_head as usize].word() {
            Word::Idle { since } => Some(since),
            _ => None,
        }
    }

    /// Removes the oldest idle entry.
    pub(super) fn pop_oldest_idle(&mut self, hash: &impl Fn(&K) -> u64) -> Option<Removed> {
        let i = self.idle_head;
        if i == NIL {
            return None;
        }
        let h = hash(&self.slots[i as usize].key());
        Some(self.remove(h, i))
    }

    /// Entries stored.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Bytes allocated by the index and the slab (with its `Arc` counts).
    pub(super) fn allocation_size(&self) -> usize {
        self.index.allocation_size()
            + 2 * std::mem::size_of::<usize>()
            + std::mem::size_of_val::<[Slot<K>]>(&self.slots)
    }
}

/// The lists threaded through slots (the free list has no tail).
#[derive(Clone, Copy, PartialEq, Eq)]
enum List {
    Idle,
    Free,
}

/// The home slots of a hash in a slab of `len` (at least 1) slots: the low 32 bits
/// scaled to `len`, and the next slot (often on the same cache line). The shard is
/// chosen by bits 24..56, mostly their upper ones, so these bits vary within a shard.
pub(super) fn homes(hash: u64, len: usize) -> [usize; 2] {
    let first = (((hash & u64::from(u32::MAX)) * len as u64) >> 32) as usize;
    [first, if first + 1 == len { 0 } else { first + 1 }]
}

/// One shard's maps: both families, the generation counter and the counters.
pub(super) struct Shard {
    pub(super) v4: Family<u32>,
    pub(super) v6: Family<[u8; 16]>,
    pub(super) next_gen: u32,
    pub(super) counters: Counters,
}

impl Shard {
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
    ) -> Option<Removed> {
        let take_v4 = match (self.v4.oldest_idle(), self.v6.oldest_idle()) {
            (Some(a), Some(b)) => a <= b,
            (a, _) => a.is_some(),
        };
        if take_v4 {
            self.v4.pop_oldest_idle(h4)
        } else {
            self.v6.pop_oldest_idle(h6)
        }
    }

    /// Entries in both families.
    pub(super) fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(k: &u32) -> u64 {
        u64::from(*k).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    fn idle(f: &mut Family<u32>, k: u32, t: u64) {
        let i = f.find(h(&k), k).unwrap();
        f.slot(i).lease.store(Word::idle(t), Relaxed);
        f.link_idle(i);
    }

    #[test]
    fn idle_list_keeps_release_order_through_revivals_and_removals() {
        let mut f = Family::<u32>::new();
        f.reserve(4, &h);
        let host = BackendId::from_raw(7);
        for k in 0..4 {
            assert!(f.insert(h(&k), k, host, Word::live(k, 1), &h).is_some());
        }
        assert_eq!(f.insert(h(&9), 9, host, Word::live(9, 1), &h), None, "full");
        // Idle in the order 2, 0, 3, 1, at times 10..13.
        for (t, k) in [2u32, 0, 3, 1].into_iter().enumerate() {
            idle(&mut f, k, 10 + t as u64);
        }
        // 0 is revived (leaves the list), 3 is removed outright.
        let i0 = f.find(h(&0), 0).unwrap();
        f.renew(i0, host, Word::live(50, 1));
        let i3 = f.find(h(&3), 3).unwrap();
        assert_eq!(f.remove(h(&3), i3).source, IpAddr::from([0, 0, 0, 3]));
        assert_eq!(f.slot(i3).word(), Word::Free);
        assert_eq!(f.oldest_idle(), Some(10));
        assert_eq!(
            f.pop_oldest_idle(&h).map(|e| e.source),
            Some([0, 0, 0, 2].into())
        );
        assert_eq!(
            f.pop_oldest_idle(&h).map(|e| e.source),
            Some([0, 0, 0, 1].into())
        );
        assert!(f.pop_oldest_idle(&h).is_none());
        assert_eq!(f.len(), 1);
        assert_eq!(f.slot(i0).word(), Word::Live { gen: 50, count: 1 });
        assert_eq!(f.find(h(&2), 2), None);
        // Freed slots are reused.
        for k in 10..13 {
            assert!(f.insert(h(&k), k, host, Word::live(k, 1), &h).is_some());
        }
        assert_eq!(f.len(), 4);
    }
}
