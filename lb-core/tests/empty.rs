//! Empty tables: built only on request, reached by removing the last host, and picked
//! from like a table whose hosts are all down.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use lb_core::{
    Backend, Balancer, Change, Context, Error, Health, HostTable, Order, Policy, Snapshot,
};

fn addr(last: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, last], 443))
}

/// Prefers index 0 and scans from index 7 whatever the table's size: an order that
/// points past the end of a small or empty table, which the walk must ignore.
struct PastTheEnd;

impl Policy for PastTheEnd {
    type Plan = ();
    fn plan<B: Backend>(&self, _: &Snapshot<B>, _: Option<(&Snapshot<B>, &())>) {}
    fn order<B: Backend>(&self, _: &(), _: &Snapshot<B>, _: &Context<'_>, order: &mut Order) {
        order.prefer(0);
        order.prefer(3);
        order.scan_from(7);
    }
}

#[test]
fn an_empty_table_needs_an_opt_in() {
    let refused = HostTable::<SocketAddr>::new("exchange", []).unwrap_err();
    assert_eq!(
        refused,
        Error::EmptyTable {
            table: "exchange".into()
        }
    );
    assert!(refused.to_string().contains("allow_empty()"), "{refused}");

    let table = HostTable::<SocketAddr>::builder("exchange")
        .allow_empty()
        .build()
        .unwrap();
    let snap = table.snapshot();
    assert!(snap.is_empty());
    assert_eq!(
        (snap.len(), snap.usable(), snap.usable_weight()),
        (0, &[][..], 0)
    );
    assert!(!snap.is_usable(0));
    assert!(table.stats().is_empty());

    // Hosts given to an opted-in builder are kept as usual.
    let one = HostTable::builder("one")
        .allow_empty()
        .host(addr(1))
        .build()
        .unwrap();
    assert_eq!(one.snapshot().usable(), &[0]);
}

#[test]
fn picks_from_an_empty_table_fail_like_an_outage() {
    let table = HostTable::<SocketAddr>::builder("exchange")
        .allow_empty()
        .build()
        .unwrap();
    let balancer = Balancer::new(&table, PastTheEnd);
    let ctx = Context::new();
    let none = balancer.pick(&ctx).unwrap_err();
    assert_eq!(
        none,
        Error::NoUsableHost {
            table: "exchange".into(),
            hosts: 0
        }
    );
    assert_eq!(
        none.to_string(),
        "table `exchange` has no usable host: none of its 0 hosts is both up and enabled"
    );
    let mut candidates = balancer.candidates(&ctx);
    assert_eq!(candidates.size_hint(), (0, Some(0)));
    assert!(candidates.next().is_none());

    // 0 -> 1 -> 2 hosts: the same order now names real hosts.
    table.add(addr(1), Health::Up).unwrap();
    assert_eq!(*balancer.pick(&ctx).unwrap().backend(), addr(1));
    table.add(addr(2), Health::Up).unwrap();
    let order: Vec<_> = balancer.candidates(&ctx).map(|c| c.index()).collect();
    // Index 0 is preferred; the scan from 7 % 2 = 1 offers index 1.
    assert_eq!(order, [0, 1]);
}

#[test]
fn removing_the_last_host_empties_the_table() {
    let table = HostTable::new("one", [addr(1)]).unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    table.on_change(move |e| {
        seen.lock()
            .unwrap()
            .push((e.host.clone(), e.change.clone()))
    });
    let balancer = Balancer::new(&table, PastTheEnd);
    let lease = balancer.pick(&Context::new()).unwrap();

    table.remove(addr(1).id()).unwrap();
    assert!(table.snapshot().is_empty());
    assert_eq!(
        balancer.pick(&Context::new()).unwrap_err(),
        Error::NoUsableHost {
            table: "one".into(),
            hosts: 0
        }
    );
    // The session on the removed host keeps its lease and its count.
    assert_eq!(lease.state().active(), 1);
    drop(lease);

    // Removing it again is an unknown host, not a panic.
    assert!(matches!(
        table.remove(addr(1).id()),
        Err(Error::UnknownHost { .. })
    ));
    // And it can come back.
    table.add(addr(1), Health::Up).unwrap();
    assert_eq!(*balancer.pick(&Context::new()).unwrap().backend(), addr(1));
    assert_eq!(
        *events.lock().unwrap(),
        [
            (addr(1).to_string(), Change::Removed),
            (addr(1).to_string(), Change::Added)
        ]
    );
}
