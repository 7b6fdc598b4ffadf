//! The redirect's worker thread: turns table changes into nft transactions, one at a
//! time, and refreshes least-states' slots.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

use lb_core::{BackendId, Host, Snapshot, Table};
use lb_policies::{Consistent, ConsistentPlan};

use crate::builder::RedirectBuilder;
use crate::conntrack::Conntrack;
use crate::nft::Nft;
use crate::redirect::shared::Shared;
use crate::ruleset::{host_tag, Family, Layout};
use crate::slots::{self, Fill};
use crate::{Error, HostStates, Mode};

type Reply<T> = Sender<Result<T, Error>>;

/// What the handle and the table's listener ask of the worker.
pub(crate) enum Msg {
    Changed,
    Refresh(Reply<Vec<HostStates>>),
    Sticky(Reply<Vec<(IpAddr, String)>>),
    List(Reply<String>),
    Stop(Reply<()>),
}

/// What the kernel holds, as far as the worker knows.
#[derive(Default)]
struct Applied {
    /// Member hosts by id: their backend address and whether they were usable.
    hosts: HashMap<BackendId, (SocketAddr, bool)>,
    /// Member ids per family, in dispatch order.
    members: [Vec<BackendId>; 2],
    /// Slot -> backend per family.
    fills: [Vec<Option<SocketAddr>>; 2],
}

pub(crate) struct Worker {
    layout: Layout,
    table: Arc<dyn Table<Host>>,
    shared: Arc<Shared>,
    nft: Nft,
    conntrack: Conntrack,
    policy: Consistent,
    backend_port: Option<u16>,
    interval: Duration,
    plan: Option<(u64, ConsistentPlan)>,
    applied: Option<Applied>,
    /// Least-states: the last counts read and their total.
    counts: HashMap<SocketAddr, u64>,
    last_total: u64,
}

impl Worker {
    pub(crate) fn new(
        b: &RedirectBuilder,
        layout: Layout,
        table: Arc<dyn Table<Host>>,
        shared: Arc<Shared>,
    ) -> Self {
        Worker {
            layout,
            table,
            shared,
            nft: Nft::new(b.nft.clone()),
            conntrack: Conntrack::new(b.conntrack.clone()),
            policy: Consistent::new().with_key(b.key),
            backend_port: b.backend_port,
            interval: b.least_states_interval,
            plan: None,
            applied: None,
            counts: HashMap::new(),
            last_total: 0,
        }
    }

    pub(crate) fn run(mut self, rx: Receiver<Msg>, ready: Sender<Result<(), Error>>) {
        let started = self.start();
        let ok = started.is_ok();
        let _ = ready.send(started);
        if !ok {
            return;
        }
        // A message read while draining a burst of changes, handled next.
        let mut pending: Option<Msg> = None;
        loop {
            let msg = if let Some(m) = pending.take() {
                Some(m)
            } else if self.layout.mode == Mode::LeastStates {
                match rx.recv_timeout(self.interval) {
                    Ok(m) => Some(m),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(m) => Some(m),
                    Err(_) => break,
                }
            };
            match msg {
                None => {
                    if let Err(e) = self.refresh() {
                        tracing::warn!(table = %self.layout.table, error = %e, "least-states could not read state counts");
                    }
                }
                Some(Msg::Changed) => {
                    // Changes that queued up meanwhile are all in the current snapshot.
                    loop {
                        match rx.try_recv() {
                            Ok(Msg::Changed) => continue,
                            Ok(other) => pending = Some(other),
                            Err(_) => {}
                        }
                        break;
                    }
                    self.sync_logged();
                }
                Some(Msg::Refresh(reply)) => {
                    let _ = reply.send(self.refresh());
                }
                Some(Msg::Sticky(reply)) => {
                    let _ = reply.send(self.sticky_sources());
                }
                Some(Msg::List(reply)) => {
                    let _ = reply.send(self.nft.list_text(&self.layout.table));
                }
                Some(Msg::Stop(reply)) => {
                    let _ = reply.send(self.nft.apply(&self.layout.delete()).map(drop));
                    return;
                }
            }
        }
        // The handle is gone without a stop: still remove our table.
        let _ = self.nft.apply(&self.layout.delete());
    }

