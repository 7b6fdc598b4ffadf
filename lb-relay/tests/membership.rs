//! Adding a host rebuilds the balancers' plans off the async workers: on a
//! current-thread runtime, the relay keeps serving through the old plan, and a health
//! change goes through, while a rebuild is held; then the new host is picked.
//!
//! ```text
//!   relay ──> web: a          add b: the policy's rebuild blocks until released
//!   meanwhile: a client is served by a, host a is re-marked up; then release
//! ```

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use common::{bounded, relay, table, who, Backend, Run};
use lb_core::{Balancer, Context, Health, Order, Policy, Select, Snapshot};

/// A first-usable policy whose rebuilds (a new membership) block, once armed, until
/// the test releases them.
struct Gate {
    armed: AtomicBool,
    entered: Mutex<mpsc::Sender<()>>,
    release: Mutex<mpsc::Receiver<()>>,
}

impl Policy for Gate {
    type Plan = ();

    fn plan<B: lb_core::Backend>(&self, snap: &Snapshot<B>, prev: Option<(&Snapshot<B>, &())>) {
        let rebuild =
            prev.is_some_and(|(p, _)| p.membership_version() != snap.membership_version());
        if rebuild && self.armed.swap(false, Ordering::SeqCst) {
            let _ = self.entered.lock().unwrap().send(());
            // Bounded: on a blocked runtime the release never comes and the test fails.
            self.release
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(10))
                .expect("released while the runtime kept running");
        }
    }

    fn order<B: lb_core::Backend>(&self, _: &(), _: &Snapshot<B>, _: &Context<'_>, _: &mut Order) {}
}

#[tokio::test(flavor = "current_thread")]
async fn add_host_rebuilds_off_the_runtime_thread() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let web = table("web", &[&a]);
    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let balancer = Balancer::new(
        &web,
        Gate {
            armed: AtomicBool::new(true),
            entered: Mutex::new(entered_tx),
            release: Mutex::new(release_rx),
        },
    );
    let relay = relay("members")
        .forward_to_balancer(balancer.clone() as Arc<dyn Select<lb_core::Host>>)
        .run();
    let to = relay.local_addrs()[0];

    let add = relay.add_host("web", b.host(), Health::Up);
    let meanwhile = async {
        // The rebuild starts on the blocking pool; this thread keeps running tasks.
        bounded("the rebuild to start", async {
            while entered.try_recv().is_err() {
                tokio::task::yield_now().await;
            }
        })
        .await;
        // A health change on the runtime thread returns at once.
        web.set_health(a.id(), Health::Down, "test").unwrap();
        web.set_health(a.id(), Health::Up, "test").unwrap();
        // The old plan serves: the relay (on this same thread) answers.
        assert_eq!(who(to).await, "a");
        assert_eq!(balancer.snapshot().len(), 1);
        release.send(()).unwrap();
    };
    let (added, ()) = bounded("the host to be added", async {
        tokio::join!(add, meanwhile)
    })
    .await;
    assert_eq!(added.unwrap(), b.id());
    // Both changes are served: the new host, and a's last health.
    let served = balancer.snapshot();
    assert_eq!(served.len(), 2);
    assert_eq!(served.usable().len(), 2);
    assert_eq!(served.version(), web.snapshot().version());
}
