//! `Balance::discover` against a channel-backed tower `Discover` stream: the table follows
//! inserts and removals, picks are exactly those of a table built with the same hosts,
//! readiness waits for the first service, and errors or the end of the stream keep the
//! last set serving.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use futures::channel::mpsc;
use lb::core::{Balancer, Context, HostTable};
use lb::policies::Consistent;
use lb::service::{Balance, BoxError, Named};
use tower::discover::Change;
use tower::{Service, ServiceExt};

/// A service that answers with its own name.
#[derive(Clone)]
struct Answer(&'static str);

impl Service<String> for Answer {
    type Response = &'static str;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<&'static str, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: String) -> Self::Future {
        let name = self.0;
        Box::pin(async move { Ok(name) })
    }
}

type Sender = mpsc::UnboundedSender<Result<Change<&'static str, Answer>, BoxError>>;
type ByUser = fn(&String) -> Context<'_>;
type Discovered = Balance<Answer, Consistent, ByUser, Named>;

fn by_user(req: &String) -> Context<'_> {
    Context::new().with_key(req.as_bytes())
}

fn discovered() -> (Sender, Discovered) {
    let (tx, rx) = mpsc::unbounded();
    let balance = Balance::discover("api", Consistent::new(), rx, by_user as ByUser)
        .expect("a valid table name");
    (tx, balance)
}

fn insert(tx: &Sender, name: &'static str) {
    tx.unbounded_send(Ok(Change::Insert(name, Answer(name))))
        .expect("the balance holds the stream");
}

/// Where each of `users` is sent.
async fn answers(balance: &mut Discovered, users: &[String]) -> Vec<&'static str> {
    let mut out = Vec::with_capacity(users.len());
    for u in users {
        let answer = tokio::time::timeout(Duration::from_secs(10), async {
            balance.ready().await?.call(u.clone()).await
        })
        .await
        .expect("an answer within 10 s")
        .expect("a usable service");
        out.push(answer);
    }
    out
}

/// Where a plain balancer over a table of `hosts` sends each of `users`.
fn expected(hosts: &[&'static str], users: &[String]) -> Vec<&'static str> {
    let table = HostTable::new("reference", hosts.iter().map(|h| Named::new(*h))).unwrap();
    let balancer = Balancer::new(&table, Consistent::new());
    users
        .iter()
        .map(|u| {
            let lease = balancer.pick(&by_user(u)).unwrap();
            *hosts.iter().find(|h| **h == lease.name()).unwrap()
        })
        .collect()
}

fn users() -> Vec<String> {
    (0..500).map(|i| format!("user-{i}")).collect()
}

#[tokio::test]
async fn the_table_follows_inserts_and_removals_and_picks_as_a_built_table() {
    let (tx, mut balance) = discovered();
    let users = users();
    insert(&tx, "10.0.0.1:80");
    insert(&tx, "10.0.0.2:80");
    insert(&tx, "10.0.0.3:80");
    let before = answers(&mut balance, &users).await;
    assert_eq!(
        before,
        expected(&["10.0.0.3:80", "10.0.0.1:80", "10.0.0.2:80"], &users),
        "the same picks as a table of the same hosts, in any order"
    );
    assert_eq!(balance.balancer().table().snapshot().len(), 3);

    tx.unbounded_send(Ok(Change::Remove("10.0.0.2:80")))
        .unwrap();
    let after = answers(&mut balance, &users).await;
    assert_eq!(after, expected(&["10.0.0.1:80", "10.0.0.3:80"], &users));
    // Consistent hashing: only the removed host's users moved.
    for (b, a) in before.iter().zip(&after) {
        if *b != "10.0.0.2:80" {
            assert_eq!(b, a, "a user of a remaining host stays on it");
        }
    }
    assert!(before.contains(&"10.0.0.2:80") && !after.contains(&"10.0.0.2:80"));
}

#[tokio::test]
async fn readiness_waits_for_the_first_service() {
    let (tx, mut balance) = discovered();
    let waker = futures::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    assert!(
        Service::<String>::poll_ready(&mut balance, &mut cx).is_pending(),
        "nothing discovered yet: wait, do not fail"
    );
    insert(&tx, "10.0.0.1:80");
    let answer = answers(&mut balance, &["u".to_owned()]).await;
    assert_eq!(answer, ["10.0.0.1:80"]);
}

#[tokio::test]
async fn errors_and_the_end_of_the_stream_keep_the_last_set() {
    let (tx, mut balance) = discovered();
    insert(&tx, "10.0.0.1:80");
    insert(&tx, "10.0.0.2:80");
    let users = users();
    let before = answers(&mut balance, &users).await;
    tx.unbounded_send(Err("registry unreachable".into()))
        .unwrap();
    assert_eq!(
        answers(&mut balance, &users).await,
        before,
        "an error changes nothing"
    );
    insert(&tx, "10.0.0.3:80");
    let three = answers(&mut balance, &users).await;
    assert_eq!(
        three,
        expected(&["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"], &users),
        "the stream is polled on after an error"
    );
    drop(tx);
    assert_eq!(
        answers(&mut balance, &users).await,
        three,
        "the end keeps the set"
    );
}

#[tokio::test]
async fn a_stream_that_ends_empty_fails_readiness_instead_of_hanging() {
    let (tx, mut balance) = discovered();
    drop(tx);
    let err = balance
        .ready()
        .await
        .expect_err("no service, and none can come");
    assert!(
        err.to_string().contains("no usable service in table `api`"),
        "{err}"
    );
}

#[tokio::test]
async fn a_reinserted_key_keeps_its_host_and_takes_the_new_service() {
    let (tx, mut balance) = discovered();
    insert(&tx, "10.0.0.1:80");
    assert_eq!(answers(&mut balance, &["u".into()]).await, ["10.0.0.1:80"]);
    let id = balance.balancer().table().snapshot().id(0);
    tx.unbounded_send(Ok(Change::Insert("10.0.0.1:80", Answer("replaced"))))
        .unwrap();
    assert_eq!(answers(&mut balance, &["u".into()]).await, ["replaced"]);
    let snap = balance.balancer().table().snapshot();
    assert_eq!(
        (snap.len(), snap.id(0)),
        (1, id),
        "the same host, not a new one"
    );
}

#[tokio::test]
async fn the_changes_ready_at_one_poll_are_one_batch() {
    let (tx, mut balance) = discovered();
    let first = balance.balancer().table().snapshot().version();
    for name in ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80"] {
        insert(&tx, name);
    }
    tx.unbounded_send(Ok(Change::Remove("10.0.0.2:80")))
        .unwrap();
    answers(&mut balance, &["u".into()]).await;
    let snap = balance.balancer().table().snapshot();
    assert_eq!(snap.len(), 3);
    assert_eq!(
        snap.version(),
        first + 1,
        "five changes, one snapshot: the policy rebuilt once"
    );
}
