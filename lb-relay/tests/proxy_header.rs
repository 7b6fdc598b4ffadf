//! PROXY protocol end to end: the backend receives the header, byte-exact, before the
//! client's first byte, for IPv4 and IPv6 clients, v1 and v2.
//!
//! The expected headers are spelled out byte by byte here, from the spec
//! (haproxy `doc/proxy-protocol.txt`, sections 2.1 and 2.2), not produced by the
//! encoder under test; `proxy_protocol.rs` covers the encoder's edge cases.

mod common;

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use common::{bounded, connect_from, Run};
use lb_core::{Host, HostTable};
use lb_relay::{BackendPort, ProxyProtocol, Relay};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const PAYLOAD: &[u8] = b"EHLO client.example\r\n";

/// Runs one session from `client_ip` through a relay listening on `listen_ip`, and
/// checks that the backend receives exactly `header(client address, relay address)`
/// followed by the client's payload.
async fn check(
    version: ProxyProtocol,
    listen_ip: IpAddr,
    client_ip: IpAddr,
    header: impl FnOnce(SocketAddr, SocketAddr) -> Vec<u8>,
) {
    let listener = TcpListener::bind(SocketAddr::new(listen_ip, 0))
        .await
        .unwrap();
    let backend = listener.local_addr().unwrap();
    let relay = Relay::builder("proxied")
        .listen(listen_ip)
        .forward_to(HostTable::new("t", [Host::from(backend)]).unwrap())
        .backend_port(BackendPort::Host)
        .proxy_protocol(version)
        .run();
    let to = relay.local_addrs()[0];
    let mut client = connect_from(client_ip, to).await;
    client.write_all(PAYLOAD).await.unwrap();
    let mut expected = header(client.local_addr().unwrap(), to);
    expected.extend_from_slice(PAYLOAD);
    let (mut server, _) = bounded("the relay's connection", listener.accept())
        .await
        .unwrap();
    let mut received = vec![0u8; expected.len()];
    bounded("header and payload", server.read_exact(&mut received))
        .await
        .unwrap();
    assert_eq!(
        received,
        expected,
        "received {:?}",
        String::from_utf8_lossy(&received)
    );
}

fn port_bytes(port: u16) -> [u8; 2] {
    port.to_be_bytes()
}

// Linux only: the client binds 127.0.0.9, which only Linux's loopback answers.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_ipv4() {
    let client_ip = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 9));
    check(
        ProxyProtocol::V1,
        std::net::Ipv4Addr::LOCALHOST.into(),
        client_ip,
        |client, relay| {
            format!(
                "PROXY TCP4 127.0.0.9 127.0.0.1 {} {}\r\n",
                client.port(),
                relay.port()
            )
            .into_bytes()
        },
    )
    .await;
}

// Linux only: the client binds 127.0.0.9, which only Linux's loopback answers.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_ipv4() {
    let client_ip = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 9));
    check(
        ProxyProtocol::V2,
        std::net::Ipv4Addr::LOCALHOST.into(),
        client_ip,
        |client, relay| {
            let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
            h.extend_from_slice(&[0x21, 0x11, 0x00, 12]); // v2 PROXY, TCP over IPv4, 12 bytes
            h.extend_from_slice(&[127, 0, 0, 9, 127, 0, 0, 1]);
            h.extend_from_slice(&port_bytes(client.port()));
            h.extend_from_slice(&port_bytes(relay.port()));
            h
        },
    )
    .await;
}

/// Whether this machine has `::1` (a container may not).
async fn has_ipv6_loopback() -> bool {
    TcpListener::bind("[::1]:0").await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_ipv6() {
    if !has_ipv6_loopback().await {
        eprintln!("no ::1 on this machine: IPv6 PROXY test not run");
        return;
    }
    let one = Ipv6Addr::LOCALHOST;
    check(
        ProxyProtocol::V2,
        one.into(),
        one.into(),
        |client, relay| {
            let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
            h.extend_from_slice(&[0x21, 0x21, 0x00, 36]); // v2 PROXY, TCP over IPv6, 36 bytes
            h.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            h.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            h.extend_from_slice(&port_bytes(client.port()));
            h.extend_from_slice(&port_bytes(relay.port()));
            h
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_ipv6() {
    if !has_ipv6_loopback().await {
        eprintln!("no ::1 on this machine: IPv6 PROXY test not run");
        return;
    }
    let one = Ipv6Addr::LOCALHOST;
    check(
        ProxyProtocol::V1,
        one.into(),
        one.into(),
        |client, relay| {
            format!("PROXY TCP6 ::1 ::1 {} {}\r\n", client.port(), relay.port()).into_bytes()
        },
    )
    .await;
}
