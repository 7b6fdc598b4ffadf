//! A table of the user's own (an implementation of the `Table` trait, not `HostTable`)
//! behind a relay, a health monitor and passive health: every health write and ejection
//! they make goes through the user's implementation, and the relay serves from it.

mod common;

use std::borrow::Cow;
use std::sync::{Arc, Weak};
use std::time::Duration;

use common::{eventually, relay, who, Backend, Run};
use lb_core::{
    Admin, BackendId, Health, Host, HostTable, Listener, ListenerId, Result, Snapshot, Table,
    Watcher, Weight,
};
use lb_health::{Monitor, Tcp};
use lb_policies::RoundRobin;
use parking_lot::Mutex;
use tokio::net::TcpListener;

/// A table that writes every change to an audit log before applying it (as one that
/// mirrors health to a registry would), keeping its state in a `HostTable`.
struct Audited {
    inner: Arc<HostTable<Host>>,
    log: Mutex<Vec<String>>,
}

impl Audited {
    fn new(hosts: Vec<Host>) -> Arc<Self> {
        Arc::new(Audited {
            inner: HostTable::new("audited", hosts).unwrap(),
            log: Mutex::new(Vec::new()),
        })
    }

    fn record(&self, id: BackendId, what: String) {
        let snap = self.inner.snapshot();
        let host = snap
            .index_of(id)
            .map_or_else(|| id.to_string(), |i| snap.host(i).name().to_owned());
        self.log.lock().push(format!("{host} {what}"));
    }

    fn logged(&self, entry: &str) -> bool {
        self.log.lock().iter().any(|e| e == entry)
    }
}

impl Table<Host> for Audited {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn snapshot(&self) -> Arc<Snapshot<Host>> {
        self.inner.snapshot()
    }
    fn watch(&self, watcher: Weak<dyn Watcher<Host>>) -> Arc<Snapshot<Host>> {
        self.inner.watch(watcher)
    }
    fn add_listener(&self, listener: Listener) -> ListenerId {
        Table::add_listener(&*self.inner, listener)
    }
    fn remove_listener(&self, id: ListenerId) -> bool {
        self.inner.remove_listener(id)
    }
    fn set_health(
        &self,
        id: BackendId,
        health: Health,
        reason: Cow<'static, str>,
    ) -> Result<Health> {
        self.record(id, format!("health {health}"));
        self.inner.set_health(id, health, reason)
    }
    fn set_admin(&self, id: BackendId, admin: Admin) -> Result<Admin> {
        self.record(id, format!("admin {admin}"));
        self.inner.set_admin(id, admin)
    }
    fn eject(&self, id: BackendId, reason: Cow<'static, str>) -> Result<bool> {
        self.record(id, "ejected".into());
        self.inner.eject(id, reason)
    }
    fn end_ejection(&self, id: BackendId, reason: Cow<'static, str>) -> Result<bool> {
        self.record(id, "ejection ended".into());
        self.inner.end_ejection(id, reason)
    }
    fn add(&self, backend: Host, health: Health) -> Result<BackendId> {
        self.inner.add(backend, health)
    }
    fn remove(&self, id: BackendId) -> Result<()> {
        self.inner.remove(id)
    }
    fn set_weight(&self, id: BackendId, weight: Weight) -> Result<Weight> {
        self.inner.set_weight(id, weight)
    }
}

/// A port that refuses connects.
async fn closed_port() -> std::net::SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitor_marks_hosts_through_the_users_table_and_the_relay_follows() {
    let b = Backend::start("b").await;
    let table = Audited::new(vec![Host::new("a", closed_port().await), b.host()]);
    let monitor = Monitor::builder(table.clone())
        .check(Tcp)
        .interval(Duration::from_secs(60))
        .spread(false)
        .start()
        .unwrap();
    // No passive ejection in the way: only the monitor takes `a` out.
    let relay = relay("custom-table")
        .forward_to(table.clone())
        .policy_fn(RoundRobin::new)
        .ejection(Duration::from_secs(600), Duration::from_secs(600))
        .max_ejected_percent(0)
        .run();
    eventually("the monitor's verdict on a", || {
        table.logged("a health down")
    })
    .await;
    assert_eq!(table.snapshot().health(0), Health::Down);
    let to = relay.local_addrs()[0];
    for _ in 0..4 {
        assert_eq!(who(to).await, "b", "a is down: every client goes to b");
    }
    assert_eq!(relay.stats().connect_failures, 0, "a was never tried");
    drop(monitor);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passive_health_ejects_through_the_users_table() {
    let b = Backend::start("b").await;
    let table = Audited::new(vec![Host::new("a", closed_port().await), b.host()]);
    let relay = relay("custom-table-passive")
        .forward_to(table.clone())
        .policy_fn(RoundRobin::new)
        .ejection(Duration::from_secs(600), Duration::from_secs(600))
        .run();
    let to = relay.local_addrs()[0];
    // Round-robin starts at a, which refuses: the session fails over to b.
    assert_eq!(who(to).await, "b");
    eventually("a's ejection", || table.logged("a ejected")).await;
    assert!(table.snapshot().is_ejected(0));
    assert_eq!(who(to).await, "b");
    assert_eq!(
        relay.stats().connect_failures,
        1,
        "a was tried once, then held back"
    );
}
