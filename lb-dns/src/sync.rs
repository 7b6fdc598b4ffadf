//! The task behind a [`Membership`](crate::Membership): look up the sources that are
//! due, fold the answers into the wanted set, and make the table match it.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lb_core::{BackendId, Error as TableError, Health, Table, Update, Weight};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::membership::Shared;
use crate::{DnsBackend, DnsEvent, Member, Resolver, Source};

/// The builder's settings the task needs.
pub(crate) struct Settings {
    pub(crate) min_ttl: Duration,
    pub(crate) max_ttl: Duration,
    pub(crate) initial_health: Health,
}

/// One source's state.
struct SourceState {
    source: Source,
    /// The last good answer's hosts; `None` until one arrives.
    last: Option<Vec<Member>>,
    next: Instant,
    failures: u32,
}

/// A host the membership added, and the weight it set.
#[derive(Clone, Copy)]
struct Owned {
    id: BackendId,
    weight: Weight,
}

/// The table writes that make the table match the wanted set.
struct Plan<B> {
    add: Vec<(Member, B)>,
    remove: Vec<(Member, BackendId)>,
    reweight: Vec<(Member, BackendId)>,
}

/// What the writes did.
struct Applied {
    added: Vec<(Member, BackendId)>,
    removed: Vec<Member>,
    reweighted: Vec<Member>,
    /// Hosts that vanished from the table under us: no longer ours.
    lost: Vec<SocketAddr>,
    errors: Vec<TableError>,
}

pub(crate) async fn run<B: DnsBackend>(
    table: Arc<dyn Table<B>>,
    resolver: Resolver,
    sources: Vec<Source>,
    settings: Settings,
    shared: Arc<Shared>,
    first_round: watch::Sender<bool>,
    mut stop: oneshot::Receiver<()>,
) {
    let start = Instant::now();
    let mut states: Vec<SourceState> = sources
        .into_iter()
        .map(|source| SourceState {
            source,
            last: None,
            next: start,
            failures: 0,
        })
        .collect();
    let mut owned: HashMap<SocketAddr, Owned> = HashMap::new();
    loop {
        let now = Instant::now();
        let due: Vec<usize> = (0..states.len())
            .filter(|&i| states[i].next <= now)
            .collect();
        let lookups = futures_util::future::join_all(
            due.iter()
                .map(|&i| resolver.resolve_fresh(&states[i].source)),
        );
        let answers = tokio::select! {
            _ = &mut stop => return,
            answers = lookups => answers,
        };
        let now = Instant::now();
        for (&i, answer) in due.iter().zip(answers) {
            let state = &mut states[i];
            let event = match answer {
                Ok(answer) => {
                    let next_in = answer.ttl.clamp(settings.min_ttl, settings.max_ttl);
                    state.next = now + next_in;
                    state.failures = 0;
                    state.last = Some(answer.members.clone());
                    debug!(table = %table.name(), source = %state.source, hosts = answer.members.len(), ttl = ?answer.ttl, next_in = ?next_in, "resolved");
                    DnsEvent::Resolved {
                        source: state.source.clone(),
                        members: answer.members,
                        ttl: answer.ttl,
                        next_in,
                    }
                }
                Err(error) => {
                    let retry_in = backoff(settings.min_ttl, settings.max_ttl, state.failures);
                    state.failures = state.failures.saturating_add(1);
                    state.next = now + retry_in;
                    let kept = state.last.as_ref().map_or(0, Vec::len);
                    warn!(table = %table.name(), source = %state.source, %error, kept, retry_in = ?retry_in, "DNS lookup failed; keeping the last good hosts");
                    DnsEvent::LookupFailed {
                        source: state.source.clone(),
                        error,
                        kept,
                        retry_in,
                    }
                }
            };
            let _ = shared.events.send(event);
        }
        let wanted = wanted(&states);
        *shared.members.lock().unwrap_or_else(|p| p.into_inner()) = wanted
            .iter()
            .map(|(&addr, &weight)| Member { addr, weight })
            .collect();
        let plan = plan(&*table, &mut owned, &wanted);
        if !(plan.add.is_empty() && plan.remove.is_empty() && plan.reweight.is_empty()) {
            let writer = table.clone();
            let health = settings.initial_health;
            match tokio::task::spawn_blocking(move || apply(&*writer, plan, health)).await {
                Ok(applied) => record(&*table, &shared, &mut owned, applied),
                // The writes panicked: ids we may have added are found again through
                // the table's snapshot at the next plan.
                Err(e) => {
                    warn!(table = %table.name(), error = %e, "DNS membership table write failed")
                }
            }
        }
        first_round.send_replace(true);
        let next = states
            .iter()
            .map(|s| s.next)
            .min()
            .unwrap_or(now + settings.max_ttl);
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep_until(next) => {}
        }
    }
}

/// The delay before trying a failed source again: the minimum TTL, doubled after each
/// further failure in a row, up to the maximum TTL.
fn backoff(min: Duration, max: Duration, failures: u32) -> Duration {
    min.saturating_mul(1u32 << failures.min(16)).min(max)
}

/// The union of every source's last good hosts; an address given by two sources keeps
/// its largest weight.
fn wanted(states: &[SourceState]) -> BTreeMap<SocketAddr, Weight> {
    let mut wanted = BTreeMap::new();
    for member in states.iter().filter_map(|s| s.last.as_ref()).flatten() {
        let w = wanted.entry(member.addr).or_insert(member.weight);
        *w = (*w).max(member.weight);
    }
    wanted
}

