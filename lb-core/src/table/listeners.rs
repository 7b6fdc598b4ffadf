//! Who hears of a table's changes: listeners ([`Table::on_change`]), called after each
//! change outside the lock, in order (see `deliver.rs`), and observers (balancers),
//! handed each snapshot as it is published.

use std::sync::{Arc, Weak};

use super::Table;
use crate::event::{ListenerId, TableEvent};
use crate::{Backend, Snapshot};

/// Something that keeps a plan derived from the table's snapshots: a
/// [`Balancer`](crate::Balancer). Called outside the table's lock.
pub(crate) trait Observer<B>: Send + Sync {
    /// A snapshot was published. Applied at once when that is cheap (the membership of
    /// the plan in use); never rebuilds what depends on membership, which is left to
    /// [`settle`](Observer::settle). Returns without waiting while another thread
    /// rebuilds: that thread applies the snapshot after.
    fn offer(&self, snapshot: &Arc<Snapshot<B>>);
    /// Returns once the observer serves `version` or a newer snapshot, rebuilding on
    /// this thread unless another thread is doing it.
    fn settle(&self, version: u64);
}

impl<B: Backend> Table<B> {
    /// Calls `listener` after every change, outside the table's lock, in the order the
    /// changes were made (see [`event`](crate::event)). Listeners may read and change
    /// the table but should return quickly: they run on the writer's thread, and the
    /// next change's writer waits for them. A listener must not wait for another
    /// thread's write to the same table: that write waits for the listener's turn.
    ///
    /// Returns the listener's id, for [`remove_listener`](Table::remove_listener). The
    /// table keeps the listener (and what it captured) until then, or for its whole
    /// life: a component that lives shorter than the table removes its listener when it
    /// goes.
    ///
    /// ```
    /// use lb_core::{Health, Table};
    /// use std::net::SocketAddr;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let table = Table::new("smtp", ["10.0.0.11:25".parse::<SocketAddr>()?])?;
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
        let id = ListenerId::next();
        self.writer.lock().listeners.push((id, Arc::new(listener)));
        id
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

    /// Registers an observer and returns the current snapshot: every later one is
    /// offered to the observer, so it misses no publication.
    pub(crate) fn observe(&self, observer: Weak<dyn Observer<B>>) -> Arc<Snapshot<B>> {
        let mut w = self.writer.lock();
        w.observers.push(observer);
        self.current.load_full()
    }
}
