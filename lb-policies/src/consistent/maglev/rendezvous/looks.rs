//! The looks of a rendezvous fill: hosts walking their permutations round by round,
//! each taking the empty slots it reaches while it has quota left.
//!
//! A look is one bit test in the bitmap of taken slots (about 160 KiB at 1 310 723
//! slots, so it stays in L2). It does not write the table, a random line of a table
//! larger than L2 whose store would miss on most takes: each host notes its takes as
//! bits, one per look (one bit of its words for the slot at each position of its
//! permutation), and the table is written from them after the fill (`write_takes`), a
//! loop of independent stores.

/// Rounds between two checks of whether to settle (and drops of full hosts): one word
/// of takes.
pub(super) const CHECK_EVERY: u32 = u64::BITS;

/// A host's walk through its permutation, while it has quota left.
pub(super) struct Walker {
    /// The next slot it looks at.
    pub(super) cursor: u32,
    pub(super) skip: u32,
    /// Slots it may still take.
    pub(super) left: u32,
    pub(super) rank: u32,
    /// Its takes since its last word of [`Board::took`], shifted in: bit 0 for its
    /// last look, bit `i` for the look `i` before.
    pub(super) recent: u64,
}

impl Walker {
    /// Looks at the next slot and takes it if it is empty, shifting the take into
    /// `recent`. Returns whether it took the slot; counting it off `left` is the
    /// caller's (the rounds do that once a block).
    #[inline(always)]
    fn look(&mut self, occupied: &mut [u64], m: u32) -> bool {
        let s = self.cursor;
        let next = s + self.skip;
        // `next - m` wraps to a larger number when `next < m`.
        self.cursor = next.min(next.wrapping_sub(m));
        let word = &mut occupied[(s / 64) as usize];
        let bit = 1u64 << (s % 64);
        let free = *word & bit == 0;
        *word |= bit;
        self.recent = self.recent << 1 | u64::from(free);
        free
    }

    /// Moves `recent` to its words of takes after its `n`-th look since the last word
    /// (`n = 64` after every 64th look, fewer after its last), shifted so that bit
    /// `63 - p % 64` is its look `p`.
    fn note(&mut self, took: &mut [Vec<u64>], n: u32) {
        let word = std::mem::take(&mut self.recent) << (64 - n);
        if let Some(words) = took.get_mut(self.rank as usize) {
            words.push(word);
        }
    }
}

/// Where a fill stands: the bitmap of taken slots and, by rank, each host's takes (bit
/// `63 - p % 64` of its word `p / 64`: it took the slot at position `p` of its
/// permutation).
pub(super) struct Board {
    pub(super) occupied: Vec<u64>,
    pub(super) took: Vec<Vec<u64>>,
    pub(super) m: u32,
}

/// Equal weights: looks round by round, every host once a round, until the table is
/// full or `settles(empty, hungry)`, checked every [`CHECK_EVERY`] rounds. The hosts
/// left in `walkers` are the hungry ones, their takes all noted.
pub(super) fn by_rounds(
    walkers: &mut Vec<Walker>,
    board: &mut Board,
    settles: impl Fn(u64, usize) -> bool,
) {
    let Board { occupied, took, m } = board;
    // The quotas left add up to the empty slots.
    let mut empty: u64 = walkers.iter().map(|w| u64::from(w.left)).sum();
    while empty > 0 && !settles(empty, walkers.len()) {
        if walkers.iter().all(|w| w.left >= CHECK_EVERY) {
            // No host can fill up within the block, so the takes are counted after it:
            // a look then stores only its cursor, the bitmap word and `recent`.
            for _ in 0..CHECK_EVERY {
                for w in walkers.iter_mut() {
                    w.look(occupied, *m);
                }
            }
            for w in walkers.iter_mut() {
                w.left -= w.recent.count_ones();
            }
        } else {
            for _ in 0..CHECK_EVERY {
                for w in walkers.iter_mut() {
                    if w.left > 0 {
                        w.left -= u32::from(w.look(occupied, *m));
                    } else {
                        // Full: it takes nothing more, but its word of takes still
                        // counts every round.
                        w.recent <<= 1;
                    }
                }
            }
        }
        walkers.retain_mut(|w| {
            w.note(took, CHECK_EVERY);
            w.left > 0
        });
        empty = walkers.iter().map(|w| u64::from(w.left)).sum();
    }
}

/// When a host of unequal weight looks next: its look `p` (at the `p`-th slot of its
/// permutation) comes in round `floor(p * w_max / w)`, kept as quotient and remainder
/// so that no division is needed.
pub(super) struct Pace {
    look: u32,
    due: u64,
    step: u64,
    extra: u64,
    rem: u64,
    weight: u64,
}

impl Pace {
    pub(super) fn new(weight: u64, w_max: u64) -> Self {
        Pace {
            look: 0,
            due: 0,
            step: w_max / weight,
            extra: w_max % weight,
            rem: 0,
            weight,
        }
    }

    #[inline]
    fn advance(&mut self) {
        self.look += 1;
        self.due += self.step;
        self.rem += self.extra;
        if self.rem >= self.weight {
            self.rem -= self.weight;
            self.due += 1;
        }
    }
}

/// Unequal weights: the same order of looks, each round taking the hosts due in it from
/// a calendar (a ring of lists by round, longer than any host's gap between looks) and
/// sorting them by rank, so that a round visits only the hosts that look in it. Checks
/// `settles(empty, hungry)` every [`CHECK_EVERY`] rounds. On return, the takes of every
/// host are noted.
pub(super) fn by_calendar(
    walkers: &mut [Walker],
    mut paces: Vec<Pace>,
    board: &mut Board,
    settles: impl Fn(u64, usize) -> bool,
) {
    let Board { occupied, took, m } = board;
    // A power of two, so that a round's list is found by a mask.
    let span = paces
        .iter()
        .map(|p| p.step + 2)
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
            break;
        }
        let today = (round & mask) as usize;
        let mut due = std::mem::take(&mut calendar[today]);
        // Several runs in rank order, one per round the hosts were queued in.
        due.sort();
        for &i in &due {
            let (Some(w), Some(pace)) = (walkers.get_mut(i as usize), paces.get_mut(i as usize))
            else {
                continue;
            };
            let taken = w.look(occupied, *m);
            w.left -= u32::from(taken);
            empty -= u64::from(taken);
            pace.advance();
            let since = (pace.look - 1) % 64 + 1;
            if w.left == 0 || since == 64 {
                w.note(took, since);
            }
            if w.left > 0 {
                // Never today's list: a host's next look comes 1 to `span - 1` rounds on.
                calendar[(pace.due & mask) as usize].push(i);
            } else {
                hungry -= 1;
            }
        }
        due.clear();
        calendar[today] = due;
        round += 1;
    }
    for (w, pace) in walkers.iter_mut().zip(&paces) {
        let since = pace.look % 64;
        if w.left > 0 && since > 0 {
            w.note(took, since);
        }
    }
}
