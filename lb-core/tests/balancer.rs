//! `Balancer`: plans rebuilt for every snapshot, candidates built from an `Order`, and
//! balancers behind `Select`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use lb_core::{Backend, Balancer, Context, Health, HostTable, Order, Policy, Select, Snapshot};

fn addrs(n: u8) -> Vec<SocketAddr> {
    (1..=n)
        .map(|i| SocketAddr::from(([10, 0, 0, i], 80)))
        .collect()
}

fn indexes(b: &dyn Select<SocketAddr>) -> Vec<usize> {
    b.candidates(&Context::new()).map(|c| c.index()).collect()
}

/// Records each plan it builds: (snapshot version, previous snapshot version).
#[derive(Default)]
struct Recorder {
    builds: AtomicUsize,
}

impl Policy for Recorder {
    type Plan = (u64, Option<u64>);
    fn plan<B: Backend>(
        &self,
        s: &Snapshot<B>,
        prev: Option<(&Snapshot<B>, &Self::Plan)>,
    ) -> Self::Plan {
        self.builds.fetch_add(1, Ordering::Relaxed);
        (
            s.version(),
            prev.map(|(p, plan)| {
                assert_eq!(
                    p.version(),
                    plan.0,
                    "the previous plan comes with its own snapshot"
                );
                p.version()
            }),
        )
    }
    fn order<B: Backend>(&self, _: &Self::Plan, _: &Snapshot<B>, _: &Context<'_>, _: &mut Order) {}
}

#[test]
fn plans_follow_snapshots() {
    let t = HostTable::new("t", addrs(3)).unwrap();
    let b = Balancer::new(&t, Recorder::default());
    assert_eq!(b.with_plan(|s, p| (s.version(), *p)), (1, (1, None)));
    let id = t.snapshot().id(0);
    t.set_health(id, Health::Down, "test").unwrap();
    t.set_health(id, Health::Down, "test").unwrap(); // no change: no rebuild
    t.set_health(id, Health::Up, "test").unwrap();
    assert_eq!(b.with_plan(|s, p| (s.version(), *p)), (3, (3, Some(2))));
    assert_eq!(b.policy().builds.load(Ordering::Relaxed), 3);
    assert_eq!(b.snapshot().version(), t.snapshot().version());
}

#[test]
fn a_late_balancer_starts_from_the_current_snapshot() {
    let t = HostTable::new("t", addrs(2)).unwrap();
    t.set_health(t.snapshot().id(1), Health::Down, "test")
        .unwrap();
    let b = Balancer::new(&t, Recorder::default());
    assert_eq!(b.with_plan(|_, p| *p), (2, None));
}

#[test]
fn dropped_balancers_stop_observing() {
    let t = HostTable::new("t", addrs(2)).unwrap();
    let b = Balancer::new(&t, Recorder::default());
    let weak = Arc::downgrade(&b);
    drop(b);
    assert!(
        weak.upgrade().is_none(),
        "the table holds no strong reference"
    );
    t.set_health(t.snapshot().id(0), Health::Down, "test")
        .unwrap();
}

/// Prefers the configured list, then scans from `scan`.
struct Fixed {
    prefer: Vec<usize>,
    scan: usize,
}

impl Policy for Fixed {
    type Plan = ();
    fn plan<B: Backend>(&self, _: &Snapshot<B>, _: Option<(&Snapshot<B>, &())>) {}
    fn order<B: Backend>(&self, _: &(), _: &Snapshot<B>, _: &Context<'_>, order: &mut Order) {
        for &i in &self.prefer {
            order.prefer(i);
        }
        order.scan_from(self.scan);
    }
}

#[test]
fn candidates_are_preferred_then_scanned_once_each() {
    // hosts 0..6, host 4 down; prefer 3, 4 (down), 3 again, 9 (no such host); scan from 5.
    let t = HostTable::new("t", addrs(6)).unwrap();
    t.set_health(t.snapshot().id(4), Health::Down, "test")
        .unwrap();
    let b = Balancer::new(
        &t,
        Fixed {
            prefer: vec![3, 4, 3, 9],
            scan: 5,
        },
    );
    assert_eq!(indexes(&*b), [3, 5, 0, 1, 2]);
    assert_eq!(b.pick(&Context::new()).unwrap().backend(), &addrs(6)[3]);
    // A scan start beyond the table wraps around.
    let wrap = Balancer::new(
        &t,
        Fixed {
            prefer: vec![],
            scan: 6 + 2,
        },
    );
    assert_eq!(indexes(&*wrap), [2, 3, 5, 0, 1]);
}

#[test]
fn orders_hold_eight_preferences() {
    let mut order = Order::new();
    for i in 0..Order::CAPACITY {
        assert!(order.prefer(i));
    }
    assert!(order.prefer(3), "already preferred");
    assert!(!order.prefer(100), "full");
    assert_eq!(order.preferred(), &[0, 1, 2, 3, 4, 5, 6, 7]);
    let t = HostTable::new("t", addrs(12)).unwrap();
    let b = Balancer::new(
        &t,
        Fixed {
            prefer: (0..12).rev().collect(),
            scan: 0,
        },
    );
    assert_eq!(indexes(&*b), [11, 10, 9, 8, 7, 6, 5, 4, 0, 1, 2, 3]);
}

#[test]
fn candidates_outlive_changes_and_lease_what_they_offer() {
    let t = HostTable::new("t", addrs(3)).unwrap();
    let b: Arc<dyn Select<SocketAddr>> = Balancer::new(
        &t,
        Fixed {
            prefer: vec![],
            scan: 0,
        },
    );
    let ctx = Context::new();
    let mut candidates = b.candidates(&ctx);
    assert_eq!(candidates.snapshot().version(), 1);
    // The table changes while the candidates are walked: they keep their snapshot.
    t.set_health(t.snapshot().id(1), Health::Down, "test")
        .unwrap();
    let first = candidates.next().unwrap();
    let second = candidates.next().unwrap();
    assert_eq!((first.index(), second.index()), (0, 1));
    let lease = b.lease(&second, &ctx);
    assert_eq!(lease.backend(), &addrs(3)[1]);
    assert_eq!(t.stats()[1].active, 1);
    assert_eq!(candidates.count(), 1);
    drop(lease);
    assert_eq!(t.stats()[1].active, 0);
    assert_eq!(indexes(&*b), [0, 2]);
}
