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
    // Where slot `x` comes in host `h`'s permutation, `(x - offset) * skip^-1 mod M`, is
    // `(x * inverse + shift) mod M` with `shift = (M - offset) * inverse mod M`: one
    // multiply-add (below `M^2 + M < 2^52`) and one reduction per host and slot.
    let scale: Vec<(u64, u64)> = hungry
        .iter()
        .map(|h| (h.inverse, modulus.reduce((m - h.offset) % m * h.inverse)))
        .collect();
    let position = |&(inverse, shift): &(u64, u64), x: u64| modulus.reduce(x * inverse + shift);
    // The key of the `j`-th hungry host for slot `x`: the round it would look at `x`
    // (below `M * w_max / w < 2^40`), then `j` (below `2^23`), which orders as the rank
    // does. Keys are distinct, and the best one names its host in its low bits; a host
    // that would turn the slot away counts as `u64::MAX`.
    let accepted = |j: usize, round: u64, bar: u64| {
        let k = round << 23 | j as u64;
        if k < bar {
            k
        } else {
            u64::MAX
        }
    };
    // Each host's held proposals (a max-heap on key, of indexes into `empties`) and the
    // key a new proposal must beat: its worst held one once it holds `left`.
    let mut held: Vec<BinaryHeap<(u64, u32)>> = hungry.iter().map(|_| BinaryHeap::new()).collect();
    let mut bar = vec![u64::MAX; hungry.len()];
    let mut free: Vec<u32> = (0..empties.len() as u32).collect();
    while let Some(i) = free.pop() {
        let x = u64::from(empties[i as usize]);
        // The smallest key a host still accepts, without a branch per host. One pass
        // per weighting, so that the equal-weights pass has no division.
        let best = if equal {
            (scale.iter().zip(&bar).enumerate())
                .map(|(j, (s, &b))| accepted(j, position(s, x), b))
                .fold(u64::MAX, u64::min)
        } else {
            (scale.iter().zip(&bar).zip(hungry).enumerate())
                .map(|(j, ((s, &b), h))| accepted(j, position(s, x) * w_max / h.weight, b))
                .fold(u64::MAX, u64::min)
        };
        // A host turns a slot away only while it holds `left` better ones, and the
        // quotas left add up to the empty slots: some host always still accepts, so
        // `best` is a key.
        let to = (best & (MAX_HUNGRY as u64 - 1)) as usize;
        let Some(heap) = held.get_mut(to).filter(|_| best != u64::MAX) else {
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
