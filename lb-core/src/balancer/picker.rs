//! [`Picker`]: a balancer's snapshot and plan cached by one thread or task.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use arc_swap::{ArcSwap, Cache};

use super::{Balancer, Candidate, Candidates, Prepared};
use crate::{Backend, Context, HostSlot, Lease, Policy, Result, Snapshot, Table};

/// The balancer's shared snapshot and plan, as [`Cache`] wants it: something that
/// dereferences to the `ArcSwap`.
struct Shared<P: Policy, B: Backend>(Arc<Balancer<P, B>>);

impl<P: Policy, B: Backend> Deref for Shared<P, B> {
    type Target = ArcSwap<Prepared<P::Plan, B>>;

    fn deref(&self) -> &Self::Target {
        &self.0.prepared
    }
}

impl<P: Policy, B: Backend> Clone for Shared<P, B> {
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

/// A [`Balancer`] with its snapshot and plan cached, for one thread or task: the fast
/// way to decide, through the public API.
///
/// [`Balancer::pick`] loads the shared snapshot through `arc-swap` on every call: a
/// protected load (a thread-local debt slot, taken and given back) that costs about as
/// much as a hash-mode decision itself. A picker holds the snapshot and plan instead
/// (an [`arc_swap::Cache`]) and compares, on every call, the balancer's current pointer
/// with its own: one relaxed load, no write to any shared cache line. When they differ
/// it takes the new ones first.
///
/// Every method first checks, with one atomic load, whether the balancer has stored a
/// newer snapshot and plan since the last call, and takes them if so: a picker never
/// serves a plan the balancer had already replaced when the call began ("already" as
/// the memory model orders it: on the thread whose table write made the change, or on
/// any thread that learned of the write through a lock, a channel or an `.await` on
/// it; a thread that merely races with the write gets the old or the new one). Picks,
/// candidates and leases are exactly [`Balancer`]'s (same policy, same state counts);
/// only the load of the shared snapshot is saved.
///
/// Use [`Balancer::pick`] for an occasional decision or one shared by many threads
/// without a place to keep state; use a picker where one thread or task decides again
/// and again (`&mut self` methods: one picker per worker, or one per clone of a
/// service). Cloning a picker gives an independent one over the same balancer.
///
/// The price: an idle picker keeps the last snapshot and plan it used alive (for
/// `Consistent` over many hosts, a table of some MiB) until its next call or its drop.
/// Keep pickers where decisions are made and drop them with their worker or task.
///
/// ```
/// use lb_core::{Balancer, Context, Health, HostTable};
/// # use lb_core::{Backend, Order, Policy, Snapshot};
/// # struct First;
/// # impl Policy for First {
/// #     type Plan = ();
/// #     fn plan<B: Backend>(&self, _: &Snapshot<B>, _: Option<(&Snapshot<B>, &())>) {}
/// #     fn order<B: Backend>(&self, _: &(), _: &Snapshot<B>, _: &Context<'_>, _: &mut Order) {}
/// # }
/// use std::net::SocketAddr;
///
/// let hosts: Vec<SocketAddr> = vec!["10.0.0.1:443".parse()?, "10.0.0.2:443".parse()?];
/// let table = HostTable::new("exchange", hosts)?;
/// let balancer = Balancer::new(&table, First);
/// let mut picker = balancer.picker(); // one per worker thread or task
/// let client = Context::from_client("192.0.2.7:50000".parse()?);
/// assert_eq!(picker.pick(&client)?.backend().to_string(), "10.0.0.1:443");
/// // A change is seen by the next call: no stale plan.
/// table.set_health(table.snapshot().id(0), Health::Down, "check failed")?;
/// assert_eq!(picker.choose(&client).map(|h| h.name().to_owned()).as_deref(), Some("10.0.0.2:443"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Picker<P: Policy, B: Backend = crate::Host> {
    balancer: Arc<Balancer<P, B>>,
    cache: PreparedCache<P, B>,
}

/// A picker's copy of the balancer's snapshot and plan, and where to check for a newer.
type PreparedCache<P, B> = Cache<Shared<P, B>, Arc<Prepared<<P as Policy>::Plan, B>>>;

