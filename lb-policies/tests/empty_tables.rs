//! Every policy on a table that is empty, fills up and empties again: plans build for
//! zero hosts, a pick fails with [`Error::NoUsableHost`] exactly when no host is usable,
//! and candidates offer each usable host once. A deterministic walk 0 → 1 → 2 → 0 hosts,
//! then a property test over random sequences of membership, health and admin changes.

use std::net::SocketAddr;
use std::sync::Arc;

use lb_core::{Admin, Backend, Balancer, Context, Error, Health, Host, HostTable, Lease, Policy};
use lb_policies::{
    Consistent, LeastStates, LoadBalance, PowerOfTwo, Random, RoundRobin, SourceHash, StickyAddress,
};
use proptest::prelude::*;

/// Host `k` of the universe the tests draw from: weight `1 + k % 3`.
fn host(k: u8) -> Host {
    Host::new(format!("h{k}"), SocketAddr::from(([10, 0, 0, 1 + k], 443)))
        .with_weight(u64::from(1 + k % 3))
        .expect("weights 1..=3 are valid")
}

fn empty_table() -> Arc<HostTable> {
    HostTable::builder("dynamic")
        .allow_empty()
        .build()
        .expect("an empty table is allowed")
}

/// A few clients, so hash modes see different keys.
fn contexts() -> [Context<'static>; 3] {
    let listen = SocketAddr::from(([127, 0, 0, 1], 443));
    [1u8, 2, 3].map(|c| {
        Context::from_client(SocketAddr::from(([192, 0, 2, c], 40_000))).with_listen(listen)
    })
}

/// Picks for each context and checks them against the balancer's snapshot: a pick
/// succeeds exactly when a host is usable, lands on a usable host, and the candidates
/// are the usable hosts, each once. Returns the leases, so callers can hold them.
fn check_picks<P: Policy>(balancer: &Balancer<P>) -> Vec<Lease<Host>> {
    let mut leases = Vec::new();
    for ctx in contexts() {
        let snap = balancer.snapshot();
        let mut offered: Vec<usize> = balancer.candidates(&ctx).map(|c| c.index()).collect();
        offered.sort_unstable();
        let usable: Vec<usize> = snap.usable().iter().map(|&i| i as usize).collect();
        assert_eq!(
            offered, usable,
            "candidates are the usable hosts, once each"
        );
        match balancer.pick(&ctx) {
            Ok(lease) => {
                let i = snap
                    .index_of(lease.id())
                    .expect("picked host is in the table");
                assert!(snap.is_usable(i), "picked host {i} is usable");
                leases.push(lease);
            }
            Err(Error::NoUsableHost { table, hosts }) => {
                assert!(
                    usable.is_empty(),
                    "pick failed with usable hosts {usable:?}"
                );
                assert_eq!((&*table, hosts), ("dynamic", snap.len()));
            }
            Err(other) => panic!("unexpected pick error: {other}"),
        }
    }
    leases
}

/// 0 → 1 → 2 → 0 hosts with exact picks, then the same table filled again.
fn grow_and_empty<P: Policy>(policy: P) {
    let table = empty_table();
    let balancer = Balancer::new(&table, policy);
    let ctx = Context::from_client(SocketAddr::from(([192, 0, 2, 1], 40_000)));
    let empty = balancer.pick(&ctx).expect_err("no hosts");
    assert_eq!(
        empty,
        Error::NoUsableHost {
            table: "dynamic".into(),
            hosts: 0
        }
    );
    assert_eq!(balancer.candidates(&ctx).count(), 0);

    for round in 0..2 {
        table.add(host(0), Health::Up).expect("new host");
        let lease = balancer.pick(&ctx).expect("one host");
        assert_eq!(lease.id(), host(0).id(), "round {round}: the only host");
        table.add(host(1), Health::Up).expect("new host");
        let mut both: Vec<_> = balancer.candidates(&ctx).map(|c| c.index()).collect();
        both.sort_unstable();
        assert_eq!(both, [0, 1], "round {round}");
        table.remove(host(0).id()).expect("host 0 is in the table");
        assert_eq!(balancer.pick(&ctx).expect("host 1").id(), host(1).id());
        table.remove(host(1).id()).expect("host 1 is in the table");
        assert_eq!(table.snapshot().len(), 0);
        assert_eq!(
            balancer.pick(&ctx).expect_err("empty again"),
            Error::NoUsableHost {
                table: "dynamic".into(),
                hosts: 0
            }
        );
        assert_eq!(balancer.candidates(&ctx).count(), 0);
        // The lease on the removed host stays valid and counts on its own slot.
        assert_eq!(lease.state().active(), 1);
    }
}

