//! [`RoundRobin`]: relayd's `mode roundrobin`, and smooth weighted round-robin when the
//! hosts' weights differ.
//!
//! **Equal weights: relayd's cursor.** relayd's `relay_from_table` keeps a cursor over
//! all configured hosts, up or down. A pick starts at the cursor; if that host is not
//! usable it takes the first usable one after it (wrapping), and the cursor then moves
//! past the chosen host. We keep exactly that, with two differences that only matter
//! under load: the "first usable at or after" lookup is a table precomputed per
//! snapshot (O(1) per pick, however many hosts are down), and the cursor moves with a
//! compare-exchange, so two concurrent picks never both take the host after a down
//! one.
//!
//! **Unequal weights: smooth weighted round-robin** (nginx's algorithm, 2012). Over
//! every cycle of `S` picks, `S` being the sum of the configured hosts' weights, each
//! host gets exactly `weight` picks, spread out rather than in bursts. The cycle depends
//! only on the membership (hosts and weights): it is precomputed when hosts are added,
//! removed or re-weighted, and shared by every snapshot until then, so a health or
//! admin change costs O(hosts) (the cursor's lookup table), never a new cycle. A pick
//! reads the entry at a shared position: O(1). A cycle longer than the
//! [schedule limit](RoundRobin::with_schedule_limit) (default 2^20 entries), or too
//! costly to build, is not precomputed: picks then run nginx's algorithm live under a
//! small mutex, exactly, over the same membership.
//!
//! **What a down host's share does.** A pick takes the next entry of the cycle whose
//! host is usable, skipping (and consuming) the entries of hosts that are down,
//! disabled or draining. So over every pass through the cycle (`S` entries) each usable
//! host gets exactly its `weight` picks, and the down hosts' entries are simply not
//! picked: their share is spread over the survivors in proportion to their weights,
//! pass by pass, and each survivor's picks stay in the smooth order of the full cycle.
//! A host that comes back takes its entries again from the next pass on. When the
//! [`MAX_SKIP`] entries after the position all belong to unusable hosts (only when
//! nearly all the weight is down: the heaviest usable host has less than about
//! `1 / MAX_SKIP` of it), the pick falls back to relayd's cursor, which keeps every
//! usable host in rotation without the exact proportions.
//!
//! The failover order after a pick is the hosts that follow it in configuration order,
//! as relayd would scan.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use lb_core::{Backend, Context, Order, Policy, Snapshot};
use parking_lot::Mutex;

use crate::smooth::{self, Smooth};

/// How many entries of a smooth cycle a pick looks at for a usable host before it falls
/// back to relayd's cursor (see the [module docs](self)).
pub const MAX_SKIP: usize = 1024;

/// relayd's round-robin, smooth-weighted when weights differ. See the
/// [module docs](self).
///
/// ```
/// use lb_core::{Balancer, Context, Health, HostTable};
/// use lb_policies::RoundRobin;
/// use std::net::SocketAddr;
///
/// let hosts: Vec<SocketAddr> = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]
///     .iter().map(|a| a.parse().unwrap()).collect();
/// let table = HostTable::new("web", hosts.clone()).unwrap();
/// let balancer = Balancer::new(&table, RoundRobin::new());
/// table.set_health(table.snapshot().id(1), Health::Down, "check failed").unwrap();
/// let picks: Vec<SocketAddr> = (0..4)
///     .map(|_| *balancer.pick(&Context::new()).unwrap().backend())
///     .collect();
/// assert_eq!(picks, [hosts[0], hosts[2], hosts[0], hosts[2]]);
/// ```
#[derive(Debug)]
pub struct RoundRobin {
    /// relayd's cursor: the configured index the next pick starts from.
    cursor: AtomicUsize,
    /// Picks made from smooth schedules: the next pick reads `schedule[position % len]`.
    position: AtomicU64,
    schedule_limit: usize,
}

impl RoundRobin {
    /// The default schedule limit: 2^20 entries (4 MiB per balancer).
    pub const DEFAULT_SCHEDULE_LIMIT: usize = 1 << 20;

