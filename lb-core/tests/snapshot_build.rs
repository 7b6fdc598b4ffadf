//! Snapshots built by hand, as a `Table` implementation of the user's own builds them:
//! versions rise by one, the membership version changes exactly with the hosts, states
//! carry over by id, and duplicates are refused.

use std::net::SocketAddr;
use std::sync::Arc;

use lb_core::{Admin, Error, Health, HostSlot, Snapshot};

fn slot(addr: &str) -> Arc<HostSlot<SocketAddr>> {
    Arc::new(HostSlot::new(addr.parse::<SocketAddr>().unwrap()))
}

#[test]
fn derived_snapshots_count_versions_and_keep_the_membership() {
    let (a, b) = (slot("10.0.0.1:80"), slot("10.0.0.2:80"));
    let first = Snapshot::first("t", vec![a.clone(), b.clone()], Health::Unknown).unwrap();
    assert_eq!(
        (first.table(), first.version(), first.membership_version()),
        ("t", 1, 1)
    );
    assert!(first.usable().is_empty(), "unknown hosts are not usable");

    let up = first.with_health(0, Health::Up);
    assert_eq!((up.version(), up.membership_version()), (2, 1));
    assert_eq!(up.usable(), &[0]);
    let drained = up.with_admin(0, Admin::Draining);
    assert_eq!((drained.version(), drained.usable()), (3, &[][..]));
    let ejected = drained.with_admin(0, Admin::Enabled).with_ejected(0, true);
    assert_eq!((ejected.version(), ejected.is_ejected(0)), (5, true));
    assert!(ejected.usable().is_empty());
    assert!(Arc::ptr_eq(ejected.host(0), &a), "the same slot throughout");
}

#[test]
fn new_hosts_get_a_new_membership_and_old_ones_keep_their_state() {
    let (a, b, c) = (
        slot("10.0.0.1:80"),
        slot("10.0.0.2:80"),
        slot("10.0.0.3:80"),
    );
    let snap = Snapshot::first("t", vec![a.clone(), b.clone()], Health::Up)
        .unwrap()
        .with_health(1, Health::Down)
        .with_ejected(0, true);
    let next = snap
        .with_hosts(vec![c.clone(), b.clone(), a.clone()], Health::Unknown)
        .unwrap();
    assert_eq!((next.version(), next.membership_version()), (4, 4));
    assert_eq!(next.len(), 3);
    assert_eq!(next.health(0), Health::Unknown, "a new host starts as told");
    assert_eq!(next.health(1), Health::Down, "b keeps its health");
    assert!(next.is_ejected(2), "a keeps its ejection");
    assert!(Arc::ptr_eq(next.host(2), &a));
    let fewer = next.with_hosts(vec![b.clone()], Health::Up).unwrap();
    assert_eq!((fewer.len(), fewer.health(0)), (1, Health::Down));
}

#[test]
fn duplicate_hosts_are_refused() {
    let a = slot("10.0.0.1:80");
    match Snapshot::first("t", vec![a.clone(), slot("10.0.0.1:80")], Health::Up) {
        Err(Error::DuplicateHost { table, host, .. }) => {
            assert_eq!((table.as_str(), host.as_str()), ("t", "10.0.0.1:80"))
        }
        other => panic!("expected DuplicateHost, got {:?}", other.map(|s| s.len())),
    }
    let snap = Snapshot::first("t", vec![a.clone()], Health::Up).unwrap();
    assert!(matches!(
        snap.with_hosts(vec![a.clone(), a], Health::Up),
        Err(Error::DuplicateHost { .. })
    ));
}
