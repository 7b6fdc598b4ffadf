//! `StickyAddress` memory, measured with a counting allocator: bytes per IPv4 entry,
//! and no allocation on any pick once the maps are reserved.
//!
//! The allocator counts per thread, so tests running in parallel do not see each
//! other's allocations.

mod sticky_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use lb_core::{Balancer, Context, HostTable, ManualClock};
use lb_policies::sticky::StickyAddress;
use lb_policies::RoundRobin;
use sticky_support::hosts;

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static CALLS: Cell<usize> = const { Cell::new(0) };
}

fn count(bytes: isize, call: bool) {
    // `try_with`: allocations made while the thread is being torn down are not ours.
    let _ = LIVE.try_with(|l| l.set(l.get() + bytes));
    if call {
        let _ = CALLS.try_with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counters are
// const-initialised thread-locals without destructors, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize, true);
        // SAFETY: same layout as asked.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize), false);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize, true);
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.with(Cell::get)
}

fn calls() -> usize {
    CALLS.with(Cell::get)
}

fn v4(n: u32) -> Context<'static> {
    Context::from_client(SocketAddr::new(
        IpAddr::from((0xc633_0000 + n).to_be_bytes()),
        9,
    ))
}

fn v6(n: u32) -> Context<'static> {
    let mut ip = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    ip[12..].copy_from_slice(&n.to_be_bytes());
    Context::from_client(SocketAddr::new(IpAddr::from(ip), 9))
}

#[test]
fn bytes_per_ipv4_entry() {
    let before = live();
    let sticky = StickyAddress::builder(RoundRobin::new())
        .timeout(Duration::from_secs(60))
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let built = live() - before;
    let reported = sticky.memory_bytes() as isize;
    let table = HostTable::new("mem", hosts(4)).unwrap();
    let b = Balancer::new(&table, sticky);
    let (start, start_calls) = (live(), calls());
    for n in 0..10_000 {
        drop(b.pick(&v4(n)).unwrap()); // each entry stays, idle, for 60 s
    }
    assert_eq!(
        (live() - start, calls() - start_calls),
        (0, 0),
        "picks allocated"
    );
    assert_eq!(b.policy().stats().entries, 10_000);
    // Long churn on the full table: 100 000 new sources, each evicting the oldest idle
    // entry. The index never grows (it stays at most half full), nothing allocates.
    for n in 10_000..110_000 {
        drop(b.pick(&v4(n)).unwrap());
    }
    assert_eq!(
        (live() - start, calls() - start_calls),
        (0, 0),
        "churn allocated"
    );
    assert_eq!(b.policy().stats().evictions, 100_000);
    assert_eq!(b.policy().memory_bytes() as isize, reported);
    // What the build allocated is the table itself plus its `Arc` (a few words).
    let arc_and_struct = built - reported;
    assert!(
        (0..=256).contains(&arc_and_struct),
        "built {built}, reported {reported}"
    );
    let per_entry = built as f64 / 10_000.0;
    println!("sticky: {built} bytes for 10 000 IPv4 entries = {per_entry:.1} bytes/entry (memory_bytes {reported})");
    assert!(per_entry <= 64.0, "{per_entry} bytes per entry");
    // The documented arithmetic: 16 shards x (an index of 2048 buckets x (4 + 1) + 16
    // control bytes, 800 slots x 32 bytes, the IPv4 and (empty) IPv6 slabs' `Arc`
    // counts 2 x 16, a 256-byte cache-padded shard: lock, hit counter, slab pointers).
    let formula = 16 * (2048 * 5 + 16 + 800 * 32 + 2 * 16 + 256);
    assert_eq!(reported, formula);
}

#[test]
fn no_allocation_on_any_pick_once_reserved() {
    // Misses, hits, evictions, expiries, drops of stale leases: none allocates.
    let clock = ManualClock::new();
    let sticky = StickyAddress::builder(RoundRobin::new())
        .timeout(Duration::from_secs(5))
        .capacity(1000)
        .reserve_ipv6(true)
        .clock(clock.clone())
        .build()
        .unwrap();
    let table = HostTable::new("mem", hosts(8)).unwrap();
    let b = Balancer::new(&table, sticky);
    let mut held = Vec::with_capacity(64);
    let (start, start_calls) = (live(), calls());
    for round in 0..20u32 {
        for n in 0..3000u32 {
            let ctx = if n % 3 == 0 {
                v6(n + round)
            } else {
                v4(n % 400)
            };
            let lease = b.pick(&ctx).unwrap();
            if held.len() < 64 {
                held.push(lease);
            }
            if n % 100 == 0 {
                held.clear();
            }
        }
        // Now and then a pause longer than the timeout: everything idle expires.
        let pause = if round % 5 == 4 { 60 } else { 1 };
        clock.advance(Duration::from_secs(pause));
    }
    b.policy().sweep();
    held.clear();
    assert_eq!((live() - start, calls() - start_calls), (0, 0));
    let s = b.policy().stats();
    assert!(s.evictions > 0 && s.expired > 0 && s.hits > 0, "{s:?}");
}

#[test]
fn ipv6_maps_are_reserved_on_first_use_only() {
    let sticky = StickyAddress::builder(RoundRobin::new())
        .shards(1)
        .capacity(100)
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let table = HostTable::new("mem", hosts(2)).unwrap();
    let b = Balancer::new(&table, sticky);
    let before = b.policy().memory_bytes();
    let start = calls();
    drop(b.pick(&v6(1)).unwrap());
    assert_eq!(calls() - start, 2); // the index and the slab, once
    assert!(b.policy().memory_bytes() > before);
    let start = calls();
    for n in 2..100 {
        drop(b.pick(&v6(n)).unwrap());
    }
    assert_eq!(calls() - start, 0);
}
