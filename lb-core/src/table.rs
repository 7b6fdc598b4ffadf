//! [`Table`]: a named set of hosts with health and admin state, published as snapshots.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, Weak};

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use crate::snapshot::Members;
use crate::{
    Admin, Backend, BackendId, Error, Health, Host, HostSlot, HostStats, Result, Snapshot, Weight,
};

/// Something that must see every snapshot as it is published, before any reader of it
/// does: a [`Balancer`](crate::Balancer) rebuilding its policy's plan.
pub(crate) trait Observer<B>: Send + Sync {
    fn publish(&self, snapshot: &Arc<Snapshot<B>>);
}

/// What changed in a table: passed to the listeners of [`Table::on_change`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableEvent {
    /// The table's name.
    pub table: Arc<str>,
    /// The host's id.
    pub id: BackendId,
    /// The host's name.
    pub host: String,
    /// What happened to it.
    pub change: Change,
    /// The version of the snapshot that carries the change.
    pub version: u64,
}

/// One change to one host of a table.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// Its health changed, for the given reason (`"connect refused"`, `"check ok"`, ...).
    Health {
        /// Before.
        old: Health,
        /// After.
        new: Health,
        /// Why, in relayd's words where they fit.
        reason: Cow<'static, str>,
    },
    /// Its admin state changed.
    Admin {
        /// Before.
        old: Admin,
        /// After.
        new: Admin,
    },
    /// Its weight changed.
    Weight {
        /// Before.
        old: Weight,
        /// After.
        new: Weight,
    },
    /// It was added to the table.
    Added,
    /// It was removed from the table.
    Removed,
}

type Listener = Arc<dyn Fn(&TableEvent) + Send + Sync>;

struct Writer<B> {
    next_version: u64,
    observers: Vec<Weak<dyn Observer<B>>>,
    listeners: Vec<Listener>,
}

/// A named set of hosts: relayd's `table <exchange> { ... }`.
///
/// Readers ([`snapshot`](Table::snapshot), balancers picking hosts) load an immutable
/// [`Snapshot`] atomically and never wait. Writers (health checks, passive marks, the
/// operator) change health, admin state and membership; each change publishes a new
/// snapshot under a short lock. Each host keeps one state block for its whole life in
/// the table, so active-state counts survive every change.
///
/// ```
/// use lb_core::{Health, Host, Table};
/// let table = Table::builder("exchange")
///     .host(Host::new("exchange1", "10.0.0.11:443".parse().unwrap()))
///     .host(Host::new("exchange2", "10.0.0.12:443".parse().unwrap()))
///     .build()
///     .unwrap();
/// assert_eq!(table.snapshot().usable().len(), 2);
/// let id = table.snapshot().id(0);
/// table.set_health(id, Health::Down, "connect refused").unwrap();
/// assert_eq!(table.snapshot().usable(), &[1]);
/// ```
pub struct Table<B = Host> {
    name: Arc<str>,
    current: ArcSwap<Snapshot<B>>,
    writer: Mutex<Writer<B>>,
}

/// Builds a [`Table`].
///
/// Defaults:
/// - no hosts (at least one is required);
/// - hosts start [`Health::Up`]: a table without a health monitor is usable at once. A
///   monitor marks hosts it has not checked yet as it starts.
pub struct TableBuilder<B = Host> {
    name: String,
    hosts: Vec<B>,
    initial_health: Health,
}

impl<B: Backend> TableBuilder<B> {
    /// Adds a host.
    pub fn host(mut self, backend: B) -> Self {
        self.hosts.push(backend);
        self
    }

    /// Adds hosts.
    pub fn hosts(mut self, backends: impl IntoIterator<Item = B>) -> Self {
        self.hosts.extend(backends);
        self
    }

    /// The health hosts start with (default [`Health::Up`]). relayd starts hosts
    /// [`Health::Unknown`] until their first check.
    pub fn initial_health(mut self, health: Health) -> Self {
        self.initial_health = health;
        self
    }

    /// Builds the table, or fails on an invalid name, no hosts, or duplicate hosts.
    pub fn build(self) -> Result<Arc<Table<B>>> {
        if self.name.is_empty() || self.name.len() > 64 {
            return Err(Error::InvalidTableName { name: self.name });
        }
        if self.hosts.is_empty() {
            return Err(Error::EmptyTable { table: self.name });
        }
        let name: Arc<str> = self.name.into();
        let mut slots = Vec::with_capacity(self.hosts.len());
        let mut weights = Vec::with_capacity(self.hosts.len());
        let mut seen = hashbrown::HashSet::with_capacity(self.hosts.len());
        for backend in self.hosts {
            let slot = HostSlot::new(backend);
            if !seen.insert(slot.id()) {
                return Err(Error::DuplicateHost {
                    table: name.to_string(),
                    host: slot.name().to_owned(),
                    id: slot.id(),
                });
            }
            weights.push(slot.backend().weight());
            slots.push(Arc::new(slot));
        }
        let n = slots.len();
        let members = Arc::new(Members::new(1, slots, weights));
        let snapshot = Snapshot::new(
            name.clone(),
            1,
            members,
            vec![self.initial_health; n].into(),
            vec![Admin::Enabled; n].into(),
        );
        Ok(Arc::new(Table {
            name,
            current: ArcSwap::from_pointee(snapshot),
            writer: Mutex::new(Writer {
                next_version: 2,
                observers: Vec::new(),
                listeners: Vec::new(),
            }),
        }))
    }
}

