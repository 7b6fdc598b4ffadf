//! Several balancer instances behind DNS or ECMP agree without talking to each other:
//! four instances with separate tables (hosts given in different orders; one fed by a
//! tower `Discover` stream, one by DNS from a responder on loopback) map 100 000 client
//! addresses identically with `Consistent`, before and after a membership change that
//! all of them see.

#[path = "../test-support/dns.rs"]
mod dns;

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use dns::DnsServer;
use futures::channel::mpsc;
use lb::core::{Backend, BackendId, Balancer, Context, Host, HostTable};
use lb::dns::{DnsEvent, Membership, Resolver};
use lb::policies::Consistent;
use lb::service::{Balance, BoxError};
use tower::discover::Change;
use tower::{service_fn, ServiceExt};

const PORT: u16 = 443;
const CLIENTS: u32 = 100_000;
const PATIENCE: Duration = Duration::from_secs(20);

fn addr(last: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)), PORT)
}

/// 100 000 clients: 90 000 IPv4 and 10 000 IPv6 addresses, spread over their spaces.
fn clients() -> Vec<Context<'static>> {
    (0..CLIENTS)
        .map(|i| {
            let ip = if i % 10 == 9 {
                let low = u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
                IpAddr::V6(Ipv6Addr::from(0x2001_0db8_u128 << 96 | low >> 32))
            } else {
                IpAddr::V4(Ipv4Addr::from(i.wrapping_mul(2_654_435_761)))
            };
            Context::from_client(SocketAddr::new(ip, 40_000))
        })
        .collect()
}

/// Where each client goes, by host id.
fn mapping(
    pick: impl Fn(&Context<'_>) -> BackendId,
    clients: &[Context<'static>],
) -> Vec<BackendId> {
    clients.iter().map(pick).collect()
}

fn resolver(server: &DnsServer) -> Resolver {
    Resolver::with_servers([server.addr()])
        .expect("a resolver")
        .with_timeout(Duration::from_millis(300), 2)
        .expect("a timeout")
}

async fn table_changed(events: &mut tokio::sync::broadcast::Receiver<DnsEvent>) {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(DnsEvent::TableChanged { .. }) => return,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("membership events ended: {e}"),
            }
        }
    };
    tokio::time::timeout(PATIENCE, wait)
        .await
        .expect("the DNS membership follows the new answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_instances_map_every_client_alike_before_and_after_a_change() {
    let before: Vec<u8> = vec![11, 12, 13, 14, 15, 16, 17, 18];
    let after: Vec<u8> = vec![11, 13, 14, 15, 16, 17, 18, 19]; // 12 goes, 19 comes

    // 1 and 2: tables configured by hand, in opposite orders.
    let forward = HostTable::new("forward", before.iter().map(|&n| Host::from(addr(n)))).unwrap();
    let backward = HostTable::new(
        "backward",
        before.iter().rev().map(|&n| Host::from(addr(n))),
    )
    .unwrap();
    let b1 = Balancer::new(&forward, Consistent::new());
    let b2 = Balancer::new(&backward, Consistent::new());

    // 3: a tower balancer fed by a Discover stream, in yet another order.
    let (changes, discover) = mpsc::unbounded::<Result<Change<SocketAddr, _>, BoxError>>();
    let service = service_fn(|_: ()| async { Ok::<_, Infallible>(()) });
    let mut tower_lb = Balance::discover("discovered", Consistent::new(), discover, |_: &()| {
        Context::new()
    })
    .unwrap();
    for n in [15, 11, 18, 13, 12, 17, 14, 16] {
        changes
            .unbounded_send(Ok(Change::Insert(addr(n), service)))
            .unwrap();
    }
    tower_lb.ready().await.unwrap();

    // 4: a table fed by DNS, whose answer lists the addresses in a fourth order.
    let server = DnsServer::start().await;
    let ips = |list: &[u8]| -> Vec<IpAddr> { list.iter().map(|&n| addr(n).ip()).collect() };
    server.set_ips("exchange.test", 1, &ips(&[14, 18, 11, 16, 12, 15, 13, 17]));
    let from_dns = HostTable::<Host>::builder("dns")
        .allow_empty()
        .build()
        .unwrap();
    let membership = Membership::builder(resolver(&server))
        .ip("exchange.test", PORT)
        .min_ttl(Duration::from_millis(200))
        .start(from_dns.clone())
        .unwrap();
    tokio::time::timeout(PATIENCE, membership.ready())
        .await
        .expect("the first lookup");
    let mut events = membership.subscribe();
    let b4 = Balancer::new(&from_dns, Consistent::new());
    assert_eq!(from_dns.snapshot().len(), 8);

    let clients = Arc::new(clients());
    let maps = |tower_lb: &Balance<_, Consistent, _, _>| {
        [
            mapping(|c| b1.pick(c).unwrap().id(), &clients),
            mapping(|c| b2.pick(c).unwrap().id(), &clients),
            mapping(|c| tower_lb.balancer().pick(c).unwrap().id(), &clients),
            mapping(|c| b4.pick(c).unwrap().id(), &clients),
        ]
    };
    let first = maps(&tower_lb);
    for (i, m) in first.iter().enumerate().skip(1) {
        let differ = m.iter().zip(&first[0]).filter(|(a, b)| a != b).count();
        assert_eq!(
            differ,
            0,
            "instance {} sends {differ} clients elsewhere",
            i + 1
        );
    }

    // The same change, seen by every instance its own way.
    forward.remove(Host::from(addr(12)).id()).unwrap();
    forward
        .add(Host::from(addr(19)), lb::core::Health::Up)
        .unwrap();
    backward
        .add(Host::from(addr(19)), lb::core::Health::Up)
        .unwrap();
    backward.remove(Host::from(addr(12)).id()).unwrap();
    changes
        .unbounded_send(Ok(Change::Remove(addr(12))))
        .unwrap();
    changes
        .unbounded_send(Ok(Change::Insert(addr(19), service)))
        .unwrap();
    tower_lb.ready().await.unwrap();
    server.set_ips("exchange.test", 1, &ips(&after));
    table_changed(&mut events).await;
    let wanted: Vec<BackendId> = after.iter().map(|&n| Host::from(addr(n)).id()).collect();
    let mut dns_ids: Vec<BackendId> = from_dns.snapshot().hosts().iter().map(|h| h.id()).collect();
    dns_ids.sort();
    let mut sorted = wanted.clone();
    sorted.sort();
    assert_eq!(dns_ids, sorted, "the DNS-fed table has the new set");

    let second = maps(&tower_lb);
    for (i, m) in second.iter().enumerate().skip(1) {
        let differ = m.iter().zip(&second[0]).filter(|(a, b)| a != b).count();
        assert_eq!(
            differ,
            0,
            "after the change, instance {} sends {differ} clients elsewhere",
            i + 1
        );
    }
    // The change moved the clients of the host that went, and about an eighth to the
    // one that came: everyone else stayed (Maglev moves a few more; see lb-policies).
    let gone = Host::from(addr(12)).id();
    let moved = first[0]
        .iter()
        .zip(&second[0])
        .filter(|(a, b)| a != b)
        .count();
    let of_gone = first[0].iter().filter(|&&h| h == gone).count();
    assert!(
        moved >= of_gone && moved <= of_gone + CLIENTS as usize / 8 + CLIENTS as usize / 100,
        "{moved} clients moved, {of_gone} of them from the host that went"
    );
    membership.shutdown().await;
}
