//! Servers that run only HTTPS (Exchange 2010 installs POP3 and IMAP4 stopped): with
//! `--affinity service` the HTTPS relay serves them while the other relays' tables have
//! them down; with `--affinity server` nothing is served. The same code as `--backend`,
//! with two demo servers that start only their web service.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use lb::core::{Health, Host};
use tokio::net::TcpSocket;
use tokio::time::Instant;

use crate::cli::{Affinity, Options};
use crate::clients::Clients;
use crate::demo_servers::DemoServer;
use crate::health::DEMO;
use crate::services::{Protocol, Service, SERVICES};
use crate::setup::{Exchange, Port};

/// A port that is bound, not listening, on both addresses: connects are refused there,
/// and no other program can listen there while the sockets live (no `SO_REUSEADDR`).
fn reserve(ips: [IpAddr; 2]) -> (u16, Vec<TcpSocket>) {
    for _ in 0..100 {
        let first = TcpSocket::new_v4().expect("socket");
        first.bind(SocketAddr::new(ips[0], 0)).expect("bind");
        let port = first.local_addr().expect("local address").port();
        let second = TcpSocket::new_v4().expect("socket");
        // Taken on the other address: try another port.
        if second.bind(SocketAddr::new(ips[1], port)).is_ok() {
            return (port, vec![first, second]);
        }
    }
    panic!("no port free on both {} and {}", ips[0], ips[1]);
}

/// Two servers on `ips` that run only HTTPS (every other port refuses), the balancer
/// in front of them with `affinity`, after its first round of checks.
async fn https_only(
    ips: [IpAddr; 2],
    affinity: Affinity,
) -> (Exchange, Vec<DemoServer>, Vec<TcpSocket>) {
    let https = SERVICES[0];
    assert_eq!(https.protocol, Protocol::Https);
    let (https_port, reservation) = reserve(ips);
    // Freed for the servers' listeners: the addresses are this test's own.
    drop(reservation);
    let mut servers = Vec::new();
    for (name, ip) in ["owa1", "owa2"].into_iter().zip(ips) {
        let mut server = DemoServer::new(name, ip, vec![(https, https_port)]).expect("server");
        server.start().await.expect("HTTPS starts");
        servers.push(server);
    }
    let mut refused = Vec::new();
    let ports: Vec<Port> = SERVICES
        .iter()
        .map(|&service: &Service| {
            let backend = if service == https {
                https_port
            } else {
                let (port, sockets) = reserve(ips);
                refused.extend(sockets);
                port
            };
            Port {
                service,
                listen: 0,
                backend,
            }
        })
        .collect();
    let hosts = servers
        .iter()
        .map(|s| Host::new(s.name(), SocketAddr::new(s.ip(), 0)))
        .collect();
    let options = Options {
        affinity,
        ..Options::default()
    };
    let (ex, _events) = Exchange::start(&options, hosts, &ports, DEMO, Instant::now())
        .await
        .expect("the balancer starts");
    ex.first_round(Duration::from_secs(30)).await;
    (ex, servers, refused)
}

/// A visit through relay number `relay`, from 127.0.0.1.
async fn visit(ex: &Exchange, relay: usize) -> Result<String, String> {
    let clients = Clients::new().expect("clients");
    let r = &ex.relays[relay];
    clients
        .visit(r.service, IpAddr::V4(Ipv4Addr::LOCALHOST), ex.target(r))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_service_health_serves_https_when_only_https_runs() {
    let ips = [[127, 0, 0, 42].into(), [127, 0, 0, 43].into()];
    let (ex, mut servers, _refused) = https_only(ips, Affinity::Service).await;
    assert_eq!(ex.pools.len(), 8);
    for (p, pool) in ex.pools.iter().enumerate() {
        let want = if p == ex.relays[0].pool {
            Health::Up
        } else {
            Health::Down
        };
        for name in ["owa1", "owa2"] {
            assert_eq!(
                ex.health(p, name),
                Some(want),
                "{name} in <{}>",
                pool.table.name()
            );
        }
    }
    let page = visit(&ex, 0).await;
    assert!(
        matches!(page.as_deref(), Ok("owa1" | "owa2")),
        "HTTPS through the relay: {page:?}"
    );
    // POP3's relay has no usable host: the client is turned away.
    assert!(visit(&ex, 1).await.is_err());
    ex.shutdown().await;
    for server in &mut servers {
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_server_health_takes_out_servers_without_pop3() {
    let ips = [[127, 0, 0, 44].into(), [127, 0, 0, 45].into()];
    let (ex, mut servers, _refused) = https_only(ips, Affinity::Server).await;
    assert_eq!(ex.pools.len(), 1);
    assert_eq!(ex.health(0, "owa1"), Some(Health::Down));
    assert_eq!(ex.health(0, "owa2"), Some(Health::Down));
    assert!(
        visit(&ex, 0).await.is_err(),
        "HTTPS served with every server down"
    );
    ex.shutdown().await;
    for server in &mut servers {
        server.stop().await;
    }
}
