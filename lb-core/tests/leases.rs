//! Leases: taken on one thread, dropped on many, in any order; counts return to 0 and
//! release hooks run once per lease.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;

use lb_core::{
    Backend, BackendId, Balancer, Context, HostTable, Lease, LeaseHook, Order, Policy, Release,
    Snapshot,
};

/// Scans from a rotating start; counts lease ends through a release hook.
#[derive(Default)]
struct Rotating {
    next: AtomicU64,
    released: Arc<Released>,
}

#[derive(Default)]
struct Released {
    count: AtomicU64,
    token_sum: AtomicU64,
}

impl Release for Released {
    fn release(&self, token: u128) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.token_sum.fetch_add(token as u64, Ordering::Relaxed);
    }
}

impl Policy for Rotating {
    type Plan = ();
    fn plan<B: Backend>(&self, _: &Snapshot<B>, _: Option<(&Snapshot<B>, &())>) {}
    fn order<B: Backend>(&self, _: &(), _: &Snapshot<B>, _: &Context<'_>, order: &mut Order) {
        order.scan_from(self.next.fetch_add(1, Ordering::Relaxed) as usize);
    }
    fn leased(&self, _: &Context<'_>, _: BackendId) -> Option<LeaseHook> {
        Some(LeaseHook::new(self.released.clone(), 1))
    }
}

fn assert_send_sync<T: Send + Sync>() {}

/// A small deterministic generator (xorshift64*) for shuffles and coin flips.
struct Xorshift(u64);

impl Xorshift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

#[test]
fn leases_are_send_and_sync() {
    assert_send_sync::<Lease<SocketAddr>>();
    assert_send_sync::<Balancer<Rotating, SocketAddr>>();
}

#[test]
fn leases_dropped_on_many_threads_leave_counts_at_zero() {
    const THREADS: usize = 8;
    const LEASES: usize = 4_000;
    let hosts: Vec<SocketAddr> = (1..=5)
        .map(|i| SocketAddr::from(([10, 0, 0, i], 80)))
        .collect();
    let t = HostTable::new("t", hosts).unwrap();
    let b = Balancer::new(&t, Rotating::default());
    let ctx = Context::new();
    let mut leases: Vec<Lease<SocketAddr>> = (0..LEASES).map(|_| b.pick(&ctx).unwrap()).collect();
    assert!(t.stats().iter().all(|s| s.active == (LEASES / 5) as u64));
    // Deal the leases out in a shuffled order; every thread drops its own in reverse.
    let mut rng = Xorshift(42);
    for i in (1..leases.len()).rev() {
        leases.swap(i, rng.below(i + 1));
    }
    let (senders, workers): (Vec<_>, Vec<_>) = (0..THREADS)
        .map(|_| {
            let (tx, rx) = mpsc::channel::<Lease<SocketAddr>>();
            let worker = thread::spawn(move || {
                let mut mine: Vec<_> = rx.iter().collect();
                while mine.pop().is_some() {}
            });
            (tx, worker)
        })
        .unzip();
    for (k, lease) in leases.into_iter().enumerate() {
        senders[k % THREADS].send(lease).unwrap();
    }
    drop(senders);
    for w in workers {
        w.join().unwrap();
    }
    for s in t.stats() {
        assert_eq!((s.active, s.total), (0, (LEASES / 5) as u64), "{}", s.name);
    }
    let released = &b.policy().released;
    assert_eq!(released.count.load(Ordering::Relaxed), LEASES as u64);
    assert_eq!(released.token_sum.load(Ordering::Relaxed), LEASES as u64);
}

#[test]
fn picks_and_drops_racing_on_many_threads() {
    let hosts: Vec<SocketAddr> = (1..=3)
        .map(|i| SocketAddr::from(([10, 0, 1, i], 80)))
        .collect();
    let t = HostTable::new("t", hosts).unwrap();
    let b = Balancer::new(&t, Rotating::default());
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let b = b.clone();
            thread::spawn(move || {
                let mut rng = Xorshift(w + 1);
                let mut held = Vec::new();
                for _ in 0..2_000 {
                    held.push(b.pick(&Context::new()).unwrap());
                    if rng.below(2) == 0 {
                        held.swap_remove(rng.below(held.len()));
                    }
                }
                held
            })
        })
        .collect();
    let leftovers: Vec<_> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let active: u64 = t.stats().iter().map(|s| s.active).sum();
    assert_eq!(active, leftovers.len() as u64);
    drop(leftovers);
    assert!(t.stats().iter().all(|s| s.active == 0));
    assert_eq!(t.stats().iter().map(|s| s.total).sum::<u64>(), 8_000);
}
