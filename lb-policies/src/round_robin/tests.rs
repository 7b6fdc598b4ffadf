//! Exact picks of [`RoundRobin`](super::RoundRobin): relayd's cursor, smooth cycles and
//! what health changes do to them.

use super::*;
use crate::testing::{candidates, down, picks, table, up};
use lb_core::Balancer;

#[test]
fn relayd_cursor_skips_a_down_host() {
    // hosts: [0 up] [1 DOWN] [2 up]
    let t = table(&[1, 1, 1]);
    let b = Balancer::new(&t, RoundRobin::new());
    assert_eq!(picks(&b, 3), [0, 1, 2]);
    down(&t, 1);
    assert_eq!(picks(&b, 4), [0, 2, 0, 2]);
}

#[test]
fn cursor_moves_past_the_chosen_host() {
    // [0 up] [1 DOWN] [2 up] [3 up], cursor at 0
    let t = table(&[1, 1, 1, 1]);
    down(&t, 1);
    let rr = RoundRobin::new();
    let b = Balancer::new(&t, rr);
    assert_eq!(picks(&b, 1), [0]);
    assert_eq!(b.policy().cursor(), 1); // on the down host
    assert_eq!(picks(&b, 1), [2]); // 1 is skipped, the cursor jumps past 2
    assert_eq!(b.policy().cursor(), 3);
    up(&t, 1); // the cursor survives the new snapshot
    assert_eq!(picks(&b, 3), [3, 0, 1]);
}

#[test]
fn failover_follows_configuration_order() {
    // [0 up] [1 up] [2 DOWN] [3 up]: the pick 1, then 3, then 0.
    let t = table(&[1, 1, 1, 1]);
    down(&t, 2);
    let b = Balancer::new(&t, RoundRobin::new());
    assert_eq!(candidates(&b), [0, 1, 3]);
    assert_eq!(candidates(&b), [1, 3, 0]);
    assert_eq!(candidates(&b), [3, 0, 1]);
}

#[test]
fn smooth_weights_have_no_bursts() {
    // weights a=5 b=1 c=1: nginx's a a b a c a a, twice.
    let t = table(&[5, 1, 1]);
    let b = Balancer::new(&t, RoundRobin::new());
    assert!(b.with_plan(|_, p| p.is_weighted()));
    assert_eq!(picks(&b, 14), [0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0]);
}

#[test]
fn a_down_host_leaves_the_cycle() {
    // weights [0: 2] [1: 1, DOWN] [2: 1]: the cycle of all three is 0 1 2 0; picks
    // skip 1's entry -> 0 2 0, 0 2 0, ...
    let t = table(&[2, 1, 1]);
    down(&t, 1);
    let b = Balancer::new(&t, RoundRobin::new());
    assert_eq!(
        b.with_plan(|_, p| p.schedule().map(<[u32]>::to_vec)),
        Some(vec![0, 1, 2, 0])
    );
    assert_eq!(picks(&b, 6), [0, 2, 0, 0, 2, 0]);
    down(&t, 0);
    assert_eq!(picks(&b, 2), [2, 2]);
    // Back up: the position (15) is at the cycle's last entry; from the next pass
    // on, 1 gets its entry again.
    up(&t, 0);
    up(&t, 1);
    assert_eq!(picks(&b, 9), [0, 0, 1, 2, 0, 0, 1, 2, 0]);
}

#[test]
fn health_changes_keep_the_cycle() {
    // The cycle depends on membership only: a health change reuses it.
    let t = table(&[3, 1, 2]);
    let b = Balancer::new(&t, RoundRobin::new());
    let before = b.with_plan(|_, p| p.schedule().map(<[u32]>::as_ptr));
    down(&t, 2);
    up(&t, 2);
    assert_eq!(
        b.with_plan(|_, p| p.schedule().map(<[u32]>::as_ptr)),
        before
    );
    // A new weight is a new membership: a new cycle.
    let id = t.snapshot().id(2);
    t.set_weight(id, lb_core::Weight::new(1).unwrap()).unwrap();
    assert_eq!(
        b.with_plan(|_, p| p.schedule().map(<[u32]>::to_vec)),
        Some(vec![0, 1, 0, 2, 0])
    );
}

#[test]
fn live_cycle_skips_down_hosts_like_the_schedule() {
    let weights = [3, 1, 4, 1, 5];
    let (a, b) = (table(&weights), table(&weights));
    down(&a, 2);
    down(&b, 2);
    let scheduled = Balancer::new(&a, RoundRobin::new());
    let live = Balancer::new(&b, RoundRobin::new().with_schedule_limit(0));
    assert_eq!(picks(&live, 30), picks(&scheduled, 30));
}

#[test]
fn live_cycle_picks_the_same_as_the_schedule() {
    let weights = [3, 1, 4, 1, 5];
    let scheduled = Balancer::new(table(&weights), RoundRobin::new());
    let live = Balancer::new(table(&weights), RoundRobin::new().with_schedule_limit(0));
    assert!(live.with_plan(|_, p| p.is_weighted() && p.schedule().is_none()));
    assert_eq!(picks(&live, 42), picks(&scheduled, 42));
}

#[test]
fn no_usable_host_is_an_error_and_keeps_the_cursor() {
    let t = table(&[1, 1]);
    let b = Balancer::new(&t, RoundRobin::new());
    down(&t, 0);
    down(&t, 1);
    assert!(b.pick(&Context::new()).is_err());
    assert_eq!(candidates(&b), Vec::<usize>::new());
    assert_eq!(b.policy().cursor(), 0);
}
