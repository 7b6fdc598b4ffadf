//! Failed lookups keep the last good hosts, are reported as events, and never empty
//! the table; settings are checked at start.

mod common;

use std::time::Duration;

use common::*;
use lb_dns::{DnsEvent, Error, Membership, ResolveError, Resolver};

/// The next `LookupFailed` event.
async fn failed(events: &mut tokio::sync::broadcast::Receiver<DnsEvent>) -> (ResolveError, usize) {
    match wait_for(events, "a failed lookup", |e| {
        matches!(e, DnsEvent::LookupFailed { .. })
    })
    .await
    {
        DnsEvent::LookupFailed { error, kept, .. } => (error, kept),
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn nxdomain_servfail_empty_and_timeout_keep_the_last_good_hosts() {
    let server = DnsServer::start().await;
    server.set_ips("www.test", 1, &[ip("127.0.0.11"), ip("127.0.0.12")]);
    let table = empty_table("web");
    let builder = Membership::builder(resolver(&server))
        .ip("www.test", 80)
        .min_ttl(Duration::from_millis(200))
        .max_ttl(Duration::from_secs(1));
    let mut events = builder.subscribe();
    let membership = builder.start(table.clone()).unwrap();
    membership.ready().await;
    let good = vec![(sa("127.0.0.11:80"), 1), (sa("127.0.0.12:80"), 1)];
    assert_eq!(hosts(&table), good);

    server.remove("www.test");
    let (error, kept) = failed(&mut events).await;
    assert_eq!(
        error,
        ResolveError::NxDomain {
            name: "www.test".into()
        }
    );
    assert_eq!(error.to_string(), "www.test does not exist (NXDOMAIN)");
    assert_eq!((kept, hosts(&table)), (2, good.clone()));

    server.servfail("www.test");
    let (error, _) = wait_until_not(&mut events, &error).await;
    assert!(
        matches!(&error, ResolveError::ServerFailure { name, .. } if name == "www.test"),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("the DNS server failed to answer for www.test"),
        "{error}"
    );
    assert_eq!(hosts(&table), good);

    server.set_ips("www.test", 1, &[]);
    let (error, _) = wait_until_not(&mut events, &error).await;
    assert_eq!(
        error,
        ResolveError::Empty {
            name: "www.test".into(),
            kind: "A/AAAA"
        }
    );
    assert_eq!(
        error.to_string(),
        "www.test has no A/AAAA records (empty answer)"
    );
    assert_eq!(hosts(&table), good);

    server.silent("www.test");
    let (error, _) = wait_until_not(&mut events, &error).await;
    assert!(
        matches!(&error, ResolveError::Timeout { name, .. } if name == "www.test"),
        "{error:?}"
    );
    assert_eq!(hosts(&table), good);
    assert_eq!(membership.members().len(), 2);

    // Back: the new answer applies (and failures stop).
    server.set_ips("www.test", 1, &[ip("127.0.0.12")]);
    let DnsEvent::TableChanged { removed, .. } = changed(&mut events).await else {
        unreachable!()
    };
    assert_eq!(
        removed.iter().map(|m| m.addr).collect::<Vec<_>>(),
        vec![sa("127.0.0.11:80")]
    );
    assert_eq!(hosts(&table), vec![(sa("127.0.0.12:80"), 1)]);
    membership.shutdown().await;
}

/// The next failure whose error differs from `previous` (the one before the server
/// changed may repeat once more).
async fn wait_until_not(
    events: &mut tokio::sync::broadcast::Receiver<DnsEvent>,
    previous: &ResolveError,
) -> (ResolveError, usize) {
    loop {
        let (error, kept) = failed(events).await;
        if &error != previous {
            return (error, kept);
        }
    }
}

#[tokio::test]
async fn a_name_that_never_resolved_leaves_the_table_as_it_was_and_retries_with_backoff() {
    let server = DnsServer::start().await;
    let table = empty_table("web");
    let builder = Membership::builder(resolver(&server))
        .ip("missing.test", 80)
        .min_ttl(Duration::from_millis(100))
        .max_ttl(Duration::from_millis(400));
    let mut events = builder.subscribe();
    let membership = builder.start(table.clone()).unwrap();
    let mut retries = Vec::new();
    for _ in 0..4 {
        match wait_for(&mut events, "a failure", |e| {
            matches!(e, DnsEvent::LookupFailed { .. })
        })
        .await
        {
            DnsEvent::LookupFailed { kept, retry_in, .. } => {
                assert_eq!(kept, 0);
                retries.push(retry_in.as_millis());
            }
            _ => unreachable!(),
        }
    }
    assert_eq!(retries, vec![100, 200, 400, 400]);
    assert!(table.snapshot().is_empty());
    // Then the name appears.
    server.set_ips("missing.test", 1, &[ip("127.0.0.11")]);
    changed(&mut events).await;
    assert_eq!(hosts(&table), vec![(sa("127.0.0.11:80"), 1)]);
    membership.shutdown().await;
}

#[tokio::test]
async fn an_srv_target_that_is_gone_is_left_out_and_one_that_fails_keeps_the_set() {
    let server = DnsServer::start().await;
    server.set_srv(
        "_web._tcp.test",
        1,
        &[(0, 1, 81, "a.test"), (0, 1, 82, "b.test")],
    );
    server.set_ips("a.test", 1, &[ip("127.0.0.21")]);
    server.set_ips("b.test", 1, &[ip("127.0.0.22")]);
    let table = empty_table("web");
    let builder = Membership::builder(resolver(&server)).srv("_web._tcp.test");
    let mut events = builder.subscribe();
    let membership = builder.start(table.clone()).unwrap();
    membership.ready().await;
    assert_eq!(
        hosts(&table),
        vec![(sa("127.0.0.21:81"), 1), (sa("127.0.0.22:82"), 1)]
    );

    // b.test's server fails: the whole answer is not trusted, the set is kept.
    server.servfail("b.test");
    let (error, kept) = failed(&mut events).await;
    assert!(
        matches!(&error, ResolveError::ServerFailure { name, .. } if name == "b.test."),
        "{error:?}"
    );
    assert_eq!(kept, 2);
    assert_eq!(
        hosts(&table),
        vec![(sa("127.0.0.21:81"), 1), (sa("127.0.0.22:82"), 1)]
    );

    // b.test is gone (NXDOMAIN): it leaves the table.
    server.remove("b.test");
    let DnsEvent::TableChanged { removed, .. } = changed(&mut events).await else {
        unreachable!()
    };
    assert_eq!(
        removed.iter().map(|m| m.addr).collect::<Vec<_>>(),
        vec![sa("127.0.0.22:82")]
    );

    // Every target gone: an empty answer, the last host stays.
    server.remove("a.test");
    let (error, kept) = failed(&mut events).await;
    assert_eq!(
        error,
        ResolveError::Empty {
            name: "_web._tcp.test".into(),
            kind: "SRV"
        }
    );
    assert_eq!(kept, 1);
    assert_eq!(hosts(&table), vec![(sa("127.0.0.21:81"), 1)]);
    membership.shutdown().await;
}

#[tokio::test]
async fn settings_are_checked_at_start() {
    let server = DnsServer::start().await;
    let table = empty_table("web");
    let start = |b: lb_dns::MembershipBuilder| b.start(table.clone()).map(|_| ());
    let builder = || Membership::builder(resolver(&server));
    assert_eq!(start(builder()), Err(Error::NoSources));
    let inverted = builder()
        .ip("www.test", 80)
        .min_ttl(Duration::from_secs(10))
        .max_ttl(Duration::from_secs(5));
    let e = start(inverted).unwrap_err();
    assert!(
        e.to_string().starts_with("invalid setting `min_ttl`"),
        "{e}"
    );
    let zero = builder().ip("www.test", 80).min_ttl(Duration::ZERO);
    assert!(matches!(
        start(zero),
        Err(Error::InvalidSetting {
            setting: "min_ttl",
            ..
        })
    ));
    let bad = builder().ip("bad..name", 80);
    assert!(matches!(start(bad), Err(Error::InvalidName { name, .. }) if name == "bad..name"));
    assert!(matches!(
        Resolver::with_servers([]),
        Err(Error::InvalidSetting {
            setting: "servers",
            ..
        })
    ));
}

#[test]
fn start_outside_a_runtime_is_an_error() {
    let resolver = Resolver::with_servers([sa("127.0.0.1:53")]).unwrap();
    let table = empty_table("web");
    let e = Membership::builder(resolver)
        .ip("www.test", 80)
        .start(table)
        .unwrap_err();
    assert_eq!(e, Error::NoRuntime);
}
