//! A membership change rebuilds a balancer's plan outside the table's lock: the old
//! plan serves meanwhile, a health change made during the rebuild does not wait for it,
//! and the balancer reflects both once the rebuild is done.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use lb_core::{Backend, Balancer, Change, Context, Health, HostTable, Order, Policy, Snapshot};

/// How long a test waits for an event that must come before failing.
const DEADLINE: Duration = Duration::from_secs(20);

fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i], 80))
}

/// A policy whose rebuilds (a new membership) block, once armed, until the test lets
/// them go. Plans record their snapshot's version and host count.
struct Gate {
    armed: AtomicBool,
    entered: Mutex<Sender<u64>>,
    release: Mutex<Receiver<()>>,
    /// (version, previous version) of every plan built.
    built: Mutex<Vec<(u64, Option<u64>)>>,
}

impl Policy for Gate {
    type Plan = u64;

    fn plan<B: Backend>(&self, snap: &Snapshot<B>, prev: Option<(&Snapshot<B>, &u64)>) -> u64 {
        let rebuild = prev.is_none_or(|(p, _)| p.membership_version() != snap.membership_version());
        if rebuild && self.armed.swap(false, Ordering::SeqCst) {
            self.entered.lock().unwrap().send(snap.version()).unwrap();
            self.release
                .lock()
                .unwrap()
                .recv_timeout(DEADLINE)
                .expect("the test releases the rebuild");
        }
        self.built
            .lock()
            .unwrap()
            .push((snap.version(), prev.map(|(p, _)| p.version())));
        snap.version()
    }

    fn order<B: Backend>(&self, _: &u64, _: &Snapshot<B>, _: &Context<'_>, _: &mut Order) {}
}

#[test]
fn a_health_change_does_not_wait_for_a_rebuild() {
    let table = HostTable::new("t", [addr(1), addr(2), addr(3)]).unwrap();
    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let gate = Gate {
        armed: AtomicBool::new(false),
        entered: Mutex::new(entered_tx),
        release: Mutex::new(release_rx),
        built: Mutex::default(),
    };
    let balancer = Balancer::new(&table, gate);
    let heard: Arc<Mutex<Vec<(u64, Change)>>> = Arc::default();
    let log = heard.clone();
    table.on_change(move |e| log.lock().unwrap().push((e.version, e.change.clone())));

    // Add a fourth host on another thread: its rebuild blocks.
    balancer.policy().armed.store(true, Ordering::SeqCst);
    let adder = {
        let table = table.clone();
        thread::spawn(move || table.add(addr(4), Health::Up).unwrap())
    };
    assert_eq!(
        entered.recv_timeout(DEADLINE),
        Ok(2),
        "the rebuild for version 2 runs"
    );

    // A health change meanwhile, from another thread: it returns while the rebuild is
    // still blocked (the rebuild is released only after it returned).
    let first = table.snapshot().id(0);
    let (done_tx, done) = mpsc::channel();
    {
        let table = table.clone();
        thread::spawn(move || {
            table
                .set_health(first, Health::Down, "connect refused")
                .unwrap();
            done_tx.send(()).unwrap();
        });
    }
    done.recv_timeout(DEADLINE)
        .expect("set_health returned during the rebuild");
    // The table shows both changes; the balancer still serves the old plan; listeners
    // heard both, in order.
    let now = table.snapshot();
    assert_eq!((now.version(), now.len(), now.usable().len()), (3, 4, 3));
    assert_eq!(balancer.snapshot().version(), 1);
    assert_eq!(balancer.with_plan(|s, plan| (s.len(), *plan)), (3, 1));
    assert!(balancer.pick(&Context::new()).is_ok());
    let changes: Vec<u64> = heard.lock().unwrap().iter().map(|(v, _)| *v).collect();
    assert_eq!(changes, [2, 3]);

    release.send(()).unwrap();
    let added = adder.join().unwrap();
    // After the rebuild, the balancer reflects both: the new host, and the first one
    // down, applied cheaply on top of the rebuilt plan.
    let served = balancer.snapshot();
    assert_eq!(served.version(), 3);
    assert_eq!(served.len(), 4);
    assert!(served.index_of(added).is_some_and(|i| served.is_usable(i)));
    assert!(!served.is_usable(served.index_of(first).unwrap()));
    let built = balancer.policy().built.lock().unwrap().clone();
    assert_eq!(built, [(1, None), (2, Some(1)), (3, Some(2))]);
}

#[test]
fn membership_changes_return_with_balancers_ready() {
    let table = HostTable::new("t", [addr(1), addr(2)]).unwrap();
    let (entered_tx, _entered) = mpsc::channel();
    let (_release, release_rx) = mpsc::channel();
    let balancer = Balancer::new(
        &table,
        Gate {
            armed: AtomicBool::new(false),
            entered: Mutex::new(entered_tx),
            release: Mutex::new(release_rx),
            built: Mutex::default(),
        },
    );
    let id = table.add(addr(3), Health::Up).unwrap();
    assert_eq!(balancer.snapshot().len(), 3);
    table.remove(id).unwrap();
    assert_eq!(balancer.snapshot().len(), 2);
    assert_eq!(balancer.snapshot().version(), table.snapshot().version());
}

/// Counts its plans; orders nothing.
struct Plain;

impl Policy for Plain {
    type Plan = usize;
    fn plan<B: Backend>(&self, snap: &Snapshot<B>, _: Option<(&Snapshot<B>, &usize)>) -> usize {
        snap.len()
    }
    fn order<B: Backend>(&self, _: &usize, _: &Snapshot<B>, _: &Context<'_>, _: &mut Order) {}
}

#[test]
fn concurrent_health_and_membership_writers_leave_balancers_current() {
    let table = HostTable::new("t", [addr(1), addr(2), addr(3), addr(4)]).unwrap();
    let balancers = [Balancer::new(&table, Plain), Balancer::new(&table, Plain)];
    let health: Vec<_> = (0..3)
        .map(|k| {
            let table = table.clone();
            thread::spawn(move || {
                let id = table.snapshot().id(k);
                for w in 0..300 {
                    let h = if w % 2 == 0 { Health::Down } else { Health::Up };
                    table.set_health(id, h, "test").unwrap();
                }
            })
        })
        .collect();
    let members = {
        let table = table.clone();
        thread::spawn(move || {
            for _ in 0..100 {
                let id = table.add(addr(200), Health::Up).unwrap();
                table.remove(id).unwrap();
            }
        })
    };
    for t in health {
        t.join().unwrap();
    }
    members.join().unwrap();
    let last = table.snapshot();
    assert_eq!(last.version(), 1 + 3 * 300 + 2 * 100);
    for b in &balancers {
        // Every writer has returned: each balancer serves the last snapshot.
        assert_eq!(b.snapshot().version(), last.version());
        assert_eq!(b.with_plan(|s, plan| (s.len(), *plan)), (4, 4));
    }
}
