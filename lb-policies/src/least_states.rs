//! [`LeastStates`]: pf's and relayd's `least-states`: the host with the fewest active
//! states, weighted, with ties shared.
//!
//! pf (`pf_map_addr`, `PF_POOL_LEASTSTATES`) scans the pool from its cursor, keeps the
//! first host with strictly fewer states, and stops early at a host with none; weighted
//! pools compare `65535 * states / weight`. relayd offers the mode for redirects only,
//! without weights. Here:
//!
//! - a host's load is its active states ([`HostState::active`](lb_core::HostState),
//!   the leases alive on it) divided by its weight, compared exactly (`a.states ·
//!   b.weight` against `b.states · a.weight`) rather than through a truncated quotient;
//! - the scan runs over the usable hosts ([`Snapshot::usable`]) from a start that
//!   rotates by one on every pick, so hosts with equal load take turns instead of the
//!   first one in configuration order taking everything (with short connections every
//!   host is at 0 most of the time: without rotation, host 0 would get all of them);
//! - the scan stops at the first host with no states, which no other host can beat.
//!
//! A pick costs O(usable hosts): fine for tables of tens of hosts. For large tables,
//! [`PowerOfTwo`](crate::PowerOfTwo) gets most of the benefit in O(1). Counts are read
//! with relaxed atomics while other threads take and drop leases, so under concurrency
//! "fewest" is as of the moment each host is read.
//!
//! Failover: the hosts after the pick in configuration order.

use std::sync::atomic::{AtomicUsize, Ordering};

use lb_core::{Backend, Context, Order, Policy, Snapshot};

use crate::load::Load;

/// The usable host with the fewest active states per weight; ties rotate. See the
/// [module docs](self).
///
/// ```
/// use lb_core::{Balancer, Context, HostTable};
/// use lb_policies::LeastStates;
/// use std::net::SocketAddr;
///
/// let hosts: Vec<SocketAddr> = vec!["10.0.0.1:80".parse().unwrap(), "10.0.0.2:80".parse().unwrap()];
/// let table = HostTable::new("web", hosts.clone()).unwrap();
/// let balancer = Balancer::new(&table, LeastStates::new());
/// let first = balancer.pick(&Context::new()).unwrap();
/// // The first host is busy now: the next pick goes to the other one.
/// let second = balancer.pick(&Context::new()).unwrap();
/// assert_ne!(first.backend(), second.backend());
/// ```
#[derive(Debug, Default)]
pub struct LeastStates {
    /// Where the next scan starts, as a position in the usable hosts (modulo their
    /// number).
    rotor: AtomicUsize,
}

impl LeastStates {
    /// Least-states with the defaults:
    /// - weighted: states per weight, compared exactly;
    /// - the first scan starts at the first usable host, each later one a host further.
    pub fn new() -> Self {
        LeastStates {
            rotor: AtomicUsize::new(0),
        }
    }
}

impl Policy for LeastStates {
    type Plan = ();

    fn plan<B: Backend>(&self, _: &Snapshot<B>, _: Option<(&Snapshot<B>, &())>) {}

    fn order<B: Backend>(
        &self,
        _plan: &(),
        snapshot: &Snapshot<B>,
        _ctx: &Context<'_>,
        order: &mut Order,
    ) {
        let usable = snapshot.usable();
        if usable.is_empty() {
            return;
        }
        let start = self.rotor.fetch_add(1, Ordering::Relaxed) % usable.len();
        let (tail, head) = usable.split_at(start);
        let mut best: Option<(usize, Load)> = None;
        for &i in head.iter().chain(tail) {
            let i = i as usize;
            let load = Load::of(snapshot, i);
            if best.is_none_or(|(_, b)| load.is_lighter_than(b)) {
                best = Some((i, load));
                if load.states == 0 {
                    break;
                }
            }
        }
        if let Some((i, _)) = best {
            order.prefer(i);
            order.scan_from(i + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{candidates, down, index_of, picks, table};
    use lb_core::Balancer;

    #[test]
    fn equal_hosts_take_turns() {
        // All at 0 states, leases dropped at once: the rotating start shares them out.
        let b = Balancer::new(table(&[1, 1, 1]), LeastStates::new());
        assert_eq!(picks(&b, 6), [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn held_leases_steer_picks() {
        // states [0: 1] [1: 0] [2: 1]: the scan starts at 0 but host 1 is lighter.
        let t = table(&[1, 1, 1]);
        let b = Balancer::new(&t, LeastStates::new());
        let ctx = Context::new();
        let mut held: Vec<_> = (0..3).map(|_| b.pick(&ctx).unwrap()).collect(); // 0, 1, 2
        held.remove(1);
        let fourth = b.pick(&ctx).unwrap(); // rotor 3 -> start 0
        assert_eq!(index_of(&t, &fourth), 1);
        // states [0: 1] [1: 1] [2: 1]: all equal, the start (1) wins.
        let fifth = b.pick(&ctx).unwrap();
        assert_eq!(index_of(&t, &fifth), 1);
        // states [0: 1] [1: 2] [2: 1]: start 2 -> 2.
        let sixth = b.pick(&ctx).unwrap();
        assert_eq!(index_of(&t, &sixth), 2);
    }

    #[test]
    fn weights_divide_states() {
        // [0: w=3, 2 states] [1: w=1, 1 state]: 2/3 < 1/1, so host 0.
        let t = table(&[3, 1]);
        let b = Balancer::new(&t, LeastStates::new());
        let ctx = Context::new();
        let first = b.pick(&ctx).unwrap(); // 0 (start 0, 0 states)
        let second = b.pick(&ctx).unwrap(); // 1 (start 1, 0 states)
        let third = b.pick(&ctx).unwrap(); // 0: 1/3 < 1/1
        let fourth = b.pick(&ctx).unwrap(); // 0: 2/3 < 1/1
        let got: Vec<usize> = [&first, &second, &third, &fourth]
            .iter()
            .map(|l| index_of(&t, l))
            .collect();
        assert_eq!(got, [0, 1, 0, 0]);
        // Now 3/3 = 1/1: a tie, broken by the rotating start (5th pick starts at 0).
        let fifth = b.pick(&ctx).unwrap();
        assert_eq!(index_of(&t, &fifth), 0);
    }

    #[test]
    fn down_hosts_are_skipped_and_failover_scans_on() {
        // [0 up] [1 DOWN] [2 up] [3 up], all idle: picks rotate over 0, 2, 3.
        let t = table(&[1, 1, 1, 1]);
        down(&t, 1);
        let b = Balancer::new(&t, LeastStates::new());
        assert_eq!(picks(&b, 3), [0, 2, 3]);
        assert_eq!(candidates(&b), [0, 2, 3]);
        assert_eq!(candidates(&b), [2, 3, 0]);
    }
}
