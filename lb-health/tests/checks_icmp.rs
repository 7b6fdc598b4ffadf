//! `icmp` echo checks on the loopback addresses, from each kind of socket the system
//! permits. A kind the system refuses must give the typed "not permitted" outcome;
//! the test says which kinds it could not try.
#![cfg(unix)]

use std::net::SocketAddr;
use std::time::Duration;

use lb_health::{Check, Error, Icmp, IcmpSocket, Outcome, Probe, Reason};

const TIMEOUT: Duration = Duration::from_secs(2);

/// Checks `addr` with `icmp`: up if the system permits a socket, else the typed
/// outcome, which must agree with `Icmp::permitted`.
async fn echo(icmp: Icmp, addr: SocketAddr) {
    let out = icmp.check(&Probe::new(addr, TIMEOUT)).await;
    match icmp.permitted(addr.is_ipv6()) {
        Ok(kind) => assert_eq!(out, Outcome::Up, "{addr} from a {kind}"),
        Err(Error::IcmpNotPermitted { detail }) => {
            eprintln!("{addr}: not tried, the system permits no such socket: {detail}");
            assert!(matches!(out, Outcome::Unknown(_)), "{out}");
            assert_eq!(out.reason(), Some(Reason::IcmpNotPermitted));
            assert_eq!(out.failure().and_then(|f| f.detail()), Some(&*detail));
        }
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fn ipv6_loopback() -> Option<SocketAddr> {
    match std::net::UdpSocket::bind("[::1]:0") {
        Ok(_) => Some("[::1]:0".parse().expect("::1")),
        Err(e) => {
            eprintln!("skipped: no IPv6 loopback ({e})");
            None
        }
    }
}

#[tokio::test]
async fn echo_on_ipv4_loopback() {
    let lo: SocketAddr = "127.0.0.1:0".parse().unwrap();
    echo(Icmp::new(), lo).await;
    echo(Icmp::with_socket(IcmpSocket::Datagram), lo).await;
    echo(Icmp::with_socket(IcmpSocket::Raw), lo).await;
    assert_eq!(Icmp::new().name(), "icmp");
}

#[tokio::test]
async fn echo_on_ipv6_loopback() {
    let Some(lo) = ipv6_loopback() else { return };
    echo(Icmp::new(), lo).await;
    echo(Icmp::with_socket(IcmpSocket::Datagram), lo).await;
    echo(Icmp::with_socket(IcmpSocket::Raw), lo).await;
}

#[tokio::test]
async fn the_automatic_choice_prefers_a_datagram_socket() {
    let datagram = Icmp::with_socket(IcmpSocket::Datagram).permitted(false);
    let raw = Icmp::with_socket(IcmpSocket::Raw).permitted(false);
    let auto = Icmp::new().permitted(false);
    match (datagram, raw) {
        (Ok(_), _) => assert_eq!(auto, Ok(IcmpSocket::Datagram)),
        (Err(_), Ok(_)) => assert_eq!(auto, Ok(IcmpSocket::Raw)),
        (Err(_), Err(_)) => {
            let Err(Error::IcmpNotPermitted { detail }) = auto else {
                panic!("{auto:?}")
            };
            // Both refusals are explained.
            assert!(detail.contains("datagram ICMP socket"), "{detail}");
            assert!(detail.contains("raw ICMP socket"), "{detail}");
        }
    }
}

#[tokio::test]
async fn many_checks_at_once_each_see_their_own_reply() {
    // Raw sockets see every echo reply of the machine: the sequence number and the
    // payload keep concurrent checks apart.
    let lo: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let icmp = Icmp::new();
    if icmp.permitted(false).is_err() {
        eprintln!("skipped: no ICMP socket permitted");
        return;
    }
    let checks = (0..20).map(|_| async move { icmp.check(&Probe::new(lo, TIMEOUT)).await });
    for out in futures_util::future::join_all(checks).await {
        assert_eq!(out, Outcome::Up);
    }
}
