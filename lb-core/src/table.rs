//! [`Table`], the trait balancers, checks and relays read tables through, and
//! [`HostTable`], its implementation: a named set of hosts with health and admin state,
//! published as snapshots.
//!
//! Implement [`Table`] for a table kept by something of your own (see its docs); feed a
//! `HostTable` from elsewhere (DNS, tower's `Discover`, a registry) with its
//! [`add`](HostTable::add) and [`remove`](HostTable::remove). The rest of this page is
//! how `HostTable` publishes a change.
//!
//! Readers load the current [`Snapshot`] through an `ArcSwap` and never wait. Writers
//! serialise on one short lock that only builds the next snapshot (O(hosts): a few
//! small arrays), makes it current and takes its version as a delivery turn. Everything
//! else happens after the lock is released, on the writer's thread:
//!
//! 1. **Balancers** are handed the snapshot. A health or admin change keeps the
//!    membership, so each balancer derives its plan from it at once, in O(hosts) for
//!    every policy of `lb-policies`; the write returns with every balancer picking from
//!    it. The one exception: a balancer in the middle of a rebuild for a new membership
//!    takes the change when that rebuild is done, and the write does not wait for it.
//! 2. **Listeners** ([`TableEvent`], see [`event`](crate::event)) hear the change, in
//!    the order the changes were made (by version), on the writer's thread.
//! 3. For a **membership change** ([`add`](HostTable::add), [`remove`](HostTable::remove),
//!    [`set_weight`](HostTable::set_weight)), each balancer rebuilds what its policy
//!    precomputes for the new membership (a consistent-hash table, a smooth cycle),
//!    still on the writer's thread and outside the lock; the old plan serves picks
//!    until the new one is stored. These calls return once every balancer picks from
//!    the new membership: they may take as long as the costliest rebuild (about 145 ms
//!    for a consistent-hash table of 1024 hosts), so async callers run them where
//!    blocking is fine (`lb-relay`'s `RelayHandle::add_host` uses tokio's blocking
//!    pool).
//!
//! So a membership change becomes visible to [`snapshot`](HostTable::snapshot) at once, to
//! listeners in its turn, and to a balancer's picks when its rebuild is stored. A
//! health mark never waits for a rebuild, and never for the table's lock longer than
//! another writer takes to build a snapshot. The builder is in [`TableBuilder`].

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, Weak};

use arc_swap::ArcSwap;
use parking_lot::Mutex;

mod builder;
mod contract;
mod deliver;
mod ejection;
mod listeners;
mod update;

pub use crate::event::{Change, ListenerId, TableEvent};
pub use builder::TableBuilder;
pub use contract::{IntoTable, Table, Watcher};
pub use update::Update;

use crate::event::Listener;
use crate::snapshot::Members;
use crate::{
    Admin, Backend, BackendId, Error, Health, Host, HostSlot, HostStats, Result, Snapshot, Weight,
};
use deliver::{Delivery, Published};

/// What writers change under the table's lock.
struct Writer<B> {
    next_version: u64,
    observers: Vec<Weak<dyn Watcher<B>>>,
    listeners: Vec<(ListenerId, Listener)>,
}

/// A named set of hosts: relayd's `table <exchange> { ... }`.
///
/// Readers ([`snapshot`](HostTable::snapshot), balancers picking hosts) load an immutable
/// [`Snapshot`] atomically and never wait. Writers (health checks, passive health, the
/// operator) change health, admin state, ejections and membership; each change
/// publishes a new snapshot under a short lock, then updates the balancers and tells
/// the listeners outside it (see the [module docs](self)). Each host keeps one state block for its
/// whole life in the table, so active-state counts survive every change.
///
/// A table may have no hosts: built with [`TableBuilder::allow_empty`] for hosts added
/// at run time (relayd.conf's `table <name> { }`), or after [`remove`](HostTable::remove)
/// took its last host. Picks from it fail with [`Error::NoUsableHost`] (`hosts: 0`) and
/// candidate lists are empty, as for a table whose hosts are all down, until a host is
/// [added](HostTable::add).
///
/// ```
/// use lb_core::{Health, Host, HostTable};
/// let table = HostTable::builder("exchange")
///     .host(Host::new("exchange1", "10.0.0.11:443".parse().unwrap()))
///     .host(Host::new("exchange2", "10.0.0.12:443".parse().unwrap()))
///     .build()
///     .unwrap();
/// assert_eq!(table.snapshot().usable().len(), 2);
/// let id = table.snapshot().id(0);
/// table.set_health(id, Health::Down, "connect refused").unwrap();
/// assert_eq!(table.snapshot().usable(), &[1]);
/// ```
pub struct HostTable<B = Host> {
    name: Arc<str>,
    current: ArcSwap<Snapshot<B>>,
    writer: Mutex<Writer<B>>,
    delivery: Delivery,
}

