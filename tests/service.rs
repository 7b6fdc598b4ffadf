//! The tower request balancer against `tower-test` mocks: routing by key, in-flight
//! requests counted through leases (so least-states sees them), and a `poll_ready` that
//! fails instead of hanging when no service is usable.

use std::future::Future;
use std::net::SocketAddr;
use std::task::Poll;

use lb::core::{Context, Health};
use lb::policies::{Consistent, LeastStates, RoundRobin};
use lb::service::{Balance, BalanceError, BoxError};
use tower::{Service, ServiceExt};
use tower_test::mock;

type Mock = mock::Mock<String, String>;
type Handle = mock::Handle<String, String>;

fn pair() -> (Mock, Handle) {
    let (service, mut handle) = mock::pair();
    handle.allow(u64::MAX / 2);
    (service, handle)
}

/// Answers the next request on `handle` with `answer`, and returns the request.
async fn answer(handle: &mut Handle, answer: &str) -> String {
    let (request, respond) = handle.next_request().await.expect("a request");
    respond.send_response(answer.to_owned());
    request
}

#[tokio::test]
async fn round_robin_alternates_and_answers() {
    let (a, mut ha) = pair();
    let (b, mut hb) = pair();
    let mut balance = Balance::builder("api", RoundRobin::new())
        .service("a", a)
        .service("b", b)
        .build(|_: &String| Context::new())
        .unwrap();

    // The cursor starts at a and moves past each pick: a, b, a, b.
    for (i, expected) in ["a", "b", "a", "b"].into_iter().enumerate() {
        let request = i.to_string();
        let call = balance.ready().await.unwrap().call(request.clone());
        let handle = if expected == "a" { &mut ha } else { &mut hb };
        let (response, got) = tokio::join!(call, answer(handle, expected));
        assert_eq!(got, request);
        assert_eq!(response.unwrap(), expected);
    }
}

#[tokio::test]
async fn least_states_sees_requests_in_flight() {
    let (a, mut ha) = pair();
    let (b, mut hb) = pair();
    let (c, mut hc) = pair();
    let mut balance = Balance::builder("api", LeastStates::new())
        .service("a", a)
        .service("b", b)
        .service("c", c)
        .build(|_: &String| Context::new())
        .unwrap();
    let table = balance.balancer().table().clone();

    // Three requests in flight, none answered: one on each service, because each
    // pending request holds a state on its host.
    let f1 = tokio::spawn(balance.ready().await.unwrap().call("1".to_owned()));
    let f2 = tokio::spawn(balance.ready().await.unwrap().call("2".to_owned()));
    let f3 = tokio::spawn(balance.ready().await.unwrap().call("3".to_owned()));
    let (qa, ra) = ha.next_request().await.unwrap();
    let (qb, rb) = hb.next_request().await.unwrap();
    let (qc, rc) = hc.next_request().await.unwrap();
    let mut got = [qa, qb, qc];
    got.sort();
    assert_eq!(got, ["1", "2", "3"]);
    let active: Vec<u64> = table.stats().iter().map(|h| h.active).collect();
    assert_eq!(active, [1, 1, 1]);

    // Finish the request on b: b is now the least loaded, so the next request goes there.
    rb.send_response("b".to_owned());
    let done = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            if table.stats()[1].active == 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(
        done.is_ok(),
        "the lease of the answered request was released"
    );
    let f4 = tokio::spawn(balance.ready().await.unwrap().call("4".to_owned()));
    let (q4, r4) = hb.next_request().await.unwrap();
    assert_eq!(q4, "4");
    r4.send_response("b again".to_owned());
    assert_eq!(f4.await.unwrap().unwrap(), "b again");
    ra.send_response("a".to_owned());
    rc.send_response("c".to_owned());
    assert_eq!(f1.await.unwrap().unwrap().len(), 1);
    assert_eq!(f2.await.unwrap().unwrap().len(), 1);
    assert_eq!(f3.await.unwrap().unwrap().len(), 1);
    let active: Vec<u64> = table.stats().iter().map(|h| h.active).collect();
    assert_eq!(active, [0, 0, 0]);
}

