//! [`Sampler`]: a usable host chosen at random, uniformly or in proportion to weight, in
//! O(1) per pick. The plan of [`Random`](crate::Random) and
//! [`PowerOfTwo`](crate::PowerOfTwo).
//!
//! With equal weights a pick is one bounded random number. With unequal weights the
//! sampler holds an alias table (Walker, "An efficient method for generating discrete
//! random variables with general distributions", ACM TOMS 1977; built with Vose's
//! stable O(n) construction, "A linear algorithm for generating random numbers with a
//! given distribution", IEEE TSE 1991): one column per usable host, each column split
//! between its own host and at most one "alias". A pick draws a column and a threshold:
//! two random numbers, whatever the number of hosts.
//!
//! The table is built in exact integer arithmetic: with usable weights `w_j` summing to
//! `W` over `k` columns, a column holds `W` units, host `j` brings `k·w_j` of them, and
//! each column's split is an integer. A host's probability is then exactly `w_j / W`
//! (up to the bias of mapping 64-bit random numbers onto `0..W`, less than `W / 2^64`),
//! which the unit tests check term by term.

use std::fmt;

use lb_core::{Backend, Snapshot};

use crate::dice::Roll;

/// How many extra draws a weighted pick of a second, distinct host may make before it
/// takes the first host's neighbour instead (see [`Sampler`]).
const OTHER_TRIES: usize = 16;

/// A random choice among the usable hosts of one snapshot, built when the snapshot is
/// published.
///
/// Columns are positions in [`Snapshot::usable`]. Uniform when every usable host has
/// the same weight; otherwise a Vose alias table over the usable hosts' weights.
pub struct Sampler {
    columns: usize,
    alias: Option<AliasTable>,
}

/// Vose's alias table in integer form: column `j` keeps host `j` when a draw in
/// `0..total` falls below `keep[j]`, and sends it to `alias[j]` otherwise.
struct AliasTable {
    total: u64,
    keep: Box<[u64]>,
    alias: Box<[u32]>,
}

impl Sampler {
    /// A sampler over the usable hosts of `snapshot`, by weight.
    pub fn new<B: Backend>(snapshot: &Snapshot<B>) -> Self {
        let usable = snapshot.usable();
        let all = snapshot.weights();
        let weight = |i: u32| u64::from(all[i as usize].get());
        // Equal weights (the common case) need no table, and no allocation to find out.
        let equal = usable
            .first()
            .is_none_or(|&f| usable.iter().all(|&i| weight(i) == weight(f)));
        Sampler {
            columns: usable.len(),
            alias: (!equal).then(|| {
                let weights: Vec<u64> = usable.iter().map(|&i| weight(i)).collect();
                AliasTable::new(&weights)
            }),
        }
    }

    /// How many hosts it chooses among: the usable hosts of its snapshot.
    pub fn len(&self) -> usize {
        self.columns
    }

    /// Whether there is no usable host to choose.
    pub fn is_empty(&self) -> bool {
        self.columns == 0
    }

    /// Whether choices are weighted (the usable hosts' weights differ).
    pub fn is_weighted(&self) -> bool {
        self.alias.is_some()
    }

    /// A column in `0..len()`. `len()` must not be 0.
    pub(crate) fn pick(&self, roll: &mut Roll) -> usize {
        let column = roll.below(self.columns as u64) as usize;
        match &self.alias {
            None => column,
            Some(t) => {
                if roll.below(t.total) < t.keep[column] {
                    column
                } else {
                    t.alias[column] as usize
                }
            }
        }
    }

    /// A column other than `first`, chosen like [`pick`](Sampler::pick) but among the
    /// other hosts. `len()` must be at least 2.
    ///
    /// Uniform: exact, one draw. Weighted: rejection sampling (exact), with at most
    /// [`OTHER_TRIES`] extra draws; when all of them land on `first` (a host holding
    /// nearly all the weight), the next column after `first` is taken.
    pub(crate) fn pick_other(&self, roll: &mut Roll, first: usize) -> usize {
        if self.alias.is_none() {
            let other = roll.below(self.columns as u64 - 1) as usize;
            return if other >= first { other + 1 } else { other };
        }
        for _ in 0..OTHER_TRIES {
            let other = self.pick(roll);
            if other != first {
                return other;
            }
        }
        (first + 1) % self.columns
    }
}

