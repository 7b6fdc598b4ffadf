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
pub(in super::super) struct Hungry {
    pub(in super::super) rank: u32,
    pub(in super::super) offset: u64,
    /// `skip^-1 mod M`.
    pub(in super::super) inverse: u64,
    pub(in super::super) weight: u64,
    /// Slots it still takes: the quotas left sum to the number of empty slots.
    pub(in super::super) left: u32,
}

/// Matches the `empties` (distinct slots below `m`) to the `hungry` hosts (by rank, with
/// quotas left summing to `empties.len()`); returns `(slot, rank)` pairs, one per slot.
pub(in super::super) fn settle(
    hungry: &[Hungry],
    empties: &[u32],
    m: u64,
    w_max: u64,
) -> Vec<(u32, u32)> {
    let modulus = Modulus::new(m);
    // The key of host `h` for slot `x`: the round it would look at `x`, then its rank.
    let key = |h: &Hungry, x: u64| -> u128 {
        let mut from_offset = x + m - h.offset;
        if from_offset >= m {
            from_offset -= m;
        }
        let position = modulus.reduce(from_offset * h.inverse);
        let round = if h.weight == w_max {
            position
        } else {
            position * w_max / h.weight
        };
        u128::from(round) << 32 | u128::from(h.rank)
    };
    // Each host's held proposals (a max-heap on key, of indexes into `empties`) and the
    // key a new proposal must beat: its worst held one once it holds `left`.
    let mut held: Vec<BinaryHeap<(u128, u32)>> = hungry.iter().map(|_| BinaryHeap::new()).collect();
    let mut bar = vec![u128::MAX; hungry.len()];
    let mut free: Vec<u32> = (0..empties.len() as u32).collect();
    while let Some(i) = free.pop() {
        let x = u64::from(empties[i as usize]);
        let mut best: Option<(u128, usize)> = None;
        for (j, h) in hungry.iter().enumerate() {
            let k = key(h, x);
            if k < bar[j] && best.is_none_or(|(b, _)| k < b) {
                best = Some((k, j));
            }
        }
        // A host turns a slot away only while it holds `left` better ones, and the
        // quotas left add up to the empty slots: some host always still accepts.
        let Some((k, j)) = best else { continue };
        let heap = &mut held[j];
        heap.push((k, i));
        if heap.len() > hungry[j].left as usize {
            if let Some((_, out)) = heap.pop() {
                free.push(out);
            }
        }
        if heap.len() == hungry[j].left as usize {
            bar[j] = heap.peek().map_or(u128::MAX, |&(k, _)| k);
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
