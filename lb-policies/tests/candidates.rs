//! Candidates of every policy are finite, duplicate-free, and offer every usable host
//! exactly once, whatever the weights, health, admin states and loads.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::{set_admin, set_health, table};
use lb_core::{Admin, Balancer, Context, Health, Host, Select};
use lb_policies::{LeastStates, PowerOfTwo, Random, RoundRobin};
use proptest::prelude::*;

fn health() -> impl Strategy<Value = Health> {
    prop_oneof![Just(Health::Up), Just(Health::Down), Just(Health::Unknown)]
}

fn admin() -> impl Strategy<Value = Admin> {
    prop_oneof![
        Just(Admin::Enabled),
        Just(Admin::Disabled),
        Just(Admin::Draining)
    ]
}

/// Per host: weight, health, admin state, leases held on it.
fn hosts() -> impl Strategy<Value = Vec<(u16, Health, Admin, usize)>> {
    prop::collection::vec((1u16..=5, health(), admin(), 0usize..3), 1..=16)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_usable_host_exactly_once(hosts in hosts(), seed in any::<u64>()) {
        let weights: Vec<u16> = hosts.iter().map(|h| h.0).collect();
        let t = table(&weights);
        let balancers: Vec<Arc<dyn Select<Host>>> = vec![
            Balancer::new(&t, RoundRobin::new()),
            Balancer::new(&t, RoundRobin::new().with_schedule_limit(0)),
            Balancer::new(&t, Random::with_seed(seed)),
            Balancer::new(&t, Random::new()),
            Balancer::new(&t, LeastStates::new()),
            Balancer::new(&t, PowerOfTwo::with_seed(seed)),
            Balancer::new(&t, PowerOfTwo::new()),
        ];
        // Loads first, while every host is up: lease the wanted host out of the
        // candidates.
        let ctx = Context::new();
        let mut held = Vec::new();
        for (i, h) in hosts.iter().enumerate() {
            for _ in 0..h.3 {
                let c = balancers[0].candidates(&ctx).find(|c| c.index() == i).expect("all hosts are up");
                held.push(balancers[0].lease(&c, &ctx));
            }
        }
        for (i, h) in hosts.iter().enumerate() {
            set_health(&t, i, h.1);
            set_admin(&t, i, h.2);
        }
        let usable: BTreeSet<usize> = hosts
            .iter()
            .enumerate()
            .filter(|(_, h)| h.1 == Health::Up && h.2 == Admin::Enabled)
            .map(|(i, _)| i)
            .collect();
        for b in &balancers {
            for _ in 0..4 {
                let offered: Vec<usize> = b.candidates(&ctx).take(hosts.len() + 1).map(|c| c.index()).collect();
                let distinct: BTreeSet<usize> = offered.iter().copied().collect();
                prop_assert_eq!(distinct.len(), offered.len(), "duplicates in {:?}", offered);
                prop_assert_eq!(&distinct, &usable, "offered {:?}", offered);
                // A pick succeeds exactly when some host is usable.
                prop_assert_eq!(b.pick(&ctx).is_ok(), !usable.is_empty());
            }
        }
        drop(held);
        prop_assert!(t.stats().iter().all(|s| s.active == 0));
    }
}
