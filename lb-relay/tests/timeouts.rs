//! The two timeouts: the session idle timeout (both directions silent) and the backend
//! connect timeout, separate from it (relayd waits the whole session timeout, 600 s, for
//! a backend that never answers).
//!
//! Both use short real timeouts (200-300 ms): the sockets are real, so tokio's paused
//! clock cannot drive them. Every wait is bounded, and only lower bounds are asserted on
//! elapsed time, so a slow machine cannot make these tests fail.

mod common;

use std::time::{Duration, Instant};

use common::{echo, read_line, read_to_close, relay, table, Backend, Run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_session_is_closed_after_the_idle_timeout() {
    let a = Backend::start("a").await;
    let relay = relay("idle")
        .forward_to(table("t", &[&a]))
        .idle_timeout(Duration::from_millis(200))
        .run();
    let mut s = common::connect(relay.local_addrs()[0]).await.unwrap();
    assert_eq!(read_line(&mut s).await, "a");
    // The relay's last byte moves after this instant (the echo's way back), so the
    // session cannot close before it plus the timeout; a later instant (after the echo
    // arrived) would make the bound depend on how fast this task was scheduled.
    let silent_since = Instant::now();
    echo(&mut s, b"ping").await;
    // Nothing moves either way: the relay closes the session.
    assert_eq!(read_to_close(&mut s).await, b"");
    assert!(silent_since.elapsed() >= Duration::from_millis(200));
    common::eventually("the idle timeout to be counted", || {
        relay.stats().idle_timeouts == 1
    })
    .await;
    assert_eq!(relay.stats().active, 0);
    assert_eq!(relay.stats().host("t", "a").unwrap().active, 0);
}

/// A backend that never answers. Linux only: the black hole relies on how Linux treats
/// a full accept queue (backlog 0 queues one connection, then drops SYNs).
#[cfg(target_os = "linux")]
mod connect_timeout {
    use super::*;

    use std::net::SocketAddr;

    use lb_core::{Health, Host, HostTable};
    use socket2::{Domain, Socket, Type};
    use tokio::net::{TcpSocket, TcpStream};

    /// A listener on 127.0.0.1 whose accept queue is full: the kernel drops further SYNs,
    /// so a connect to it neither succeeds nor is refused. Returns the address and what
    /// must stay alive (the listener and the queued connections).
    async fn black_hole() -> (SocketAddr, Socket, Vec<TcpStream>) {
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        listener
            .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        // Backlog 0: Linux queues one connection, then drops SYNs (tcp_abort_on_overflow
        // is 0 by default; SYN cookies do not apply to a full accept queue).
        listener.listen(0).unwrap();
        let addr = listener.local_addr().unwrap().as_socket().unwrap();
        let mut queued = Vec::new();
        for _ in 0..16 {
            let socket = TcpSocket::new_v4().unwrap();
            match tokio::time::timeout(Duration::from_millis(200), socket.connect(addr)).await {
                Ok(stream) => queued.push(stream.unwrap()),
                // A connect that hangs: the queue is full.
                Err(_) => return (addr, listener, queued),
            }
        }
        panic!("the accept queue of a backlog-0 listener never filled");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_backend_that_never_answers_costs_one_connect_timeout_then_fails_over() {
        let (hole, _listener, _queued) = black_hole().await;
        let b = Backend::start("b").await;
        let web = HostTable::new("web", [Host::new("hole", hole), b.host()]).unwrap();
        let relay = relay("connect-timeout")
            .forward_to(web.clone())
            .connect_timeout(Duration::from_millis(300))
            .idle_timeout(Duration::from_secs(600))
            .run();
        let to = relay.local_addrs()[0];
        let started = Instant::now();
        // Round-robin tries the hole first; after 300 ms (not 600 s) the session moves on.
        let mut s = common::connect(to).await.unwrap();
        assert_eq!(read_line(&mut s).await, "b");
        assert!(started.elapsed() >= Duration::from_millis(300));
        let stats = relay.stats();
        let hole_stats = stats.host("web", "hole").unwrap();
        assert_eq!(hole_stats.connect_failures, 1);
        assert_eq!((hole_stats.health, hole_stats.ejected), (Health::Up, true));
        assert_eq!(hole_stats.active, 0);
        // Ejected (for 10 s): later sessions do not wait for it.
        assert_eq!(common::who(to).await, "b");
        assert_eq!(relay.stats().connect_failures, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_only_a_silent_backend_the_client_is_closed_after_the_connect_timeout() {
        let (hole, _listener, _queued) = black_hole().await;
        let relay = relay("connect-timeout-only")
            .forward_to(HostTable::new("web", [Host::new("hole", hole)]).unwrap())
            .connect_timeout(Duration::from_millis(200))
            .run();
        let started = Instant::now();
        let mut s = common::connect(relay.local_addrs()[0]).await.unwrap();
        assert_eq!(read_to_close(&mut s).await, b"");
        assert!(started.elapsed() >= Duration::from_millis(200));
        common::eventually("the failed session", || relay.stats().failed == 1).await;
        assert_eq!(relay.stats().connect_failures, 1);
    }
}
