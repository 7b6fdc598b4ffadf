//! Building the lookup table: its size, each host's permutation, and two fills (Maglev's
//! turns up to 65 537 slots, rendezvous with capacities beyond).
//!
//! Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load Balancer",
//! NSDI 2016, section 3.4. The table has a prime number `M` of slots. Host `i` prefers
//! the slots `offset_i, offset_i + skip_i, offset_i + 2 skip_i, ...` (mod `M`), a full
//! permutation because `M` is prime and `0 < skip_i < M`; `offset_i` and `skip_i` come
//! from two hashes of the host's stable [`BackendId`], never from its position.
//!
//! Weights: host `i` gets exactly its quota of slots, `M * w_i / W` rounded by largest
//! remainder (Hamilton), so every share is within one slot of its ideal, whichever fill.
//!
//! Hosts are ranked by id before anything else, so the table depends on the set of
//! hosts and weights, never on their configuration order.
//!
//! # Tables up to 65 537 slots: Maglev's turns
//!
//! Hosts take turns claiming their next preferred empty slot until the table is full.
//! Turns are spread evenly over the fill, in proportion to each host's quota (see
//! `turn_order`), which for equal weights is Maglev's round-robin. The fill gives
//! exactly the table of plain Maglev probing (tested against it), only faster: the probe
//! cursor stays in a register, turns are generated round by round instead of listed
//! (`turns`), and the last `M / 8N` claims, where probing is slowest, come from a
//! per-host sieve of the empty slots' positions (`sieve`). Measured at N = 8
//! (M = 65 537): 1.17 ms before these, 0.85 ms after (criterion medians of
//! `rebuild/consistent/8`, same run; N = 2: 0.69 -> 0.38 ms).
//!
//! # Larger tables: rendezvous with capacities
//!
//! Maglev's fill costs about `M ln M` probes and moves more keys on a membership change
//! as `N^2 / M` grows: 1024 hosts needed 4 194 319 slots to stay under 2/N (1.88/N)
//! and 145 ms to build. Larger tables are filled instead by `rendezvous`: hosts take
//! turns *looking* at the next slot of their permutation rather than claiming their
//! next empty one, so a slot goes to the first host with quota left to reach it. That
//! moves about half Maglev's excess, so the tables can be smaller (`6 N^2 <= M` rather
//! than `20 N^2`), and a table costs about 6 looks per slot, one write per slot and a
//! settling pass over the last few thousand empty slots.
//! Tables of 65 537 slots and fewer keep Maglev's fill, so that the default table of up
//! to 57 hosts maps every key where it always has.

use lb_core::{BackendId, Weight};

use sieve::Sieve;
#[cfg(test)]
use turns::turn_order;
use turns::Turns;

mod rendezvous;
mod sieve;
mod turns;

/// The largest table [`Consistent::with_table_size`](crate::Consistent::with_table_size)
/// accepts (32 MiB of 2-byte entries): the smallest prime `>= 2^24`.
pub(crate) const MAX_TABLE_SIZE: usize = 16_777_259;

/// The sizes chosen by default: the smallest primes `>= 2^16, 2^18, 1.25 * 2^20`.
pub(crate) const SIZE_STEPS: [usize; 3] = [65_537, 262_147, 1_310_723];

/// The largest table filled by Maglev's turns; larger ones are filled by
/// [`rendezvous`]. Tables of this size keep the mapping they had before the rendezvous
/// fill existed (`tests/consistent_golden.rs` pins one).
pub(crate) const MAGLEV_FILL_MAX: usize = SIZE_STEPS[0];

/// The default table size for `hosts` hosts: 65 537 (Maglev's fill) while
/// `20 N^2 <= M`, that is up to 57 hosts; beyond, the first of the larger
/// [`SIZE_STEPS`] with `6 N^2 <= M` (the rendezvous fill moves fewer keys on a change,
/// so it needs fewer slots per host), else the last: 262 147 up to 209 hosts, then
/// 1 310 723 (the smallest step that keeps N = 1024 under 1.9/N). Sizes move in
/// steps, not with every host: a change of size remaps (almost) every key, so it must
/// be rare. See the module docs of [`consistent`](crate::consistent).
pub(crate) fn table_size_for(hosts: usize) -> usize {
    let n = hosts as u64;
    if 20 * n * n <= MAGLEV_FILL_MAX as u64 {
        return MAGLEV_FILL_MAX;
    }
    SIZE_STEPS[1..]
        .iter()
        .copied()
        .find(|&m| 6 * n * n <= m as u64)
        .unwrap_or(SIZE_STEPS[SIZE_STEPS.len() - 1])
}

