//! `StickyAddress`: stickiness, drops, failover, expiry. Capacity and eviction are in
//! `sticky_capacity.rs`, memory in `sticky_memory.rs`, random sequences in
//! `sticky_props.rs`, threads in `sticky_concurrent.rs`.

mod sticky_support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lb_core::{
    Admin, Backend, Balancer, Context, Error, Health, HostTable, ManualClock, Policy, SystemClock,
};
use lb_policies::sticky::{StickyAddress, StickyStats};
use lb_policies::{LeastStates, PowerOfTwo, Random, RoundRobin};
use sticky_support::{client, client_ip, host, hosts, Steer};

type Sticky = StickyAddress<Steer, ManualClock>;
type Bal = Arc<Balancer<Sticky, SocketAddr>>;

fn setup(n: u8, timeout: Duration) -> (Arc<HostTable<SocketAddr>>, Bal, Steer, ManualClock) {
    let table = HostTable::new("sticky", hosts(n)).unwrap();
    let steer = Steer::default();
    let clock = ManualClock::new();
    let sticky = StickyAddress::builder(steer.clone())
        .timeout(timeout)
        .clock(clock.clone())
        .build()
        .unwrap();
    (table.clone(), Balancer::new(&table, sticky), steer, clock)
}

/// The first candidate for `ctx`: runs the policy's `order` only (no lease is taken, so
/// an idle entry is looked at without being revived).
fn first(b: &Bal, ctx: &Context<'_>) -> SocketAddr {
    *b.candidates(ctx).next().unwrap().backend()
}

fn pick(b: &Bal, ctx: &Context<'_>) -> (SocketAddr, lb_core::Lease<SocketAddr>) {
    let lease = b.pick(ctx).unwrap();
    (*lease.backend(), lease)
}

fn stats(b: &Bal) -> StickyStats {
    b.policy().stats()
}

#[test]
fn defaults_and_invalid_settings() {
    let s = StickyAddress::new(Steer::default());
    assert_eq!(s.capacity(), 10_000);
    assert_eq!(s.timeout(), Duration::ZERO);
    assert_eq!(s.shards(), 16);
    let err = StickyAddress::builder(Steer::default())
        .capacity(0)
        .build()
        .unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidSetting {
            setting: "sticky capacity",
            ..
        }
    ));
    assert!(
        err.to_string().contains("expected") || err.to_string().contains("1..=1073741824"),
        "{err}"
    );
    let err = StickyAddress::builder(Steer::default())
        .shards(0)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("1..=1024 shards, got 0"), "{err}");
    let err = StickyAddress::builder(Steer::default())
        .shards(1025)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("got 1025"), "{err}");
}

#[test]
fn same_host_across_membership_changes() {
    // hosts 1 2 [3] 4 5: client a is placed on 3 and stays while others come and go.
    let (table, b, steer, _) = setup(5, Duration::ZERO);
    let a = client(1);
    steer.to(2);
    let (h, _l1) = pick(&b, &a);
    assert_eq!(h, host(3));
    steer.to(0);
    let (h, _l2) = pick(&b, &a);
    assert_eq!(h, host(3));
    assert_eq!(pick(&b, &client(2)).0, host(1)); // lease dropped at once: entry gone
    table.add(host(6), Health::Up).unwrap();
    table.add(host(7), Health::Up).unwrap();
    let (h, _l3) = pick(&b, &a);
    assert_eq!(h, host(3));
    table.remove(host(1).id()).unwrap();
    table.remove(host(2).id()).unwrap(); // host 3 is now at index 0
    steer.to(3);
    let (h, _l4) = pick(&b, &a);
    assert_eq!(h, host(3));
    let want = StickyStats {
        entries: 1,
        capacity: 10_000,
        hits: 3,
        misses: 2,
        expired: 1,
        ..StickyStats::default()
    };
    assert_eq!(stats(&b), want);
}

#[test]
fn round_robin_placements_then_stickiness() {
    // RoundRobin alone: 1 2 3 1 2 3 ...; wrapped, each client keeps its first host,
    // and hits do not turn the cursor: only placements do.
    let table = HostTable::new("rr", hosts(3)).unwrap();
    let b = Balancer::new(&table, StickyAddress::new(RoundRobin::new()));
    let mut held = Vec::new();
    let first: Vec<SocketAddr> = (1..=4)
        .map(|c| {
            let l = b.pick(&client(c)).unwrap();
            let h = *l.backend();
            held.push(l);
            h
        })
        .collect();
    assert_eq!(first, [host(1), host(2), host(3), host(1)]);
    for _ in 0..5 {
        for c in 1..=4 {
            let l = b.pick(&client(c)).unwrap();
            assert_eq!(*l.backend(), first[usize::from(c) - 1]);
            held.push(l);
        }
    }
    assert_eq!(b.policy().stats().hits, 20);
    // 20 hits later the cursor is where 4 placements left it: the next new client
    // goes to host 2, as a fifth placement would.
    let fifth = b.pick(&client(5)).unwrap();
    assert_eq!(*fifth.backend(), host(2));
}

