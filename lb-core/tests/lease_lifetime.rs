//! A lease keeps its host's backend alive without a reference count of its own: the
//! backend is dropped exactly once, by whichever of the slot and its last lease goes
//! last, in either order and on any thread.

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;

use lb_core::{Backend, Balancer, Context, HostSlot, HostTable, Order, Policy, Snapshot};

/// The first usable host, always.
struct FirstUsable;

impl Policy for FirstUsable {
    type Plan = ();
    fn plan<B: Backend>(&self, _: &Snapshot<B>, _: Option<(&Snapshot<B>, &())>) {}
    fn order<B: Backend>(&self, _: &(), _: &Snapshot<B>, _: &Context<'_>, _: &mut Order) {}
}

/// A backend that counts its drops. Its `name` and `drop` also check that it is
/// alive: a best-effort check of a freed block (the drop count, and AddressSanitizer,
/// are the real ones).
struct Counted {
    name: &'static str,
    alive: bool,
    drops: Arc<AtomicUsize>,
}

impl Counted {
    fn new(name: &'static str, drops: &Arc<AtomicUsize>) -> Self {
        Counted {
            name,
            alive: true,
            drops: Arc::clone(drops),
        }
    }
}

impl Backend for Counted {
    fn name(&self) -> Cow<'_, str> {
        assert!(self.alive, "a backend was used after it was dropped");
        Cow::Borrowed(self.name)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        assert!(self.alive, "a backend was dropped twice");
        self.alive = false;
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn the_slot_going_first_leaves_the_backend_to_the_last_lease() {
    let drops = Arc::new(AtomicUsize::new(0));
    let table = HostTable::new("t", [Counted::new("a", &drops)]).unwrap();
    let balancer = Balancer::new(&table, FirstUsable);
    let (first, second) = (
        balancer.pick(&Context::new()).unwrap(),
        balancer.pick(&Context::new()).unwrap(),
    );
    // Every holder of the slot goes: the table entry, the snapshots, the balancer.
    table.remove(first.id()).unwrap();
    drop((balancer, table));
    assert_eq!(drops.load(Ordering::SeqCst), 0, "leases still use it");
    assert_eq!(first.name(), "a");
    assert_eq!(first.backend().name(), "a");
    assert_eq!((first.state().active(), first.state().total()), (2, 2));
    drop(first);
    assert_eq!(second.state().active(), 1);
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(second);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn the_last_lease_going_first_leaves_the_backend_to_the_slot() {
    let drops = Arc::new(AtomicUsize::new(0));
    let table = HostTable::new("t", [Counted::new("a", &drops)]).unwrap();
    let balancer = Balancer::new(&table, FirstUsable);
    drop(balancer.pick(&Context::new()).unwrap());
    assert_eq!(table.snapshot().host(0).state().total(), 1);
    drop(balancer);
    assert_eq!(drops.load(Ordering::SeqCst), 0, "the table still has it");
    drop(table);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn a_slot_never_leased_drops_its_backend_with_it() {
    let drops = Arc::new(AtomicUsize::new(0));
    let slot = Arc::new(HostSlot::new(Counted::new("a", &drops)));
    let other = Arc::clone(&slot);
    drop(slot);
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    assert_eq!(other.name(), "a");
    drop(other);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn a_lease_taken_through_a_candidate_holding_the_last_slot_outlives_it() {
    let drops = Arc::new(AtomicUsize::new(0));
    let table = HostTable::new("t", [Counted::new("a", &drops)]).unwrap();
    let balancer = Balancer::new(&table, FirstUsable);
    let candidate = balancer.candidates(&Context::new()).next().unwrap();
    table.remove(candidate.host().id()).unwrap();
    assert_eq!(
        Arc::strong_count(candidate.host()),
        1,
        "the candidate's is the last"
    );
    let lease = balancer.lease(&candidate, &Context::new());
    drop((candidate, balancer, table));
    assert_eq!(drops.load(Ordering::SeqCst), 0, "the lease still uses it");
    assert_eq!(lease.backend().name(), "a");
    drop(lease);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

/// Many threads take and drop leases while the host is removed and every holder of its
/// slot goes: whichever order the last lease and the slot meet in, the backend is
/// dropped once, and never while a lease reads it.
#[test]
fn leases_and_the_slot_racing_to_go_drop_the_backend_once() {
    const ROUNDS: usize = 200;
    const THREADS: usize = 4;
    const LEASES: usize = 50;
    let drops = Arc::new(AtomicUsize::new(0));
    for round in 0..ROUNDS {
        let table = HostTable::new("t", [Counted::new("a", &drops)]).unwrap();
        let balancer = Arc::new(Balancer::new(&table, FirstUsable));
        let start = Arc::new(Barrier::new(THREADS + 1));
        let (done, finished) = mpsc::channel();
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                let (balancer, start, done) = (balancer.clone(), start.clone(), done.clone());
                thread::spawn(move || {
                    let leases: Vec<_> = (0..LEASES)
                        .map(|_| balancer.pick(&Context::new()).unwrap())
                        .collect();
                    drop(balancer);
                    done.send(()).unwrap();
                    start.wait();
                    for lease in leases {
                        assert_eq!(lease.backend().name(), "a");
                        drop(lease);
                    }
                })
            })
            .collect();
        for _ in 0..THREADS {
            finished.recv().unwrap();
        }
        let id = table.snapshot().host(0).id();
        assert_eq!(
            table.snapshot().host(0).state().active(),
            (THREADS * LEASES) as u64
        );
        table.remove(id).unwrap();
        // The workers drop their leases while this thread drops the last holders.
        start.wait();
        drop(balancer);
        drop(table);
        for worker in workers {
            worker.join().unwrap();
        }
        assert_eq!(drops.load(Ordering::SeqCst), round + 1, "round {round}");
    }
}
