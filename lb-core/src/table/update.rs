//! Batched membership changes: [`Update`] and [`HostTable::update`], so that a
//! discovery source applying many changes at once (a DNS answer, a burst of tower
//! `Discover` inserts, a reload) costs the balancers one rebuild, not one per host.

use std::sync::Arc;

use super::HostTable;
use crate::event::Change;
use crate::snapshot::Members;
use crate::{Admin, Backend, BackendId, Error, Health, HostSlot, Result, Snapshot, Weight};

/// One membership change of a batch (see [`Table::update`](crate::Table::update)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Update<B> {
    /// Add a host with this health, enabled, at the end of the configuration order.
    Add(B, Health),
    /// Remove the host with this id.
    Remove(BackendId),
    /// Change the weight of the host with this id.
    Weight(BackendId, Weight),
}

impl<B: Backend> Update<B> {
    /// The id of the host this change is about.
    pub fn id(&self) -> BackendId {
        match self {
            Update::Add(backend, _) => backend.id(),
            Update::Remove(id) | Update::Weight(id, _) => *id,
        }
    }
}

/// The table being changed: the columns of the next snapshot.
struct Draft<B> {
    hosts: Vec<Arc<HostSlot<B>>>,
    weights: Vec<Weight>,
    health: Vec<Health>,
    admin: Vec<Admin>,
    ejected: Vec<bool>,
}

impl<B: Backend> Draft<B> {
    fn of(snap: &Snapshot<B>) -> Self {
        Draft {
            hosts: snap.members.hosts.to_vec(),
            weights: snap.members.weights.to_vec(),
            health: snap.health.to_vec(),
            admin: snap.admin.to_vec(),
            ejected: snap.ejected.to_vec(),
        }
    }

    fn find(&self, id: BackendId) -> Option<usize> {
        self.hosts.iter().position(|h| h.id() == id)
    }

    /// Applies one change, or says why it cannot be: the change and the host's name for
    /// its event.
    fn apply(&mut self, table: &str, update: Update<B>) -> Result<(BackendId, String, Change)> {
        let unknown = |id| Error::UnknownHost {
            table: table.to_owned(),
            id,
        };
        match update {
            Update::Add(backend, health) => {
                let slot = HostSlot::new(backend);
                let id = slot.id();
                if self.find(id).is_some() {
                    return Err(Error::DuplicateHost {
                        table: table.to_owned(),
                        host: slot.name().to_owned(),
                        id,
                    });
                }
                let name = slot.name().to_owned();
                self.weights.push(slot.backend().weight());
                self.hosts.push(Arc::new(slot));
                self.health.push(health);
                self.admin.push(Admin::Enabled);
                self.ejected.push(false);
                Ok((id, name, Change::Added))
            }
            Update::Remove(id) => {
                let i = self.find(id).ok_or_else(|| unknown(id))?;
                let slot = self.hosts.remove(i);
                self.weights.remove(i);
                self.health.remove(i);
                self.admin.remove(i);
                self.ejected.remove(i);
                Ok((id, slot.name().to_owned(), Change::Removed))
            }
            Update::Weight(id, weight) => {
                let i = self.find(id).ok_or_else(|| unknown(id))?;
                let old = std::mem::replace(&mut self.weights[i], weight);
                Ok((
                    id,
                    self.hosts[i].name().to_owned(),
                    Change::Weight { old, new: weight },
                ))
            }
        }
    }
}

impl<B: Backend> HostTable<B> {
    /// Applies several membership changes as one: a single new snapshot, so each
    /// balancer rebuilds once for the whole batch (a consistent-hash table of 1024 hosts
    /// takes tens of milliseconds per rebuild: adding 100 hosts one [`add`](HostTable::add)
    /// at a time rebuilds 100 times).
    ///
    /// Changes apply in order, each to the table as the ones before left it. A change that
    /// cannot apply (adding a host already there, removing or re-weighting one that is
    /// not) fails alone, with the error [`add`](HostTable::add) or
    /// [`remove`](HostTable::remove) would give; the others still apply. Returns each
    /// change's result: the id of the host it was about. Listeners hear one event per
    /// change that applied (`Added`, `Removed`, `Weight`), all with the new snapshot's
    /// version, in the batch's order. Like `add`, returns once every balancer picks from
    /// the new membership; with nothing applied, publishes nothing.
    ///
    /// ```
    /// use lb_core::{Health, HostTable, Update};
    /// use std::net::SocketAddr;
    /// let a: SocketAddr = "10.0.0.1:80".parse().unwrap();
    /// let b: SocketAddr = "10.0.0.2:80".parse().unwrap();
    /// let table = HostTable::new("web", [a]).unwrap();
    /// let before = table.snapshot().version();
    /// let results = table.update(vec![
    ///     Update::Add(b, Health::Up),
    ///     Update::Remove(lb_core::Backend::id(&a)),
    ///     Update::Add(b, Health::Up), // already there by now: fails alone
    /// ]);
    /// assert!(results[0].is_ok() && results[1].is_ok() && results[2].is_err());
    /// let snap = table.snapshot();
    /// assert_eq!((snap.len(), snap.version()), (1, before + 1));
    /// ```
    pub fn update(&self, updates: impl IntoIterator<Item = Update<B>>) -> Vec<Result<BackendId>> {
        let mut w = self.writer.lock();
        let snap = self.current.load_full();
        let mut draft = Draft::of(&snap);
        let mut results = Vec::new();
        let mut changes = Vec::new();
        for update in updates {
            match draft.apply(&self.name, update) {
                Ok((id, host, change)) => {
                    results.push(Ok(id));
                    changes.push((id, host, change));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        if changes.is_empty() {
            return results;
        }
        let version = w.next_version;
        let next = Snapshot::new(
            self.name.clone(),
            version,
            Arc::new(Members::new(version, draft.hosts, draft.weights)),
            draft.health.into(),
            draft.admin.into(),
            draft.ejected.into(),
        );
        let published = self.commit_all(&mut w, next, changes);
        drop(w);
        self.publish(published);
        results
    }
}
