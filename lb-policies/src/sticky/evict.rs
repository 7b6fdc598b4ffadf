//! Making room and removing expired entries: eviction of the oldest idle entry when the
//! table is full, and the sweep.
//!
//! Both look only at idle entries (no live lease), which no lock-free path touches:
//! lock-free steps only move between live words of one generation, and an idle word
//! becomes live again only under the lock. So an entry in use is never evicted, and a
//! lease ending concurrently either came first (the entry was then idle and its
//! generation gone: the late release finds another word and counts nothing) or finds
//! the entry live and counts it down.

use std::sync::atomic::Ordering;

use lb_core::Clock;
use tracing::debug;

use super::table::SourceTable;

/// How many times an eviction looks for the oldest idle entry again when another thread
/// changed it between the search and the removal. Past that, the client is placed
/// without an entry: contention on a full table must not spin.
const EVICT_ATTEMPTS: usize = 8;

impl<C: Clock> SourceTable<C> {
    /// Removes the oldest idle entry of the whole table, keeping its slot reserved for
    /// the caller. `false` when every entry has live leases.
    pub(super) fn evict_one(&self) -> bool {
        let h4 = |k: &u32| self.hash(k);
        let h6 = |k: &[u8; 16]| self.hash(k);
        for _ in 0..EVICT_ATTEMPTS {
            // The oldest release time; among equal ones, the fullest shard. Without
            // that tie-break, entries released in the same clock tick would all be
            // taken from the first shard while new ones land everywhere, and shards
            // would outgrow their reservations.
            let mut oldest: Option<(u64, usize, usize)> = None;
            for (i, cell) in self.shards.iter().enumerate() {
                let shard = cell.lock.lock();
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
            let mut shard = self.shards[i].lock.lock();
            if shard.oldest_idle() != Some(t) {
                continue; // changed meanwhile: search again
            }
            let Some(gone) = shard.pop_oldest_idle(&h4, &h6) else {
                continue;
            };
            let now = self.now();
            let expired = self.is_expired(t, now);
            if expired {
                shard.counters.expired += 1;
            } else {
                shard.counters.evictions += 1;
            }
            drop(shard);
            let idle_ns = now.saturating_sub(t);
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
        for cell in self.shards.iter() {
            let mut shard = cell.lock.lock();
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
}