    /// Creates the table and fills it, in one transaction.
    fn start(&mut self) -> Result<(), Error> {
        if self.layout.mode == Mode::LeastStates {
            self.conntrack.check()?;
        }
        let snap = self.table.snapshot();
        let mut script = self.layout.create();
        let next = self.desired(&snap, &Applied::default())?;
        self.diff(&mut script, &Applied::default(), &next, true);
        self.commit(&script, snap.version())?;
        self.applied = Some(next);
        Ok(())
    }

    fn sync_logged(&mut self) {
        if let Err(e) = self.sync() {
            tracing::error!(table = %self.layout.table, error = %e, "redirect could not apply a change");
        }
    }

    /// Brings the kernel to the current snapshot: only what changed, or a full rebuild
    /// after a failure.
    fn sync(&mut self) -> Result<(), Error> {
        let snap = self.table.snapshot();
        let Some(old) = self.applied.take() else {
            return self.start();
        };
        let next = self.desired(&snap, &old)?;
        let mut script = String::new();
        self.diff(&mut script, &old, &next, false);
        if script.is_empty() {
            self.applied = Some(next);
            self.shared
                .record(|s| s.applied_version = s.applied_version.max(snap.version()));
            return Ok(());
        }
        match self.commit(&script, snap.version()) {
            Ok(()) => {
                self.applied = Some(next);
                Ok(())
            }
            Err(e) => {
                // Someone changed our table, or it is gone: rebuild it whole.
                tracing::warn!(table = %self.layout.table, error = %e, "rebuilding the redirect's table");
                self.start()
            }
        }
    }

    fn commit(&self, script: &str, version: u64) -> Result<(), Error> {
        match self.nft.apply(script) {
            Ok(took) => {
                tracing::debug!(table = %self.layout.table, version, micros = took.as_micros() as u64, "nft transaction applied");
                self.shared.record(|s| {
                    s.applied_version = s.applied_version.max(version);
                    s.transactions += 1;
                    s.last_transaction = took;
                    s.max_transaction = s.max_transaction.max(took);
                });
                Ok(())
            }
            Err(e) => {
                self.shared.record(|s| {
                    s.failures += 1;
                    s.last_error = Some(e.to_string());
                });
                Err(e)
            }
        }
    }

    /// A host's backend address: its address with the redirect's backend port.
    fn target(&self, host: &Host) -> SocketAddr {
        let addr = host.address();
        SocketAddr::new(
            addr.ip().to_canonical(),
            self.backend_port.unwrap_or(self.layout.port),
        )
    }

    /// What the kernel should hold for this snapshot.
    fn desired(&mut self, snap: &Snapshot<Host>, old: &Applied) -> Result<Applied, Error> {
        let targets: Vec<SocketAddr> = snap
            .hosts()
            .iter()
            .map(|h| self.target(h.backend()))
            .collect();
        let families: Vec<Family> = self.layout.families().collect();
        let mut next = Applied::default();
        for (i, t) in targets.iter().enumerate() {
            let f = Family::of(t.ip());
            if families.contains(&f) {
                next.hosts.insert(snap.id(i), (*t, snap.is_usable(i)));
                next.members[f.index()].push(snap.id(i));
            }
        }
        for f in Family::BOTH {
            if !families.contains(&f) {
                continue;
            }
            let eligible: Vec<bool> = (0..snap.len())
                .map(|i| snap.is_usable(i) && Family::of(targets[i].ip()) == f)
                .collect();
            let weighted: Vec<(usize, u64)> = (0..snap.len())
                .filter(|&i| eligible[i])
                .map(|i| (i, u64::from(snap.weight(i).get())))
                .collect();
            let m = self.layout.slots;
            let current: Fill = {
                let index: HashMap<SocketAddr, usize> =
                    targets.iter().enumerate().map(|(i, t)| (*t, i)).collect();
                let old_fill = &old.fills[f.index()];
                (0..m)
                    .map(|s| {
                        old_fill
                            .get(s)
                            .copied()
                            .flatten()
                            .and_then(|t| index.get(&t).copied())
                    })
                    .collect()
            };
            let fill = match self.layout.mode {
                Mode::SourceHash => {
                    let ids: Vec<u64> = (0..snap.len()).map(|i| snap.id(i).get()).collect();
                    slots::source_hash(self.plan(snap)?, &eligible, &ids)
                }
                Mode::RoundRobin => slots::round_robin(m, &weighted),
                Mode::Random => {
                    let shares: Vec<(usize, f64)> =
                        weighted.iter().map(|&(i, w)| (i, w as f64)).collect();
                    slots::rebalance(&current, &slots::quotas(m, &shares))
                }
                Mode::LeastStates => {
                    let loads: Vec<(usize, u64, u64)> = weighted
                        .iter()
                        .map(|&(i, w)| (i, w, self.counts.get(&targets[i]).copied().unwrap_or(0)))
                        .collect();
                    let total: u64 = loads.iter().map(|l| l.2).sum();
                    let arrivals = (loads.len() as u64).max(total.saturating_sub(self.last_total));
                    let shares = slots::least_states_shares(&loads, arrivals);
                    slots::rebalance(&current, &slots::quotas(m, &shares))
                }
            };
            next.fills[f.index()] = fill.into_iter().map(|h| h.map(|i| targets[i])).collect();
        }
        Ok(next)
    }

