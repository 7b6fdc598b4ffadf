//! [`Policy`]: how a balancing mode orders candidates, and the [`Order`] it fills.

use crate::{Backend, BackendId, Context, LeaseHook, Snapshot};

/// A balancing mode: from a snapshot and a [`Context`], the hosts to try, best first.
///
/// A policy only *orders*; the table *admits*. The policy names up to
/// [`Order::CAPACITY`] preferred hosts and where a forward scan over the table starts;
/// [`Candidates`](crate::Candidates) then yields the usable ones among the preferred,
/// followed by every other usable host in scan order. So every candidate sequence is
/// finite, free of duplicates and contains each usable host exactly once, whatever the
/// policy does: nobody guesses a `max_iterations`. The first candidate is the pick;
/// the rest is the failover order a relay walks when a connect fails.
///
/// Whatever a policy precomputes (a consistent-hash table, a weighted schedule) lives in
/// its [`Plan`](Policy::Plan), which a [`Balancer`](crate::Balancer) rebuilds when the
/// table publishes a snapshot: never on the pick path. State that must survive
/// snapshots (a round-robin cursor) lives in the policy itself.
///
/// A health or admin change is planned by the thread that made it, which may be an
/// async worker (a relay's passive health mark): for such a snapshot (same
/// [`membership_version`](Snapshot::membership_version) as `previous`) `plan` must cost
/// O(hosts) with a small constant, reusing what depends on membership only. Costly
/// work belongs to membership changes, which the table plans on the thread of the
/// membership change, outside its lock (see [`table`](crate::table)).
///
/// ```
/// use lb_core::{Backend, Balancer, Context, Order, Policy, Snapshot, HostTable};
/// use std::net::SocketAddr;
///
/// /// Always prefers the host with the lowest id: a toy "primary" mode.
/// struct LowestId;
///
/// impl Policy for LowestId {
///     type Plan = usize; // index of the lowest id, computed once per snapshot
///     fn plan<B: Backend>(&self, snap: &Snapshot<B>, _: Option<(&Snapshot<B>, &usize)>) -> usize {
///         (0..snap.len()).min_by_key(|&i| snap.id(i)).unwrap_or(0)
///     }
///     fn order<B: Backend>(&self, plan: &usize, _: &Snapshot<B>, _: &Context<'_>, order: &mut Order) {
///         order.prefer(*plan);
///         order.scan_from(*plan);
///     }
/// }
///
/// let a: SocketAddr = "10.0.0.1:80".parse().unwrap();
/// let b: SocketAddr = "10.0.0.2:80".parse().unwrap();
/// let table = HostTable::new("web", [a, b]).unwrap();
/// let balancer = Balancer::new(&table, LowestId);
/// let lease = balancer.pick(&Context::new()).unwrap();
/// let lowest = if a.id() < b.id() { a } else { b };
/// assert_eq!(*lease.backend(), lowest);
/// ```
pub trait Policy: Send + Sync + 'static {
    /// What the policy precomputes from a snapshot. `()` when nothing.
    type Plan: Send + Sync + 'static;

    /// Builds the plan for a newly published snapshot. `previous` is the snapshot and
    /// plan it replaces: compare [`Snapshot::membership_version`] to reuse expensive
    /// parts when only health or admin state changed.
    fn plan<B: Backend>(
        &self,
        snapshot: &Snapshot<B>,
        previous: Option<(&Snapshot<B>, &Self::Plan)>,
    ) -> Self::Plan;

    /// Fills `order` with the preferred hosts for `ctx` and the start of the scan.
    /// Called once per pick; must not allocate or block.
    fn order<B: Backend>(
        &self,
        plan: &Self::Plan,
        snapshot: &Snapshot<B>,
        ctx: &Context<'_>,
        order: &mut Order,
    );

    /// Called when a lease is taken on host `id` for `ctx`; the returned hook is told
    /// when that lease ends. Default: nothing to track.
    fn leased(&self, ctx: &Context<'_>, id: BackendId) -> Option<LeaseHook> {
        let _ = (ctx, id);
        None
    }
}

/// A policy's preference for one pick: up to [`CAPACITY`](Order::CAPACITY) preferred
/// host indexes, best first, and where the forward scan over the rest starts.
///
/// Duplicates are ignored, as are preferences beyond the capacity. A fresh order
/// prefers nothing and scans from 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Order {
    preferred: [u32; Order::CAPACITY],
    len: u8,
    scan_from: u32,
}

impl Default for Order {
    fn default() -> Self {
        Self::new()
    }
}

impl Order {
    /// How many hosts an order can prefer explicitly.
    pub const CAPACITY: usize = 8;

    /// An empty order.
    #[inline]
    pub const fn new() -> Self {
        Order {
            preferred: [0; Order::CAPACITY],
            len: 0,
            scan_from: 0,
        }
    }

    /// Prefers the host at `index` after those already preferred. Returns `false` when
    /// the order is full (the host is then reached by the scan). A host preferred twice
    /// keeps its first place.
    #[inline]
    pub fn prefer(&mut self, index: usize) -> bool {
        let index = index as u32;
        if self.contains(index) {
            return true;
        }
        if self.is_full() {
            return false;
        }
        self.preferred[self.len as usize] = index;
        self.len += 1;
        true
    }

    /// Starts the scan over the remaining hosts at `index` (taken modulo the table
    /// size).
    #[inline]
    pub fn scan_from(&mut self, index: usize) {
        self.scan_from = index as u32;
    }

    /// The preferred indexes, best first.
    #[inline]
    pub fn preferred(&self) -> &[u32] {
        &self.preferred[..self.len as usize]
    }

    /// Where the scan starts.
    pub fn scan_start(&self) -> usize {
        self.scan_from as usize
    }

    /// Whether no more hosts can be preferred.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len as usize == Order::CAPACITY
    }

    /// Whether `index` is among the preferred.
    #[inline]
    pub fn contains(&self, index: u32) -> bool {
        self.preferred().contains(&index)
    }

    pub(crate) fn walker(&self) -> Walker {
        Walker { pos: 0 }
    }
}

/// A position in the candidate sequence of an [`Order`]: the preferred hosts first,
/// then the scan. Shared by [`Balancer::pick`](crate::Balancer::pick) and
/// [`Candidates`](crate::Candidates).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Walker {
    pos: u32,
}

impl Walker {
    /// The next usable host index, or `None` when every host has been offered.
    pub(crate) fn next<B: Backend>(&mut self, order: &Order, snap: &Snapshot<B>) -> Option<usize> {
        let n = snap.len() as u64;
        let preferred = order.preferred();
        loop {
            let pos = self.pos as u64;
            if pos < preferred.len() as u64 {
                self.pos += 1;
                let i = preferred[pos as usize] as usize;
                if snap.is_usable(i) {
                    return Some(i);
                }
                continue;
            }
            let step = pos - preferred.len() as u64;
            if step >= n {
                return None;
            }
            self.pos += 1;
            let i = ((order.scan_from as u64 + step) % n) as u32;
            if !order.contains(i) && snap.is_usable(i as usize) {
                return Some(i as usize);
            }
        }
    }
}
