//! The order in which hosts take turns claiming slots.

use super::Entry;

/// The turn order: host ranks, each appearing as often as its quota, spread evenly.
///
/// With `T` the largest quota, the fill runs in `T` rounds; a host with quota `q` takes
/// its `j`-th turn in round `floor(((j + 1) T - 1) / q)`, so its turns are evenly
/// spaced (Bresenham) and a host with the largest quota takes one every round. Within a
/// round, hosts go in rank order. For equal weights this is Maglev's round-robin.
/// Built by a counting sort on rounds: O(M + T), one division per host.
pub(super) fn turn_order<E: Entry>(quota: &[u64]) -> Vec<E> {
    let rounds = quota.iter().copied().max().unwrap_or(0);
    // Calls `f(round)` for each turn of a host with quota `q`, in order.
    let for_each_round = |q: u64, f: &mut dyn FnMut(usize)| {
        if q == 0 {
            return;
        }
        let (step, extra) = (rounds / q, rounds % q);
        // Round of turn j is a_j / q with a_j = (j + 1) T - 1: track quotient and
        // remainder as a_j grows by T.
        let (mut round, mut rem) = ((rounds - 1) / q, (rounds - 1) % q);
        for _ in 0..q {
            f(round as usize);
            round += step;
            rem += extra;
            if rem >= q {
                rem -= q;
                round += 1;
            }
        }
    };
    let mut start = vec![0usize; rounds as usize + 1];
    for &q in quota {
        for_each_round(q, &mut |r| start[r + 1] += 1);
    }
    for r in 1..start.len() {
        start[r] += start[r - 1];
    }
    let mut order = vec![E::default(); start[start.len() - 1]];
    for (rank, &q) in quota.iter().enumerate() {
        let entry = E::from_index(rank);
        for_each_round(q, &mut |r| {
            order[start[r]] = entry;
            start[r] += 1;
        });
    }
    order
}

/// The turn order of [`turn_order`], generated as the fill goes when that is cheap.
///
/// A host with quota `q` has a turn in round `t` exactly when `(t + 1) q mod T < q`
/// (its count of turns `floor((t + 1) q / T)` grows in that round), so walking every
/// host in every round yields the same order without building it. That walk costs
/// `N * T` steps against `M` turns: used while `N * T <= 2 M` (weights within about a
/// factor of two of each other), else the order is built by [`turn_order`].
pub(super) enum Turns<E> {
    Rounds {
        quota: Vec<u64>,
        /// `(t + 1) q mod T` of each host for the current round `t`.
        phase: Vec<u64>,
        rounds: u64,
        round: u64,
        rank: usize,
    },
    Listed(std::vec::IntoIter<E>),
}

impl<E: Entry> Turns<E> {
    pub(super) fn new(quota: &[u64]) -> Self {
        let rounds = quota.iter().copied().max().unwrap_or(0);
        let total: u64 = quota.iter().sum();
        if (quota.len() as u64).saturating_mul(rounds) <= total.saturating_mul(2) {
            Turns::Rounds {
                quota: quota.to_vec(),
                phase: vec![0; quota.len()],
                rounds,
                round: 0,
                rank: 0,
            }
        } else {
            Turns::Listed(turn_order::<E>(quota).into_iter())
        }
    }
}

impl<E: Entry> Iterator for Turns<E> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        match self {
            Turns::Listed(order) => order.next().map(Entry::index),
            Turns::Rounds {
                quota,
                phase,
                rounds,
                round,
                rank,
            } => loop {
                if *rank >= quota.len() {
                    *rank = 0;
                    *round += 1;
                }
                if *round >= *rounds {
                    return None;
                }
                let r = *rank;
                *rank += 1;
                let (q, p) = (quota[r], &mut phase[r]);
                *p += q;
                if *p >= *rounds {
                    *p -= *rounds;
                }
                if *p < q {
                    return Some(r);
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_turns_are_the_listed_turns() {
        for quota in [
            vec![4, 2, 1],
            vec![2, 2, 2],
            vec![5, 3],
            vec![0, 1],
            vec![7, 7, 6, 6, 6],
            vec![9, 5, 8, 0, 9, 3],
            vec![1],
            vec![],
        ] {
            let listed: Vec<usize> = turn_order::<u16>(&quota)
                .into_iter()
                .map(usize::from)
                .collect();
            let rounds = quota.iter().copied().max().unwrap_or(0);
            let generated: Vec<usize> = Turns::<u16>::Rounds {
                phase: vec![0; quota.len()],
                quota: quota.clone(),
                rounds,
                round: 0,
                rank: 0,
            }
            .collect();
            assert_eq!(generated, listed, "{quota:?}");
            let chosen: Vec<usize> = Turns::<u16>::new(&quota).collect();
            assert_eq!(chosen, listed, "{quota:?}");
        }
    }
}
