//! [`Balancer`]: a policy bound to a table, with its plan kept current; the picks and
//! [`Candidates`] it hands out, and the [`Picker`] that caches its plan for one thread or
//! task.
//!
//! A balancer keeps the snapshot it picks from and the plan its policy derived from it,
//! and swaps the two together. It follows the table as described in
//! [`table`](crate::table): a health or admin change is applied by its writer before the
//! write returns (a policy derives it in O(hosts)); a membership change is rebuilt by
//! the thread that made it, outside the table's lock, one rebuild at a time per
//! balancer, while the previous plan serves picks. A health change made during a
//! rebuild does not wait for it: the rebuilding thread applies the newest snapshot when
//! it is done, so the balancer then reflects both changes.

use std::fmt;
use std::sync::{Arc, Weak};

use arc_swap::ArcSwap;

use crate::table::{IntoTable, Watcher};
use crate::{Backend, Context, Error, HostSlot, Lease, Order, Policy, Result, Snapshot, Table};

mod picker;
mod updates;

pub use picker::{Pick, Picker};
use updates::Updates;

/// A snapshot and the plan its policy built from it, swapped together.
struct Prepared<Plan, B> {
    snapshot: Arc<Snapshot<B>>,
    plan: Plan,
}

/// A [`Policy`] bound to a [`Table`]: the thing you pick hosts from.
///
/// The balancer registers with its table and derives the policy's plan from every
/// snapshot the table publishes, storing the snapshot and its plan together (see the
/// [module docs](self) for when and on which thread). A pick is then one load of the
/// shared snapshot, the policy's decision ([`Policy::first`]) and a lease: no lock, no
/// allocation. Where one thread or task picks again and again, a [`Picker`]
/// ([`Balancer::picker`]) saves the shared load: it keeps the snapshot and plan and
/// checks for a newer one with one atomic load per call. Several balancers (different
/// policies, different relays) can share one table and its hosts' counters.
///
/// ```
/// use lb_core::{Balancer, Context, Order, Policy, Snapshot, HostTable, Backend};
/// use std::net::SocketAddr;
/// # struct First;
/// # impl Policy for First {
/// #     type Plan = ();
/// #     fn plan<B: Backend>(&self, _: &Snapshot<B>, _: Option<(&Snapshot<B>, &())>) {}
/// #     fn order<B: Backend>(&self, _: &(), _: &Snapshot<B>, _: &Context<'_>, _: &mut Order) {}
/// # }
/// let hosts: Vec<SocketAddr> = vec!["10.0.0.1:443".parse().unwrap(), "10.0.0.2:443".parse().unwrap()];
/// let table = HostTable::new("exchange", hosts).unwrap();
/// let balancer = Balancer::new(&table, First);
/// let lease = balancer.pick(&Context::new()).unwrap();
/// assert_eq!(lease.backend().port(), 443);
/// assert_eq!(table.snapshot().host(0).state().active(), 1);
/// drop(lease);
/// assert_eq!(table.snapshot().host(0).state().active(), 0);
/// ```
pub struct Balancer<P: Policy, B: Backend = crate::Host> {
    table: Arc<dyn Table<B>>,
    policy: P,
    prepared: ArcSwap<Prepared<P::Plan, B>>,
    updates: Updates<B>,
}

impl<P: Policy, B: Backend> Balancer<P, B> {
    /// Binds `policy` to `table`. The plan for the current snapshot is built here, on
    /// the caller's thread (for a large consistent-hash table, a costly step: call it
    /// where blocking is fine).
    pub fn new(table: impl IntoTable<B>, policy: P) -> Arc<Self> {
        let table = table.into_table();
        let snapshot = table.snapshot();
        let plan = policy.plan(&snapshot, None);
        let this = Arc::new(Balancer {
            table: table.clone(),
            updates: Updates::new(snapshot.version()),
            policy,
            prepared: ArcSwap::from_pointee(Prepared { snapshot, plan }),
        });
        let watcher: Weak<dyn Watcher<B>> = Arc::downgrade(&this) as Weak<dyn Watcher<B>>;
        // Every snapshot after `current` is offered by its writer; catch up with those
        // published since the plan above was built.
        let current = table.watch(watcher);
        this.offer(&current);
        this.settle(current.version());
        this
    }

    /// The table.
    pub fn table(&self) -> &Arc<dyn Table<B>> {
        &self.table
    }

    /// The policy.
    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// The snapshot the balancer currently picks from.
    pub fn snapshot(&self) -> Arc<Snapshot<B>> {
        self.prepared.load().snapshot.clone()
    }

    /// Runs `f` on the current snapshot and plan (for inspection and tests).
    pub fn with_plan<R>(&self, f: impl FnOnce(&Snapshot<B>, &P::Plan) -> R) -> R {
        let prepared = self.prepared.load();
        f(&prepared.snapshot, &prepared.plan)
    }

    /// A [`Picker`] over this balancer: its snapshot and plan cached for one thread or
    /// task, checked with one atomic load per decision. The faster way to decide again
    /// and again from one place; see [`Picker`].
    pub fn picker(self: &Arc<Self>) -> Picker<P, B> {
        Picker::new(self.clone())
    }

    /// Picks a host for `ctx` and leases it, or [`Error::NoUsableHost`].
    ///
    /// Loads the shared snapshot (a protected `arc-swap` load, a few nanoseconds);
    /// a [`Picker`] saves that load where one thread or task decides repeatedly.
    pub fn pick(&self, ctx: &Context<'_>) -> Result<Lease<B>> {
        self.pick_from(&self.prepared.load(), ctx)
    }