/// Whether `n` is prime (trial division: sizes are at most ~2^24, so at most ~700
/// steps, once per setting).
pub(crate) fn is_prime(n: u64) -> bool {
    if n < 4 {
        return n >= 2;
    }
    if n.is_multiple_of(2) || n.is_multiple_of(3) {
        return false;
    }
    let mut d = 5;
    while d * d <= n {
        if n.is_multiple_of(d) || n.is_multiple_of(d + 2) {
            return false;
        }
        d += 6;
    }
    true
}

/// A 64-bit finalizer (splitmix64 / Stafford's mix13): a bijection that spreads every
/// input bit over the output. Used for permutations and for probe rehashing.
#[inline]
pub(crate) const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `hash` scaled to `0..n` by a multiply (Lemire's fast range), no division.
#[inline(always)]
pub(crate) fn fastrange(hash: u64, n: usize) -> usize {
    ((u128::from(hash) * n as u128) >> 64) as usize
}

/// One entry of the table: a host's index in the snapshot. Two bytes while the table
/// has at most 65536 hosts, four beyond.
pub(crate) trait Entry: Copy + Default {
    fn from_index(index: usize) -> Self;
    fn index(self) -> usize;
}

impl Entry for u16 {
    #[inline]
    fn from_index(index: usize) -> Self {
        index as u16
    }
    #[inline]
    fn index(self) -> usize {
        self as usize
    }
}

impl Entry for u32 {
    #[inline]
    fn from_index(index: usize) -> Self {
        index as u32
    }
    #[inline]
    fn index(self) -> usize {
        self as usize
    }
}

/// The filled table: slot -> host index.
pub(crate) enum Slots {
    Narrow(Box<[u16]>),
    Wide(Box<[u32]>),
}

impl Slots {
    /// Builds the table of `size` slots (a prime) for hosts with these ids and weights,
    /// in snapshot order. No hosts give no slots, whatever `size`: there is nothing to
    /// fill them with.
    pub(crate) fn build(ids: &[BackendId], weights: &[Weight], size: usize) -> Slots {
        if ids.is_empty() {
            return Slots::Narrow(Box::default());
        }
        if ids.len() <= usize::from(u16::MAX) + 1 {
            Slots::Narrow(fill::<u16>(ids, weights, size))
        } else {
            Slots::Wide(fill::<u32>(ids, weights, size))
        }
    }

    /// The host index in slot `slot` (`slot < size`).
    #[inline]
    pub(crate) fn get(&self, slot: usize) -> usize {
        match self {
            Slots::Narrow(s) => s[slot].index(),
            Slots::Wide(s) => s[slot].index(),
        }
    }

    /// The host index in the slot a key hash falls in, slot `(hash * M) >> 64`.
    /// Scaled by the slice's own length, so one load gives both the bound and the
    /// multiplier.
    #[inline(always)]
    pub(crate) fn host_of(&self, hash: u64) -> usize {
        match self {
            Slots::Narrow(s) => s
                .get(fastrange(hash, s.len()))
                .map_or(usize::MAX, |&e| e.index()),
            Slots::Wide(s) => s
                .get(fastrange(hash, s.len()))
                .map_or(usize::MAX, |&e| e.index()),
        }
    }

    /// Bytes held by the table.
    pub(crate) fn bytes(&self) -> usize {
        match self {
            Slots::Narrow(s) => s.len() * 2,
            Slots::Wide(s) => s.len() * 4,
        }
    }
}

/// How many slots each host gets: `size * w_i / W`, rounded down, plus one for the
/// hosts with the largest remainders (ties to the lower rank). Indexed by rank.
fn quotas(weights: &[u64], size: usize) -> Vec<u64> {
    let total: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    let size = size as u128;
    let mut quota: Vec<u64> = weights
        .iter()
        .map(|&w| (size * u128::from(w) / total) as u64)
        .collect();
    let given: u64 = quota.iter().sum();
    let mut by_remainder: Vec<(u128, usize)> = weights
        .iter()
        .enumerate()
        .map(|(rank, &w)| ((size * u128::from(w)) % total, rank))
        .collect();
    by_remainder.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let missing = (size as u64 - given) as usize;
    for &(_, rank) in &by_remainder[..missing] {
        quota[rank] += 1;
    }
    quota
}

/// For fills too large for the `sieve`'s bitmaps: below this many empty slots, a
/// claim finds its host's next empty slot by computing where each empty slot sits in
/// the host's permutation, instead of probing, which costs about `M / empty` steps per
/// claim there. Same result (tested against plain probing).
const TAIL: usize = 64;

/// The inverse of `a` modulo the prime `m` (`0 < a < m`), by extended Euclid.
fn inverse_mod(a: u64, m: u64) -> u64 {
    let (mut r0, mut r1) = (i128::from(m), i128::from(a));
    let (mut t0, mut t1) = (0i128, 1i128);
    while r1 != 0 {
        let q = r0 / r1;
        (r0, r1) = (r1, r0 - q * r1);
        (t0, t1) = (t1, t0 - q * t1);
    }
    t0.rem_euclid(i128::from(m)) as u64
}

/// One host's permutation of the slots: `offset, offset + skip, ...` modulo `m`.
struct Permutation {
    offset: u64,
    skip: u64,
    /// `skip^-1 mod m`: slot `x` is at position `(x - offset) / skip`.
    inverse: u64,
    /// The next slot to try.
    cursor: u64,
}

impl Permutation {
    fn of(id: BackendId, m: u64) -> Self {
        let id = id.get();
        let offset = mix64(id ^ 0x6f66_6673_6574_2121) % m;
        let skip = if m > 1 {
            mix64(id ^ 0x736b_6970_2121_2121) % (m - 1) + 1
        } else {
            1
        };
        let inverse = if m > 1 { inverse_mod(skip, m) } else { 0 };
        Permutation {
            offset,
            skip,
            inverse,
            cursor: offset,
        }
    }

    /// Where slot `x` comes in the permutation.
    fn position(&self, x: u64, m: u64) -> u64 {
        (x + m - self.offset) % m * self.inverse % m
    }

    /// Claims the first unoccupied slot from the cursor on, probing. Most of a build
    /// is spent here: the cursor stays in a register, one load and one bit test per
    /// probe.
    #[inline(always)]
    fn claim_by_probing(&mut self, occupied: &mut [u64], m: u64) -> usize {
        let skip = self.skip;
        let mut at = self.cursor;
        // A permutation visits every slot and the table is not full yet, so this ends.
        loop {
            let s = at;
            at += skip;
            if at >= m {
                at -= m;
            }
            let word = &mut occupied[(s / 64) as usize];
            let bit = 1u64 << (s % 64);
            if *word & bit == 0 {
                *word |= bit;
                self.cursor = at;
                return s as usize;
            }
        }
    }

    /// Claims the first of the (non-empty) `empty` slots from the cursor on.
    fn claim_from(&mut self, empty: &mut Vec<u64>, m: u64) -> usize {
        let here = self.position(self.cursor, m);
        let (i, _) = empty
            .iter()
            .enumerate()
            .map(|(i, &x)| (i, (self.position(x, m) + m - here) % m))
            .min_by_key(|&(_, distance)| distance)
            .unwrap_or((0, 0));
        let s = empty.swap_remove(i);
        self.cursor = (s + self.skip) % m;
        s as usize
    }
}

fn fill<E: Entry>(ids: &[BackendId], weights: &[Weight], size: usize) -> Box<[E]> {
    let m = size as u64;
    let mut by_id: Vec<usize> = (0..ids.len()).collect();
    by_id.sort_unstable_by_key(|&i| ids[i]);
    let ranked_weights: Vec<u64> = by_id.iter().map(|&i| u64::from(weights[i].get())).collect();
    let quota = quotas(&ranked_weights, size);
    let mut hosts: Vec<Permutation> = by_id.iter().map(|&i| Permutation::of(ids[i], m)).collect();
    let entries: Vec<E> = by_id.iter().map(|&i| E::from_index(i)).collect();
    if size > MAGLEV_FILL_MAX {
        let budget = u128::from(m) / 2;
        return rendezvous::fill(&hosts, &ranked_weights, &quota, &entries, m, budget)
            .into_boxed_slice();
    }
    let mut occupied = vec![0u64; size.div_ceil(64)];
    let mut slots = vec![E::default(); size];
    let mut turns = Turns::<E>::new(&quota);
    // One claim per slot: probe while many slots are empty, then finish with the sieve
    // (or, for fills too large for its bitmaps, by positions of the last few slots).
    let sieve_at = sieve::threshold(hosts.len(), m);
    let probed = size.saturating_sub(sieve_at.unwrap_or(TAIL));
    for r in turns.by_ref().take(probed) {
        let s = hosts[r].claim_by_probing(&mut occupied, m);
        slots[s] = entries[r];
    }
    if sieve_at.is_some() {
        let mut sieve = Sieve::new(&hosts, &occupied, m);
        for r in turns {
            let s = match sieve.claim(r, &hosts[r], &mut occupied) {
                Some(s) => s,
                // Unreachable (a turn always has an empty slot); probing is correct anyway.
                None => hosts[r].claim_by_probing(&mut occupied, m),
            };
            slots[s] = entries[r];
        }
    } else {
        let mut empty: Vec<u64> = (0..m)
            .filter(|&x| occupied[(x / 64) as usize] & (1 << (x % 64)) == 0)
            .collect();
        for r in turns {
            slots[hosts[r].claim_from(&mut empty, m)] = entries[r];
        }
    }
    slots.into_boxed_slice()
}

#[cfg(test)]
mod tests;