/// Places 40 clients, then re-picks them across membership changes: a client keeps its
/// host while the host is in the table; a client whose host left is placed again and
/// keeps the new one.
fn keeps_clients<P: Policy>(inner: P) {
    let table = HostTable::new("any", hosts(6)).unwrap();
    let b = Balancer::new(&table, StickyAddress::<P, SystemClock>::new(inner));
    let mut held = Vec::new();
    let mut placed: HashMap<u16, SocketAddr> = HashMap::new();
    for c in 0..40 {
        let l = b.pick(&client(c)).unwrap();
        placed.insert(c, *l.backend());
        held.push(l);
    }
    let changes: [&dyn Fn(); 4] = [
        &|| {
            table.add(host(7), Health::Up).unwrap();
            table.add(host(8), Health::Up).unwrap();
        },
        &|| table.remove(host(8).id()).unwrap(),
        &|| table.remove(host(1).id()).unwrap(),
        &|| table.remove(host(4).id()).unwrap(),
    ];
    for change in changes {
        change();
        let present: Vec<SocketAddr> = table
            .snapshot()
            .hosts()
            .iter()
            .map(|h| *h.backend())
            .collect();
        for c in 0..40 {
            let l = b.pick(&client(c)).unwrap();
            let was = placed[&c];
            if present.contains(&was) {
                assert_eq!(*l.backend(), was, "client {c} moved");
            } else {
                assert_ne!(*l.backend(), was);
                placed.insert(c, *l.backend());
            }
            held.push(l);
        }
    }
    for c in 0..40 {
        assert_eq!(*b.pick(&client(c)).unwrap().backend(), placed[&c]);
    }
}

#[test]
fn any_inner_policy_keeps_clients() {
    keeps_clients(Steer::default());
    keeps_clients(RoundRobin::new());
    keeps_clients(Random::new());
    keeps_clients(LeastStates::new());
    keeps_clients(PowerOfTwo::new());
}

#[test]
fn down_host_drops_entry_and_client_is_placed_again() {
    let (table, b, steer, _) = setup(5, Duration::ZERO);
    let a = client(1);
    steer.to(1);
    let (h, old) = pick(&b, &a);
    assert_eq!(h, host(2));
    table
        .set_health(host(2).id(), Health::Down, "check failed")
        .unwrap();
    steer.to(3);
    let (h, new) = pick(&b, &a);
    assert_eq!(h, host(4));
    assert_eq!((stats(&b).dropped, stats(&b).entries), (1, 1));
    // Host 2 comes back: the client stays on its new host.
    table
        .set_health(host(2).id(), Health::Up, "check ok")
        .unwrap();
    steer.to(0);
    assert_eq!(first(&b, &a), host(4));
    // The lease of the dropped entry ends: it must not count against the new entry.
    drop(old);
    assert_eq!(stats(&b).entries, 1);
    assert_eq!(first(&b, &a), host(4));
    drop(new);
    assert_eq!(stats(&b).entries, 0);
    assert_eq!(first(&b, &a), host(1));
}

#[test]
fn disabled_draining_or_removed_host_drops_entry() {
    for change in ["disable", "drain", "remove", "unknown"] {
        let (table, b, steer, _) = setup(3, Duration::from_secs(60));
        let a = client(9);
        steer.to(2);
        drop(pick(&b, &a));
        let id = host(3).id();
        match change {
            "disable" => assert_eq!(table.set_admin(id, Admin::Disabled), Ok(Admin::Enabled)),
            "drain" => assert_eq!(table.set_admin(id, Admin::Draining), Ok(Admin::Enabled)),
            "remove" => table.remove(id).unwrap(),
            _ => assert_eq!(
                table.set_health(id, Health::Unknown, "reset"),
                Ok(Health::Up)
            ),
        }
        steer.to(0);
        assert_eq!(first(&b, &a), host(1), "{change}");
        let s = stats(&b);
        assert_eq!((s.dropped, s.entries, s.misses), (1, 0, 2), "{change}");
    }
}

