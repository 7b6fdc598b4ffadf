//! [`Snapshot`]: an immutable, versioned view of a table that readers load without locking.

use std::fmt;
use std::sync::Arc;

use hashbrown::HashMap;

use crate::{Admin, Backend, BackendId, Health, HostSlot, HostStats, Weight};

/// The configured hosts of a table: changes only when hosts are added, removed or
/// re-weighted. Shared by every snapshot until then.
pub(crate) struct Members<B> {
    pub(crate) version: u64,
    pub(crate) hosts: Box<[Arc<HostSlot<B>>]>,
    pub(crate) weights: Box<[Weight]>,
    pub(crate) index: HashMap<BackendId, u32>,
}

impl<B: Backend> Members<B> {
    /// Members of table `table` from these hosts, with their backends' weights, or
    /// [`Error::DuplicateHost`](crate::Error::DuplicateHost).
    pub(crate) fn checked(
        table: &str,
        version: u64,
        hosts: Vec<Arc<HostSlot<B>>>,
    ) -> crate::Result<Self> {
        let mut seen = hashbrown::HashSet::with_capacity(hosts.len());
        for h in &hosts {
            if !seen.insert(h.id()) {
                return Err(crate::Error::DuplicateHost {
                    table: table.to_owned(),
                    host: h.name().to_owned(),
                    id: h.id(),
                });
            }
        }
        let weights = hosts.iter().map(|h| h.backend().weight()).collect();
        Ok(Members::new(version, hosts, weights))
    }

    pub(crate) fn new(version: u64, hosts: Vec<Arc<HostSlot<B>>>, weights: Vec<Weight>) -> Self {
        let index = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.id(), i as u32))
            .collect();
        Members {
            version,
            hosts: hosts.into(),
            weights: weights.into(),
            index,
        }
    }
}

/// A table at one moment: its hosts in configuration order, their weights, health,
/// admin state and ejections, and which of them are usable.
///
/// Snapshots are immutable. A table publishes a new one for every change, and readers
/// load the current one with a single atomic operation, never waiting for a writer.
/// Hosts are addressed by their index in configuration order (`0..len()`); an index is
/// valid only within its snapshot, a [`BackendId`] across all of them.
///
/// Policies read snapshots to order candidates, and build what they precompute from
/// them (see [`Policy::plan`](crate::Policy::plan)).
pub struct Snapshot<B> {
    pub(crate) table: Arc<str>,
    pub(crate) version: u64,
    pub(crate) members: Arc<Members<B>>,
    pub(crate) health: Box<[Health]>,
    pub(crate) admin: Box<[Admin]>,
    pub(crate) ejected: Box<[bool]>,
    pub(crate) usable: Box<[bool]>,
    pub(crate) usable_list: Box<[u32]>,
    pub(crate) usable_weight: u64,
}

impl<B: Backend> Snapshot<B> {
    pub(crate) fn new(
        table: Arc<str>,
        version: u64,
        members: Arc<Members<B>>,
        health: Box<[Health]>,
        admin: Box<[Admin]>,
        ejected: Box<[bool]>,
    ) -> Self {
        let usable: Box<[bool]> = health
            .iter()
            .zip(admin.iter())
            .zip(ejected.iter())
            .map(|((h, a), e)| *h == Health::Up && *a == Admin::Enabled && !*e)
            .collect();
        let usable_list: Box<[u32]> = (0..usable.len() as u32)
            .filter(|&i| usable[i as usize])
            .collect();
        let usable_weight = usable_list
            .iter()
            .map(|&i| u64::from(members.weights[i as usize].get()))
            .sum();
        Snapshot {
            table,
            version,
            members,
            health,
            admin,
            ejected,
            usable,
            usable_list,
            usable_weight,
        }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// This snapshot's version: increases with every change to the table.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The version of the configured membership (hosts and weights). Unchanged by
    /// health and admin changes: policies compare it to reuse what they precomputed.
    pub fn membership_version(&self) -> u64 {
        self.members.version
    }

    /// The number of configured hosts, usable or not.
    pub fn len(&self) -> usize {
        self.members.hosts.len()
    }

    /// Whether the table has no hosts (built with
    /// [`allow_empty`](crate::TableBuilder::allow_empty), or its last host removed).
    pub fn is_empty(&self) -> bool {
        self.members.hosts.is_empty()
    }

    /// The host at `index`. Panics if `index >= len()`, like slice indexing.
    pub fn host(&self, index: usize) -> &Arc<HostSlot<B>> {
        &self.members.hosts[index]
    }

    /// All hosts in configuration order.
    pub fn hosts(&self) -> &[Arc<HostSlot<B>>] {
        &self.members.hosts
    }

    /// The id of the host at `index`. Panics if `index >= len()`.
    pub fn id(&self, index: usize) -> BackendId {
        self.members.hosts[index].id()
    }

    /// The weight of the host at `index`. Panics if `index >= len()`.
    pub fn weight(&self, index: usize) -> Weight {
        self.members.weights[index]
    }

    /// All weights in configuration order.
    pub fn weights(&self) -> &[Weight] {
        &self.members.weights
    }

    /// The health of the host at `index`. Panics if `index >= len()`.
    pub fn health(&self, index: usize) -> Health {
        self.health[index]
    }

    /// The admin state of the host at `index`. Panics if `index >= len()`.
    pub fn admin(&self, index: usize) -> Admin {
        self.admin[index]
    }

    /// Whether the host at `index` is ejected by passive health
    /// ([`HostTable::eject`](crate::HostTable::eject)): out of rotation for a while, whatever its
    /// health. `false` for an index out of range.
    pub fn is_ejected(&self, index: usize) -> bool {
        self.ejected.get(index).copied().unwrap_or(false)
    }

    /// Whether new states may go to the host at `index`: up, enabled and not ejected.
    /// `false` for an index out of range.
    pub fn is_usable(&self, index: usize) -> bool {
        self.usable.get(index).copied().unwrap_or(false)
    }

    /// The indexes of the usable hosts, ascending.
    pub fn usable(&self) -> &[u32] {
        &self.usable_list
    }

    /// The sum of the usable hosts' weights.
    pub fn usable_weight(&self) -> u64 {
        self.usable_weight
    }

    /// The index of the host with this id, if it is in the table.
    pub fn index_of(&self, id: BackendId) -> Option<usize> {
        self.members.index.get(&id).map(|&i| i as usize)
    }

    /// Every host's state and counters, in configuration order.
    pub fn stats(&self) -> Vec<HostStats> {
        (0..self.len())
            .map(|i| {
                let slot = &self.members.hosts[i];
                HostStats {
                    name: slot.name().to_owned(),
                    id: slot.id(),
                    weight: self.members.weights[i].get(),
                    health: self.health[i],
                    admin: self.admin[i],
                    ejected: self.ejected[i],
                    usable: self.usable[i],
                    active: slot.state().active(),
                    total: slot.state().total(),
                    connect_failures: slot.state().connect_failures(),
                }
            })
            .collect()
    }
}

/// Building snapshots, for a [`HostTable`](crate::Table) implementation of your own
/// ([`HostTable`](crate::HostTable) builds its own). Each derived snapshot has the next
/// version; one with other hosts also has a new membership version, so balancers know
/// when to rebuild.
impl<B: Backend> Snapshot<B> {
    /// The first snapshot of table `table` (version 1): these hosts in this order, with
    /// their backends' weights, all with `health`, enabled and not ejected. Fails on a
    /// duplicate host ([`Error::DuplicateHost`](crate::Error::DuplicateHost)).
    pub fn first(table: &str, hosts: Vec<Arc<HostSlot<B>>>, health: Health) -> crate::Result<Self> {
        let table: Arc<str> = Arc::from(table);
        let members = Members::checked(&table, 1, hosts)?;
        let n = members.hosts.len();
        Ok(Snapshot::new(
            table,
            1,
            Arc::new(members),
            vec![health; n].into(),
            vec![Admin::Enabled; n].into(),
            vec![false; n].into(),
        ))
    }

