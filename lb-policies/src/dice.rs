//! Per-pick randomness for the random modes ([`Random`](crate::Random),
//! [`PowerOfTwo`](crate::PowerOfTwo)): no lock, no allocation, optionally reproducible.
//!
//! A pick draws one 64-bit seed, from fastrand's thread-local wyrand by default, or from
//! a fixed seed mixed with a per-pick counter when reproducibility matters (tests,
//! simulations). That seed starts a SplitMix64 stream (Steele, Lea and Flood, "Fast
//! splittable pseudorandom number generators", OOPSLA 2014) from which the pick takes
//! as many numbers as it needs. Seeded mode costs one relaxed atomic increment per pick;
//! thread mode shares nothing between threads.

use std::sync::atomic::{AtomicU64, Ordering};

/// The SplitMix64 increment: the odd integer closest to 2^64 / phi.
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// Where a policy's randomness comes from.
#[derive(Debug)]
pub(crate) enum Dice {
    /// fastrand's thread-local generator (seeded from the OS per thread).
    Thread,
    /// A fixed seed and the number of picks made so far: the same seed gives the same
    /// picks in the same order.
    Seeded { seed: u64, picks: AtomicU64 },
}

impl Dice {
    /// Dice seeded with `seed`.
    pub(crate) fn seeded(seed: u64) -> Self {
        Dice::Seeded {
            seed,
            picks: AtomicU64::new(0),
        }
    }

    /// The random numbers of one pick.
    pub(crate) fn roll(&self) -> Roll {
        let state = match self {
            Dice::Thread => fastrand::u64(..),
            Dice::Seeded { seed, picks } => {
                let n = picks.fetch_add(1, Ordering::Relaxed);
                mix(seed.wrapping_add(n.wrapping_mul(GAMMA)))
            }
        };
        Roll { state }
    }
}

/// The random numbers of one pick: a SplitMix64 stream.
#[derive(Debug)]
pub(crate) struct Roll {
    state: u64,
}

impl Roll {
    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        mix(self.state)
    }

    /// A number in `0..n` for `n > 0` (0 for `n == 0`), by Lemire's multiply-shift: each
    /// value's probability is off from `1/n` by less than `n / 2^64`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// SplitMix64's output function (the MurmurHash3 finaliser variant "Mix13").
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_reference_values() {
        // SplitMix64 seeded with 0: the first outputs of the reference implementation.
        let mut r = Roll { state: 0 };
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(r.next_u64(), 0x06c4_5d18_8009_454f);
    }

    #[test]
    fn seeded_dice_repeat_and_differ_per_pick() {
        let a = Dice::seeded(7);
        let b = Dice::seeded(7);
        let first: Vec<u64> = (0..4).map(|_| a.roll().next_u64()).collect();
        let again: Vec<u64> = (0..4).map(|_| b.roll().next_u64()).collect();
        assert_eq!(first, again);
        assert_eq!(
            first.iter().collect::<std::collections::HashSet<_>>().len(),
            4
        );
    }

    #[test]
    fn below_stays_in_range() {
        let mut r = Roll { state: 1 };
        assert_eq!(r.below(0), 0);
        assert_eq!(r.below(1), 0);
        assert!((0..1000).all(|_| r.below(3) < 3));
    }
}
