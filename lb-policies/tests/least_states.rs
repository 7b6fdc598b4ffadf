//! `LeastStates` never picks a host with more states per weight than the least loaded
//! usable host, through any sequence of picks and lease drops.

mod common;

use common::{set_health, table};
use lb_core::{Balancer, Context, Health};
use lb_policies::LeastStates;
use proptest::prelude::*;

/// One step: pick (and hold the lease), or drop the n-th held lease.
#[derive(Clone, Debug)]
enum Step {
    Pick,
    Drop(usize),
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![3 => Just(Step::Pick), 1 => any::<usize>().prop_map(Step::Drop)],
        1..200,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn never_above_the_minimum(
        weights in prop::collection::vec(1u16..=6, 1..=10),
        down in prop::collection::vec(any::<bool>(), 10),
        steps in steps(),
    ) {
        let t = table(&weights);
        // Keep host 0 up so that every pick succeeds.
        for i in (1..weights.len()).filter(|&i| down[i]) {
            set_health(&t, i, Health::Down);
        }
        let b = Balancer::new(&t, LeastStates::new());
        let ctx = Context::new();
        let mut held = Vec::new();
        for step in steps {
            match step {
                Step::Pick => {
                    let snap = t.snapshot();
                    // (states, weight) of every usable host before the pick.
                    let loads: Vec<(usize, u64, u64)> = snap
                        .usable()
                        .iter()
                        .map(|&i| {
                            let i = i as usize;
                            (i, snap.host(i).state().active(), u64::from(snap.weight(i).get()))
                        })
                        .collect();
                    let lease = b.pick(&ctx).expect("host 0 is up");
                    let chosen = snap.index_of(lease.id()).expect("in the table");
                    let &(_, s, w) = loads.iter().find(|l| l.0 == chosen).expect("a usable host");
                    for &(other, os, ow) in &loads {
                        // s / w <= os / ow, exactly.
                        prop_assert!(s * ow <= os * w, "picked {} at {}/{} over {} at {}/{}", chosen, s, w, other, os, ow);
                    }
                    held.push(lease);
                }
                Step::Drop(n) if !held.is_empty() => {
                    let n = n % held.len();
                    held.swap_remove(n);
                }
                Step::Drop(_) => {}
            }
        }
        drop(held);
        prop_assert!(t.stats().iter().all(|s| s.active == 0));
    }
}
