//! `StickyAddress` under concurrency: lookups, leases and releases (most of them
//! lock-free) racing with evictions, expiry, sweeps and host failures, then exact
//! checks of every entry's lease count.
//!
//! The threads are real; no assertion depends on timing. Each test checks the state
//! after the threads are joined, so any interleaving must leave it exact:
//!
//! - with hosts that stay up, every lease that recorded an entry is counted on it and
//!   nothing else is, whatever was evicted, expired or swept meanwhile;
//! - with hosts failing and recovering (entries dropped while leases use them, their
//!   slots reused by other sources while the old leases end), no entry counts more
//!   leases than it has, and once every lease has ended nothing is left live.

mod sticky_support;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use lb_core::{Backend, Balancer, Health, HostTable, Lease, ManualClock, Policy};
use lb_policies::sticky::StickyAddress;
use lb_policies::{Consistent, RoundRobin};
use sticky_support::{client, client_ip, host, hosts};

type Bal<P> = Balancer<StickyAddress<P, ManualClock>, SocketAddr>;

const WORKERS: usize = 4;
const PICKS: usize = 20_000;
/// Sources: 24 IPv4 and 8 IPv6, more than the capacity, so that the table fills,
/// evicts and places some clients without an entry.
const SOURCES: usize = 32;
const CAPACITY: usize = 20;

fn source(n: usize) -> IpAddr {
    if n < 24 {
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, n as u8))
    } else {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, n as u16))
    }
}

/// A small deterministic generator per thread (xorshift64*).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

/// Whether a lease recorded an entry (carries the table's hook). Leases placed
/// without an entry (a table full of live entries) carry none: `RoundRobin` needs no
/// hook of its own.
fn recorded<B: Backend>(lease: &Lease<B>) -> bool {
    format!("{lease:?}").contains("hook: Some")
}

fn balancer<P: Policy>(
    table: &Arc<HostTable<SocketAddr>>,
    inner: P,
    timeout: Duration,
) -> (Arc<Bal<P>>, ManualClock) {
    let clock = ManualClock::new();
    let sticky = StickyAddress::builder(inner)
        .capacity(CAPACITY)
        .shards(4)
        .timeout(timeout)
        .clock(clock.clone())
        .build()
        .unwrap();
    (Balancer::new(table, sticky), clock)
}

/// Runs the workers: each picks random sources, holds up to 4 leases and drops them
/// in random order. Returns the leases still held, with their sources.
fn hammer<P: Policy + Send + Sync + 'static>(
    b: &Arc<Bal<P>>,
    stop: &Arc<AtomicBool>,
    done: impl Fn(&Bal<P>) -> bool + Send + Clone + 'static,
) -> Vec<(usize, Lease<SocketAddr>)>
where
    P::Plan: Send + Sync,
{
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (b, done) = (b.clone(), done.clone());
            thread::spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (w as u64 + 1));
                let mut held = Vec::new();
                // At least PICKS steps, then on until `done` (checked every 1000 steps):
                // on a loaded machine the other threads of a test may barely have run.
                for step in 0..PICKS * 100 {
                    if step >= PICKS && step % 1000 == 0 && done(&b) {
                        break;
                    }
                    if held.len() < 4 && rng.below(2) == 0 {
                        let s = rng.below(SOURCES);
                        if let Ok(lease) = b.pick(&client_ip(source(s))) {
                            held.push((s, lease));
                        }
                    } else if !held.is_empty() {
                        drop(held.swap_remove(rng.below(held.len())));
                    }
                }
                held
            })
        })
        .collect();
    let held = workers
        .into_iter()
        .flat_map(|w| w.join().expect("a worker panicked"))
        .collect();
    stop.store(true, Ordering::SeqCst);
    held
}

/// A thread that moves the clock on (expiring idle entries) and sweeps, checking the
/// capacity as it goes, until `stop`.
fn ticker<P: Policy + Send + Sync + 'static>(
    b: &Arc<Bal<P>>,
    clock: &ManualClock,
    stop: &Arc<AtomicBool>,
) -> thread::JoinHandle<()>
where
    P::Plan: Send + Sync,
{
    let (b, clock, stop) = (b.clone(), clock.clone(), stop.clone());
    thread::spawn(move || {
        let mut n = 0u64;
        while !stop.load(Ordering::SeqCst) {
            clock.advance(Duration::from_millis(7));
            n += 1;
            if n.is_multiple_of(4) {
                b.policy().sweep();
            }
            // The entry count is reserved before an insert and given back after a
            // removal, so it bounds what is stored at every instant. (A sum of the
            // shards taken one by one could see an entry evicted from one shard after
            // its replacement was counted in another.)
            assert!(b.policy().stats().entries <= CAPACITY);
            thread::yield_now();
        }
    })
}

