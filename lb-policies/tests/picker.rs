//! `Policy::first` (the hash modes' shortcut) answers exactly the first candidate of
//! `Policy::order`, whatever the health and admin states; a `Picker` decides as its
//! balancer does and sees every new snapshot at its next call.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use common::{set_admin, set_health, table};
use lb_core::{Admin, Balancer, Context, Health, Host, Order, Pick, Picker, Policy, Select};
use lb_policies::{Consistent, LoadBalance, RoundRobin, SourceHash};
use proptest::prelude::*;

fn client(i: u32) -> Context<'static> {
    let ip = if i.is_multiple_of(3) {
        IpAddr::V6(Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(i)))
    } else {
        IpAddr::V4(Ipv4Addr::from(0xc633_6400 ^ i.wrapping_mul(2_654_435_761)))
    };
    Context::from_client(SocketAddr::new(ip, 5000))
        .with_listen(SocketAddr::from(([203, 0, 113, 1], 443)))
}

/// The default `first`: the order's first usable candidate, walked as `Candidates`
/// walks it.
fn first_by_order<P: Policy>(b: &Balancer<P>, ctx: &Context<'_>) -> Option<usize> {
    b.with_plan(|snap, plan| {
        let mut order = Order::new();
        b.policy().order(plan, snap, ctx, &mut order);
        let n = snap.len();
        order
            .preferred()
            .iter()
            .map(|&i| i as usize)
            .chain((0..n).map(|k| (order.scan_start() + k) % n))
            .find(|&i| snap.is_usable(i))
    })
}

/// `first`, the order's first candidate, `candidates().next()`, the picker's choice
/// and the picker's lease all name the same host for 64 clients.
fn check_agrees<P: Policy>(b: &Arc<Balancer<P>>) -> Result<(), TestCaseError> {
    let mut picker = b.picker();
    for i in 0..64 {
        let ctx = client(i);
        let fast = b.with_plan(|snap, plan| b.policy().first(plan, snap, &ctx));
        prop_assert_eq!(fast, first_by_order(b, &ctx), "client {}", i);
        prop_assert_eq!(fast, b.candidates(&ctx).next().map(|c| c.index()));
        let snap = b.snapshot();
        let chosen = picker.choose(&ctx).map(|h| h.id());
        prop_assert_eq!(chosen, fast.map(|i| snap.id(i)));
        prop_assert_eq!(picker.pick(&ctx).ok().map(|l| l.id()), chosen);
        prop_assert_eq!(b.pick(&ctx).ok().map(|l| l.id()), chosen);
    }
    Ok(())
}

fn state() -> impl Strategy<Value = (Health, Admin)> {
    prop_oneof![
        4 => Just((Health::Up, Admin::Enabled)),
        1 => Just((Health::Down, Admin::Enabled)),
        1 => Just((Health::Up, Admin::Disabled)),
        1 => Just((Health::Unknown, Admin::Draining)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn first_is_the_orders_first_candidate(
        hosts in prop::collection::vec((1u16..=4, state()), 1..=12),
    ) {
        let weights: Vec<u16> = hosts.iter().map(|h| h.0).collect();
        let t = table(&weights);
        for (i, (_, (health, admin))) in hosts.iter().enumerate() {
            set_health(&t, i, *health);
            set_admin(&t, i, *admin);
        }
        check_agrees(&Balancer::new(&t, Consistent::new()))?;
        check_agrees(&Balancer::new(&t, Consistent::new().with_failover(3).expect("1..=8")))?;
        check_agrees(&Balancer::new(&t, SourceHash::new()))?;
        check_agrees(&Balancer::new(&t, LoadBalance::new()))?;
    }
}

#[test]
fn a_picker_sees_each_new_snapshot_at_its_next_call() {
    let t = table(&[1, 1, 1, 1]);
    let b = Balancer::new(&t, Consistent::new());
    let mut picker = b.picker();
    let ctx = client(7);
    let home = picker.choose(&ctx).expect("all up").id();
    assert_eq!(picker.snapshot().version(), t.snapshot().version());

    // Health: the next call fails over, as the balancer does.
    let index = t.snapshot().index_of(home).expect("in the table");
    set_health(&t, index, Health::Down);
    let moved = picker.pick(&ctx).expect("three up").id();
    assert_ne!(moved, home);
    assert_eq!(moved, b.pick(&ctx).expect("three up").id());
    assert_eq!(picker.snapshot().version(), t.snapshot().version());

    // Membership: the next call uses the rebuilt plan (a table with five hosts).
    let added = SocketAddr::from(([10, 0, 0, 9], 9000));
    t.add(Host::new("h4", added), Health::Up).expect("new host");
    assert_eq!(picker.snapshot().len(), 5);
    for i in 0..256 {
        let ctx = client(i);
        assert_eq!(
            picker.choose(&ctx).map(|h| h.id()),
            b.pick(&ctx).ok().map(|l| l.id()),
            "client {i}"
        );
    }

    // Everything down: the typed error, from the picker too.
    for i in 0..5 {
        set_health(&t, i, Health::Down);
    }
    assert!(picker.choose(&ctx).is_none());
    let error = picker.pick(&ctx).expect_err("no usable host");
    assert_eq!(
        error.to_string(),
        b.pick(&ctx).expect_err("no usable host").to_string()
    );
}

#[test]
fn picker_leases_count_states_and_candidates_match() {
    let t = table(&[1, 2, 3]);
    let b = Balancer::new(&t, RoundRobin::new());
    let mut picker = b.picker();
    let ctx = Context::new();
    let lease = picker.pick(&ctx).expect("usable");
    assert_eq!(lease.state().active(), 1);
    drop(lease);
    assert!(t.stats().iter().all(|s| s.active == 0));
    assert_eq!(t.stats().iter().map(|s| s.total).sum::<u64>(), 1);
    let offered: Vec<usize> = picker.candidates(&ctx).map(|c| c.index()).collect();
    let mut sorted = offered.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [0, 1, 2]);
    let candidate = picker.candidates(&ctx).next().expect("usable");
    let lease = picker.lease(&candidate, &ctx);
    assert_eq!(lease.id(), candidate.host().id());
    assert_eq!(candidate.host().state().active(), 1);
}

#[test]
fn a_dyn_picker_from_select_decides_as_its_balancer_and_moves_to_a_thread() {
    let t = table(&[1, 1, 1, 1, 1, 1]);
    let b = Balancer::new(&t, SourceHash::new());
    let select: Arc<dyn Select<Host>> = b.clone();
    let mut picker: Box<dyn Pick<Host>> = select.clone().boxed_picker();
    assert_eq!(picker.table().name(), "t");
    let expected: Vec<_> = (0..64)
        .map(|i| b.pick(&client(i)).expect("all up").id())
        .collect();
    let got = std::thread::spawn(move || {
        (0..64)
            .map(|i| picker.pick(&client(i)).expect("all up").id())
            .collect::<Vec<_>>()
    })
    .join()
    .expect("the thread does not panic");
    assert_eq!(got, expected);
    fn is_send<T: Send>() {}
    is_send::<Picker<Consistent>>();
}
