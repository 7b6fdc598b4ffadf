//! Batched membership updates: one snapshot and one rebuild per balancer for the whole
//! batch, one event per change that applied, and changes that cannot apply failing alone.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use lb_core::{
    Backend, Balancer, Change, Context, Error, Health, HostTable, Order, Policy, Snapshot, Table,
    Update, Weight,
};

/// Scans from the first host, counting the plans it builds for a new membership.
struct Counting(Arc<AtomicUsize>);

impl Policy for Counting {
    type Plan = ();
    fn plan<B: Backend>(&self, snap: &Snapshot<B>, previous: Option<(&Snapshot<B>, &())>) {
        let rebuild =
            previous.is_none_or(|(p, _)| p.membership_version() != snap.membership_version());
        if rebuild {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn order<B: Backend>(&self, _: &(), _: &Snapshot<B>, _: &Context<'_>, _: &mut Order) {}
}

fn addr(n: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, n], 80))
}

#[test]
fn a_batch_is_one_snapshot_one_rebuild_and_one_event_per_change() {
    let table = HostTable::new("web", [addr(1), addr(2)]).unwrap();
    let rebuilds = Arc::new(AtomicUsize::new(0));
    let balancer = Balancer::new(&table, Counting(rebuilds.clone()));
    assert_eq!(rebuilds.load(Ordering::SeqCst), 1, "the first plan");
    let heard = Arc::new(Mutex::new(Vec::new()));
    let h = heard.clone();
    table.on_change(move |e| {
        h.lock()
            .unwrap()
            .push((e.host.clone(), e.change.clone(), e.version))
    });
    let before = table.snapshot().version();

    let mut updates: Vec<Update<SocketAddr>> = (3..=102)
        .map(|n| Update::Add(addr(n), Health::Up))
        .collect();
    updates.push(Update::Remove(addr(1).id()));
    updates.push(Update::Weight(addr(2).id(), Weight::new(5).unwrap()));
    let results = table.update(updates);

    assert_eq!(results.len(), 102);
    assert!(results.iter().all(Result::is_ok));
    let snap = table.snapshot();
    assert_eq!(snap.version(), before + 1, "one snapshot for the batch");
    assert_eq!(snap.len(), 101);
    assert_eq!(snap.id(0), addr(2).id(), "the configuration order is kept");
    assert_eq!(snap.weight(0).get(), 5);
    assert_eq!(
        rebuilds.load(Ordering::SeqCst),
        2,
        "one rebuild for 102 changes"
    );
    assert_eq!(
        balancer.snapshot().version(),
        snap.version(),
        "served on return"
    );
    let heard = heard.lock().unwrap();
    assert_eq!(heard.len(), 102, "one event per change");
    assert!(heard.iter().all(|(_, _, v)| *v == snap.version()));
    assert_eq!(
        heard[0],
        ("10.0.0.3:80".to_owned(), Change::Added, snap.version())
    );
    assert_eq!(heard[100].1, Change::Removed);
    assert_eq!(
        heard[101].1,
        Change::Weight {
            old: Weight::ONE,
            new: Weight::new(5).unwrap()
        }
    );
}

#[test]
fn changes_that_cannot_apply_fail_alone_and_an_empty_result_publishes_nothing() {
    let table = HostTable::new("web", [addr(1)]).unwrap();
    let version = table.snapshot().version();
    let results = table.update(vec![
        Update::Add(addr(1), Health::Up),
        Update::Remove(addr(9).id()),
        Update::Weight(addr(9).id(), Weight::ONE),
    ]);
    assert!(matches!(results[0], Err(Error::DuplicateHost { .. })));
    assert!(matches!(results[1], Err(Error::UnknownHost { .. })));
    assert!(matches!(results[2], Err(Error::UnknownHost { .. })));
    assert_eq!(
        table.snapshot().version(),
        version,
        "nothing applied, nothing published"
    );

    // Order matters: a host removed earlier in the batch can be added again later.
    let results = table.update(vec![
        Update::Remove(addr(1).id()),
        Update::Add(addr(1), Health::Down),
        Update::Remove(addr(7).id()),
    ]);
    assert!(results[0].is_ok() && results[1].is_ok() && results[2].is_err());
    let snap = table.snapshot();
    assert_eq!(
        (snap.len(), snap.health(0), snap.version()),
        (1, Health::Down, version + 1)
    );
}

#[test]
fn a_host_table_behind_dyn_table_still_batches() {
    // The trait's default (one change at a time) is for tables of your own; a HostTable
    // held as `dyn Table` dispatches to its own batch.
    let table: Arc<dyn Table<SocketAddr>> = HostTable::new("web", [addr(1)]).unwrap();
    let version = table.snapshot().version();
    let results = table.update(vec![
        Update::Add(addr(2), Health::Up),
        Update::Add(addr(3), Health::Up),
    ]);
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(table.snapshot().version(), version + 1);
}
