//! What the lb-dns tests share: the loopback DNS responder, a resolver pointed at it,
//! and waiting for an event with a bounded timeout.
#![allow(dead_code)]

#[path = "../../../test-support/dns.rs"]
pub mod dns;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use lb_core::{BackendId, Host, HostTable};
use lb_dns::{DnsEvent, Resolver};
use tokio::sync::broadcast;

pub use dns::DnsServer;

/// How long a test waits for an event before failing: generous, for a loaded machine.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A resolver asking only `server`, giving up on a silent server after 300 ms.
pub fn resolver(server: &DnsServer) -> Resolver {
    Resolver::with_servers([server.addr()])
        .expect("resolver")
        .with_timeout(Duration::from_millis(300), 1)
        .expect("timeout")
}

/// The next event that `matches` accepts, skipping the others; fails the test after
/// [`PATIENCE`].
pub async fn wait_for(
    events: &mut broadcast::Receiver<DnsEvent>,
    what: &str,
    matches: impl Fn(&DnsEvent) -> bool,
) -> DnsEvent {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(event) if matches(&event) => return event,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => {
                    panic!("events closed waiting for {what}")
                }
            }
        }
    };
    tokio::time::timeout(PATIENCE, wait)
        .await
        .unwrap_or_else(|_| panic!("no event within {PATIENCE:?}: {what}"))
}

/// The next `TableChanged` event.
pub async fn changed(events: &mut broadcast::Receiver<DnsEvent>) -> DnsEvent {
    wait_for(events, "the table to change", |e| {
        matches!(e, DnsEvent::TableChanged { .. })
    })
    .await
}

/// The table's hosts as (address, weight), sorted.
pub fn hosts(table: &HostTable<Host>) -> Vec<(SocketAddr, u16)> {
    let snap = table.snapshot();
    let mut hosts: Vec<_> = snap
        .hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| (h.backend().address(), snap.weight(i).get()))
        .collect();
    hosts.sort();
    hosts
}

/// An empty table for DNS to fill.
pub fn empty_table(name: &str) -> Arc<HostTable<Host>> {
    HostTable::<Host>::builder(name)
        .allow_empty()
        .build()
        .expect("table")
}

/// The id a host written as this address has in any table.
pub fn id_of(addr: &str) -> BackendId {
    BackendId::of_name(addr)
}

/// Parses an IP address.
pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

/// Parses a socket address.
pub fn sa(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}
