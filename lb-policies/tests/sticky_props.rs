//! `StickyAddress` against a reference model over random operation sequences: picks
//! (held or not), lease ends, health and membership changes, time, sweeps.
//!
//! The model is pf's rule written plainly (a map from source to host, lease count and
//! release time). After every operation the table must agree with it exactly: the same
//! picks (a source with a usable, unexpired entry gets its host; any other is placed by
//! the inner policy), the same number of entries (never above the capacity) and the same
//! counters.

mod sticky_support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use lb_core::{Backend, Balancer, Health, HostTable, Lease, ManualClock};
use lb_policies::sticky::{StickyAddress, StickyStats};
use proptest::prelude::*;
use sticky_support::{client, host, hosts, Steer};

#[derive(Clone, Debug)]
enum Op {
    /// Client `c` picks, the inner policy steered to index `steer`; the lease is kept if
    /// `hold`.
    Pick {
        c: u16,
        steer: usize,
        hold: bool,
    },
    /// The held lease at this position (modulo) ends.
    End(usize),
    /// Host `h` (1..=6) goes up or down.
    Health(u8, bool),
    /// Host `h` joins or leaves the table.
    Member(u8),
    /// Time passes.
    Wait(u64),
    Sweep,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u16..10, 0usize..8, any::<bool>()).prop_map(|(c, steer, hold)| Op::Pick { c, steer, hold }),
        3 => (0usize..64).prop_map(Op::End),
        1 => (1u8..=6, any::<bool>()).prop_map(|(h, up)| Op::Health(h, up)),
        1 => (1u8..=6).prop_map(Op::Member),
        2 => (0u64..40).prop_map(Op::Wait),
        1 => Just(Op::Sweep),
    ]
}

struct Entry {
    host: SocketAddr,
    gen: u64,
    leases: u32,
    released: u64,
}

/// pf's sticky-address, plainly.
struct Model {
    entries: HashMap<u16, Entry>,
    capacity: usize,
    timeout: u64,
    next_gen: u64,
    stats: StickyStats,
}

impl Model {
    fn expired(&self, e: &Entry, now: u64) -> bool {
        e.leases == 0 && now - e.released >= self.timeout
    }

    fn gen(&mut self) -> u64 {
        self.next_gen += 1;
        self.next_gen
    }

    /// The order phase: the sticky host, or `None` (dropping a stale entry).
    fn lookup(&mut self, c: u16, table: &HostTable<SocketAddr>, now: u64) -> Option<SocketAddr> {
        let Some(e) = self.entries.get(&c) else {
            self.stats.misses += 1;
            return None;
        };
        let snap = table.snapshot();
        let usable = snap
            .index_of(e.host.id())
            .is_some_and(|i| snap.is_usable(i));
        if self.expired(e, now) {
            self.stats.expired += 1;
        } else if !usable {
            self.stats.dropped += 1;
        } else {
            self.stats.hits += 1;
            return Some(e.host);
        }
        self.entries.remove(&c);
        self.stats.misses += 1;
        None
    }

    /// The lease phase: the generation the lease counts on, if any.
    fn leased(&mut self, c: u16, h: SocketAddr, now: u64) -> Option<u64> {
        // An entry of another host, or idle, is replaced; none may need room first.
        let replaced = match self.entries.get_mut(&c) {
            Some(e) if e.leases > 0 && e.host == h => {
                e.leases += 1;
                return Some(e.gen);
            }
            found => found.is_some(),
        };
        if !replaced && self.entries.len() == self.capacity {
            let oldest = self
                .entries
                .iter()
                .filter(|(_, e)| e.leases == 0)
                .min_by_key(|(_, e)| e.released)
                .map(|(&k, e)| (k, self.expired(e, now)));
            let Some((k, expired)) = oldest else {
                self.stats.unrecorded += 1;
                return None;
            };
            self.entries.remove(&k);
            if expired {
                self.stats.expired += 1;
            } else {
                self.stats.evictions += 1;
            }
        }
        let gen = self.gen();
        self.entries.insert(
            c,
            Entry {
                host: h,
                gen,
                leases: 1,
                released: 0,
            },
        );
        Some(gen)
    }

    fn release(&mut self, c: u16, gen: Option<u64>, now: u64) {
        let Some(e) = self.entries.get_mut(&c) else {
            return;
        };
        if Some(e.gen) != gen || e.leases == 0 {
            return;
        }
        e.leases -= 1;
        if e.leases == 0 {
            e.released = now;
            if self.timeout == 0 {
                self.entries.remove(&c);
                self.stats.expired += 1;
            }
        }
    }