/// The writes that make the table hold the wanted hosts, judged on its current
/// snapshot: hosts of ours that left the table are forgotten (and added again if still
/// wanted), and an address already in the table that is not ours is left alone.
fn plan<B: DnsBackend>(
    table: &dyn Table<B>,
    owned: &mut HashMap<SocketAddr, Owned>,
    wanted: &BTreeMap<SocketAddr, Weight>,
) -> Plan<B> {
    let snapshot = table.snapshot();
    owned.retain(|_, o| snapshot.index_of(o.id).is_some());
    let mut plan = Plan {
        add: Vec::new(),
        remove: Vec::new(),
        reweight: Vec::new(),
    };
    for (&addr, &weight) in wanted {
        let member = Member { addr, weight };
        match owned.get(&addr) {
            Some(o) if o.weight != weight => plan.reweight.push((member, o.id)),
            Some(_) => {}
            None => {
                let backend = B::from_dns(&member);
                if snapshot.index_of(backend.id()).is_none() {
                    plan.add.push((member, backend));
                }
            }
        }
    }
    for (&addr, o) in owned.iter() {
        if !wanted.contains_key(&addr) {
            plan.remove.push((
                Member {
                    addr,
                    weight: o.weight,
                },
                o.id,
            ));
        }
    }
    plan.remove.sort_by_key(|(m, _)| m.addr);
    plan
}

/// What each change of the batch was for, to fold its result back.
enum Step {
    Add(Member),
    /// The weight an added host takes when its backend's own differs (same batch).
    AddWeight,
    Reweight(Member),
    Remove(Member),
}

/// Runs the writes as one batch ([`Table::update`]): additions (each with its weight),
/// re-weightings, then removals, so that balancers rebuild once per answer and a set
/// replaced whole is never seen empty.
fn apply<B: DnsBackend>(table: &dyn Table<B>, plan: Plan<B>, health: Health) -> Applied {
    let mut applied = Applied {
        added: Vec::new(),
        removed: Vec::new(),
        reweighted: Vec::new(),
        lost: Vec::new(),
        errors: Vec::new(),
    };
    let mut updates = Vec::new();
    let mut steps = Vec::new();
    for (member, backend) in plan.add {
        let (id, carried) = (backend.id(), backend.weight());
        updates.push(Update::Add(backend, health));
        steps.push(Step::Add(member));
        if carried != member.weight {
            updates.push(Update::Weight(id, member.weight));
            steps.push(Step::AddWeight);
        }
    }
    for (member, id) in plan.reweight {
        updates.push(Update::Weight(id, member.weight));
        steps.push(Step::Reweight(member));
    }
    for (member, id) in plan.remove {
        updates.push(Update::Remove(id));
        steps.push(Step::Remove(member));
    }
    for (result, step) in table.update(updates).into_iter().zip(steps) {
        match (step, result) {
            (Step::Add(member), Ok(id)) => applied.added.push((member, id)),
            // Added by someone else since the plan: theirs, not ours.
            (Step::Add(_), Err(TableError::DuplicateHost { .. })) => {}
            // The host was someone else's: its add failed, so its weight finds nothing.
            (Step::AddWeight, Err(TableError::UnknownHost { .. })) | (Step::AddWeight, Ok(_)) => {}
            (Step::Reweight(member), Ok(_)) => applied.reweighted.push(member),
            (Step::Remove(member), Ok(_)) => applied.removed.push(member),
            (
                Step::Reweight(member) | Step::Remove(member),
                Err(TableError::UnknownHost { .. }),
            ) => applied.lost.push(member.addr),
            (_, Err(e)) => applied.errors.push(e),
        }
    }
    applied
}

/// Folds what the writes did into `owned`, and reports it.
fn record<B: DnsBackend>(
    table: &dyn Table<B>,
    shared: &Shared,
    owned: &mut HashMap<SocketAddr, Owned>,
    applied: Applied,
) {
    for (member, id) in &applied.added {
        owned.insert(
            member.addr,
            Owned {
                id: *id,
                weight: member.weight,
            },
        );
    }
    for member in &applied.reweighted {
        if let Some(o) = owned.get_mut(&member.addr) {
            o.weight = member.weight;
        }
    }
    for member in &applied.removed {
        owned.remove(&member.addr);
    }
    for addr in &applied.lost {
        owned.remove(addr);
    }
    let name = table.name().to_owned();
    for error in applied.errors {
        warn!(table = %name, %error, "DNS membership could not change the table");
        let _ = shared.events.send(DnsEvent::TableError {
            table: name.clone(),
            error,
        });
    }
    if applied.added.is_empty() && applied.removed.is_empty() && applied.reweighted.is_empty() {
        return;
    }
    let added: Vec<Member> = applied.added.into_iter().map(|(m, _)| m).collect();
    info!(table = %name, added = ?added, removed = ?applied.removed, reweighted = ?applied.reweighted, "table follows DNS");
    let _ = shared.events.send(DnsEvent::TableChanged {
        table: name,
        added,
        removed: applied.removed,
        reweighted: applied.reweighted,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_minimum_up_to_the_maximum() {
        let s = Duration::from_secs;
        let delays: Vec<_> = (0..6).map(|f| backoff(s(1), s(10), f)).collect();
        assert_eq!(delays, vec![s(1), s(2), s(4), s(8), s(10), s(10)]);
        assert_eq!(backoff(s(1), s(300), u32::MAX), s(300));
    }
}