#[test]
fn every_policy_grows_from_and_shrinks_to_an_empty_table() {
    grow_and_empty(RoundRobin::new());
    grow_and_empty(RoundRobin::new().with_schedule_limit(0));
    grow_and_empty(Random::new());
    grow_and_empty(Random::with_seed(7));
    grow_and_empty(LeastStates::new());
    grow_and_empty(PowerOfTwo::with_seed(7));
    grow_and_empty(SourceHash::new());
    grow_and_empty(LoadBalance::new());
    grow_and_empty(Consistent::new());
    grow_and_empty(StickyAddress::new(LeastStates::new()));
    grow_and_empty(StickyAddress::new(Consistent::new()));
}

/// One change to the table, on host `k % 4` of the universe.
#[derive(Clone, Debug)]
enum Step {
    Add(u8, bool),
    Remove(u8),
    Health(u8, bool),
    Admin(u8, bool),
    Weight(u8, u8),
    /// Removes every host.
    Empty,
}

fn step() -> impl Strategy<Value = Step> {
    let k = 0u8..4;
    prop_oneof![
        3 => (k.clone(), any::<bool>()).prop_map(|(k, up)| Step::Add(k, up)),
        2 => k.clone().prop_map(Step::Remove),
        2 => (k.clone(), any::<bool>()).prop_map(|(k, up)| Step::Health(k, up)),
        1 => (k.clone(), any::<bool>()).prop_map(|(k, on)| Step::Admin(k, on)),
        1 => (k, 1u8..4).prop_map(|(k, w)| Step::Weight(k, w)),
        1 => Just(Step::Empty),
    ]
}

/// Applies `steps` to an empty table, picking after each; leases of the previous step
/// are held across the next change, as a relay's sessions would be.
fn run<P: Policy>(policy: P, steps: &[Step]) {
    let table = empty_table();
    let balancer = Balancer::new(&table, policy);
    let mut held = check_picks(&balancer);
    for s in steps {
        let health = |up: bool| if up { Health::Up } else { Health::Down };
        // Changes naming a host that is absent (or present, for `Add`) are refused with
        // a typed error; the table must be unchanged then, which the picks check.
        let _ = match *s {
            Step::Add(k, up) => table.add(host(k), health(up)).map(drop),
            Step::Remove(k) => table.remove(host(k).id()),
            Step::Health(k, up) => table.set_health(host(k).id(), health(up), "test").map(drop),
            Step::Admin(k, on) => {
                let admin = if on { Admin::Enabled } else { Admin::Disabled };
                table.set_admin(host(k).id(), admin).map(drop)
            }
            Step::Weight(k, w) => {
                let weight = lb_core::Weight::new(u64::from(w)).expect("1..=3 is valid");
                table.set_weight(host(k).id(), weight).map(drop)
            }
            Step::Empty => {
                for h in table.snapshot().hosts() {
                    table.remove(h.id()).expect("host of the current snapshot");
                }
                assert!(table.snapshot().is_empty());
                Ok(())
            }
        };
        held = check_picks(&balancer);
    }
    drop(held);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn round_robin(steps in prop::collection::vec(step(), 0..40)) {
        run(RoundRobin::new(), &steps);
        run(RoundRobin::new().with_schedule_limit(0), &steps);
    }

    #[test]
    fn random(steps in prop::collection::vec(step(), 0..40)) {
        run(Random::with_seed(11), &steps);
    }

    #[test]
    fn least_states_and_p2c(steps in prop::collection::vec(step(), 0..40)) {
        run(LeastStates::new(), &steps);
        run(PowerOfTwo::with_seed(11), &steps);
    }

    #[test]
    fn hashing(steps in prop::collection::vec(step(), 0..40)) {
        run(SourceHash::new(), &steps);
        run(LoadBalance::new(), &steps);
        run(Consistent::new(), &steps);
    }

    #[test]
    fn sticky(steps in prop::collection::vec(step(), 0..40)) {
        run(StickyAddress::new(RoundRobin::new()), &steps);
        run(StickyAddress::new(SourceHash::new()), &steps);
    }
}