impl<B: Backend> HostTable<B> {
    /// Starts building a table with this name.
    pub fn builder(name: impl Into<String>) -> TableBuilder<B> {
        TableBuilder::new(name.into())
    }

    /// A table of these hosts, all up and enabled. An empty list is refused with
    /// [`Error::EmptyTable`]; build a table meant to be filled at run time with
    /// [`TableBuilder::allow_empty`].
    pub fn new(name: impl Into<String>, hosts: impl IntoIterator<Item = B>) -> Result<Arc<Self>> {
        Self::builder(name).hosts(hosts).build()
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The current snapshot. Wait-free; the snapshot stays valid as long as it is held.
    pub fn snapshot(&self) -> Arc<Snapshot<B>> {
        self.current.load_full()
    }

    /// Every host's state and counters, from the current snapshot.
    pub fn stats(&self) -> Vec<HostStats> {
        self.current.load().stats()
    }

    /// Sets a host's health. Returns the previous health; publishes a snapshot only if
    /// it changed.
    pub fn set_health(
        &self,
        id: BackendId,
        health: Health,
        reason: impl Into<Cow<'static, str>>,
    ) -> Result<Health> {
        self.change(id, |snap, i| {
            let old = snap.health[i];
            if old == health {
                return None;
            }
            let change = Change::Health {
                old,
                new: health,
                reason: reason.into(),
            };
            Some((snap.with_health(i, health), change))
        })
        .map(|c| match c {
            Some(Change::Health { old, .. }) => old,
            _ => health,
        })
    }

    /// Sets a host's admin state (enable, disable, drain). Returns the previous one.
    pub fn set_admin(&self, id: BackendId, admin: Admin) -> Result<Admin> {
        self.change(id, |snap, i| {
            let old = snap.admin[i];
            if old == admin {
                return None;
            }
            Some((snap.with_admin(i, admin), Change::Admin { old, new: admin }))
        })
        .map(|c| match c {
            Some(Change::Admin { old, .. }) => old,
            _ => admin,
        })
    }

    /// Sets the admin state of every host at once (enable or disable a whole table).
    pub fn set_admin_all(&self, admin: Admin) {
        Table::set_admin_all(self, admin)
    }

    /// Changes a host's weight: a membership change, which rebuilds what policies
    /// precompute. Returns once every balancer picks with the new weight; the rebuilds
    /// run on this thread, outside the table's lock (see the [module docs](self)).
    pub fn set_weight(&self, id: BackendId, weight: Weight) -> Result<Weight> {
        self.change(id, |snap, i| {
            let old = snap.members.weights[i];
            if old == weight {
                return None;
            }
            let mut weights = snap.members.weights.to_vec();
            weights[i] = weight;
            let members = Members::new(0, snap.members.hosts.to_vec(), weights);
            Some((
                Snapshot::new(
                    snap.table.clone(),
                    0,
                    Arc::new(members),
                    snap.health.clone(),
                    snap.admin.clone(),
                    snap.ejected.clone(),
                ),
                Change::Weight { old, new: weight },
            ))
        })
        .map(|c| match c {
            Some(Change::Weight { old, .. }) => old,
            _ => weight,
        })
    }

    /// Adds a host at the end of the configuration order, with the given health and
    /// enabled. Fails on a duplicate.
    ///
    /// Returns once every balancer of the table picks from the new membership. Their
    /// rebuilds run on this thread, outside the table's lock, while their old plans
    /// serve picks and health changes go through: call it where blocking for the
    /// costliest rebuild is fine (see the [module docs](self)).
    pub fn add(&self, backend: B, health: Health) -> Result<BackendId> {
        let slot = HostSlot::new(backend);
        let id = slot.id();
        let mut w = self.writer.lock();
        let snap = self.current.load_full();
        if snap.index_of(id).is_some() {
            return Err(Error::DuplicateHost {
                table: self.name.to_string(),
                host: slot.name().to_owned(),
                id,
            });
        }
        let name = slot.name().to_owned();
        let mut hosts = snap.members.hosts.to_vec();
        let mut weights = snap.members.weights.to_vec();
        weights.push(slot.backend().weight());
        hosts.push(Arc::new(slot));
        let mut health_all = snap.health.to_vec();
        health_all.push(health);
        let mut admin_all = snap.admin.to_vec();
        admin_all.push(Admin::Enabled);
        let mut ejected_all = snap.ejected.to_vec();
        ejected_all.push(false);
        let version = w.next_version;
        let next = Snapshot::new(
            self.name.clone(),
            version,
            Arc::new(Members::new(version, hosts, weights)),
            health_all.into(),
            admin_all.into(),
            ejected_all.into(),
        );
        let published = self.commit(&mut w, next, id, name, Change::Added);
        drop(w);
        self.publish(published);
        Ok(id)
    }

    /// Removes a host. Its live leases stay valid and count on its slot until they are
    /// dropped. Fails for an unknown id.
    ///
    /// Removing the last host leaves an empty table: picks then fail with
    /// [`Error::NoUsableHost`] until a host is [added](HostTable::add) again (to stop traffic
    /// to a host but keep it configured, disable it with [`set_admin`](HostTable::set_admin)).
    ///
    /// Returns once every balancer picks from the new membership, rebuilding on this
    /// thread as [`add`](HostTable::add) does.
    pub fn remove(&self, id: BackendId) -> Result<()> {
        let mut w = self.writer.lock();
        let snap = self.current.load_full();
        let i = snap.index_of(id).ok_or_else(|| Error::UnknownHost {
            table: self.name.to_string(),
            id,
        })?;
        let name = snap.host(i).name().to_owned();
        let version = w.next_version;
        let next = Snapshot::new(
            self.name.clone(),
            version,
            Arc::new(Members::new(
                version,
                without(&snap.members.hosts, i),
                without(&snap.members.weights, i),
            )),
            without(&snap.health, i).into(),
            without(&snap.admin, i).into(),
            without(&snap.ejected, i).into(),
        );
        let published = self.commit(&mut w, next, id, name, Change::Removed);
        drop(w);
        self.publish(published);
        Ok(())
    }

    /// Applies a change to the host with `id`: `f` builds the next snapshot (its version
    /// is filled in here) or returns `None` when nothing changes.
    fn change(
        &self,
        id: BackendId,
        f: impl FnOnce(&Snapshot<B>, usize) -> Option<(Snapshot<B>, Change)>,
    ) -> Result<Option<Change>> {
        let mut w = self.writer.lock();
        let snap = self.current.load_full();
        let i = snap.index_of(id).ok_or_else(|| Error::UnknownHost {
            table: self.name.to_string(),
            id,
        })?;
        let Some((mut next, change)) = f(&snap, i) else {
            return Ok(None);
        };
        let version = w.next_version;
        next.version = version;
        if next.members.version == 0 {
            // A membership change (weights): stamp the new members with this version.
            if let Some(m) = Arc::get_mut(&mut next.members) {
                m.version = version;
            }
        }
        let name = snap.host(i).name().to_owned();
        let published = self.commit(&mut w, next, id, name, change.clone());
        drop(w);
        self.publish(published);
        Ok(Some(change))
    }

    /// Makes `next` the current snapshot, under the write lock, and gathers what
    /// [`publish`](HostTable::publish) needs once the lock is released: the balancers, the
    /// listeners and the event. The snapshot's version is its delivery turn.
    fn commit(
        &self,
        w: &mut Writer<B>,
        next: Snapshot<B>,
        id: BackendId,
        host: String,
        change: Change,
    ) -> Published<B> {
        self.commit_all(w, next, vec![(id, host, change)])
    }

    /// [`commit`](HostTable::commit) for any number of host changes made by one snapshot.
    fn commit_all(
        &self,
        w: &mut Writer<B>,
        next: Snapshot<B>,
        changes: Vec<(BackendId, String, Change)>,
    ) -> Published<B> {
        let version = next.version;
        w.next_version += 1;
        let next = Arc::new(next);
        let membership = next.membership_version() != self.current.load().membership_version();
        let mut observers = Vec::with_capacity(w.observers.len());
        w.observers.retain(|o| match o.upgrade() {
            Some(o) => {
                observers.push(o);
                true
            }
            None => false,
        });
        self.current.store(next.clone());
        Published {
            snapshot: next,
            membership,
            observers,
            listeners: w.listeners.iter().map(|(_, l)| l.clone()).collect(),
            events: changes
                .into_iter()
                .map(|(id, host, change)| TableEvent {
                    table: self.name.clone(),
                    id,
                    host,
                    change,
                    version,
                })
                .collect(),
        }
    }
}

fn without<T: Clone>(items: &[T], skip: usize) -> Vec<T> {
    items
        .iter()
        .enumerate()
        .filter(|&(k, _)| k != skip)
        .map(|(_, x)| x.clone())
        .collect()
}

impl<B> fmt::Debug for HostTable<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostTable")
            .field("name", &self.name)
            .field("snapshot", &*self.current.load())
            .finish()
    }
}
