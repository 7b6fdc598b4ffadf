//! A shard as the table holds it: the lock over its maps, its hit counter, and its
//! slabs shared with the lock-free paths.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use super::shard::{Counters, Family, Shard};
use super::slot::{Slot, SourceKey};

/// A shard: the lock over its maps, and its slabs for the lock-free lease paths (the
/// same allocations the families hold).
pub(super) struct ShardCell {
    pub(super) lock: Mutex<Shard>,
    /// Picks that found a usable entry, with or without the lock.
    pub(super) hits: AtomicU64,
    pub(super) v4: Arc<[Slot<u32>]>,
    /// Set once, under the lock, when the shard's IPv6 family is reserved.
    pub(super) v6: OnceLock<Arc<[Slot<[u8; 16]>]>>,
}

impl ShardCell {
    /// A shard with `per_shard` IPv4 slots (and IPv6 ones if `ipv6`).
    pub(super) fn new(
        per_shard: usize,
        ipv6: bool,
        h4: &impl Fn(&u32) -> u64,
        h6: &impl Fn(&[u8; 16]) -> u64,
    ) -> Self {
        let mut shard = Shard {
            v4: Family::new(),
            v6: Family::new(),
            next_gen: 0,
            counters: Counters::default(),
        };
        shard.v4.reserve(per_shard, h4);
        let v4 = shard.v4.slots.clone();
        let v6 = OnceLock::new();
        if ipv6 {
            shard.v6.reserve(per_shard, h6);
            let _ = v6.set(shard.v6.slots.clone());
        }
        ShardCell {
            lock: Mutex::new(shard),
            hits: AtomicU64::new(0),
            v4,
            v6,
        }
    }

    /// Reserves `K`'s family on its first use (IPv6), under the lock, and publishes its
    /// slab to the lock-free paths.
    pub(super) fn ensure_reserved<K: SourceKey>(
        &self,
        family: &mut Family<K>,
        per_shard: usize,
        hash: &impl Fn(&K) -> u64,
    ) {
        if family.slots.is_empty() {
            family.reserve(per_shard, hash);
        }
        if K::slots(self).is_none() {
            K::publish(self, &family.slots);
        }
    }

    /// Bytes allocated by both families.
    pub(super) fn allocation_size(&self) -> usize {
        let shard = self.lock.lock();
        shard.v4.allocation_size() + shard.v6.allocation_size()
    }
}