    fn plan(&mut self, snap: &Snapshot<Host>) -> Result<&ConsistentPlan, Error> {
        let version = snap.membership_version();
        if self.plan.as_ref().is_none_or(|(v, _)| *v != version) {
            let plan = slots::maglev_plan(&self.policy, snap, self.layout.slots).map_err(|e| {
                Error::InvalidSetting {
                    setting: "slots",
                    expected: e.to_string(),
                }
            })?;
            self.plan = Some((version, plan));
        }
        match &self.plan {
            Some((_, plan)) => Ok(plan),
            None => Err(Error::Stopped),
        }
    }

    /// Appends the commands that turn `old` into `next` to `script`.
    fn diff(&self, script: &mut String, old: &Applied, next: &Applied, fresh: bool) {
        let l = &self.layout;
        for (id, (target, _)) in &next.hosts {
            if !old.hosts.contains_key(id) {
                l.add_host(script, *id, Family::of(target.ip()));
            }
        }
        for f in l.families() {
            if fresh || old.members[f.index()] != next.members[f.index()] {
                l.dispatch(script, f, &next.members[f.index()]);
            }
        }
        for (id, (target, usable)) in &next.hosts {
            let was = old.hosts.get(id).map(|&(_, u)| u);
            match (was, *usable) {
                (Some(true), false) => l.host_unusable(script, *id),
                (None | Some(false), true) => l.host_usable(script, *id, *target),
                _ => {}
            }
        }
        for id in old.hosts.keys() {
            if !next.hosts.contains_key(id) {
                l.remove_host(script, *id);
            }
        }
        for f in l.families() {
            l.slots(script, f, &old.fills[f.index()], &next.fills[f.index()]);
        }
    }

    /// Reads the state counts and, for least-states, refills the slots.
    fn refresh(&mut self) -> Result<Vec<HostStates>, Error> {
        let counts = self.conntrack.states(&self.layout.vips, self.layout.port)?;
        let snap = self.table.snapshot();
        let states = snap
            .hosts()
            .iter()
            .map(|h| HostStates {
                host: h.name().to_owned(),
                states: counts.get(&self.target(h.backend())).copied().unwrap_or(0),
            })
            .collect();
        if self.layout.mode == Mode::LeastStates && counts != self.counts {
            // Arrivals are estimated from the growth since the previous reading.
            self.last_total = self.counts.values().sum();
            self.counts = counts;
            self.sync()?;
        }
        Ok(states)
    }

    fn sticky_sources(&self) -> Result<Vec<(IpAddr, String)>, Error> {
        let mut out = Vec::new();
        if self.layout.sticky.is_none() {
            return Ok(out);
        }
        let snap = self.table.snapshot();
        for h in snap.hosts() {
            let set = format!("s_{}", host_tag(h.id()));
            let json = self
                .nft
                .list_json(&["list", "set", "inet", &self.layout.table, &set])?;
            for ip in crate::nft::set_elements(&json) {
                out.push((ip, h.name().to_owned()));
            }
        }
        Ok(out)
    }
}
