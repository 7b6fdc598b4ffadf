//! Smooth weighted round-robin exactly as nginx picks, and the period it repeats.
//!
//! nginx's smooth weighted round-robin (Maxim Dounin's nginx commit "Upstream: smooth
//! weighted round-robin balancing", May 2012, in `ngx_http_upstream_round_robin.c`;
//! its message works the {5, 1, 1} example below through): every host carries a
//! `current` value starting at 0. Each pick adds
//! every host's weight to its `current`, takes the host with the largest one (the first
//! in configuration order on ties) and subtracts the total weight `S` from it. Over any
//! `S` consecutive picks each host is picked exactly `weight` times, and the picks of a
//! heavy host are spread among the others instead of coming in a burst: weights
//! {5, 1, 1} give `a a b a c a a`, not `a a a a a b c`.
//!
//! The `current` values sum to 0 after every pick and all return to 0 after `S` picks,
//! so the sequence is periodic: a [`Smooth`] restarts its cycle after `S` picks, and
//! [`schedule`] precomputes one period so that a pick is an index into it.
//!
//! Two exact shortcuts keep building cheap:
//! - Weights are divided by their greatest common divisor: every `current` scales by
//!   the same factor, so the sequence is the same with a shorter period.
//! - After `t` picks, a host about to be compared has `current = (t+1)·w − S·p`, with
//!   `p` its picks so far. Hosts of equal weight therefore take turns in configuration
//!   order, and only the next host of each weight competes: a step costs O(distinct
//!   weights), not O(hosts).

/// Schedules longer than this many build steps (entries × distinct weights) are not
/// precomputed: about 10 ms of work at most, on each membership change (health changes
/// reuse the cycle).
const MAX_BUILD_STEPS: u64 = 1 << 24;

/// The state of nginx's smooth weighted round-robin over a fixed set of hosts.
#[derive(Debug)]
pub(crate) struct Smooth {
    /// The (reduced) total weight: the period.
    total: u64,
    /// Picks made in the current period, `0..total`.
    step: u64,
    groups: Box<[Group]>,
}

/// The hosts of one weight, ascending, and how many picks they got this period.
#[derive(Debug)]
struct Group {
    weight: u64,
    members: Box<[u32]>,
    picks: u64,
}

impl Smooth {
    /// The state before the first pick over `hosts`: (index, weight) pairs in ascending
    /// index order, weights at least 1. `None` for no hosts.
    pub(crate) fn new(hosts: &[(u32, u64)]) -> Option<Self> {
        let divisor = hosts.iter().fold(0, |g, &(_, w)| gcd(g, w));
        if divisor == 0 {
            return None;
        }
        let mut by_weight: Vec<(u64, u32)> = hosts.iter().map(|&(i, w)| (w / divisor, i)).collect();
        by_weight.sort_unstable();
        let groups: Box<[Group]> = by_weight
            .chunk_by(|a, b| a.0 == b.0)
            .map(|chunk| Group {
                weight: chunk[0].0,
                members: chunk.iter().map(|&(_, i)| i).collect(),
                picks: 0,
            })
            .collect();
        let total = by_weight.iter().map(|&(w, _)| w).sum();
        Some(Smooth {
            total,
            step: 0,
            groups,
        })
    }

    /// The period: the reduced total weight.
    pub(crate) fn period(&self) -> u64 {
        self.total
    }

    /// The next pick: a host index given to [`new`](Smooth::new).
    pub(crate) fn next(&mut self) -> u32 {
        let t = i128::from(self.step + 1);
        let total = i128::from(self.total);
        let (mut best, mut best_value, mut best_host) = (0, i128::MIN, u32::MAX);
        for (g, group) in self.groups.iter().enumerate() {
            let m = group.members.len() as u64;
            let leader = group.members[(group.picks % m) as usize];
            let value = t * i128::from(group.weight) - total * i128::from(group.picks / m);
            if value > best_value || (value == best_value && leader < best_host) {
                (best, best_value, best_host) = (g, value, leader);
            }
        }
        self.groups[best].picks += 1;
        self.step += 1;
        if self.step == self.total {
            self.step = 0;
            self.groups.iter_mut().for_each(|g| g.picks = 0);
        }
        best_host
    }
}