    /// Round-robin with the defaults:
    /// - the cursor starts at the first configured host;
    /// - weights are honoured: smooth weighted round-robin whenever the configured
    ///   hosts' weights differ, relayd's cursor when they are equal;
    /// - smooth cycles of up to [`DEFAULT_SCHEDULE_LIMIT`](Self::DEFAULT_SCHEDULE_LIMIT)
    ///   entries are precomputed.
    pub fn new() -> Self {
        RoundRobin {
            cursor: AtomicUsize::new(0),
            position: AtomicU64::new(0),
            schedule_limit: Self::DEFAULT_SCHEDULE_LIMIT,
        }
    }

    /// The same policy precomputing smooth cycles of at most `entries` picks. Longer
    /// cycles are picked live under a mutex (same picks, slower under contention);
    /// `0` never precomputes.
    pub fn with_schedule_limit(mut self, entries: usize) -> Self {
        self.schedule_limit = entries;
        self
    }

    /// The configured index relayd's cursor points at (the next unweighted pick starts
    /// there).
    pub fn cursor(&self) -> usize {
        self.cursor.load(Ordering::Relaxed)
    }

    /// relayd's pick: the first usable host at or after the cursor, which then moves
    /// past it.
    fn cursor_pick(&self, plan: &RoundRobinPlan) -> Option<usize> {
        let n = plan.next_usable.len();
        if n == 0 {
            return None;
        }
        let mut seen = self.cursor.load(Ordering::Relaxed);
        loop {
            let chosen = plan.next_usable[seen % n] as usize;
            let next = if chosen + 1 == n { 0 } else { chosen + 1 };
            match self.cursor.compare_exchange_weak(
                seen,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(chosen),
                Err(now) => seen = now,
            }
        }
    }
}

impl RoundRobin {
    /// The next entry of `schedule` whose host is usable, consuming the entries before
    /// it; `None` when the next [`MAX_SKIP`] entries are all unusable.
    fn schedule_pick<B: Backend>(&self, schedule: &[u32], snapshot: &Snapshot<B>) -> Option<usize> {
        let len = schedule.len() as u64;
        let mut seen = self.position.load(Ordering::Relaxed);
        loop {
            let start = (seen % len) as usize;
            let mut found = None;
            for k in 0..MAX_SKIP.min(schedule.len()) {
                let at = start + k;
                let i = schedule[if at >= schedule.len() {
                    at - schedule.len()
                } else {
                    at
                }];
                if snapshot.is_usable(i as usize) {
                    found = Some((k, i as usize));
                    break;
                }
            }
            let (skipped, chosen) = match found {
                Some((k, i)) => (k as u64 + 1, Some(i)),
                None => (MAX_SKIP.min(schedule.len()) as u64, None),
            };
            match self.position.compare_exchange_weak(
                seen,
                seen.wrapping_add(skipped),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return chosen,
                Err(now) => seen = now,
            }
        }
    }
}

impl Default for RoundRobin {
    fn default() -> Self {
        Self::new()
    }
}

/// What [`RoundRobin`] precomputes from a snapshot.
pub struct RoundRobinPlan {
    /// For each configured index, the first usable index at or after it (wrapping).
    /// Empty when no host is usable.
    next_usable: Box<[u32]>,
    /// The smooth cycle of the membership, shared until hosts or weights change.
    weighted: Arc<Weighted>,
    membership: u64,
}

enum Weighted {
    /// Equal weights: relayd's cursor.
    Off,
    /// One precomputed smooth cycle of host indexes.
    Schedule(Box<[u32]>),
    /// nginx's algorithm run live: the cycle was too long to precompute.
    Live(Mutex<Smooth>),
}

impl RoundRobinPlan {
    /// Whether picks follow a smooth weighted cycle (the configured weights differ).
    pub fn is_weighted(&self) -> bool {
        !matches!(*self.weighted, Weighted::Off)
    }

