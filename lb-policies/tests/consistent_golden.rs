//! The `Consistent` mapping of 1000 fixed client addresses (500 IPv4, 500 IPv6) over a
//! fixed, weighted host list, pinned in `tests/data/consistent_1000.txt`. Several
//! balancer instances (and every release of `lb`) must agree on it: if this fails,
//! every user's clients would move. Never regenerate the file to make it pass. (It
//! was written once, by the pick loop of `mapping_of_1000_addresses_is_pinned`.)

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use lb_core::{Balancer, Context, Host, Table};
use lb_policies::Consistent;

const DATA: &str = include_str!("data/consistent_1000.txt");

/// The fixed host list: exchange1..8 at 10.0.0.11..18:443, weights 1 1 1 2 1 1 3 1.
fn hosts() -> Vec<Host> {
    let weights = [1, 1, 1, 2, 1, 1, 3, 1];
    (0..8)
        .map(|i| {
            let addr: SocketAddr = format!("10.0.0.{}:443", 11 + i).parse().unwrap();
            Host::new(format!("exchange{}", i + 1), addr)
                .with_weight(weights[i])
                .unwrap()
        })
        .collect()
}

/// The 1000 addresses: 10.20.x.y for i < 500, 2001:db8::<i> above.
fn address(i: usize) -> IpAddr {
    if i < 500 {
        format!("10.20.{}.{}", i / 250, i % 250 + 1)
            .parse()
            .unwrap()
    } else {
        format!("2001:db8::{:x}", i).parse().unwrap()
    }
}

fn pinned() -> Vec<(IpAddr, String)> {
    DATA.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (addr, host) = l.split_once(' ').unwrap();
            (addr.parse().unwrap(), host.to_owned())
        })
        .collect()
}

#[test]
fn mapping_of_1000_addresses_is_pinned() {
    let pinned = pinned();
    assert_eq!(pinned.len(), 1000);
    let table = Table::new("golden", hosts()).unwrap();
    let balancer = Balancer::new(&table, Consistent::new());
    assert_eq!(balancer.with_plan(|_, p| p.table_size()), 65_537);
    for (i, (addr, host)) in pinned.iter().enumerate() {
        assert_eq!(*addr, address(i), "line {i} of the data file");
        let ctx = Context::from_client(SocketAddr::new(*addr, 40_000));
        let got = balancer.candidates(&ctx).next().unwrap();
        assert_eq!(got.host().name(), host, "client {addr}");
    }
}

#[test]
fn pinned_mapping_follows_the_weights() {
    // Shares of the 1000 pinned clients (weights 1 1 1 2 1 1 3 1, total 11): about
    // 91 per weight unit. Pinned exactly, as a compact digest of the file.
    let mut per_host: HashMap<String, usize> = HashMap::new();
    for (_, host) in pinned() {
        *per_host.entry(host).or_default() += 1;
    }
    let mut counts: Vec<(String, usize)> = per_host.into_iter().collect();
    counts.sort();
    let got: Vec<usize> = counts.iter().map(|(_, c)| *c).collect();
    assert_eq!(got, EXPECTED_COUNTS, "{counts:?}");
}

/// Clients per host, exchange1..exchange8, in the pinned file.
const EXPECTED_COUNTS: [usize; 8] = [89, 101, 105, 166, 89, 83, 279, 88];

#[test]
fn host_order_does_not_change_the_mapping() {
    let mut reversed = hosts();
    reversed.reverse();
    let table = Table::new("golden", reversed).unwrap();
    let balancer = Balancer::new(&table, Consistent::new());
    for (addr, host) in pinned() {
        let ctx = Context::from_client(SocketAddr::new(addr, 1));
        assert_eq!(
            balancer.candidates(&ctx).next().unwrap().host().name(),
            host
        );
    }
}