/// `Consistent` places a source the same way on every thread, so two threads placing
/// one new source at once agree on its host: no lease moves an entry, and every
/// recorded lease must still be counted.
#[test]
fn lease_counts_stay_exact_through_evictions_and_expiry() {
    for timeout_ms in [0, 20] {
        let table = HostTable::new("concurrent", hosts(4)).unwrap();
        let (b, clock) = balancer(&table, Consistent::new(), Duration::from_millis(timeout_ms));
        let stop = Arc::new(AtomicBool::new(false));
        let tick = ticker(&b, &clock, &stop);
        // Until the paths this test is about have run: hits, misses, and with a timeout
        // evictions or expiries.
        let held = hammer(&b, &stop, move |b| {
            let s = b.policy().stats();
            s.hits > 0 && s.misses > 0 && (timeout_ms == 0 || s.evictions + s.expired > 0)
        });
        tick.join().expect("the ticker panicked");

        let mut expected: HashMap<usize, (u32, Vec<_>)> = HashMap::new();
        for (s, lease) in held.iter().filter(|(_, l)| recorded(l)) {
            let e = expected.entry(*s).or_default();
            e.0 += 1;
            e.1.push(lease.id());
        }
        let sticky = b.policy();
        for s in 0..SOURCES {
            let entry = sticky.entry(source(s));
            match expected.get(&s) {
                Some((count, ids)) => {
                    let entry = entry.unwrap_or_else(|| panic!("source {s}: entry lost"));
                    assert_eq!(
                        entry.live_leases, *count,
                        "source {s}, timeout {timeout_ms}"
                    );
                    assert!(ids.iter().all(|&id| id == entry.host), "source {s}");
                }
                None => assert_eq!(entry.map_or(0, |e| e.live_leases), 0, "source {s}"),
            }
        }
        assert_eq!(sticky.stats().entries, sticky.stored_entries());
        assert!(sticky.stored_entries() <= CAPACITY);

        drop(held);
        for s in 0..SOURCES {
            assert_eq!(sticky.entry(source(s)).map_or(0, |e| e.live_leases), 0);
        }
        clock.advance(Duration::from_millis(timeout_ms));
        sticky.sweep();
        assert_eq!((sticky.stored_entries(), sticky.stats().entries), (0, 0));
        let stats = sticky.stats();
        assert!(stats.hits > 0 && stats.misses > 0, "{stats:?}");
        if timeout_ms > 0 {
            assert!(stats.evictions + stats.expired > 0, "{stats:?}");
        }
    }
}

#[test]
fn releases_racing_with_host_failures_never_count_on_another_entry() {
    for timeout_ms in [0, 20] {
        let table = HostTable::new("failing", hosts(3)).unwrap();
        let (b, clock) = balancer(&table, RoundRobin::new(), Duration::from_millis(timeout_ms));
        let stop = Arc::new(AtomicBool::new(false));
        let tick = ticker(&b, &clock, &stop);
        let flapper = {
            let (table, stop) = (table.clone(), stop.clone());
            thread::spawn(move || {
                let mut rng = Rng(42);
                while !stop.load(Ordering::SeqCst) {
                    let id = host(1 + rng.below(3) as u8).id();
                    let health = if rng.below(2) == 0 {
                        Health::Down
                    } else {
                        Health::Up
                    };
                    table.set_health(id, health, "flap").unwrap();
                    thread::yield_now();
                }
                for n in 1..=3 {
                    table.set_health(host(n).id(), Health::Up, "done").unwrap();
                }
            })
        };
        // Until a host failure has dropped an entry: the race this test is about.
        let held = hammer(&b, &stop, |b| b.policy().stats().dropped > 0);
        tick.join().expect("the ticker panicked");
        flapper.join().expect("the flapper panicked");

        // Leases of dropped or moved entries no longer count (`RoundRobin` may place
        // one new source on two hosts from two threads: the later lease moves the
        // entry), so an entry counts at most the recorded leases of its source on its
        // host, never more.
        let sticky = b.policy();
        for s in 0..SOURCES {
            let Some(entry) = sticky.entry(source(s)) else {
                continue;
            };
            let mine = held
                .iter()
                .filter(|(src, l)| *src == s && recorded(l) && l.id() == entry.host)
                .count() as u32;
            assert!(
                entry.live_leases <= mine,
                "source {s}: {entry:?}, {mine} held"
            );
        }
        assert_eq!(sticky.stats().entries, sticky.stored_entries());

        drop(held);
        for s in 0..SOURCES {
            let live = sticky.entry(source(s)).map_or(0, |e| e.live_leases);
            assert_eq!(live, 0, "source {s}, timeout {timeout_ms}: a count leaked");
        }
        clock.advance(Duration::from_millis(timeout_ms));
        sticky.sweep();
        assert_eq!((sticky.stored_entries(), sticky.stats().entries), (0, 0));
        assert!(sticky.stats().dropped > 0, "{:?}", sticky.stats());
    }
}

#[test]
fn concurrent_picks_keep_the_count_exact() {
    for timeout in [Duration::ZERO, Duration::from_secs(1)] {
        let table = HostTable::new("mt", hosts(4)).unwrap();
        let sticky = StickyAddress::builder(RoundRobin::new())
            .timeout(timeout)
            .capacity(16)
            .shards(4)
            .build()
            .unwrap();
        let b = Balancer::new(&table, sticky);
        std::thread::scope(|s| {
            for t in 0..4u16 {
                let b = &b;
                s.spawn(move || {
                    let mut held = std::collections::VecDeque::new();
                    for i in 0..3000u16 {
                        held.push_back(b.pick(&client((i * 7 + t) % 48)).unwrap());
                        if held.len() > 3 {
                            held.pop_front();
                        }
                        assert!(b.policy().stats().entries <= 16);
                    }
                });
            }
        });
        let s = b.policy().stats();
        assert!(s.entries <= 16);
        assert_eq!(s.entries, b.policy().stored_entries());
        if timeout.is_zero() {
            assert_eq!(s.entries, 0);
        }
    }
}
