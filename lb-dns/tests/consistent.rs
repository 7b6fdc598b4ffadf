//! With the `Consistent` policy, a membership change from DNS moves the clients of
//! the added or removed address, and (Maglev's small excess, see lb-policies'
//! `consistent` docs) next to none of the others.

mod common;

use std::net::SocketAddr;

use common::*;
use lb_core::{BackendId, Balancer, Context};
use lb_dns::Membership;
use lb_policies::Consistent;

#[tokio::test]
async fn next_to_only_the_clients_of_added_or_removed_addresses_move() {
    let server = DnsServer::start().await;
    let v4 = |n: u8| ip(&format!("127.0.0.{n}"));
    server.set_ips("www.test", 1, &[v4(11), v4(12), v4(13), v4(14)]);
    let table = empty_table("web");
    let membership = Membership::builder(resolver(&server))
        .ip("www.test", 443)
        .start(table.clone())
        .unwrap();
    membership.ready().await;
    let mut events = membership.subscribe(); // from now on: after the first fill
    let balancer = Balancer::new(&table, Consistent::new());
    let clients: Vec<SocketAddr> = (0..4000u32)
        .map(|i| SocketAddr::from(([198, 51, (i >> 8) as u8, i as u8], 40000)))
        .collect();
    // Named by closure, not by type: the balancer's type parameters are not this
    // test's subject.
    let map = || -> Vec<BackendId> {
        clients
            .iter()
            .map(|c| balancer.pick(&Context::from_client(*c)).expect("pick").id())
            .collect()
    };
    let before = map();

    // An address comes: clients move only to it.
    server.set_ips("www.test", 1, &[v4(11), v4(12), v4(13), v4(14), v4(15)]);
    changed(&mut events).await;
    let added = id_of("127.0.0.15:443");
    let after_add = map();
    let to_new = before
        .iter()
        .zip(&after_add)
        .filter(|(b, a)| b != a && **a == added)
        .count();
    let between_old = before
        .iter()
        .zip(&after_add)
        .filter(|(b, a)| b != a && **a != added)
        .count();
    // About a fifth of the clients go to the new host (loose bounds: any keyed hash),
    // and under 1% move between hosts that were there before.
    assert!(
        (400..=1400).contains(&to_new),
        "{to_new} clients moved to the new host"
    );
    assert!(
        between_old < 40,
        "{between_old} clients moved between old hosts"
    );

    // An address goes: its clients move, next to none of the others.
    server.set_ips("www.test", 1, &[v4(11), v4(13), v4(14), v4(15)]);
    changed(&mut events).await;
    let removed = id_of("127.0.0.12:443");
    let after_remove = map();
    assert!(after_remove.iter().all(|id| *id != removed));
    let others_moved = after_add
        .iter()
        .zip(&after_remove)
        .filter(|(b, a)| b != a && **b != removed)
        .count();
    assert!(
        others_moved < 40,
        "{others_moved} clients of hosts that stayed moved"
    );
    membership.shutdown().await;
}
