//! The [`Table`] trait: what balancers, health checks and relays need from a table, so
//! that membership may live elsewhere (a registry, a control plane, a discovery
//! stream) and still be balanced by every policy.

use std::borrow::Cow;
use std::sync::{Arc, Weak};

use super::Update;
use crate::event::{Listener, ListenerId};
use crate::{Admin, Backend, BackendId, Error, Health, Host, HostStats, Result, Snapshot, Weight};

/// A named set of hosts with health, admin state and ejections, published as
/// [`Snapshot`]s: relayd's `table <exchange> { ... }`.
///
/// [`HostTable`](crate::HostTable) is the implementation this crate provides (wait-free
/// snapshots, stable ids, ordered events, rebuilds outside its lock); most users never
/// implement this trait. Implement it when a table's state is kept by something of
/// your own and balancers, monitors and relays should read it directly. A balancer, a
/// [`Monitor`](../lb_health/struct.Monitor.html) or a relay holds any implementation as
/// an `Arc<dyn Table<B>>` (see [`IntoTable`]); picks never call the table, they read the
/// snapshot the balancer already holds, so a trait object costs nothing per pick.
///
/// # What an implementation promises
///
/// - [`snapshot`](Table::snapshot) returns the current snapshot without blocking for
///   long: it is read on every health check and every relay status.
/// - Every snapshot it publishes has a higher [`version`](Snapshot::version) than the
///   one before, and a new [`membership_version`](Snapshot::membership_version) exactly
///   when hosts or weights changed. [`Snapshot::first`] and the `with_*` methods of
///   [`Snapshot`] give both.
/// - A host keeps its [`HostSlot`](crate::HostSlot) (the `Arc`) for as long as it stays
///   in the table, so active-state counts survive every change.
/// - After making a snapshot current it offers it to every live [`Watcher`] registered
///   with [`watch`](Table::watch), then, when its membership changed, calls
///   [`settle`](Watcher::settle) (on the writer's thread; that is where balancers
///   rebuild), and calls its listeners with a [`TableEvent`](crate::TableEvent).
///
/// # Example: a table of your own
///
/// A table whose hosts never change, shown without ordering guarantees between
/// concurrent writers (a real one serialises its writes, as `HostTable` does):
///
/// ```
/// use std::borrow::Cow;
/// use std::net::SocketAddr;
/// use std::sync::{Arc, Weak};
///
/// use arc_swap::ArcSwap;
/// use lb_core::{
///     Admin, Backend, BackendId, Balancer, Change, Context, Error, Health, HostSlot,
///     Listener, ListenerId, Result, Snapshot, Table, TableEvent, Watcher,
/// };
/// use parking_lot::Mutex;
/// # use lb_core::{Order, Policy};
/// # struct FirstUsable;
/// # impl Policy for FirstUsable {
/// #     type Plan = ();
/// #     fn plan<B: Backend>(&self, _: &Snapshot<B>, _: Option<(&Snapshot<B>, &())>) {}
/// #     fn order<B: Backend>(&self, _: &(), _: &Snapshot<B>, _: &Context<'_>, _: &mut Order) {}
/// # }
///
/// struct Fixed {
///     current: ArcSwap<Snapshot<SocketAddr>>,
///     watchers: Mutex<Vec<Weak<dyn Watcher<SocketAddr>>>>,
///     listeners: Mutex<Vec<(ListenerId, Listener)>>,
/// }
///
/// impl Fixed {
///     fn publish(&self, id: BackendId, next: Snapshot<SocketAddr>, change: Change) {
///         let next = Arc::new(next);
///         self.current.store(next.clone());
///         let watchers: Vec<_> = self.watchers.lock().iter().filter_map(Weak::upgrade).collect();
///         for w in &watchers {
///             w.offer(&next);
///         }
///         let i = next.index_of(id).expect("the host is in the table");
///         let event = TableEvent {
///             table: Arc::from(next.table()),
///             id,
///             host: next.host(i).name().to_owned(),
///             change,
///             version: next.version(),
///         };
///         let listeners: Vec<_> = self.listeners.lock().iter().map(|(_, l)| l.clone()).collect();
///         for l in &listeners {
///             l(&event);
///         }
///     }
///
///     fn index(&self, id: BackendId) -> Result<(Arc<Snapshot<SocketAddr>>, usize)> {
///         let snap = self.current.load_full();
///         let i = snap.index_of(id).ok_or_else(|| Error::UnknownHost {
///             table: snap.table().to_owned(),
///             id,
///         })?;
///         Ok((snap, i))
///     }
/// }
///
/// impl Table<SocketAddr> for Fixed {
///     fn name(&self) -> &str {
///         "fixed"
///     }
///     fn snapshot(&self) -> Arc<Snapshot<SocketAddr>> {
///         self.current.load_full()
///     }
///     fn watch(&self, watcher: Weak<dyn Watcher<SocketAddr>>) -> Arc<Snapshot<SocketAddr>> {
///         let mut watchers = self.watchers.lock();
///         watchers.push(watcher);
///         self.current.load_full()
///     }
///     fn add_listener(&self, listener: Listener) -> ListenerId {
///         let id = ListenerId::next();
///         self.listeners.lock().push((id, listener));
///         id
///     }
///     fn remove_listener(&self, id: ListenerId) -> bool {
///         let mut listeners = self.listeners.lock();
///         let before = listeners.len();
///         listeners.retain(|(l, _)| *l != id);
///         listeners.len() != before
///     }
///     fn set_health(&self, id: BackendId, health: Health, reason: Cow<'static, str>) -> Result<Health> {
///         let (snap, i) = self.index(id)?;
///         let old = snap.health(i);
///         if old != health {
///             let change = Change::Health { old, new: health, reason };
///             self.publish(id, snap.with_health(i, health), change);
///         }
///         Ok(old)
///     }
///     fn set_admin(&self, id: BackendId, admin: Admin) -> Result<Admin> {
///         let (snap, i) = self.index(id)?;
///         let old = snap.admin(i);
///         if old != admin {
///             self.publish(id, snap.with_admin(i, admin), Change::Admin { old, new: admin });
///         }
///         Ok(old)
///     }
///     fn eject(&self, id: BackendId, reason: Cow<'static, str>) -> Result<bool> {
///         let (snap, i) = self.index(id)?;
///         let change = !snap.is_ejected(i);
///         if change {
///             self.publish(id, snap.with_ejected(i, true), Change::Ejected { reason });
///         }
///         Ok(change)
///     }
///     fn end_ejection(&self, id: BackendId, reason: Cow<'static, str>) -> Result<bool> {
///         let (snap, i) = self.index(id)?;
///         let change = snap.is_ejected(i);
///         if change {
///             self.publish(id, snap.with_ejected(i, false), Change::EjectionEnded { reason });
///         }
///         Ok(change)
///     }
/// }
///
/// let hosts = ["10.0.0.11:443", "10.0.0.12:443"]
///     .into_iter()
///     .map(|a| Arc::new(HostSlot::new(a.parse::<SocketAddr>().unwrap())))
///     .collect();
/// let table = Arc::new(Fixed {
///     current: ArcSwap::from_pointee(Snapshot::first("fixed", hosts, Health::Up)?),
///     watchers: Mutex::new(Vec::new()),
///     listeners: Mutex::new(Vec::new()),
/// });
/// // Any policy balances it; health writes reach the balancer before they return.
/// let balancer = Balancer::new(&table, FirstUsable);
/// let first = table.snapshot().id(0);
/// table.set_health(first, Health::Down, "maintenance".into())?;
/// let lease = balancer.pick(&Context::new())?;
/// assert_eq!(lease.backend().port(), 443);
/// assert_eq!(lease.name(), "10.0.0.12:443");
/// // Membership is managed elsewhere: the default refuses it with a typed error.
/// let err = table.remove(first).unwrap_err();
/// assert!(matches!(err, Error::Unsupported { .. }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Table<B: Backend = Host>: Send + Sync + 'static {
    /// The table's name.
    fn name(&self) -> &str;

    /// The current snapshot.
    fn snapshot(&self) -> Arc<Snapshot<B>>;

    /// Every host's state and counters, from the current snapshot.
    fn stats(&self) -> Vec<HostStats> {
        self.snapshot().stats()
    }

    /// Registers `watcher` to be offered every snapshot published after the one returned
    /// (see the [trait docs](Table)); balancers call it once, when built. A watcher
    /// whose `Weak` no longer upgrades may be forgotten.
    fn watch(&self, watcher: Weak<dyn Watcher<B>>) -> Arc<Snapshot<B>>;

    /// Registers a listener for every change, and returns the id that removes it.
    /// [`HostTable::on_change`](crate::HostTable::on_change) and
    /// `<dyn Table<B>>::on_change` take a closure.
    fn add_listener(&self, listener: Listener) -> ListenerId;

    /// Removes a listener. Returns whether it was registered here.
    fn remove_listener(&self, id: ListenerId) -> bool;

    /// Sets a host's health; returns the previous one. What health checks call.
    fn set_health(
        &self,
        id: BackendId,
        health: Health,
        reason: Cow<'static, str>,
    ) -> Result<Health>;

    /// Sets a host's admin state (enable, disable, drain); returns the previous one.
    fn set_admin(&self, id: BackendId, admin: Admin) -> Result<Admin>;

    /// Sets the admin state of every host at once (enable or disable a whole table).
    fn set_admin_all(&self, admin: Admin) {
        let ids: Vec<BackendId> = self.snapshot().hosts().iter().map(|h| h.id()).collect();
        for id in ids {
            // Ids come from the current snapshot; one removed meanwhile is simply skipped.
            let _ = self.set_admin(id, admin);
        }
    }

    /// Holds a host back from new sessions while it stays up (passive health); returns
    /// whether it was not ejected before.
    fn eject(&self, id: BackendId, reason: Cow<'static, str>) -> Result<bool>;

    /// Ends a host's ejection; returns whether it was ejected.
    fn end_ejection(&self, id: BackendId, reason: Cow<'static, str>) -> Result<bool>;

    /// Adds a host with the given health. The default refuses with
    /// [`Error::Unsupported`]: a table whose membership comes from elsewhere keeps it.
    fn add(&self, backend: B, health: Health) -> Result<BackendId> {
        let _ = (backend, health);
        Err(unsupported(self.name(), "add a host"))
    }

    /// Removes a host. The default refuses with [`Error::Unsupported`].
    fn remove(&self, id: BackendId) -> Result<()> {
        let _ = id;
        Err(unsupported(self.name(), "remove a host"))
    }

    /// Changes a host's weight; returns the previous one. The default refuses with
    /// [`Error::Unsupported`].
    fn set_weight(&self, id: BackendId, weight: Weight) -> Result<Weight> {
        let _ = (id, weight);
        Err(unsupported(self.name(), "change a weight"))
    }

    /// Applies several membership changes, each with its own result (the id of its
    /// host). [`HostTable::update`](crate::HostTable::update) makes them one snapshot, so
    /// balancers rebuild once; the default applies them one by one through
    /// [`add`](Table::add), [`remove`](Table::remove) and [`set_weight`](Table::set_weight).
    fn update(&self, updates: Vec<Update<B>>) -> Vec<Result<BackendId>> {
        updates
            .into_iter()
            .map(|u| match u {
                Update::Add(backend, health) => self.add(backend, health),
                Update::Remove(id) => self.remove(id).map(|()| id),
                Update::Weight(id, weight) => self.set_weight(id, weight).map(|_| id),
            })
            .collect()
    }
}

/// The error of a write a table does not take.
fn unsupported(table: &str, operation: &'static str) -> Error {
    Error::Unsupported {
        table: table.to_owned(),
        operation,
    }
}

/// A convenience for a table held as a trait object, as [`HostTable`](crate::HostTable)
/// has it.
impl<B: Backend> dyn Table<B> {
    /// Registers a closure as a listener (see [`Table::add_listener`]).
    pub fn on_change(
        &self,
        listener: impl Fn(&crate::TableEvent) + Send + Sync + 'static,
    ) -> ListenerId {
        self.add_listener(Arc::new(listener))
    }
}

/// Something that follows a table's snapshots: a [`Balancer`](crate::Balancer)
/// deriving its policy's plan. Tables call it; users implement [`Table`], rarely this.
pub trait Watcher<B>: Send + Sync {
    /// A snapshot was published. Called by the writer after the snapshot became current,
    /// before its event reaches the listeners. Snapshots older than one offered before
    /// are ignored. For a health or admin change, the watcher applies it before
    /// returning.
    fn offer(&self, snapshot: &Arc<Snapshot<B>>);

    /// The writer of a membership change (`version`) lends its thread: returns once the
    /// watcher serves that version or a newer one, rebuilding here if nobody else is.
    fn settle(&self, version: u64);
}

/// What balancers, monitors, passive health and relays accept as their table: an
/// `Arc` (or `&Arc`) of any [`Table`] implementation, or an `Arc<dyn Table<B>>`.
pub trait IntoTable<B: Backend> {
    /// The table, shared.
    fn into_table(self) -> Arc<dyn Table<B>>;
}

impl<B: Backend, T: Table<B>> IntoTable<B> for Arc<T> {
    fn into_table(self) -> Arc<dyn Table<B>> {
        self
    }
}

impl<B: Backend, T: Table<B>> IntoTable<B> for &Arc<T> {
    fn into_table(self) -> Arc<dyn Table<B>> {
        self.clone()
    }
}

impl<B: Backend> IntoTable<B> for Arc<dyn Table<B>> {
    fn into_table(self) -> Arc<dyn Table<B>> {
        self
    }
}

impl<B: Backend> IntoTable<B> for &Arc<dyn Table<B>> {
    fn into_table(self) -> Arc<dyn Table<B>> {
        self.clone()
    }
}