impl<B: Backend> Table<B> {
    /// Starts building a table with this name.
    pub fn builder(name: impl Into<String>) -> TableBuilder<B> {
        TableBuilder {
            name: name.into(),
            hosts: Vec::new(),
            initial_health: Health::Up,
        }
    }

    /// A table of these hosts, all up and enabled.
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

    /// Calls `listener` after every change, outside the table's lock, in the order the
    /// changes were made. Listeners may read the table but should return quickly.
    pub fn on_change(&self, listener: impl Fn(&TableEvent) + Send + Sync + 'static) {
        self.writer.lock().listeners.push(Arc::new(listener));
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
            let mut all = snap.health.clone();
            all[i] = health;
            let change = Change::Health {
                old,
                new: health,
                reason: reason.into(),
            };
            Some((
                Snapshot::new(
                    snap.table.clone(),
                    0,
                    snap.members.clone(),
                    all,
                    snap.admin.clone(),
                ),
                change,
            ))
        })
        .map(|old| old.map_or(health, |c| extract_old_health(&c, health)))
    }

    /// Sets a host's admin state (enable, disable, drain). Returns the previous one.
    pub fn set_admin(&self, id: BackendId, admin: Admin) -> Result<Admin> {
        self.change(id, |snap, i| {
            let old = snap.admin[i];
            if old == admin {
                return None;
            }
            let mut all = snap.admin.clone();
            all[i] = admin;
            Some((
                Snapshot::new(
                    snap.table.clone(),
                    0,
                    snap.members.clone(),
                    snap.health.clone(),
                    all,
                ),
                Change::Admin { old, new: admin },
            ))
        })
        .map(|c| match c {
            Some(Change::Admin { old, .. }) => old,
            _ => admin,
        })
    }

    /// Sets the admin state of every host at once (enable or disable a whole table).
    pub fn set_admin_all(&self, admin: Admin) {
        let ids: Vec<BackendId> = self.snapshot().hosts().iter().map(|h| h.id()).collect();
        for id in ids {
            // Ids come from the current snapshot; one removed meanwhile is simply skipped.
            let _ = self.set_admin(id, admin);
        }
    }

    /// Changes a host's weight: a membership change, which rebuilds what policies
    /// precompute.
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
        let version = w.next_version;
        let next = Snapshot::new(
            self.name.clone(),
            version,
            Arc::new(Members::new(version, hosts, weights)),
            health_all.into(),
            admin_all.into(),
        );
        let event = self.commit(&mut w, next, id, name, Change::Added);
        drop(w);
        self.notify(event);
        Ok(id)
    }

    /// Removes a host. Its live leases stay valid and count on its slot until they are
    /// dropped. Fails for an unknown id, or when it is the last host.
    pub fn remove(&self, id: BackendId) -> Result<()> {
        let mut w = self.writer.lock();
        let snap = self.current.load_full();
        let i = snap.index_of(id).ok_or_else(|| Error::UnknownHost {
            table: self.name.to_string(),
            id,
        })?;
        if snap.len() == 1 {
            return Err(Error::EmptyTable {
                table: self.name.to_string(),
            });
        }
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
        );
        let event = self.commit(&mut w, next, id, name, Change::Removed);
        drop(w);
        self.notify(event);
        Ok(())
    }

    /// Registers an observer and hands it the current snapshot, under the write lock so
    /// that it misses no publication.
    pub(crate) fn observe(
        &self,
        observer: Weak<dyn Observer<B>>,
        first: impl FnOnce(&Arc<Snapshot<B>>),
    ) {
        let mut w = self.writer.lock();
        first(&self.current.load_full());
        w.observers.push(observer);
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
        let event = self.commit(&mut w, next, id, name, change.clone());
        drop(w);
        self.notify(event);
        Ok(Some(change))
    }

    fn commit(
        &self,
        w: &mut Writer<B>,
        next: Snapshot<B>,
        id: BackendId,
        host: String,
        change: Change,
    ) -> (Vec<Listener>, TableEvent) {
        let version = next.version;
        w.next_version += 1;
        let next = Arc::new(next);
        // Observers first, then readers: a balancer's plan is ready when the snapshot
        // becomes visible through it.
        w.observers.retain(|o| match o.upgrade() {
            Some(o) => {
                o.publish(&next);
                true
            }
            None => false,
        });
        self.current.store(next);
        (
            w.listeners.clone(),
            TableEvent {
                table: self.name.clone(),
                id,
                host,
                change,
                version,
            },
        )
    }

    fn notify(&self, (listeners, event): (Vec<Listener>, TableEvent)) {
        if let Change::Health { old, new, reason } = &event.change {
            tracing::info!(table = %event.table, host = %event.host, %old, %new, %reason, "host health changed");
        }
        for l in &listeners {
            l(&event);
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

fn extract_old_health(change: &Change, fallback: Health) -> Health {
    match change {
        Change::Health { old, .. } => *old,
        _ => fallback,
    }
}

impl<B> fmt::Debug for Table<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("name", &self.name)
            .field("snapshot", &*self.current.load())
            .finish()
    }
}
