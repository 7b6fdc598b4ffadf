//! [`PowerOfTwo`]: the power of two choices (P2C): two random usable hosts, the one
//! with fewer active states per weight.
//!
//! Placing each of `n` requests on one random host out of `n` leaves the busiest host
//! with about `ln n / ln ln n` of them; drawing two hosts and taking the less loaded
//! one brings that down to `ln ln n / ln 2 + O(1)`, an exponential improvement (Azar,
//! Broder, Karlin and Upfal, "Balanced allocations", SIAM J. Comput. 1999; Mitzenmacher,
//! "The Power of Two Choices in Randomized Load Balancing", IEEE TPDS 2001). It needs
//! neither a scan of every host, like [`LeastStates`](crate::LeastStates), nor a shared
//! cursor every pick writes: a pick reads two counters. tower's `p2c` balancer and
//! HAProxy's `random(2)` (its default algorithm since 2025) use it for the same
//! reasons.
//!
//! The two hosts are distinct; with unequal weights each is drawn in proportion to its
//! weight (the second among the hosts other than the first, see
//! [`Sampler`]), and their loads are compared as states per
//! weight, exactly. On a tie the first draw wins, which is itself random.
//!
//! Failover: the other host of the two, then the hosts after it in configuration order.

use lb_core::{Backend, Context, Order, Policy, Snapshot};

use crate::dice::Dice;
use crate::load::Load;
use crate::sample::Sampler;

/// Power of two choices over the usable hosts, weighted. See the [module docs](self).
///
/// ```
/// use lb_core::{Balancer, Context, HostTable};
/// use lb_policies::PowerOfTwo;
/// use std::net::SocketAddr;
///
/// let hosts: Vec<SocketAddr> = vec!["10.0.0.1:80".parse().unwrap(), "10.0.0.2:80".parse().unwrap()];
/// let table = HostTable::new("web", hosts).unwrap();
/// let balancer = Balancer::new(&table, PowerOfTwo::with_seed(1));
/// // With two hosts both are always drawn: a busy one is never chosen over an idle one.
/// let first = balancer.pick(&Context::new()).unwrap();
/// let second = balancer.pick(&Context::new()).unwrap();
/// assert_ne!(first.backend(), second.backend());
/// ```
#[derive(Debug)]
pub struct PowerOfTwo {
    dice: Dice,
}

impl PowerOfTwo {
    /// P2C with the defaults:
    /// - thread-local randomness, seeded from the operating system per thread;
    /// - draws weighted whenever the usable hosts' weights differ, uniform otherwise;
    ///   loads always compared as states per weight.
    pub fn new() -> Self {
        PowerOfTwo { dice: Dice::Thread }
    }

    /// P2C with reproducible randomness (a seed mixed with a per-pick atomic counter):
    /// the same seed, table and sequence of picks give the same hosts.
    pub fn with_seed(seed: u64) -> Self {
        PowerOfTwo {
            dice: Dice::seeded(seed),
        }
    }
}

impl Default for PowerOfTwo {
    fn default() -> Self {
        Self::new()
    }
}

impl Policy for PowerOfTwo {
    type Plan = Sampler;

    fn plan<B: Backend>(
        &self,
        snapshot: &Snapshot<B>,
        _: Option<(&Snapshot<B>, &Sampler)>,
    ) -> Sampler {
        Sampler::new(snapshot)
    }

    fn order<B: Backend>(
        &self,
        plan: &Sampler,
        snapshot: &Snapshot<B>,
        _ctx: &Context<'_>,
        order: &mut Order,
    ) {
        let usable = snapshot.usable();
        match plan.len() {
            0 => {}
            1 => {
                order.prefer(usable[0] as usize);
            }
            _ => {
                let mut roll = self.dice.roll();
                let first = plan.pick(&mut roll);
                let second = plan.pick_other(&mut roll, first);
                let (a, b) = (usable[first] as usize, usable[second] as usize);
                let (winner, other) =
                    if Load::of(snapshot, b).is_lighter_than(Load::of(snapshot, a)) {
                        (b, a)
                    } else {
                        (a, b)
                    };
                order.prefer(winner);
                order.prefer(other);
                order.scan_from(other + 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{candidates, down, index_of, table};
    use lb_core::Balancer;

    #[test]
    fn two_hosts_alternate_while_held() {
        // [0] [1]: both are drawn every time, so held leases alternate 0/1 exactly:
        // states after each pick: (1,0) or (0,1), then (1,1), ...
        let t = table(&[1, 1]);
        let b = Balancer::new(&t, PowerOfTwo::with_seed(3));
        let ctx = Context::new();
        let held: Vec<_> = (0..10).map(|_| b.pick(&ctx).unwrap()).collect();
        let on_zero = held.iter().filter(|l| index_of(&t, l) == 0).count();
        assert_eq!(on_zero, 5);
    }

    #[test]
    fn weighted_loads_balance_by_weight() {
        // [0: w=3] [1: w=1], leases held: states per weight stay within one lease of
        // each other, so 40 leases split 30 / 10.
        let t = table(&[3, 1]);
        let b = Balancer::new(&t, PowerOfTwo::with_seed(11));
        let ctx = Context::new();
        let held: Vec<_> = (0..40).map(|_| b.pick(&ctx).unwrap()).collect();
        let on_zero = held.iter().filter(|l| index_of(&t, l) == 0).count();
        assert_eq!(on_zero, 30);
    }

    #[test]
    fn failover_is_the_other_draw_then_the_scan() {
        // [0 up] [1 DOWN] [2 up] [3 up] [4 up]: the pair, then the scan after the second
        // one, skipping host 1 (down) and the first one (already offered).
        let t = table(&[1, 1, 1, 1, 1]);
        down(&t, 1);
        let b = Balancer::new(&t, PowerOfTwo::with_seed(8));
        for _ in 0..20 {
            let c = candidates(&b);
            assert_eq!(c.len(), 4);
            assert_ne!(c[0], c[1]);
            let scan: Vec<usize> = (1..5)
                .map(|k| (c[1] + k) % 5)
                .filter(|&i| i != 1 && i != c[0])
                .collect();
            assert_eq!(c[2..], scan[..]);
        }
    }

    #[test]
    fn one_usable_host_needs_no_dice() {
        let t = table(&[1, 2]);
        down(&t, 0);
        let b = Balancer::new(&t, PowerOfTwo::new());
        assert_eq!(candidates(&b), [1]);
    }
}
