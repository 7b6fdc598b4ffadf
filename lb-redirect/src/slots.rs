//! Filling the slot map: which host each of the `M` slots sends new connections to.
//!
//! Pure functions over host indexes (positions in a table snapshot), so that the
//! kernel-facing code only diffs two fillings.

use lb_core::Backend;
use lb_core::{Policy, Snapshot};
use lb_policies::{Consistent, ConsistentPlan};

/// One fill: the host index of each slot; `None` when no host is usable.
pub(crate) type Fill = Vec<Option<usize>>;

/// How many rehashes a slot of an unusable host tries before the uniform fallback:
/// the same bound as [`lb_policies::consistent::MAX_PROBES`].
const PROBES: u64 = lb_policies::consistent::MAX_PROBES as u64;

/// The Maglev table of `size` slots for this membership (built once per membership).
pub(crate) fn maglev_plan<B: Backend>(
    policy: &Consistent,
    snap: &Snapshot<B>,
    size: usize,
) -> Result<ConsistentPlan, lb_core::Error> {
    let policy = policy.clone().with_table_size(size)?;
    Ok(policy.plan(snap, None))
}

/// Source-hash: each slot keeps its Maglev host while that host is `eligible`; a slot
/// of another host probes rehashes of the slot number into the table (so it lands on
/// a host with a probability proportional to its weight), then falls back to the
/// eligible host with the highest `mix(slot, id)` (rendezvous hashing), which changes
/// only when that very host goes. A slot whose host is eligible never moves, so only a
/// failed host's clients move, and they come back exactly.
pub(crate) fn source_hash(plan: &ConsistentPlan, eligible: &[bool], ids: &[u64]) -> Fill {
    let m = plan.table_size();
    let usable: Vec<usize> = (0..eligible.len()).filter(|&i| eligible[i]).collect();
    if usable.is_empty() {
        return vec![None; m];
    }
    let ok = |h: Option<usize>| h.filter(|&h| eligible.get(h).copied().unwrap_or(false));
    (0..m)
        .map(|s| {
            if let Some(h) = ok(plan.slot(s)) {
                return Some(h);
            }
            for i in 1..=PROBES {
                let r = mix(s as u64 ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
                if let Some(h) = ok(plan.slot(((u128::from(r) * m as u128) >> 64) as usize)) {
                    return Some(h);
                }
            }
            // Not the position in `usable`: that shifts whenever any host leaves.
            usable
                .iter()
                .copied()
                .max_by_key(|&h| mix(s as u64 ^ ids.get(h).copied().unwrap_or(0)))
        })
        .collect()
}

/// Round-robin: the usable hosts in smooth weighted round-robin order (nginx), so that
/// `numgen inc` walks them in turn without bursts.
pub(crate) fn round_robin(m: usize, hosts: &[(usize, u64)]) -> Fill {
    if hosts.is_empty() {
        return vec![None; m];
    }
    let total: i64 = hosts.iter().map(|&(_, w)| w as i64).sum();
    let mut current = vec![0i64; hosts.len()];
    (0..m)
        .map(|_| {
            let mut best = 0;
            for (k, &(_, w)) in hosts.iter().enumerate() {
                current[k] += w as i64;
                if current[k] > current[best] {
                    best = k;
                }
            }
            current[best] -= total;
            Some(hosts[best].0)
        })
        .collect()
}

/// Slot counts proportional to `shares` (largest remainder), summing to `m`.
pub(crate) fn quotas(m: usize, shares: &[(usize, f64)]) -> Vec<(usize, usize)> {
    let total: f64 = shares.iter().map(|&(_, s)| s.max(0.0)).sum();
    if shares.is_empty() || total <= 0.0 {
        return Vec::new();
    }
    let exact: Vec<f64> = shares
        .iter()
        .map(|&(_, s)| m as f64 * s.max(0.0) / total)
        .collect();
    let mut counts: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (exact[a] - exact[a].floor(), exact[b] - exact[b].floor());
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    let missing = m.saturating_sub(counts.iter().sum());
    for &k in order.iter().cycle().take(missing) {
        counts[k] += 1;
    }
    shares.iter().map(|&(h, _)| h).zip(counts).collect()
}

/// Refills `current` to match `quotas` moving as few slots as possible: a host keeps
/// its slots up to its quota, and only the excess (and slots of hosts without a quota)
/// go to hosts below theirs. Random and least-states use this, so a refresh rewrites
/// only the slots whose share changed.
pub(crate) fn rebalance(current: &[Option<usize>], quotas: &[(usize, usize)]) -> Fill {
    let m = current.len();
    if quotas.is_empty() {
        return vec![None; m];
    }
    let mut want: std::collections::HashMap<usize, usize> = quotas.iter().copied().collect();
    let mut next: Fill = vec![None; m];
    for (s, owner) in current.iter().enumerate() {
        if let Some(h) = owner {
            if let Some(left) = want.get_mut(h).filter(|l| **l > 0) {
                *left -= 1;
                next[s] = Some(*h);
            }
        }
    }
    let mut takers = quotas
        .iter()
        .flat_map(|&(h, _)| std::iter::repeat_n(h, want.get(&h).copied().unwrap_or(0)));
    for slot in next.iter_mut().filter(|s| s.is_none()) {
        *slot = takers.next();
    }
    next
}

/// Least-states shares: the new states expected before the next refresh (`arrivals`)
/// are poured into the hosts with the fewest states per weight, like water into
/// vessels of different widths: host `i` gets `max(0, L w_i - c_i)` where the level
/// `L` makes the shares add up to `arrivals`. With equal counts this is the weighted
/// split; with one host far behind, it takes every new state until it catches up.
pub(crate) fn least_states_shares(hosts: &[(usize, u64, u64)], arrivals: u64) -> Vec<(usize, f64)> {
    if hosts.is_empty() {
        return Vec::new();
    }
    let arrivals = arrivals.max(1) as f64;
    // Hosts sorted by load per weight; raise the level host by host.
    let mut sorted: Vec<(usize, f64, f64)> = hosts
        .iter()
        .map(|&(h, w, c)| (h, w.max(1) as f64, c as f64))
        .collect();
    sorted.sort_by(|a, b| (a.2 / a.1).total_cmp(&(b.2 / b.1)));
    let (mut wsum, mut csum) = (0.0, 0.0);
    let mut level = 0.0;
    for (k, &(_, w, c)) in sorted.iter().enumerate() {
        wsum += w;
        csum += c;
        level = (arrivals + csum) / wsum;
        let next_load = sorted.get(k + 1).map(|n| n.2 / n.1);
        if next_load.is_none_or(|l| level <= l) {
            break;
        }
    }
    hosts
        .iter()
        .map(|&(h, w, c)| (h, (level * w.max(1) as f64 - c as f64).max(0.0)))
        .collect()
}

/// splitmix64's finalizer.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_core::HostTable;
    use std::net::SocketAddr;

    fn snapshot(n: usize) -> std::sync::Arc<Snapshot<SocketAddr>> {
        let hosts: Vec<SocketAddr> = (1..=n)
            .map(|i| format!("198.18.{i}.2:80").parse().unwrap())
            .collect();
        HostTable::new("t", hosts).unwrap().snapshot()
    }

    #[test]
    fn a_down_host_moves_only_its_slots_and_they_come_back() {
        let snap = snapshot(3);
        let plan = maglev_plan(&Consistent::new(), &snap, 4093).unwrap();
        let ids: Vec<u64> = (0..3).map(|i| snap.id(i).get()).collect();
        let all = source_hash(&plan, &[true, true, true], &ids);
        let down = source_hash(&plan, &[true, false, true], &ids);
        for s in 0..4093 {
            if all[s] != Some(1) {
                assert_eq!(down[s], all[s], "slot {s} moved although its host is up");
            } else {
                assert!(matches!(down[s], Some(0) | Some(2)));
            }
        }
        let moved_to_0 = (0..4093)
            .filter(|&s| all[s] == Some(1) && down[s] == Some(0))
            .count();
        let owned = all.iter().filter(|h| **h == Some(1)).count();
        // Spread over both survivors, not onto a neighbour.
        assert!(
            moved_to_0 > owned / 4 && moved_to_0 < owned * 3 / 4,
            "{moved_to_0} of {owned}"
        );
        assert_eq!(source_hash(&plan, &[true, true, true], &ids), all);
        assert_eq!(source_hash(&plan, &[false; 3], &ids), vec![None; 4093]);
    }

    #[test]
    fn slots_of_never_eligible_hosts_stay_put_when_another_host_fails() {
        // Six hosts, three of them of the other family (never eligible): many slots
        // go through the fallback, which must not shift when host 2 fails.
        let snap = snapshot(6);
        let ids: Vec<u64> = (0..6).map(|i| snap.id(i).get()).collect();
        let plan = maglev_plan(&Consistent::new(), &snap, 4093).unwrap();
        let before = source_hash(&plan, &[true, false, true, false, true, false], &ids);
        let after = source_hash(&plan, &[true, false, false, false, true, false], &ids);
        for s in 0..4093 {
            if before[s] != Some(2) {
                assert_eq!(
                    after[s], before[s],
                    "slot {s} moved although its host is up"
                );
            }
        }
    }

    #[test]
    fn round_robin_interleaves_by_weight() {
        // Weights 2 and 1: a a b, smoothly (a b a).
        let fill = round_robin(6, &[(0, 2), (1, 1)]);
        assert_eq!(fill, [0, 1, 0, 0, 1, 0].map(Some).to_vec());
        assert_eq!(round_robin(3, &[]), vec![None; 3]);
    }

    #[test]
    fn quotas_add_up_and_follow_shares() {
        assert_eq!(quotas(7, &[(0, 1.0), (1, 1.0)]), vec![(0, 4), (1, 3)]);
        assert_eq!(quotas(10, &[(3, 3.0), (5, 1.0)]), vec![(3, 8), (5, 2)]);
        assert_eq!(quotas(10, &[(3, 0.0)]), vec![]);
    }

    #[test]
    fn rebalance_moves_only_the_excess() {
        let current = vec![Some(0), Some(0), Some(1), Some(1)];
        let next = rebalance(&current, &[(0, 1), (1, 2), (2, 1)]);
        // Host 0 keeps slot 0, host 1 keeps both, slot 1 goes to host 2.
        assert_eq!(next, vec![Some(0), Some(2), Some(1), Some(1)]);
        assert_eq!(rebalance(&current, &[]), vec![None; 4]);
    }

    #[test]
    fn least_states_fills_the_least_loaded_first() {
        // Host 0 holds 4 states, host 1 none; 2 arrivals expected: both go to host 1.
        let shares = least_states_shares(&[(0, 1, 4), (1, 1, 0)], 2);
        assert_eq!(shares, vec![(0, 0.0), (1, 2.0)]);
        // Equal loads: the weighted split.
        let shares = least_states_shares(&[(0, 2, 6), (1, 1, 3)], 3);
        assert_eq!(shares, vec![(0, 2.0), (1, 1.0)]);
        // Many arrivals: the loaded host gets some once the other catches up.
        let shares = least_states_shares(&[(0, 1, 4), (1, 1, 0)], 8);
        assert_eq!(shares, vec![(0, 2.0), (1, 6.0)]);
    }
}