#[test]
fn failover_lease_moves_the_entry() {
    // a sticks to 1; the relay's connect to 1 fails and it leases the next candidate.
    let (_, b, steer, _) = setup(4, Duration::ZERO);
    let a = client(1);
    let (h, on_first) = pick(&b, &a);
    assert_eq!(h, host(1));
    let mut cands = b.candidates(&a);
    assert_eq!(*cands.next().unwrap().backend(), host(1));
    let second = cands.next().unwrap();
    assert_eq!(*second.backend(), host(2));
    let moved = b.lease(&second, &a);
    steer.to(3);
    assert_eq!(first(&b, &a), host(2));
    drop(on_first); // a lease of the old generation
    assert_eq!(first(&b, &a), host(2));
    drop(moved);
    assert_eq!(first(&b, &a), host(4));
}

#[test]
fn live_leases_keep_entries_and_expiry_is_exact() {
    // Released at t, timeout T: used before t + T, expired at t + T.
    let t = Duration::from_secs(10);
    let (_, b, steer, clock) = setup(5, t);
    let a = client(1);
    steer.to(1);
    let (_, l1) = pick(&b, &a);
    let (_, l2) = pick(&b, &a);
    steer.to(4);
    clock.advance(Duration::from_secs(3600));
    assert_eq!(first(&b, &a), host(2));
    drop(l1); // one lease still live: no timer yet
    clock.advance(Duration::from_secs(3600));
    assert_eq!(first(&b, &a), host(2));
    drop(l2); // timer starts now
    clock.advance(t - Duration::from_nanos(1));
    assert_eq!(first(&b, &a), host(2));
    // Revived one nanosecond before expiry: live again, then a fresh timer.
    let (h, l3) = pick(&b, &a);
    assert_eq!(h, host(2));
    clock.advance(Duration::from_secs(3600));
    assert_eq!(first(&b, &a), host(2));
    drop(l3);
    clock.advance(t - Duration::from_nanos(1));
    assert_eq!(first(&b, &a), host(2));
    assert_eq!(stats(&b).expired, 0);
    clock.advance(Duration::from_nanos(1));
    assert_eq!(first(&b, &a), host(5));
    let s = stats(&b);
    assert_eq!((s.expired, s.entries, s.hits, s.misses), (1, 0, 7, 2));
}

#[test]
fn zero_timeout_removes_entry_with_last_lease() {
    let (_, b, steer, _) = setup(3, Duration::ZERO);
    let a = client(1);
    steer.to(2);
    let (_, l1) = pick(&b, &a);
    let (_, l2) = pick(&b, &a);
    steer.to(0);
    drop(l1);
    assert_eq!((stats(&b).entries, first(&b, &a)), (1, host(3)));
    drop(l2);
    assert_eq!((stats(&b).entries, stats(&b).expired), (0, 1));
    assert_eq!(first(&b, &a), host(1));
}

#[test]
fn sweep_removes_exactly_the_expired() {
    let (_, b, _, clock) = setup(3, Duration::from_secs(10));
    for c in 1..=3 {
        clock.advance(Duration::from_secs(1));
        drop(pick(&b, &client(c))); // released at 1 s, 2 s, 3 s
    }
    clock.advance(Duration::from_secs(9)); // 12 s: 1 s + 10 and 2 s + 10 are past
    assert_eq!(b.policy().sweep(), 2);
    assert_eq!(b.policy().sweep(), 0);
    let s = stats(&b);
    assert_eq!((s.entries, s.expired), (1, 2));
    assert_eq!(b.policy().stored_entries(), 1);
}

#[test]
fn no_client_address_means_the_inner_policy_alone() {
    let (_, b, steer, _) = setup(3, Duration::from_secs(60));
    steer.to(1);
    let (h, _l) = pick(&b, &Context::new());
    assert_eq!(h, host(2));
    steer.to(2);
    assert_eq!(first(&b, &Context::new()), host(3));
    assert_eq!(
        stats(&b),
        StickyStats {
            capacity: 10_000,
            ..StickyStats::default()
        }
    );
}

#[test]
fn ipv6_and_ipv4_sources_are_distinct_entries() {
    let (_, b, steer, _) = setup(3, Duration::ZERO);
    let v6 = client_ip("2001:db8::1".parse().unwrap());
    let v4 = client_ip("198.51.100.7".parse().unwrap());
    let mapped = client_ip("::ffff:198.51.100.7".parse().unwrap());
    steer.to(0);
    let (h6, _a) = pick(&b, &v6);
    steer.to(1);
    let (h4, _b) = pick(&b, &v4);
    steer.to(2);
    let (hm, _c) = pick(&b, &mapped);
    assert_eq!((h6, h4, hm), (host(1), host(2), host(3)));
    assert_eq!(
        [first(&b, &v6), first(&b, &v4), first(&b, &mapped)],
        [host(1), host(2), host(3)]
    );
    assert_eq!(stats(&b).entries, 3);
    // The port is not part of the source.
    let other_port = Context::from_client("[2001:db8::1]:1".parse().unwrap());
    assert_eq!(first(&b, &other_port), host(1));
}
