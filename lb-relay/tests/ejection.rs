//! What was seen with a relay built as in `docs/relay.md` (no monitor) in front of a
//! backend that was restarting: the first client's connect was refused, passive health
//! took the host out, and nothing but an active check could bring it back. Now an
//! ejection ends by itself, and the last usable host is never ejected.
//!
//! ```text
//!   one host:   client 1 ──> refused (closed) ── backend back ──> client 2 served
//!   two hosts:  client 1 ──> a refused, ejected ──> b;  a back, ejection over ──> a
//! ```

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{bounded, read_to_close, relay, who, Backend, Run};
use lb_core::{Change, Health, Host, HostTable};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Short, so that the test waits little for an ejection to end.
const BASE: Duration = Duration::from_millis(200);

/// These tests close a listener and bind its port again: taking turns keeps another
/// test's `bind(0)` from being handed the port meanwhile.
static PORTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A port that refuses connects (bound, then closed), to listen on again later.
async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_backend_that_was_restarting_is_served_once_it_is_back() {
    let _turn = PORTS.lock().await;
    let addr = closed_port().await;
    let web = HostTable::new("web", [Host::new("nginx", addr)]).unwrap();
    let relay = relay("no-monitor")
        .forward_to(web.clone())
        .ejection(BASE, 4 * BASE)
        .run();
    let to = relay.local_addrs()[0];
    // The backend is restarting: the first client's connect is refused.
    let mut first = common::connect(to).await.unwrap();
    assert_eq!(read_to_close(&mut first).await, b"");
    // Counted, but the table's last usable host is not taken out.
    let snap = web.snapshot();
    assert_eq!((snap.health(0), snap.is_ejected(0)), (Health::Up, false));
    // Back: the next client is served.
    let _nginx = Backend::serve("nginx", TcpListener::bind(addr).await.unwrap());
    assert_eq!(who(to).await, "nginx");
    let stats = relay.stats();
    assert_eq!((stats.connect_failures, stats.failed), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ejected_backend_is_back_in_rotation_when_its_ejection_ends() {
    let _turn = PORTS.lock().await;
    let a_addr = closed_port().await;
    let b = Backend::start("b").await;
    let web = HostTable::new("web", [Host::new("a", a_addr), b.host()]).unwrap();
    let (tx, mut changes) = mpsc::unbounded_channel();
    web.on_change(move |e| {
        let _ = tx.send(e.change.clone());
    });
    let relay = relay("no-monitor-2")
        .forward_to(web.clone())
        .ejection(BASE, 4 * BASE)
        .run();
    let to = relay.local_addrs()[0];
    // a refuses (restarting): the client fails over to b, a is ejected.
    assert_eq!(who(to).await, "b");
    let ejected = bounded("the ejection", changes.recv()).await.unwrap();
    let since = Instant::now();
    assert_eq!(
        ejected,
        Change::Ejected {
            reason: "connect refused, ejected for 0.2 s".into()
        }
    );
    assert_eq!(who(to).await, "b");
    // a is back; its ejection ends by itself and a client reaches it again.
    let _a = Backend::serve("a", TcpListener::bind(a_addr).await.unwrap());
    let ended = bounded("the end of the ejection", changes.recv())
        .await
        .unwrap();
    eprintln!(
        "ejection ended {} ms after it began",
        since.elapsed().as_millis()
    );
    assert_eq!(
        ended,
        Change::EjectionEnded {
            reason: "ejection time over".into()
        }
    );
    let served: Vec<String> = [who(to).await, who(to).await].into();
    assert!(served.contains(&"a".to_owned()), "{served:?}");
    let stats = relay.stats();
    assert_eq!((stats.connect_failures, stats.failed), (1, 0));
    assert_eq!(stats.host("web", "a").unwrap().connect_failures, 1);
}
