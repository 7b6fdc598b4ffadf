//! `StickyAddress` capacity: never exceeded, oldest idle entry evicted first, live
//! entries never evicted, clients placed without an entry when everything is live.

mod sticky_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lb_core::{Balancer, Context, HostTable, Lease, ManualClock};
use lb_policies::sticky::{StickyAddress, StickyStats};
use sticky_support::{client, host, hosts, Steer};

type Bal = Arc<Balancer<StickyAddress<Steer, ManualClock>, SocketAddr>>;

fn setup(capacity: usize, shards: usize, timeout: Duration) -> (Bal, Steer, ManualClock) {
    let table = HostTable::new("cap", hosts(4)).unwrap();
    let steer = Steer::default();
    let clock = ManualClock::new();
    let sticky = StickyAddress::builder(steer.clone())
        .capacity(capacity)
        .shards(shards)
        .timeout(timeout)
        .clock(clock.clone())
        .build()
        .unwrap();
    (Balancer::new(&table, sticky), steer, clock)
}

fn first(b: &Bal, ctx: &Context<'_>) -> SocketAddr {
    *b.candidates(ctx).next().unwrap().backend()
}

fn hold(b: &Bal, ctx: &Context<'_>) -> Lease<SocketAddr> {
    b.pick(ctx).unwrap()
}

fn stats(b: &Bal) -> StickyStats {
    b.policy().stats()
}

#[test]
fn oldest_idle_goes_first_whatever_the_shard() {
    for shards in [1, 16] {
        // Eight clients on host 1, released in a shuffled order, one second apart.
        let (b, steer, clock) = setup(8, shards, Duration::from_secs(3600));
        let mut leases: Vec<Option<Lease<SocketAddr>>> =
            (0..8).map(|c| Some(hold(&b, &client(c)))).collect();
        let released = [5u16, 2, 7, 0, 3, 6, 1, 4];
        for &c in &released {
            clock.advance(Duration::from_secs(1));
            leases[usize::from(c)] = None;
        }
        // Each new client (on host 2, kept live) evicts the oldest idle entry left.
        steer.to(1);
        let mut newcomers = Vec::new();
        for (k, _) in released.iter().enumerate() {
            clock.advance(Duration::from_secs(1));
            newcomers.push(hold(&b, &client(100 + k as u16)));
            for (j, &c) in released.iter().enumerate() {
                let want = if j <= k { host(2) } else { host(1) };
                assert_eq!(
                    first(&b, &client(c)),
                    want,
                    "shards {shards}: after {k}, client {c}"
                );
            }
            assert_eq!(stats(&b).entries, 8);
        }
        let s = stats(&b);
        assert_eq!(
            (s.evictions, s.expired, s.unrecorded),
            (8, 0, 0),
            "shards {shards}"
        );
        assert_eq!(b.policy().stored_entries(), 8);
    }
}

#[test]
fn live_entries_are_never_evicted() {
    for shards in [1, 16] {
        let (b, steer, clock) = setup(3, shards, Duration::from_secs(3600));
        let _a = hold(&b, &client(1));
        let _b = hold(&b, &client(2));
        clock.advance(Duration::from_secs(1));
        drop(hold(&b, &client(3))); // the only idle entry
        steer.to(2);
        let d = hold(&b, &client(4)); // evicts 3
        assert_eq!(*d.backend(), host(3));
        assert_eq!(first(&b, &client(3)), host(3)); // 3 is placed by Steer, not its entry
        steer.to(0);
        assert_eq!(first(&b, &client(3)), host(1));
        assert_eq!(first(&b, &client(1)), host(1));
        steer.to(3);
        assert_eq!(first(&b, &client(4)), host(3));
        // Full of live entries: client 5 is placed by the inner policy without an entry.
        let e = hold(&b, &client(5));
        assert_eq!(*e.backend(), host(4));
        let s = stats(&b);
        assert_eq!(
            (s.entries, s.evictions, s.unrecorded),
            (3, 1, 1),
            "shards {shards}"
        );
        steer.to(0);
        assert_eq!(first(&b, &client(5)), host(1)); // no entry was made
                                                    // Its lease ends without touching anyone's entry.
        drop(e);
        assert_eq!(first(&b, &client(4)), host(3));
        // One lease ends: that entry is idle and is the one to go.
        drop(d);
        clock.advance(Duration::from_secs(1));
        let _f = hold(&b, &client(6));
        assert_eq!(first(&b, &client(4)), host(1));
        assert_eq!((stats(&b).entries, stats(&b).evictions), (3, 2));
    }
}

#[test]
fn expired_entries_make_room_before_live_ones_and_count_as_expired() {
    let (b, _, clock) = setup(2, 16, Duration::from_secs(10));
    clock.advance(Duration::from_secs(1));
    drop(hold(&b, &client(1)));
    clock.advance(Duration::from_secs(1));
    drop(hold(&b, &client(2)));
    clock.advance(Duration::from_secs(100));
    let _c = hold(&b, &client(3)); // takes client 1's expired slot
    let s = stats(&b);
    assert_eq!((s.entries, s.expired, s.evictions), (2, 1, 0));
    assert_eq!(b.policy().sweep(), 1); // client 2's
    assert_eq!(stats(&b).entries, 1);
}

#[test]
fn capacity_is_never_exceeded() {
    // 20 sources through a table of 5, each lease kept until the next round.
    let (b, steer, clock) = setup(5, 16, Duration::from_secs(30));
    let mut held = Vec::new();
    for round in 0..6u16 {
        steer.to(usize::from(round));
        let next: Vec<_> = (0..20u16)
            .map(|c| hold(&b, &client(round * 7 + c)))
            .collect();
        assert!(stats(&b).entries <= 5);
        assert_eq!(b.policy().stored_entries(), stats(&b).entries);
        held = next;
        clock.advance(Duration::from_secs(7));
    }
    drop(held);
    let s = stats(&b);
    assert_eq!(s.entries, 5);
    assert!(s.unrecorded > 0 && s.evictions > 0, "{s:?}");
}

#[test]
fn ipv6_entries_share_the_capacity_and_the_eviction_order() {
    let (b, steer, clock) = setup(2, 4, Duration::from_secs(60));
    let v6 = |n: u16| {
        Context::from_client(SocketAddr::new(
            format!("2001:db8::{n:x}").parse().unwrap(),
            1,
        ))
    };
    clock.advance(Duration::from_secs(1));
    drop(hold(&b, &v6(1)));
    clock.advance(Duration::from_secs(1));
    drop(hold(&b, &client(1)));
    steer.to(1);
    clock.advance(Duration::from_secs(1));
    let _x = hold(&b, &client(2)); // evicts the IPv6 entry (older)
    assert_eq!(first(&b, &v6(1)), host(2));
    assert_eq!(first(&b, &client(1)), host(1));
    let _y = hold(&b, &v6(2)); // evicts IPv4 client 1
    assert_eq!(first(&b, &client(1)), host(2));
    assert_eq!((stats(&b).entries, stats(&b).evictions), (2, 2));
}
