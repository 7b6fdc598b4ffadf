//! The end of a rendezvous fill: the last empty slots matched to the hosts that still
//! have quota, by deferred acceptance (Gale and Shapley) on the fill's own keys.
//!
//! When the fill stops looking, every host with quota left ("hungry") has looked at all
//! the slots of its permutation before its cursor, and every slot still empty lies
//! after it (a hungry host takes every empty slot it looks at). The fill from there on
//! takes pairs (host, slot) in increasing key `(round, rank)`; with one key shared by
//! both sides, that order yields the unique stable matching of the remaining slots and
//! hosts, which deferred acceptance computes directly: each empty slot proposes to the
//! hungry host that would reach it first; a host holds its best `left` proposals and
//! turns the worst away, and a turned-away slot proposes to the next host that would
//! still accept it. Where a slot sits in a host's permutation is one multiplication
//! (`(x - offset) * skip^-1 mod M`), so a proposal costs one pass over the hungry hosts
//! instead of `M / E` looks each.

use std::collections::BinaryHeap;

use super::super::sieve::Modulus;

/// A host that still has quota when the fill settles.
pub(super) struct Hungry {
    pub(super) rank: u32,
    pub(super) offset: u64,
    /// `skip^-1 mod M`.
    pub(super) inverse: u64,
    pub(super) weight: u64,
    /// Slots it still takes: the quotas left sum to the number of empty slots.
    pub(super) left: u32,
}

/// The most hungry hosts [`settle`] takes: their index in rank order fits in a key's
/// low bits.
pub(super) const MAX_HUNGRY: usize = 1 << 23;

/// Matches the `empties` (distinct slots below `m`) to the `hungry` hosts (by rank, at
/// most [`MAX_HUNGRY`], with quotas left summing to `empties.len()`); returns
/// `(slot, rank)` pairs, one per slot.
pub(super) fn settle(hungry: &[Hungry], empties: &[u32], m: u64, w_max: u64) -> Vec<(u32, u32)> {
    let modulus = Modulus::new(m);
    let equal = hungry.iter().all(|h| h.weight == w_max);
    // The key of the `j`-th hungry host `h` for slot `x`: the round it would look at
    // `x` (below `M * w_max / w < 2^40`), then `j` (below `2^23`), which orders as the
    // rank does.
    let key = |j: usize, h: &Hungry, x: u64, equal: bool| -> u64 {
        let mut from_offset = x + m - h.offset;
        if from_offset >= m {
            from_offset -= m;
        }
        let position = modulus.reduce(from_offset * h.inverse);
        let round = if equal {
            position
        } else {
            position * w_max / h.weight
        };
        round << 23 | j as u64
    };
    // Each host's held proposals (a max-heap on key, of indexes into `empties`) and the
    // key a new proposal must beat: its worst held one once it holds `left`.
    let mut held: Vec<BinaryHeap<(u64, u32)>> = hungry.iter().map(|_| BinaryHeap::new()).collect();
    let mut bar = vec![u64::MAX; hungry.len()];
    let mut free: Vec<u32> = (0..empties.len() as u32).collect();
    while let Some(i) = free.pop() {
        let x = u64::from(empties[i as usize]);
        let (mut best, mut to) = (u64::MAX, usize::MAX);
        // One pass per weighting, so that the equal-weights pass has no division.
        if equal {
            for (j, (h, &b)) in hungry.iter().zip(&bar).enumerate() {
                let k = key(j, h, x, true);
                if k < b && k < best {
                    (best, to) = (k, j);
                }
            }
        } else {
            for (j, (h, &b)) in hungry.iter().zip(&bar).enumerate() {
                let k = key(j, h, x, false);
                if k < b && k < best {
                    (best, to) = (k, j);
                }
            }
        }
        // A host turns a slot away only while it holds `left` better ones, and the
        // quotas left add up to the empty slots: some host always still accepts.
        let Some(heap) = held.get_mut(to) else {
            continue;
        };
        heap.push((best, i));
        let left = hungry[to].left as usize;
        if heap.len() > left {
            if let Some((_, out)) = heap.pop() {
                free.push(out);
            }
        }
        if heap.len() == left {
            bar[to] = heap.peek().map_or(u64::MAX, |&(k, _)| k);
        }
    }
    held.iter()
        .zip(hungry)
        .flat_map(|(heap, h)| {
            heap.iter()
                .map(move |&(_, i)| (empties[i as usize], h.rank))
        })
        .collect()
}