    /// The precomputed smooth cycle over every configured host (usable or not), as
    /// host indexes; `None` when weights are equal or the cycle is picked live.
    pub fn schedule(&self) -> Option<&[u32]> {
        match &*self.weighted {
            Weighted::Schedule(s) => Some(s),
            _ => None,
        }
    }

    /// Whether two plans share one smooth cycle (no membership change between them).
    pub fn shares_cycle_with(&self, other: &RoundRobinPlan) -> bool {
        Arc::ptr_eq(&self.weighted, &other.weighted)
    }
}

impl fmt::Debug for RoundRobinPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match &*self.weighted {
            Weighted::Off => "cursor".to_owned(),
            Weighted::Schedule(s) => format!("smooth schedule of {}", s.len()),
            Weighted::Live(s) => format!("smooth live, cycle {}", s.lock().period()),
        };
        f.debug_struct("RoundRobinPlan")
            .field("hosts", &self.next_usable.len())
            .field("mode", &mode)
            .finish()
    }
}

impl Policy for RoundRobin {
    type Plan = RoundRobinPlan;

    fn plan<B: Backend>(
        &self,
        snapshot: &Snapshot<B>,
        previous: Option<(&Snapshot<B>, &RoundRobinPlan)>,
    ) -> RoundRobinPlan {
        let usable = snapshot.usable();
        let n = snapshot.len();
        let mut next_usable = Vec::new();
        if let Some(&first) = usable.first() {
            // Walk backwards: the first usable at or after i, wrapping to the first one.
            next_usable = vec![first; n];
            let mut next = first;
            for i in (0..n).rev() {
                if snapshot.is_usable(i) {
                    next = i as u32;
                }
                next_usable[i] = next;
            }
        }
        let membership = snapshot.membership_version();
        let weighted = match previous {
            Some((_, p)) if p.membership == membership => p.weighted.clone(),
            _ => Arc::new(self.cycle(snapshot)),
        };
        let plan = RoundRobinPlan {
            next_usable: next_usable.into(),
            weighted,
            membership,
        };
        tracing::trace!(table = snapshot.table(), version = snapshot.version(), plan = ?plan, "round-robin plan built");
        plan
    }

    fn order<B: Backend>(
        &self,
        plan: &RoundRobinPlan,
        snapshot: &Snapshot<B>,
        _ctx: &Context<'_>,
        order: &mut Order,
    ) {
        if plan.next_usable.is_empty() {
            return;
        }
        let chosen = match &*plan.weighted {
            Weighted::Off => None,
            Weighted::Schedule(s) => self.schedule_pick(s, snapshot),
            Weighted::Live(s) => {
                let mut smooth = s.lock();
                (0..MAX_SKIP)
                    .map(|_| smooth.next() as usize)
                    .find(|&i| snapshot.is_usable(i))
            }
        };
        if let Some(i) = chosen.or_else(|| self.cursor_pick(plan)) {
            order.prefer(i);
            order.scan_from(i + 1);
        }
    }
}

impl RoundRobin {
    /// The smooth cycle over every configured host, for a new membership.
    fn cycle<B: Backend>(&self, snapshot: &Snapshot<B>) -> Weighted {
        let hosts: Vec<(u32, u64)> = (0..snapshot.len())
            .map(|i| (i as u32, u64::from(snapshot.weight(i).get())))
            .collect();
        let weighted = if hosts.windows(2).all(|w| w[0].1 == w[1].1) {
            Weighted::Off
        } else if let Some(s) = smooth::schedule(&hosts, self.schedule_limit) {
            Weighted::Schedule(s)
        } else {
            // `hosts` is not empty here: unequal weights need two hosts.
            Smooth::new(&hosts).map_or(Weighted::Off, |s| Weighted::Live(Mutex::new(s)))
        };
        tracing::debug!(
            table = snapshot.table(),
            membership = snapshot.membership_version(),
            hosts = hosts.len(),
            "round-robin cycle built"
        );
        weighted
    }
}

#[cfg(test)]
mod tests;
