//! [`Random`]: relayd's `mode random`, made uniform over the usable hosts, and weighted.
//!
//! relayd draws a host uniformly among *all* configured hosts and, when it is not
//! usable, scans forward to the next usable one (`relay_from_table`). A down host's
//! share therefore goes to its neighbour, which gets double traffic. Here the draw is
//! uniform among the usable hosts themselves ([`Snapshot::usable`]), so a down host's
//! share is spread evenly over the survivors.
//!
//! With unequal weights a host is drawn with probability `weight / total usable weight`
//! from a Vose alias table built when the snapshot is published (see
//! [`Sampler`]): O(1) per pick, two random numbers, whatever the
//! number of hosts.
//!
//! Randomness: fastrand's thread-local wyrand by default (no shared state, no lock), or
//! [`Random::with_seed`] for reproducible sequences (a seed mixed with a per-pick atomic
//! counter, safe to share between threads).
//!
//! Failover: a second host drawn the same way among the others, then the hosts after it
//! in configuration order. A host that fails to connect thus hands its retries to random
//! survivors, not to its neighbour.

use lb_core::{Backend, Context, Order, Policy, Snapshot};

use crate::dice::Dice;
use crate::sample::Sampler;

/// Uniform or weighted random choice among the usable hosts. See the
/// [module docs](self).
///
/// ```
/// use lb_core::{Balancer, Context, HostTable};
/// use lb_policies::Random;
/// use std::net::SocketAddr;
///
/// let hosts: Vec<SocketAddr> = vec!["10.0.0.1:80".parse().unwrap(), "10.0.0.2:80".parse().unwrap()];
/// let table = HostTable::new("web", hosts.clone()).unwrap();
/// let balancer = Balancer::new(&table, Random::with_seed(42));
/// let lease = balancer.pick(&Context::new()).unwrap();
/// assert!(hosts.contains(lease.backend()));
/// ```
#[derive(Debug)]
pub struct Random {
    dice: Dice,
}

impl Random {
    /// Random choice with the defaults:
    /// - thread-local randomness, seeded from the operating system per thread;
    /// - weighted whenever the usable hosts' weights differ, uniform otherwise.
    pub fn new() -> Self {
        Random { dice: Dice::Thread }
    }

    /// Random choice with reproducible randomness: the same seed, table and sequence of
    /// picks give the same hosts. Picks from several threads interleave in whatever
    /// order they reach the shared counter.
    pub fn with_seed(seed: u64) -> Self {
        Random {
            dice: Dice::seeded(seed),
        }
    }
}

impl Default for Random {
    fn default() -> Self {
        Self::new()
    }
}

impl Policy for Random {
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
        if plan.is_empty() {
            return;
        }
        let usable = snapshot.usable();
        let mut roll = self.dice.roll();
        let first = plan.pick(&mut roll);
        order.prefer(usable[first] as usize);
        if plan.len() > 1 {
            let second = usable[plan.pick_other(&mut roll, first)] as usize;
            order.prefer(second);
            order.scan_from(second + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{candidates, down, picks, table};
    use lb_core::Balancer;

    #[test]
    fn seeded_picks_repeat() {
        let a = Balancer::new(table(&[1, 1, 1, 1]), Random::with_seed(9));
        let b = Balancer::new(table(&[1, 1, 1, 1]), Random::with_seed(9));
        let c = Balancer::new(table(&[1, 1, 1, 1]), Random::with_seed(10));
        assert_eq!(picks(&a, 50), picks(&b, 50));
        assert_ne!(picks(&a, 50), picks(&c, 50));
    }

    #[test]
    fn down_hosts_are_never_drawn() {
        // [0 DOWN] [1 up] [2 DOWN] [3 up]
        let t = table(&[1, 1, 1, 1]);
        down(&t, 0);
        down(&t, 2);
        let b = Balancer::new(&t, Random::with_seed(1));
        let mut seen = picks(&b, 200);
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen, [1, 3]);
    }

    #[test]
    fn a_single_usable_host_is_the_only_candidate() {
        // [0 DOWN] [1 up, weight 3] [2 DOWN]
        let t = table(&[1, 3, 1]);
        down(&t, 0);
        down(&t, 2);
        let b = Balancer::new(&t, Random::new());
        assert_eq!(candidates(&b), [1]);
        assert!(!b.with_plan(|_, p| p.is_weighted()));
    }

    #[test]
    fn failover_is_a_second_draw_then_the_scan() {
        // Three equal hosts: the first two candidates are distinct draws, the third is
        // the host after the second one in configuration order.
        let b = Balancer::new(table(&[1, 1, 1]), Random::with_seed(5));
        for _ in 0..20 {
            let c = candidates(&b);
            assert_eq!(c.len(), 3);
            assert_ne!(c[0], c[1]);
            assert_eq!(c[2], 3 - c[0] - c[1]);
        }
    }

    #[test]
    fn heavy_host_gets_its_share() {
        // weights 9:1 -> about 900 of 1000 picks on host 0 (binomial sd ~ 9.5).
        let b = Balancer::new(table(&[9, 1]), Random::with_seed(77));
        let heavy = picks(&b, 1000).iter().filter(|&&i| i == 0).count();
        assert!((850..=950).contains(&heavy), "{heavy}");
    }
}