#[tokio::test]
async fn poll_ready_fails_when_nothing_is_usable_and_recovers() {
    let (a, mut ha) = pair();
    let mut balance = Balance::builder("api", RoundRobin::new())
        .service("a", a)
        .build(|_: &String| Context::new())
        .unwrap();
    let table = balance.balancer().table().clone();
    let id = table.snapshot().id(0);
    table
        .set_health(id, Health::Down, "connect refused".into())
        .unwrap();

    let err: BoxError = match futures_util::poll!(std::future::poll_fn(|cx| balance.poll_ready(cx)))
    {
        Poll::Ready(Err(e)) => e,
        other => panic!("expected an immediate error, got {other:?}"),
    };
    let err = err.downcast::<BalanceError>().expect("a BalanceError");
    assert_eq!(
        *err,
        BalanceError::NoUsableService {
            table: "api".to_owned()
        }
    );
    assert!(err.to_string().contains("no usable service in table `api`"));

    // A call made anyway fails with the same error, and a second poll says why not.
    let mut failed = Box::pin(balance.call("lost".to_owned()));
    let err = (&mut failed).await.unwrap_err();
    assert!(matches!(
        err.downcast_ref::<BalanceError>(),
        Some(BalanceError::NoUsableService { .. })
    ));
    let again = std::future::poll_fn(|cx| failed.as_mut().poll(cx)).await;
    let again = again
        .unwrap_err()
        .downcast::<BalanceError>()
        .expect("a BalanceError");
    assert_eq!(*again, BalanceError::PolledAfterCompletion);

    table.set_health(id, Health::Up, "check ok".into()).unwrap();
    let f = balance.ready().await.unwrap().call("x".to_owned());
    let (r, q) = tokio::join!(f, answer(&mut ha, "ok"));
    assert_eq!(q, "x");
    assert_eq!(r.unwrap(), "ok");
}

#[tokio::test]
async fn a_key_from_the_request_keeps_clients_on_one_service() {
    let named = |name: String| {
        tower::service_fn(move |_req: String| {
            let name = name.clone();
            async move { Ok::<_, std::convert::Infallible>(name) }
        })
    };
    let mut builder = Balance::builder("api", Consistent::new());
    for i in 0..4 {
        builder = builder.service(format!("svc{i}"), named(format!("svc{i}")));
    }
    // A request is "client-address|payload": the key is the client address.
    let mut balance = builder
        .build(|req: &String| {
            let client = req.split('|').next().unwrap_or_default();
            match client.parse::<SocketAddr>() {
                Ok(addr) => Context::from_client(addr),
                Err(_) => Context::new().with_key(client.as_bytes()),
            }
        })
        .unwrap();

    let mut seen = std::collections::BTreeSet::new();
    for c in 0..64u8 {
        let client = format!("192.0.2.{c}:1000");
        let first = balance
            .ready()
            .await
            .unwrap()
            .call(format!("{client}|0"))
            .await
            .unwrap();
        for round in 1..4 {
            let again = balance
                .ready()
                .await
                .unwrap()
                .call(format!("{client}|{round}"))
                .await
                .unwrap();
            assert_eq!(again, first, "{client} moved in round {round}");
        }
        seen.insert(first);
    }
    // 64 clients over 4 services: every service gets some (a fixed mapping; the chance
    // of a service getting none of 64 uniform keys is 4 * (3/4)^64 < 1e-7).
    assert_eq!(seen.len(), 4, "{seen:?}");
}

#[test]
fn invalid_weights_and_duplicates_are_errors() {
    let (a, _ha) = pair();
    let (b, _hb) = pair();
    let err = Balance::builder("api", RoundRobin::new())
        .weighted_service("a", 0, a)
        .build(|_: &String| Context::new())
        .unwrap_err();
    assert!(err.to_string().contains("expected 1..=65535"), "{err}");
    let (a, _ha) = pair();
    let err = Balance::builder("api", RoundRobin::new())
        .service("a", a)
        .service("a", b)
        .build(|_: &String| Context::new())
        .unwrap_err();
    assert!(err.to_string().contains("already in table `api`"), "{err}");
}
