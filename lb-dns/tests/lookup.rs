//! The resolver's lookups, async and blocking, against the loopback server.

mod common;

use common::*;
use lb_core::Weight;
use lb_dns::{Member, ResolveError, Source};

#[tokio::test]
async fn lookups_give_addresses_ttls_and_named_errors() {
    let server = DnsServer::start().await;
    server.set_ips("www.test", 30, &[ip("127.0.0.11"), ip("::1")]);
    server.set_srv("_x._tcp.test", 20, &[(1, 3, 9000, "www.test")]);
    let resolver = resolver(&server);
    let answer = resolver.lookup_ip("www.test").await.unwrap();
    assert_eq!(answer.addrs, vec![ip("127.0.0.11"), ip("::1")]);
    assert_eq!(answer.ttl.as_secs(), 30);
    let srv = resolver
        .resolve(&Source::srv("_x._tcp.test"))
        .await
        .unwrap();
    let w3 = Weight::new(3).unwrap();
    assert_eq!(
        srv.members,
        vec![
            Member {
                addr: sa("127.0.0.11:9000"),
                weight: w3
            },
            Member {
                addr: sa("[::1]:9000"),
                weight: w3
            }
        ]
    );
    assert!(srv.ttl.as_secs() <= 20, "{:?}", srv.ttl);
    // An address literal needs no server.
    let literal = resolver.lookup_ip("127.0.0.5").await.unwrap();
    assert_eq!(literal.addrs, vec![ip("127.0.0.5")]);
    let e = resolver.lookup_ip("nowhere.test").await.unwrap_err();
    assert_eq!(
        e,
        ResolveError::NxDomain {
            name: "nowhere.test".into()
        }
    );
    assert_eq!(e.name(), "nowhere.test");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_lookups_work_inside_a_runtime() {
    let server = DnsServer::start().await;
    server.set_ips("www.test", 30, &[ip("127.0.0.11")]);
    let resolver = resolver(&server);
    let results = tokio::task::block_in_place(|| {
        resolver.lookup_ip_blocking(&["www.test", "127.0.0.7", "gone.test"])
    });
    assert_eq!(results[0], Ok(vec![ip("127.0.0.11")]));
    assert_eq!(results[1], Ok(vec![ip("127.0.0.7")]));
    assert_eq!(
        results[2],
        Err(ResolveError::NxDomain {
            name: "gone.test".into()
        })
    );
}

#[test]
fn blocking_lookups_work_without_a_runtime() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(DnsServer::start());
    server.set_ips("www.test", 30, &[ip("127.0.0.11")]);
    server.servfail("broken.test");
    let resolver = resolver(&server);
    let results = resolver.lookup_ip_blocking(&["www.test".to_string(), "broken.test".to_string()]);
    assert_eq!(results[0], Ok(vec![ip("127.0.0.11")]));
    let e = results[1].clone().unwrap_err();
    assert!(
        e.to_string()
            .starts_with("the DNS server failed to answer for broken.test: "),
        "{e}"
    );
}