impl AliasTable {
    /// Vose's construction over `weights` (at least one, each at least 1).
    fn new(weights: &[u64]) -> Self {
        let k = weights.len() as u64;
        let total: u64 = weights.iter().sum();
        // Each column holds `total` units; host j brings k * w_j of them.
        let mut units: Vec<u64> = weights.iter().map(|w| w * k).collect();
        let mut keep = vec![total; weights.len()];
        let mut alias: Vec<u32> = (0..weights.len() as u32).collect();
        // Both work lists in one buffer, reserved once: `small` grows from the front,
        // `large` from the back (together they never hold more than every column).
        let n = weights.len();
        let mut lists = vec![0u32; n];
        let (mut small, mut large) = (0, n);
        for (j, &u) in units.iter().enumerate() {
            if u < total {
                lists[small] = j as u32;
                small += 1;
            } else {
                large -= 1;
                lists[large] = j as u32;
            }
        }
        while small > 0 && large < n {
            small -= 1;
            let s = lists[small] as usize;
            let l = lists[large] as usize;
            // Column s keeps its own units and is topped up from host l.
            keep[s] = units[s];
            alias[s] = l as u32;
            units[l] -= total - units[s];
            if units[l] < total {
                large += 1;
                lists[small] = l as u32;
                small += 1;
            }
        }
        // Units are exact integers that sum to k * total, so when `small` empties every
        // column left in `large` holds exactly `total`: it keeps its host (keep = total).
        AliasTable {
            total,
            keep: keep.into(),
            alias: alias.into(),
        }
    }
}

impl fmt::Debug for Sampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sampler")
            .field("hosts", &self.columns)
            .field("weighted", &self.alias.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Host j's probability times `k * total`, read off the table: its own column's
    /// kept units plus what every column aliased to it gives away.
    fn units_of(t: &AliasTable, j: usize) -> u64 {
        let mut units = t.keep[j];
        for (c, &a) in t.alias.iter().enumerate() {
            if a as usize == j && c != j {
                units += t.total - t.keep[c];
            }
        }
        units
    }

    #[test]
    fn alias_table_is_exact() {
        for weights in [
            vec![1, 2],
            vec![5, 1, 1],
            vec![1, 1, 1, 7],
            vec![65535, 1, 300, 2, 2, 9],
            vec![3, 3, 3, 4],
            (1..=64).collect::<Vec<u64>>(),
        ] {
            let t = AliasTable::new(&weights);
            let k = weights.len() as u64;
            for (j, &w) in weights.iter().enumerate() {
                // P(j) = units / (k * total) must equal w / total.
                assert_eq!(units_of(&t, j), w * k, "weights {weights:?}, host {j}");
                assert!(t.keep[j] <= t.total);
            }
        }
    }

    #[test]
    fn alias_table_sketch() {
        // weights 3, 1 over k = 2 columns, total 4 units per column:
        //   column 0: host 0 brings 6 units  -> keeps 4
        //   column 1: host 1 brings 2 units  -> keeps 2, alias host 0 for the other 2
        let t = AliasTable::new(&[3, 1]);
        assert_eq!(
            (t.total, &*t.keep, &*t.alias),
            (4, &[4, 2][..], &[0, 0][..])
        );
    }

    #[test]
    fn pick_other_never_returns_first() {
        let mut roll = crate::dice::Dice::seeded(3).roll();
        let uniform = Sampler {
            columns: 5,
            alias: None,
        };
        let weighted = Sampler {
            columns: 3,
            alias: Some(AliasTable::new(&[1000, 1, 1])),
        };
        for first in 0..3 {
            for _ in 0..200 {
                assert_ne!(uniform.pick_other(&mut roll, first), first);
                assert_ne!(weighted.pick_other(&mut roll, first), first);
            }
        }
    }
}
