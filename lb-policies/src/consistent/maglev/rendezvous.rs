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
//! Cost: a look is one bit test in a bitmap of the slots; a table takes about `5.6 M`
//! looks. Looking gets slow when few slots are empty (a hungry host then looks at
//! `M / E` slots per claim), so once `empty slots * hungry hosts <= M` (at least 8
//! hosts counted) the rest is settled directly (`settle`): the remaining slots and hosts are matched by deferred
//! acceptance on the same keys, which gives the same table as looking on (tested
//! against the definition, settling never, at once, and at the default point).

use super::{Entry, Permutation};

use settle::{settle, Hungry, MAX_HUNGRY};

mod settle;

/// Rounds between two checks of whether to settle (and drops of full hosts).
const CHECK_EVERY: u32 = 16;

/// A host's walk through its permutation, while it has quota left.
struct Walker<E> {
    /// The next slot it looks at.
    cursor: u32,
    skip: u32,
    /// Slots it may still take.
    left: u32,
    rank: u32,
    entry: E,
    pace: Pace,
}

impl<E: Entry> Walker<E> {
    /// Looks at the next slot and takes it if it is empty. The table is written either
    /// way (a look that takes nothing writes the sink, past the slots), so that no
    /// branch depends on the bitmap.
    #[inline(always)]
    fn look(&mut self, occupied: &mut [u64], table: &mut [E], m: u32) {
        let s = self.cursor;
        let next = s + self.skip;
        // `next - m` wraps to a larger number when `next < m`.
        self.cursor = next.min(next.wrapping_sub(m));
        let word = &mut occupied[(s / 64) as usize];
        let bit = 1u64 << (s % 64);
        let free = *word & bit == 0;
        *word |= bit;
        let sink = m as usize;
        table[if free { s as usize } else { sink }] = self.entry;
        self.left -= u32::from(free);
    }
}

/// When a host of unequal weight looks next: its `p`-th slot in round
/// `floor(p * w_max / w)`, kept as quotient and remainder so that no division is needed.
struct Pace {
    due: u64,
    step: u64,
    extra: u64,
    rem: u64,
    weight: u64,
}

impl Pace {
    fn new(weight: u64, w_max: u64) -> Self {
        Pace {
            due: 0,
            step: w_max / weight,
            extra: w_max % weight,
            rem: 0,
            weight,
        }
    }

    #[inline]
    fn advance(&mut self) {
        self.due += self.step;
        self.rem += self.extra;
        if self.rem >= self.weight {
            self.rem -= self.weight;
            self.due += 1;
        }
    }
}

/// Where a fill stands: the bitmap of taken slots and the table so far (one sink entry
/// past the slots).
struct Board<E> {
    occupied: Vec<u64>,
    table: Vec<E>,
    m: u32,
}

/// Fills a table of `m` slots (`m` prime, `m < 2^31`) for hosts given by rank: their
/// permutations, weights and quotas (summing to `m`), and the entry each writes. Settles
/// once `empty * max(hungry, 8) <= settle_budget` (`m` by default; the tests force
/// either end). A few hosts rarely miss an empty slot, so they look on until `M / 8`.
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
    let mut walkers: Vec<Walker<E>> = (0..perms.len())
        .filter(|&r| quota[r] > 0)
        .map(|r| Walker {
            cursor: perms[r].offset as u32,
            skip: perms[r].skip as u32,
            left: quota[r] as u32,
            rank: r as u32,
            entry: entries[r],
            pace: Pace::new(weights[r], w_max),
        })
        .collect();
    let mut board = Board {
        occupied: vec![0u64; (m as usize).div_ceil(64)],
        table: vec![E::default(); m as usize + 1],
        m: m as u32,
    };
    let settles = |empty: u64, hungry: usize| {
        hungry <= MAX_HUNGRY && u128::from(empty) * hungry.max(8) as u128 <= settle_budget
    };
    if weights.iter().all(|&w| w == w_max) {
        by_rounds(&mut walkers, &mut board, settles);
    } else {
        by_calendar(&mut walkers, &mut board, settles);
    }
    walkers.retain(|w| w.left > 0);
    let Board {
        occupied,
        mut table,
        ..
    } = board;
    table.truncate(m as usize);
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

/// Equal weights: looks round by round, every host once a round, until the table is
/// full or `settles(empty, hungry)`, checked every [`CHECK_EVERY`] rounds.
fn by_rounds<E: Entry>(
    walkers: &mut Vec<Walker<E>>,
    board: &mut Board<E>,
    settles: impl Fn(u64, usize) -> bool,
) {
    let Board { occupied, table, m } = board;
    // The quotas left add up to the empty slots.
    let mut empty: u64 = walkers.iter().map(|w| u64::from(w.left)).sum();
    while empty > 0 && !settles(empty, walkers.len()) {
        // While every host has quota for the whole block, none needs checking.
        if walkers.iter().all(|w| w.left >= CHECK_EVERY) {
            for _ in 0..CHECK_EVERY {
                for w in walkers.iter_mut() {
                    w.look(occupied, table, *m);
                }
            }
        } else {
            for _ in 0..CHECK_EVERY {
                for w in walkers.iter_mut().filter(|w| w.left > 0) {
                    w.look(occupied, table, *m);
                }
            }
        }
        walkers.retain(|w| w.left > 0);
        empty = walkers.iter().map(|w| u64::from(w.left)).sum();
    }
}

/// Unequal weights: the same order of looks, each round taking the hosts due in it from
/// a calendar (a ring of lists by round, longer than any host's gap between looks) and
/// sorting them by rank, so that a round visits only the hosts that look in it. Checks
/// `settles(empty, hungry)` every [`CHECK_EVERY`] rounds.
fn by_calendar<E: Entry>(
    walkers: &mut [Walker<E>],
    board: &mut Board<E>,
    settles: impl Fn(u64, usize) -> bool,
) {
    let Board { occupied, table, m } = board;
    // A power of two, so that a round's list is found by a mask.
    let span = walkers
        .iter()
        .map(|w| w.pace.step + 2)
        .max()
        .unwrap_or(2)
        .next_power_of_two() as usize;
    let mask = span as u64 - 1;
    let mut calendar: Vec<Vec<u32>> = vec![Vec::new(); span];
    calendar[0] = (0..walkers.len() as u32).collect();
    let mut empty: u64 = walkers.iter().map(|w| u64::from(w.left)).sum();
    let mut hungry = walkers.len();
    let mut round = 0u64;
    while empty > 0 {
        if round.is_multiple_of(u64::from(CHECK_EVERY)) && settles(empty, hungry) {
            return;
        }
        let today = (round & mask) as usize;
        let mut due = std::mem::take(&mut calendar[today]);
        // Several runs in rank order, one per round the hosts were queued in.
        due.sort();
        for &i in &due {
            let Some(w) = walkers.get_mut(i as usize) else {
                continue;
            };
            let before = w.left;
            w.look(occupied, table, *m);
            empty -= u64::from(before - w.left);
            if w.left > 0 {
                w.pace.advance();
                // Never today's list: a host's next look comes 1 to `span - 1` rounds on.
                calendar[(w.pace.due & mask) as usize].push(i);
            } else {
                hungry -= 1;
            }
        }
        due.clear();
        calendar[today] = due;
        round += 1;
    }
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
