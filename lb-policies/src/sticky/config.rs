//! [`StickyBuilder`]: the settings of a [`StickyAddress`], with pf's defaults.

use std::sync::Arc;
use std::time::Duration;

use lb_core::{Clock, Error, Policy, SystemClock};

use super::table::SourceTable;
use super::StickyAddress;

/// The default capacity: pf's `src-nodes` limit.
pub const DEFAULT_CAPACITY: usize = 10_000;
/// The default number of shards.
pub const DEFAULT_SHARDS: usize = 16;
/// The largest accepted capacity (2^30 entries, about 60 GiB of table).
pub const MAX_CAPACITY: usize = 1 << 30;
/// The largest accepted number of shards.
pub const MAX_SHARDS: usize = 1024;

/// Builds a [`StickyAddress`]. Start with [`StickyAddress::builder`].
///
/// Defaults:
/// - `timeout`: 0, pf's `src.track` default: an entry is removed when its last lease
///   ends;
/// - `capacity`: 10 000 entries, pf's `src-nodes` limit;
/// - `shards`: 16 locks, each guarding its own maps (picks of different sources rarely
///   contend);
/// - `reserve_ipv6`: `false`: the IPv4 entries are reserved for the whole capacity at
///   build time, each shard's IPv6 entries on its first IPv6 source (two allocations per
///   shard, then none);
/// - `clock`: [`SystemClock`].
///
/// ```
/// use lb_core::ManualClock;
/// use lb_policies::sticky::StickyAddress;
/// use std::time::Duration;
/// # use lb_core::{Backend, Context, Order, Policy, Snapshot};
/// # struct First;
/// # impl Policy for First {
/// #     type Plan = ();
/// #     fn plan<B: Backend>(&self, _: &Snapshot<B>, _: Option<(&Snapshot<B>, &())>) {}
/// #     fn order<B: Backend>(&self, _: &(), _: &Snapshot<B>, _: &Context<'_>, _: &mut Order) {}
/// # }
/// let sticky = StickyAddress::builder(First)
///     .timeout(Duration::from_secs(300))
///     .capacity(50_000)
///     .clock(ManualClock::new())
///     .build()?;
/// assert_eq!(sticky.capacity(), 50_000);
/// assert_eq!(sticky.timeout(), Duration::from_secs(300));
/// # Ok::<(), lb_core::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct StickyBuilder<P, C = SystemClock> {
    inner: P,
    timeout: Duration,
    capacity: usize,
    shards: usize,
    reserve_ipv6: bool,
    clock: C,
}

impl<P: Policy> StickyBuilder<P, SystemClock> {
    pub(super) fn new(inner: P) -> Self {
        StickyBuilder {
            inner,
            timeout: Duration::ZERO,
            capacity: DEFAULT_CAPACITY,
            shards: DEFAULT_SHARDS,
            reserve_ipv6: false,
            clock: SystemClock,
        }
    }
}

impl<P: Policy, C: Clock> StickyBuilder<P, C> {
    /// How long an entry outlives its last lease (pf's `src.track`). Default 0.
    ///
    /// An entry whose last lease ended at `t` is used by picks at any time before
    /// `t + timeout` and expired from `t + timeout` on (like pf's purge, which removes a
    /// source node once `expire <= now`). Resolution: one nanosecond of the clock.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The most entries the table holds (pf's `src-nodes`). Default 10 000.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// How many independently locked shards hold the entries. Default 16.
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = shards;
        self
    }

    /// Reserve the IPv6 entries at build time too, so that not even the first IPv6 source
    /// of a shard allocates. Default `false`.
    pub fn reserve_ipv6(mut self, reserve: bool) -> Self {
        self.reserve_ipv6 = reserve;
        self
    }

    /// The clock that stamps releases and decides expiry. Default [`SystemClock`]; tests
    /// use a [`ManualClock`](lb_core::ManualClock).
    pub fn clock<C2: Clock>(self, clock: C2) -> StickyBuilder<P, C2> {
        StickyBuilder {
            inner: self.inner,
            timeout: self.timeout,
            capacity: self.capacity,
            shards: self.shards,
            reserve_ipv6: self.reserve_ipv6,
            clock,
        }
    }

    /// Builds the policy and reserves its maps, or [`Error::InvalidSetting`] for a
    /// capacity outside `1..=2^30` or a shard count outside `1..=1024`.
    pub fn build(self) -> Result<StickyAddress<P, C>, Error> {
        if !(1..=MAX_CAPACITY).contains(&self.capacity) {
            return Err(Error::InvalidSetting {
                setting: "sticky capacity",
                expected: format!(
                    "1..={MAX_CAPACITY} entries, got {} (pf's src-nodes default is {DEFAULT_CAPACITY})",
                    self.capacity
                ),
            });
        }
        if !(1..=MAX_SHARDS).contains(&self.shards) {
            return Err(Error::InvalidSetting {
                setting: "sticky shards",
                expected: format!("1..={MAX_SHARDS} shards, got {}", self.shards),
            });
        }
        let timeout_ns = u64::try_from(self.timeout.as_nanos()).unwrap_or(u64::MAX);
        let table = SourceTable::new(
            self.capacity,
            self.shards,
            timeout_ns,
            self.reserve_ipv6,
            self.clock,
        );
        Ok(StickyAddress {
            inner: self.inner,
            table: Arc::new(table),
            timeout: self.timeout,
            capacity: self.capacity,
            shards: self.shards,
        })
    }
}