/// One period of smooth weighted round-robin over `hosts` (as for [`Smooth::new`]), or
/// `None` when there are no hosts, the period is longer than `max_len`, or building it
/// would take more than [`MAX_BUILD_STEPS`].
pub(crate) fn schedule(hosts: &[(u32, u64)], max_len: usize) -> Option<Box<[u32]>> {
    let mut smooth = Smooth::new(hosts)?;
    let steps = smooth.period().saturating_mul(smooth.groups.len() as u64);
    if smooth.period() > max_len as u64 || steps > MAX_BUILD_STEPS {
        return None;
    }
    Some((0..smooth.period()).map(|_| smooth.next()).collect())
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    /// nginx's loop, literally: the reference the shortcuts must match.
    fn nginx(weights: &[u64], picks: usize) -> Vec<u32> {
        let total: i64 = weights.iter().map(|&w| w as i64).sum();
        let mut current = vec![0i64; weights.len()];
        (0..picks)
            .map(|_| {
                let mut best = 0;
                for (i, &w) in weights.iter().enumerate() {
                    current[i] += w as i64;
                    if current[i] > current[best] {
                        best = i;
                    }
                }
                current[best] -= total;
                best as u32
            })
            .collect()
    }

    fn hosts(weights: &[u64]) -> Vec<(u32, u64)> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| (i as u32, w))
            .collect()
    }

    #[test]
    fn five_one_one_is_spread() {
        // current after each pick (a, b, c), total 7:
        //   +w: 5 1 1 -> a: -2 1 1 | 3 2 2 -> a: -4 2 2 | 1 3 3 -> b: 1 -4 3 | ...
        let mut s = Smooth::new(&hosts(&[5, 1, 1])).unwrap();
        let picks: Vec<u32> = (0..14).map(|_| s.next()).collect();
        assert_eq!(picks, [0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn matches_nginx_over_three_periods() {
        let mut seed = 0x1234_5678_u64;
        let mut cases: Vec<Vec<u64>> = vec![vec![1], vec![2, 2], vec![4, 6], vec![3, 3, 1, 1, 9]];
        for _ in 0..200 {
            let n = 1 + (seed % 9) as usize;
            let w = (0..n)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    1 + (seed >> 33) % [3, 10, 40][(seed >> 20) as usize % 3]
                })
                .collect();
            cases.push(w);
        }
        for w in cases {
            let period: u64 = w.iter().sum();
            let expected = nginx(&w, 3 * period as usize);
            let mut s = Smooth::new(&hosts(&w)).unwrap();
            let got: Vec<u32> = (0..3 * period).map(|_| s.next()).collect();
            assert_eq!(got, expected, "weights {w:?}");
        }
    }

    #[test]
    fn indexes_are_passed_through() {
        // Hosts 1 and 3 of a table (0 and 2 down), weights 1 and 2.
        let mut s = Smooth::new(&[(1, 1), (3, 2)]).unwrap();
        assert_eq!(
            (0..6).map(|_| s.next()).collect::<Vec<_>>(),
            [3, 1, 3, 3, 1, 3]
        );
    }

    #[test]
    fn schedule_is_one_reduced_period() {
        assert_eq!(
            schedule(&hosts(&[10, 20]), 100).as_deref(),
            Some(&[1, 0, 1][..])
        );
        assert_eq!(
            schedule(&hosts(&[5, 1, 1]), 7).as_deref(),
            Some(&[0, 0, 1, 0, 2, 0, 0][..])
        );
        assert_eq!(schedule(&hosts(&[5, 1, 1]), 6), None);
        assert_eq!(schedule(&[], 100), None);
        // 2^16 distinct weights would mean 2^31 build steps: not precomputed.
        let wide: Vec<(u32, u64)> = (0..65535u32).map(|i| (i, u64::from(i) + 1)).collect();
        assert_eq!(schedule(&wide, usize::MAX), None);
    }
}
