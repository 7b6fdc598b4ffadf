//! The fill of tables larger than [`MAGLEV_FILL_MAX`](super::MAGLEV_FILL_MAX) slots:
//! rendezvous hashing with capacities, scored by Maglev's permutations.
//!
//! Maglev's hosts take turns *claiming*: each turn, a host walks its permutation to its
//! next empty slot. Here hosts take turns *looking*: in round `t`, every host with
//! quota left looks at the `t`-th slot of its permutation and takes it if it is empty;
//! within a round, hosts go by rank. (Weights: a host of weight `w` looks at its `p`-th
//! slot in round `floor(p * w_max / w)`, so `w / w_max` slots a round.) A slot thus goes
//! to the first host to reach it among the hosts that still have quota: while no host
//! is full, that is rendezvous hashing with "when does this host reach the slot" as the
//! score, and the whole table is the one stable matching of slots and hosts under the
//! key `(round, rank)` (both sides prefer the smaller key), whatever order the fill
//! goes in.
//!
//! That is what keeps disruption low: without host `k`, a slot keeps its owner unless
//! the owner was `k` or the owner ran out of quota before reaching it; `k`'s slots go to
//! the next host to reach each of them, spread over all hosts, and only a host that
//! receives more of them than its quota grows passes slots on. Worst of six host sets,
//! removing one host and adding one (`disruption` in `tests/consistent_props.rs`):
//!
//! | N    | M         | Maglev's fill | this fill |
//! |------|-----------|---------------|-----------|
//! | 64   | 262 147   | 1.165/N       | 1.101/N   |
//! | 209  | 262 147   |               | 1.336/N   |
//! | 1024 | 1 310 723 |               | 1.878/N   |
//! | 1024 | 4 194 319 | 1.883/N       |           |
//!
//! (A prototype of both fills, two host sets at N = 1024: Maglev's 3.1/N over
//! 1 048 583 slots, this fill's 1.42/N over 4 194 319.)
//!
//! Cost: a look is one bit test in a bitmap of the slots (`looks`); a table takes about
//! `6 M` looks, and each host notes its takes as bits, so the table itself is written
//! once, after them. Looking gets slow when few slots are empty (a hungry host then
//! looks at `M / E` slots per claim), so once `empty slots * hungry hosts <= M / 2` (at
//! least 8 hosts counted) the rest is settled directly (`settle`): the remaining slots
//! and hosts are matched by deferred acceptance on the same keys, which gives the same
//! table as looking on (tested against the definition, settling never, at once, and at
//! the default point). Where the time goes at N = 1024 (M = 1 310 723, 19.6 ms in all
//! on a 2-core Intel Xeon VM): 8.0 million looks, 4.7 ms while no host is within 64
//! slots of its quota (1.6 ns a look, no quota check) and 9.8 ms after (1.9 ns); the
//! table's 1.3 million writes from the bits 3.2 ms (random stores into 2.5 MiB, more
//! than L2); settling 1.7 ms (3 128 slots, 209 hosts, 4 494 proposals of 209 keys).
//! The fill before (the table written on every look, a cache miss on most takes, and
//! a settling pass with a branch per key) took 31.7-40.1 ms.

use super::sieve::Modulus;
use super::{Entry, Permutation};

use looks::{by_calendar, by_rounds, Board, Pace, Walker};
use settle::{settle, Hungry, MAX_HUNGRY};

mod looks;
mod settle;

/// Fills a table of `m` slots (`m` prime, `m < 2^31`) for hosts given by rank: their
/// permutations, weights and quotas (summing to `m`), and the entry each writes. Settles
/// once `empty * max(hungry, 8) <= settle_budget` (`m / 2` by default, measured best
/// at 256 and 1024 hosts; the tests force either end). A few hosts rarely miss an empty
/// slot, so they look on until `M / 16`.
pub(super) fn fill<E: Entry>(
    perms: &[Permutation],
    weights: &[u64],
    quota: &[u64],
    entries: &[E],
    m: u64,
    settle_budget: u128,
) -> Vec<E> {
    let w_max = weights.iter().copied().max().unwrap_or(1);
    // Hosts with quota, in rank order (the order of looks within a round).
    let mut walkers: Vec<Walker> = (0..perms.len())
        .filter(|&r| quota[r] > 0)
        .map(|r| Walker {
            cursor: perms[r].offset as u32,
            skip: perms[r].skip as u32,
            left: quota[r] as u32,
            rank: r as u32,
            recent: 0,
        })
        .collect();
    let mut board = Board {
        occupied: vec![0u64; (m as usize).div_ceil(64)],
        // A host looks about 6 times per slot of its quota (5.6 on average), a bit each.
        took: quota
            .iter()
            .map(|&q| Vec::with_capacity((q as usize * 6).div_ceil(64)))
            .collect(),
        m: m as u32,
    };
    let settles = |empty: u64, hungry: usize| {
        hungry <= MAX_HUNGRY && u128::from(empty) * hungry.max(8) as u128 <= settle_budget
    };
    if weights.iter().all(|&w| w == w_max) {
        by_rounds(&mut walkers, &mut board, settles);
    } else {
        let paces = walkers
            .iter()
            .map(|w| Pace::new(weights[w.rank as usize], w_max))
            .collect();
        by_calendar(&mut walkers, paces, &mut board, settles);
    }
    walkers.retain(|w| w.left > 0);
    let Board { occupied, took, .. } = board;
    let mut table = write_takes(&took, perms, entries, m);
    if !walkers.is_empty() {
        let hungry: Vec<Hungry> = walkers
            .iter()
            .map(|w| {
                let p = &perms[w.rank as usize];
                Hungry {
                    rank: w.rank,
                    offset: p.offset,
                    inverse: p.inverse,
                    weight: weights[w.rank as usize],
                    left: w.left,
                }
            })
            .collect();
        let empties = empty_slots(&occupied, m);
        for (slot, rank) in settle(&hungry, &empties, m, w_max) {
            table[slot as usize] = entries[rank as usize];
        }
    }
    table
}

/// The table of `m` slots with the takes noted in `took` (by rank) written: bit
/// `63 - p % 64` of a host's word `p / 64` is the slot at position `p` of its
/// permutation, `offset + p * skip mod M`.
fn write_takes<E: Entry>(
    took: &[Vec<u64>],
    perms: &[Permutation],
    entries: &[E],
    m: u64,
) -> Vec<E> {
    let mut table = vec![E::default(); m as usize];
    let modulus = Modulus::new(m);
    for ((words, p), &entry) in took.iter().zip(perms).zip(entries) {
        for (k, &word) in words.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let position = k as u64 * 64 + 63 - u64::from(bits.trailing_zeros());
                bits &= bits - 1;
                let slot = modulus.reduce(position * p.skip) + p.offset;
                // Without a branch: `slot - m` wraps when `slot < m`.
                table[slot.min(slot.wrapping_sub(m)) as usize] = entry;
            }
        }
    }
    table
}

/// The slots not set in `occupied`, in order.
fn empty_slots(occupied: &[u64], m: u64) -> Vec<u32> {
    let mut empties = Vec::new();
    for (i, &word) in occupied.iter().enumerate() {
        let mut free = !word;
        while free != 0 {
            let slot = i as u64 * 64 + u64::from(free.trailing_zeros());
            free &= free - 1;
            if slot < m {
                empties.push(slot as u32);
            }
        }
    }
    empties
}