    /// Every usable host for `ctx`, best first: the pick, then the failover order.
    /// Calls the policy's `order` once (so a round-robin cursor moves once). The
    /// iterator owns its snapshot: it can be held across `.await`s and sent to tasks.
    pub fn candidates(&self, ctx: &Context<'_>) -> Candidates<B> {
        self.candidates_from(&self.prepared.load(), ctx)
    }

    /// Leases a candidate from [`candidates`](Balancer::candidates), telling the policy
    /// (sticky-address records the placement).
    pub fn lease(&self, candidate: &Candidate<B>, ctx: &Context<'_>) -> Lease<B> {
        self.lease_slot(&candidate.slot, ctx)
    }

    /// A pick from `prepared` (the balancer's own, or a [`Picker`]'s copy).
    #[inline]
    fn pick_from(&self, prepared: &Prepared<P::Plan, B>, ctx: &Context<'_>) -> Result<Lease<B>> {
        let snap = &prepared.snapshot;
        match self.policy.first(&prepared.plan, snap, ctx) {
            Some(i) => Ok(self.lease_slot(snap.host(i), ctx)),
            None => Err(no_usable_host(snap)),
        }
    }

    /// The candidates from `prepared` (the balancer's own, or a [`Picker`]'s copy).
    fn candidates_from(&self, prepared: &Prepared<P::Plan, B>, ctx: &Context<'_>) -> Candidates<B> {
        let mut order = Order::new();
        self.policy
            .order(&prepared.plan, &prepared.snapshot, ctx, &mut order);
        Candidates {
            snapshot: prepared.snapshot.clone(),
            walker: order.walker(),
            order,
        }
    }

    fn lease_slot(&self, slot: &HostSlot<B>, ctx: &Context<'_>) -> Lease<B> {
        let hook = self.policy.leased(ctx, slot.id());
        Lease::acquire(slot, hook)
    }
}

/// The error of a failed pick. Allocation-free: the table name is the snapshot's own
/// `Arc<str>`, cloned (a reference count), not copied.
fn no_usable_host<B: Backend>(snap: &Snapshot<B>) -> Error {
    Error::NoUsableHost {
        table: Arc::clone(&snap.table),
        hosts: snap.len(),
    }
}

impl<P: Policy + fmt::Debug, B: Backend> fmt::Debug for Balancer<P, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Balancer")
            .field("table", &self.table.name())
            .field("policy", &self.policy)
            .finish()
    }
}

/// The usable hosts for one context, best first. See [`Balancer::candidates`].
///
/// Finite (at most one item per host), without duplicates.
pub struct Candidates<B> {
    snapshot: Arc<Snapshot<B>>,
    order: Order,
    walker: crate::policy::Walker,
}

impl<B: Backend> Candidates<B> {
    /// The snapshot the candidates come from.
    pub fn snapshot(&self) -> &Arc<Snapshot<B>> {
        &self.snapshot
    }

    /// The order the policy gave.
    pub fn order(&self) -> &Order {
        &self.order
    }
}

impl<B: Backend> Iterator for Candidates<B> {
    type Item = Candidate<B>;

    fn next(&mut self) -> Option<Candidate<B>> {
        let i = self.walker.next(&self.order, &self.snapshot)?;
        Some(Candidate {
            index: i,
            slot: self.snapshot.host(i).clone(),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.snapshot.len()))
    }
}

impl<B> fmt::Debug for Candidates<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Candidates")
            .field("order", &self.order)
            .finish()
    }
}

/// One host offered by [`Candidates`]. Lease it with [`Balancer::lease`] before using it.
#[derive(Clone)]
pub struct Candidate<B> {
    index: usize,
    slot: Arc<HostSlot<B>>,
}

impl<B: Backend> Candidate<B> {
    /// The host's index in the candidates' snapshot.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The host.
    pub fn host(&self) -> &Arc<HostSlot<B>> {
        &self.slot
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        self.slot.backend()
    }
}

impl<B> fmt::Debug for Candidate<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Candidate")
            .field("index", &self.index)
            .field("host", &self.slot.name())
            .finish()
    }
}

/// A balancer behind a trait object: what relays and services hold when the policy is
/// chosen at run time. Implemented by every [`Balancer`].
pub trait Select<B: Backend>: Send + Sync {
    /// The table picked from.
    fn table(&self) -> &Arc<dyn Table<B>>;
    /// See [`Balancer::pick`].
    fn pick(&self, ctx: &Context<'_>) -> Result<Lease<B>>;
    /// See [`Balancer::candidates`].
    fn candidates(&self, ctx: &Context<'_>) -> Candidates<B>;
    /// See [`Balancer::lease`].
    fn lease(&self, candidate: &Candidate<B>, ctx: &Context<'_>) -> Lease<B>;
    /// A [`Picker`] over this balancer, behind a trait object: see
    /// [`Balancer::picker`]. One allocation, once per picker. (Not named `picker`:
    /// on an `Arc<Balancer>` that name would shadow [`Balancer::picker`], which
    /// borrows the `Arc`.)
    fn boxed_picker(self: Arc<Self>) -> Box<dyn Pick<B>>;
}

impl<P: Policy, B: Backend> Select<B> for Balancer<P, B> {
    fn table(&self) -> &Arc<dyn Table<B>> {
        Balancer::table(self)
    }
    fn pick(&self, ctx: &Context<'_>) -> Result<Lease<B>> {
        Balancer::pick(self, ctx)
    }
    fn candidates(&self, ctx: &Context<'_>) -> Candidates<B> {
        Balancer::candidates(self, ctx)
    }
    fn lease(&self, candidate: &Candidate<B>, ctx: &Context<'_>) -> Lease<B> {
        Balancer::lease(self, candidate, ctx)
    }
    fn boxed_picker(self: Arc<Self>) -> Box<dyn Pick<B>> {
        Box::new(Picker::new(self))
    }
}
