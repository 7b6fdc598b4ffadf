//! Who hears of a table's changes: listeners ([`HostTable::on_change`]), called after each
//! change outside the lock, in order (see `deliver.rs`), and watchers (balancers),
//! handed each snapshot as it is published.

use std::borrow::Cow;
use std::sync::{Arc, Weak};

use super::{HostTable, Table, Update, Watcher};
use crate::event::{Listener, ListenerId, TableEvent};
use crate::{Admin, Backend, BackendId, Health, HostStats, Result, Snapshot, Weight};

impl<B: Backend> HostTable<B> {
    /// Calls `listener` after every change, outside the table's lock, in the order the
    /// changes were made (see [`event`](crate::event)). Listeners may read and change
    /// the table but should return quickly: they run on the writer's thread, and the
    /// next change's writer waits for them. A listener must not wait for another
    /// thread's write to the same table: that write waits for the listener's turn.
    ///
    /// Returns the listener's id, for [`remove_listener`](HostTable::remove_listener). The
    /// table keeps the listener (and what it captured) until then, or for its whole
    /// life: a component that lives shorter than the table removes its listener when it
    /// goes.
    ///
    /// ```
    /// use lb_core::{Health, HostTable};
    /// use std::net::SocketAddr;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let table = HostTable::new("smtp", ["10.0.0.11:25".parse::<SocketAddr>()?])?;
    /// let heard = Arc::new(AtomicUsize::new(0));
    /// let h = heard.clone();
    /// let id = table.on_change(move |_| {
    ///     h.fetch_add(1, Ordering::Relaxed);
    /// });
    /// let host = table.snapshot().id(0);
    /// table.set_health(host, Health::Down, "connect refused")?;
    /// assert!(table.remove_listener(id));
    /// table.set_health(host, Health::Up, "check ok")?;
    /// assert_eq!(heard.load(Ordering::Relaxed), 1);
    /// assert_eq!(table.listener_count(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_change(&self, listener: impl Fn(&TableEvent) + Send + Sync + 'static) -> ListenerId {
        Table::add_listener(self, Arc::new(listener))
    }

    /// Removes the listener registered as `id`; `true` if it was registered here.
    ///
    /// No change made after this returns calls the listener. A change made just before,
    /// whose listeners are being called on another thread, may still call it once. The
    /// listener is dropped here, or after that last call. A listener may remove itself.
    pub fn remove_listener(&self, id: ListenerId) -> bool {
        let removed = {
            let mut w = self.writer.lock();
            w.listeners
                .iter()
                .position(|(l, _)| *l == id)
                .map(|i| w.listeners.remove(i))
        };
        // Dropped outside the lock: the listener's captures may run code when dropped.
        removed.is_some()
    }

    /// The number of registered change listeners: to check that components remove
    /// theirs.
    pub fn listener_count(&self) -> usize {
        self.writer.lock().listeners.len()
    }

    /// Registers a watcher and returns the current snapshot: every later one is
    /// offered to the watcher, so it misses no publication.
    pub fn watch(&self, watcher: Weak<dyn Watcher<B>>) -> Arc<Snapshot<B>> {
        let mut w = self.writer.lock();
        w.observers.push(watcher);
        self.current.load_full()
    }
}

impl<B: Backend> Table<B> for HostTable<B> {
    fn name(&self) -> &str {
        HostTable::name(self)
    }
    fn snapshot(&self) -> Arc<Snapshot<B>> {
        HostTable::snapshot(self)
    }
    fn stats(&self) -> Vec<HostStats> {
        HostTable::stats(self)
    }
    fn watch(&self, watcher: Weak<dyn Watcher<B>>) -> Arc<Snapshot<B>> {
        HostTable::watch(self, watcher)
    }
    fn add_listener(&self, listener: Listener) -> ListenerId {
        let id = ListenerId::next();
        self.writer.lock().listeners.push((id, listener));
        id
    }
    fn remove_listener(&self, id: ListenerId) -> bool {
        HostTable::remove_listener(self, id)
    }
    fn set_health(
        &self,
        id: BackendId,
        health: Health,
        reason: Cow<'static, str>,
    ) -> Result<Health> {
        HostTable::set_health(self, id, health, reason)
    }
    fn set_admin(&self, id: BackendId, admin: Admin) -> Result<Admin> {
        HostTable::set_admin(self, id, admin)
    }
    fn eject(&self, id: BackendId, reason: Cow<'static, str>) -> Result<bool> {
        HostTable::eject(self, id, reason)
    }
    fn end_ejection(&self, id: BackendId, reason: Cow<'static, str>) -> Result<bool> {
        HostTable::end_ejection(self, id, reason)
    }
    fn add(&self, backend: B, health: Health) -> Result<BackendId> {
        HostTable::add(self, backend, health)
    }
    fn remove(&self, id: BackendId) -> Result<()> {
        HostTable::remove(self, id)
    }
    fn set_weight(&self, id: BackendId, weight: Weight) -> Result<Weight> {
        HostTable::set_weight(self, id, weight)
    }
    fn update(&self, updates: Vec<Update<B>>) -> Vec<Result<BackendId>> {
        HostTable::update(self, updates)
    }
}
