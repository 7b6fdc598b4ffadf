//! The `Consistent` mapping of 1000 fixed client addresses (500 IPv4, 500 IPv6) over a
//! fixed, weighted host list, pinned in `tests/data/consistent_1000.txt`. Several
//! balancer instances (and every release of `lb`) must agree on it: if this fails,
//! every user's clients would move. Never regenerate the file to make it pass. (It
//! was written once, by the pick loop of `mapping_of_1000_addresses_is_pinned`.)

use std::net::{IpAddr, SocketAddr};

use lb_core::{Balancer, Context, Host, HostTable};
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
    let table = HostTable::new("golden", hosts()).unwrap();
    let balancer = Balancer::new(&table, Consistent::new());
    assert_eq!(balancer.with_plan(|_, p| p.table_size()), 65_537);
    for (i, (addr, host)) in pinned.iter().enumerate() {
        assert_eq!(*addr, address(i), "line {i} of the data file");
        let ctx = Context::from_client(SocketAddr::new(*addr, 40_000));
        let got = balancer.candidates(&ctx).next().unwrap();
        assert_eq!(got.host().name(), host, "client {addr}");
    }
}

/// Clients per host, exchange1..exchange8, among `addrs` as `Consistent` places them.
fn shares(
    balancer: &Balancer<Consistent, Host>,
    addrs: impl Iterator<Item = IpAddr>,
) -> [usize; 8] {
    let mut per_host = [0usize; 8];
    for addr in addrs {
        let ctx = Context::from_client(SocketAddr::new(addr, 40_000));
        let pick = balancer.pick(&ctx).expect("every host is up");
        let name = pick.name();
        let n: usize = name["exchange".len()..].parse().expect("exchangeN");
        per_host[n - 1] += 1;
    }
    per_host
}

/// Clients per host, exchange1..exchange8, among the 1000 pinned ones.
const EXPECTED_COUNTS: [usize; 8] = [89, 101, 105, 166, 89, 83, 279, 88];

#[test]
fn pinned_mapping_follows_the_weights() {
    // Weights 1 1 1 2 1 1 3 1 (total 11): about 91 of the 1000 pinned clients per
    // weight unit. `Consistent` itself places them, and gives exactly the shares the
    // pinned file holds.
    let table = HostTable::new("golden", hosts()).unwrap();
    let balancer = Balancer::new(&table, Consistent::new());
    let got = shares(&balancer, (0..1000).map(address));
    assert_eq!(
        got, EXPECTED_COUNTS,
        "Consistent's shares of the 1000 clients"
    );
    let mut in_file = [0usize; 8];
    for (_, host) in pinned() {
        let n: usize = host["exchange".len()..].parse().unwrap();
        in_file[n - 1] += 1;
    }
    assert_eq!(in_file, EXPECTED_COUNTS, "shares in the pinned file");

    // Over 22 000 clients the shares follow the weights closely: within 10 % of
    // 2 000 per weight unit (the Maglev table gives each host its weight's share of
    // 65 537 slots, so the rest is sampling).
    let many =
        (0..22_000u32).map(|i| IpAddr::from([10, 30 + (i >> 16) as u8, (i >> 8) as u8, i as u8]));
    let got = shares(&balancer, many);
    let weights = [1, 1, 1, 2, 1, 1, 3, 1];
    for (host, (&count, &weight)) in got.iter().zip(&weights).enumerate() {
        let expected = 2_000 * weight;
        assert!(
            count.abs_diff(expected) * 10 <= expected,
            "exchange{}: {count} clients, expected {expected} +- 10 % ({got:?})",
            host + 1
        );
    }
}

#[test]
fn host_order_does_not_change_the_mapping() {
    let mut reversed = hosts();
    reversed.reverse();
    let table = HostTable::new("golden", reversed).unwrap();
    let balancer = Balancer::new(&table, Consistent::new());
    for (addr, host) in pinned() {
        let ctx = Context::from_client(SocketAddr::new(addr, 1));
        assert_eq!(
            balancer.candidates(&ctx).next().unwrap().host().name(),
            host
        );
    }
}