    /// The next snapshot, with host `index`'s health set to `health`.
    ///
    /// # Panics
    ///
    /// If `index >= self.len()`.
    pub fn with_health(&self, index: usize, health: Health) -> Self {
        let mut all = self.health.clone();
        all[index] = health;
        self.next(
            self.members.clone(),
            all,
            self.admin.clone(),
            self.ejected.clone(),
        )
    }

    /// The next snapshot, with host `index`'s admin state set to `admin`.
    ///
    /// # Panics
    ///
    /// If `index >= self.len()`.
    pub fn with_admin(&self, index: usize, admin: Admin) -> Self {
        let mut all = self.admin.clone();
        all[index] = admin;
        self.next(
            self.members.clone(),
            self.health.clone(),
            all,
            self.ejected.clone(),
        )
    }

    /// The next snapshot, with host `index` ejected or not.
    ///
    /// # Panics
    ///
    /// If `index >= self.len()`.
    pub fn with_ejected(&self, index: usize, ejected: bool) -> Self {
        let mut all = self.ejected.clone();
        all[index] = ejected;
        self.next(
            self.members.clone(),
            self.health.clone(),
            self.admin.clone(),
            all,
        )
    }

    /// The next snapshot, with these hosts (a new membership). A host already here (by
    /// id) keeps its health, admin state and ejection, and should be passed as the same
    /// `Arc` so its counters carry on; a new one starts with `health`, enabled. Fails on
    /// a duplicate host.
    pub fn with_hosts(&self, hosts: Vec<Arc<HostSlot<B>>>, health: Health) -> crate::Result<Self> {
        let version = self.version + 1;
        let members = Members::checked(&self.table, version, hosts)?;
        let mut health_all = Vec::with_capacity(members.hosts.len());
        let mut admin_all = Vec::with_capacity(members.hosts.len());
        let mut ejected_all = Vec::with_capacity(members.hosts.len());
        for host in members.hosts.iter() {
            match self.index_of(host.id()) {
                Some(i) => {
                    health_all.push(self.health[i]);
                    admin_all.push(self.admin[i]);
                    ejected_all.push(self.ejected[i]);
                }
                None => {
                    health_all.push(health);
                    admin_all.push(Admin::Enabled);
                    ejected_all.push(false);
                }
            }
        }
        Ok(self.next(
            Arc::new(members),
            health_all.into(),
            admin_all.into(),
            ejected_all.into(),
        ))
    }

    fn next(
        &self,
        members: Arc<Members<B>>,
        health: Box<[Health]>,
        admin: Box<[Admin]>,
        ejected: Box<[bool]>,
    ) -> Self {
        Snapshot::new(
            self.table.clone(),
            self.version + 1,
            members,
            health,
            admin,
            ejected,
        )
    }
}

impl<B> fmt::Debug for Snapshot<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("table", &self.table)
            .field("version", &self.version)
            .field("membership_version", &self.members.version)
            .field("hosts", &self.members.hosts.len())
            .field("usable", &self.usable_list.len())
            .finish()
    }
}
