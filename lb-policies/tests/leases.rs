//! Leases taken and dropped on several threads, in random order, while the table
//! changes under them, leave every host's count at 0 and every pick counted once.

mod common;

use std::sync::mpsc;
use std::sync::Arc;
use std::thread;

use common::table;
use lb_core::{Admin, Balancer, Context, Health, Host, Lease, Select, Weight};
use lb_policies::{LeastStates, PowerOfTwo, Random, RoundRobin};
use proptest::prelude::*;

const THREADS: usize = 4;
const PICKS_PER_THREAD: usize = 5_000;

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn counts_return_to_zero(seed in any::<u64>(), weights in prop::collection::vec(1u16..=4, 2..=12)) {
        let t = table(&weights);
        let slots = t.snapshot().hosts().to_vec();
        let balancers: Arc<Vec<Arc<dyn Select<Host>>>> = Arc::new(vec![
            Balancer::new(&t, RoundRobin::new()),
            Balancer::new(&t, Random::new()),
            Balancer::new(&t, LeastStates::new()),
            Balancer::new(&t, PowerOfTwo::new()),
        ]);
        // Each thread hands some of its leases to the next one, which drops them.
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (0..THREADS).map(|_| mpsc::channel::<Lease<Host>>()).unzip();
        let workers: Vec<_> = receivers
            .into_iter()
            .enumerate()
            .map(|(w, inbox)| {
                let balancers = balancers.clone();
                let next = senders[(w + 1) % THREADS].clone();
                thread::spawn(move || {
                    let mut rng = fastrand::Rng::with_seed(seed ^ w as u64);
                    let ctx = Context::new();
                    let mut held: Vec<Lease<Host>> = Vec::new();
                    for k in 0..PICKS_PER_THREAD {
                        let b = &balancers[rng.usize(..balancers.len())];
                        // At most one host of at least two is unusable at any moment.
                        held.push(b.pick(&ctx).expect("a usable host"));
                        match rng.u8(..4) {
                            0 => drop(held.swap_remove(rng.usize(..held.len()))),
                            1 => {
                                let lease = held.swap_remove(rng.usize(..held.len()));
                                // Inboxes live until every worker is joined.
                                next.send(lease).expect("the inbox is alive");
                            }
                            _ => {}
                        }
                        if k % 64 == 0 {
                            inbox.try_iter().for_each(drop);
                        }
                    }
                    rng.shuffle(&mut held);
                    drop(held);
                    drop(next);
                    inbox
                })
            })
            .collect();
        drop(senders);
        // Meanwhile, the table changes under the picks: one host at a time goes down,
        // drains or changes weight (a membership change), and comes back.
        let mut rng = fastrand::Rng::with_seed(seed);
        for _ in 0..200 {
            let snap = t.snapshot();
            let id = snap.id(rng.usize(..snap.len()));
            let changed = match rng.u8(..3) {
                0 => t.set_health(id, Health::Down, "test").and(t.set_health(id, Health::Up, "test")).map(drop),
                1 => t.set_admin(id, Admin::Draining).and(t.set_admin(id, Admin::Enabled)).map(drop),
                _ => t.set_weight(id, Weight::new(rng.u64(1..=4)).expect("1..=4 is valid")).map(drop),
            };
            prop_assert!(changed.is_ok());
        }
        let inboxes: Vec<_> = workers.into_iter().map(|w| w.join().expect("worker panicked")).collect();
        // Every sender is gone now: drain what is left in the inboxes.
        inboxes.into_iter().for_each(|inbox| inbox.iter().for_each(drop));
        let mut counted = 0u64;
        for slot in &slots {
            prop_assert_eq!(slot.state().active(), 0, "host {}", slot.name());
            counted += slot.state().total();
        }
        prop_assert_eq!(counted, (THREADS * PICKS_PER_THREAD) as u64);
    }
}