impl<P: Policy, B: Backend> Picker<P, B> {
    /// A picker over `balancer`, holding its current snapshot and plan.
    pub fn new(balancer: Arc<Balancer<P, B>>) -> Self {
        Picker {
            cache: Cache::new(Shared(balancer.clone())),
            balancer,
        }
    }

    /// The balancer.
    pub fn balancer(&self) -> &Arc<Balancer<P, B>> {
        &self.balancer
    }

    /// The snapshot the next decision would use (the balancer's current one).
    pub fn snapshot(&mut self) -> &Arc<Snapshot<B>> {
        &self.cache.load().snapshot
    }

    /// The host a pick for `ctx` would lease, without leasing it: the decision alone
    /// (for routing that counts no state, or to inspect a mapping). `None` when no
    /// host is usable.
    #[inline]
    pub fn choose(&mut self, ctx: &Context<'_>) -> Option<&Arc<HostSlot<B>>> {
        let prepared = self.cache.load();
        let snap = &prepared.snapshot;
        let i = self.balancer.policy.first(&prepared.plan, snap, ctx)?;
        Some(snap.host(i))
    }

    /// Picks a host for `ctx` and leases it, or [`Error::NoUsableHost`]: as
    /// [`Balancer::pick`].
    ///
    /// [`Error::NoUsableHost`]: crate::Error::NoUsableHost
    #[inline]
    pub fn pick(&mut self, ctx: &Context<'_>) -> Result<Lease<B>> {
        self.balancer.pick_from(self.cache.load(), ctx)
    }

    /// Every usable host for `ctx`, best first: as [`Balancer::candidates`]. The
    /// iterator owns its snapshot (one reference count), so it can be held across
    /// `.await`s.
    pub fn candidates(&mut self, ctx: &Context<'_>) -> Candidates<B> {
        self.balancer.candidates_from(self.cache.load(), ctx)
    }

    /// Leases a candidate: as [`Balancer::lease`].
    pub fn lease(&self, candidate: &Candidate<B>, ctx: &Context<'_>) -> Lease<B> {
        self.balancer.lease(candidate, ctx)
    }
}

impl<P: Policy, B: Backend> Clone for Picker<P, B> {
    fn clone(&self) -> Self {
        Picker::new(self.balancer.clone())
    }
}

impl<P: Policy + fmt::Debug, B: Backend> fmt::Debug for Picker<P, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Picker")
            .field("balancer", &self.balancer)
            .finish()
    }
}

/// A [`Picker`] behind a trait object, as [`Select`](crate::Select) is a [`Balancer`]
/// behind one: what a relay worker holds when the policy is chosen at run time. Get one
/// from [`Select::boxed_picker`](crate::Select::boxed_picker); implemented by every [`Picker`].
pub trait Pick<B: Backend>: Send {
    /// The table picked from.
    fn table(&self) -> &Arc<dyn Table<B>>;
    /// See [`Picker::choose`].
    fn choose(&mut self, ctx: &Context<'_>) -> Option<&Arc<HostSlot<B>>>;
    /// See [`Picker::pick`].
    fn pick(&mut self, ctx: &Context<'_>) -> Result<Lease<B>>;
    /// See [`Picker::candidates`].
    fn candidates(&mut self, ctx: &Context<'_>) -> Candidates<B>;
    /// See [`Picker::lease`].
    fn lease(&self, candidate: &Candidate<B>, ctx: &Context<'_>) -> Lease<B>;
}

impl<P: Policy, B: Backend> Pick<B> for Picker<P, B> {
    fn table(&self) -> &Arc<dyn Table<B>> {
        self.balancer.table()
    }
    fn choose(&mut self, ctx: &Context<'_>) -> Option<&Arc<HostSlot<B>>> {
        Picker::choose(self, ctx)
    }
    fn pick(&mut self, ctx: &Context<'_>) -> Result<Lease<B>> {
        Picker::pick(self, ctx)
    }
    fn candidates(&mut self, ctx: &Context<'_>) -> Candidates<B> {
        Picker::candidates(self, ctx)
    }
    fn lease(&self, candidate: &Candidate<B>, ctx: &Context<'_>) -> Lease<B> {
        Picker::lease(self, candidate, ctx)
    }
}
