//! [`TableBuilder`]: a table's hosts and initial health, checked before the first
//! snapshot is published.

use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use super::{HostTable, Writer};
use crate::snapshot::Members;
use crate::{Admin, Backend, Error, Health, HostSlot, Result, Snapshot};

/// The longest table name, in characters (see [`Error::InvalidTableName`]).
const MAX_NAME_LEN: usize = 64;

/// Builds a [`HostTable`].
///
/// Defaults:
/// - no hosts, and at least one is required unless [`allow_empty`](TableBuilder::allow_empty)
///   is called (an empty host list is more often a mistake, say a resolver that found
///   nothing, than a table meant to be filled at run time);
/// - hosts start [`Health::Up`]: a table without a health monitor is usable at once. A
///   monitor marks hosts it has not checked yet as it starts.
pub struct TableBuilder<B = crate::Host> {
    name: String,
    hosts: Vec<B>,
    initial_health: Health,
    allow_empty: bool,
}

impl<B: Backend> TableBuilder<B> {
    /// An empty builder for a table with this name; see [`HostTable::builder`].
    pub(super) fn new(name: String) -> Self {
        TableBuilder {
            name,
            hosts: Vec::new(),
            initial_health: Health::Up,
            allow_empty: false,
        }
    }

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

    /// Allows the table to be built with no hosts: relayd's `table <name> { }`, whose
    /// hosts are added at run time with [`HostTable::add`].
    ///
    /// Until a host is added, every pick fails with [`Error::NoUsableHost`] and
    /// candidate lists are empty, exactly as for a table whose hosts are all down. Without
    /// this call, [`build`](TableBuilder::build) refuses an empty host list with
    /// [`Error::EmptyTable`]. (Any table may later lose its last host through
    /// [`HostTable::remove`]; this only concerns the hosts given to the builder.)
    ///
    /// ```
    /// use lb_core::{Health, HostTable};
    /// use std::net::SocketAddr;
    /// let table = HostTable::<SocketAddr>::builder("exchange").allow_empty().build().unwrap();
    /// assert!(table.snapshot().is_empty());
    /// table.add("10.0.0.11:443".parse().unwrap(), Health::Up).unwrap();
    /// assert_eq!(table.snapshot().usable(), &[0]);
    /// ```
    pub fn allow_empty(mut self) -> Self {
        self.allow_empty = true;
        self
    }

    /// Builds the table, or fails on an invalid name, no hosts (unless
    /// [`allow_empty`](TableBuilder::allow_empty)), or duplicate hosts.
    pub fn build(self) -> Result<Arc<HostTable<B>>> {
        if self.name.is_empty() || self.name.chars().count() > MAX_NAME_LEN {
            return Err(Error::InvalidTableName { name: self.name });
        }
        if self.hosts.is_empty() && !self.allow_empty {
            return Err(Error::EmptyTable { table: self.name });
        }
        let name: Arc<str> = self.name.into();
        let slots = self
            .hosts
            .into_iter()
            .map(|b| Arc::new(HostSlot::new(b)))
            .collect();
        let members = Arc::new(Members::checked(&name, 1, slots)?);
        let n = members.hosts.len();
        let snapshot = Snapshot::new(
            name.clone(),
            1,
            members,
            vec![self.initial_health; n].into(),
            vec![Admin::Enabled; n].into(),
            vec![false; n].into(),
        );
        Ok(Arc::new(HostTable {
            name,
            current: ArcSwap::from_pointee(snapshot),
            writer: Mutex::new(Writer {
                next_version: 2,
                observers: Vec::new(),
                listeners: Vec::new(),
            }),
            delivery: super::Delivery::new(2),
        }))
    }
}
