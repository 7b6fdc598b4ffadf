//! relayd.conf host names resolve through lb-dns's resolver: here one pointed at a DNS
//! responder on loopback whose answers the test sets.

#[path = "../../test-support/dns.rs"]
mod dns;

use std::net::IpAddr;

use dns::DnsServer;
use lb_config::{parse_str, resolve_with};
use lb_dns::Resolver;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_and_listen_names_resolve_through_the_given_resolver() {
    let server = DnsServer::start().await;
    server.set_ips("www.test", 60, &[ip("127.0.0.11"), ip("127.0.0.12")]);
    server.set_ips("one.test", 60, &[ip("127.0.0.13")]);
    server.set_ips("lb.test", 60, &[ip("127.0.0.1")]);
    let resolver = Resolver::with_servers([server.addr()]).unwrap();
    let text = "table <web> { www.test one.test 127.0.0.5 }\n\
                relay web {\n listen on lb.test port 8080\n forward to <web> port 80\n}\n";
    let parsed = parse_str("d.conf", text, &[]).expect("parses");
    let plan = tokio::task::block_in_place(|| resolve_with(parsed, &resolver))
        .unwrap_or_else(|r| panic!("{}", r.render()));
    assert_eq!(
        plan.hosts["web"],
        vec![
            ("www.test (127.0.0.11)".to_string(), ip("127.0.0.11")),
            ("www.test (127.0.0.12)".to_string(), ip("127.0.0.12")),
            ("one.test".to_string(), ip("127.0.0.13")),
            ("127.0.0.5".to_string(), ip("127.0.0.5")),
        ]
    );
    assert_eq!(plan.listen["lb.test"], vec![ip("127.0.0.1")]);
    // Each name was asked once (A and AAAA), however often it is written.
    assert_eq!(server.queries("www.test"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_the_server_does_not_know_or_fails_is_an_error_naming_it() {
    let server = DnsServer::start().await;
    server.servfail("broken.test");
    let resolver = Resolver::with_servers([server.addr()]).unwrap();
    let text = "table <t> { gone.test broken.test }\n\
                relay A {\n listen on nowhere.test port 1\n forward to <t>\n}\n";
    let parsed = parse_str("n.conf", text, &[]).expect("parses");
    let report = tokio::task::block_in_place(|| resolve_with(parsed, &resolver)).unwrap_err();
    let text = report.render();
    assert!(
        text.contains("host name gone.test does not resolve: gone.test does not exist (NXDOMAIN)"),
        "{text}"
    );
    assert!(text.contains("n.conf:1:13"), "{text}");
    assert!(
        text.contains("host name broken.test does not resolve: the DNS server failed to answer for broken.test"),
        "{text}"
    );
    assert!(
        text.contains(
            "listen address nowhere.test does not resolve: nowhere.test does not exist (NXDOMAIN)"
        ),
        "{text}"
    );
}