    fn sweep(&mut self, now: u64) -> usize {
        let gone: Vec<u16> = self
            .entries
            .iter()
            .filter(|(_, e)| self.expired(e, now))
            .map(|(&k, _)| k)
            .collect();
        for k in &gone {
            self.entries.remove(k);
        }
        self.stats.expired += gone.len() as u64;
        gone.len()
    }
}

/// Where `Steer` places a client: the first usable host from index `steer`, cyclically.
fn steered(table: &HostTable<SocketAddr>, steer: usize) -> Option<SocketAddr> {
    let snap = table.snapshot();
    let n = snap.len();
    (0..n)
        .map(|k| (steer % n + k) % n)
        .find(|&i| snap.is_usable(i))
        .map(|i| *snap.host(i).backend())
}

fn run(ops: Vec<Op>, capacity: usize, shards: usize, timeout: u64) -> Result<(), TestCaseError> {
    let table = HostTable::new("props", hosts(4)).unwrap();
    let steer = Steer::default();
    let clock = ManualClock::new();
    let sticky = StickyAddress::builder(steer.clone())
        .capacity(capacity)
        .shards(shards)
        .timeout(Duration::from_nanos(timeout))
        .clock(clock.clone())
        .build()
        .unwrap();
    let b = Balancer::new(&table, sticky);
    let mut model = Model {
        entries: HashMap::new(),
        capacity,
        timeout,
        next_gen: 0,
        stats: StickyStats {
            capacity,
            ..StickyStats::default()
        },
    };
    let mut held: Vec<(u16, Option<u64>, Lease<SocketAddr>)> = Vec::new();
    let now = |clock: &ManualClock| lb_core::Clock::now(clock).as_nanos() as u64;
    for op in ops {
        // Every step takes a nanosecond: no two releases share a time.
        clock.advance(Duration::from_nanos(1));
        let t = now(&clock);
        match op {
            Op::Pick { c, steer: s, hold } => {
                steer.to(s);
                let sticky_host = model.lookup(c, &table, t);
                let want = sticky_host.or_else(|| steered(&table, s));
                let got = b.pick(&client(c)).ok();
                prop_assert_eq!(got.as_ref().map(|l| *l.backend()), want, "client {}", c);
                if let Some(lease) = got {
                    let gen = model.leased(c, *lease.backend(), t);
                    if hold {
                        held.push((c, gen, lease));
                    } else {
                        drop(lease);
                        model.release(c, gen, t);
                    }
                }
            }
            Op::End(k) if !held.is_empty() => {
                let (c, gen, lease) = held.remove(k % held.len());
                drop(lease);
                model.release(c, gen, t);
            }
            Op::End(_) => {}
            Op::Health(h, up) => {
                let health = if up { Health::Up } else { Health::Down };
                let _ = table.set_health(host(h).id(), health, "props");
            }
            Op::Member(h) => {
                if table.snapshot().index_of(host(h).id()).is_some() {
                    table.remove(host(h).id()).unwrap(); // may empty the table
                } else {
                    table.add(host(h), Health::Up).unwrap();
                }
            }
            Op::Wait(ns) => clock.advance(Duration::from_nanos(ns)),
            Op::Sweep => prop_assert_eq!(b.policy().sweep(), model.sweep(t)),
        }
        let stats = b.policy().stats();
        prop_assert!(stats.entries <= capacity);
        prop_assert_eq!(b.policy().stored_entries(), stats.entries);
        model.stats.entries = model.entries.len();
        prop_assert_eq!(stats, model.stats);
    }
    drop(held);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn sticky_matches_the_model(
        ops in prop::collection::vec(op(), 1..80),
        capacity in 1usize..6,
        shards in prop_oneof![Just(1usize), Just(4), Just(16)],
        timeout in prop_oneof![Just(0u64), 1u64..60],
    ) {
        run(ops, capacity, shards, timeout)?;
    }
}

#[test]
fn a_hand_written_sequence_matches_the_model() {
    // Capacity 2, timeout 10 ns: fill, expire, evict, drop on down, refuse when live.
    let ops = vec![
        Op::Pick {
            c: 1,
            steer: 0,
            hold: true,
        },
        Op::Pick {
            c: 2,
            steer: 1,
            hold: false,
        },
        Op::Pick {
            c: 3,
            steer: 2,
            hold: true,
        }, // evicts 2 (idle)
        Op::Pick {
            c: 4,
            steer: 3,
            hold: true,
        }, // all live: no entry
        Op::Health(1, false),
        Op::Pick {
            c: 1,
            steer: 2,
            hold: true,
        }, // dropped, re-placed on 3
        Op::End(0),
        Op::Wait(20),
        Op::Sweep,
        Op::Pick {
            c: 1,
            steer: 0,
            hold: false,
        },
    ];
    run(ops, 2, 16, 10).unwrap();
}
