//! What a relay on a wildcard listener tells its policy: the *configured* listen
//! address (`0.0.0.0:port`, `[::]:port`) as `Context::listen`, which relayd's
//! `loadbalance` hashes (`rl_conf.ss` and `rl_conf.port`), and the address the client
//! dialled as `Context::local`.
//!
//! ```text
//!   client 127.0.0.x ──> 127.0.0.1:port ──> relay `listen on 0.0.0.0 port P`
//!                                            ctx.listen() = 0.0.0.0:P
//!                                            ctx.local()  = 127.0.0.1:P
//! ```
//!
//! The wildcard sockets are bound for the length of a test on an ephemeral port, and
//! only loopback clients connect to them.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use common::{connect_from, read_line, table, Backend};
use lb_core::{Context, Order, Policy, Snapshot};
use lb_relay::{BackendPort, Relay};
use parking_lot::Mutex;

/// The (listen, local) pairs of every context a policy was asked to order.
type Seen = Arc<Mutex<Vec<(Option<SocketAddr>, Option<SocketAddr>)>>>;

/// Records the addresses of each context, then prefers host 0.
#[derive(Clone, Default)]
struct Recording(Seen);

impl Policy for Recording {
    type Plan = ();

    fn plan<B: lb_core::Backend>(&self, _: &Snapshot<B>, _: Option<(&Snapshot<B>, &())>) {}

    fn order<B: lb_core::Backend>(
        &self,
        _: &(),
        _: &Snapshot<B>,
        ctx: &Context<'_>,
        order: &mut Order,
    ) {
        self.0.lock().push((ctx.listen(), ctx.local()));
        order.prefer(0);
        order.scan_from(0);
    }
}

/// Starts a relay listening on `wildcard` (port 0) with `policy`; `None` when the
/// system has no such address family (a machine without IPv6).
fn wildcard_relay<P: Policy + Clone>(
    wildcard: IpAddr,
    backend: &Backend,
    policy: P,
) -> Option<lb_relay::RelayHandle> {
    let relay = Relay::builder("wildcard")
        .listen(wildcard)
        .backend_port(BackendPort::Host)
        .forward_to(table("t", &[backend]))
        .policy(policy)
        .build()
        .expect("valid relay settings");
    match relay.start() {
        Ok(handle) => Some(handle),
        Err(error) if wildcard.is_ipv6() => {
            eprintln!("no IPv6 wildcard listener here ({error}): skipped");
            None
        }
        Err(error) => panic!("the relay starts: {error}"),
    }
}

async fn policy_sees_the_configured_address(wildcard: IpAddr, dial: IpAddr) {
    let backend = Backend::start("a").await;
    let policy = Recording::default();
    let Some(relay) = wildcard_relay(wildcard, &backend, policy.clone()) else {
        return;
    };
    let listen = relay.local_addrs()[0];
    assert_eq!(listen.ip(), wildcard, "the relay listens on the wildcard");
    let to = SocketAddr::new(dial, listen.port());
    let mut client = connect_from(dial, to).await;
    assert_eq!(read_line(&mut client).await, "a");
    let seen = policy.0.lock().clone();
    assert_eq!(
        seen,
        [(Some(listen), Some(to))],
        "listen = the configured wildcard, local = the dialled address"
    );
}

#[tokio::test]
async fn policy_sees_the_configured_ipv4_wildcard_and_the_dialled_address() {
    policy_sees_the_configured_address(Ipv4Addr::UNSPECIFIED.into(), Ipv4Addr::LOCALHOST.into())
        .await;
}

#[tokio::test]
async fn policy_sees_the_configured_ipv6_wildcard_and_the_dialled_address() {
    policy_sees_the_configured_address(Ipv6Addr::UNSPECIFIED.into(), Ipv6Addr::LOCALHOST.into())
        .await;
}

/// Linux only: the client sources are 127.0.1.x, which only Linux's loopback answers.
#[cfg(target_os = "linux")]
mod loadbalance {
    use super::*;

    use common::Run;
    use lb_core::{Backend as _, Balancer, HashKey};
    use lb_policies::LoadBalance;

    /// `loadbalance` through a wildcard relay picks what a balancer picks for the
    /// configured address, for 16 client sources.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn loadbalance_on_a_wildcard_hashes_the_configured_address() {
        let backends = [
            Backend::start("a").await,
            Backend::start("b").await,
            Backend::start("c").await,
            Backend::start("d").await,
            Backend::start("e").await,
        ];
        let all: Vec<&Backend> = backends.iter().collect();
        let key: HashKey = "0x000102030405060708090a0b0c0d0e0f".parse().unwrap();
        let policy = LoadBalance::with_key(key);
        let relay = Relay::builder("wildcard-lb")
            .listen(Ipv4Addr::UNSPECIFIED.into())
            .backend_port(BackendPort::Host)
            .forward_to(table("t", &all))
            .policy(policy.clone())
            .run();
        let listen = relay.local_addrs()[0];
        let to = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), listen.port());
        // The same hosts in the same order: the same `hash % 5` indexes.
        let model = Balancer::new(table("t", &all), policy);
        for i in 0..16u8 {
            let source = IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1 + i));
            let mut client = connect_from(source, to).await;
            let got = read_line(&mut client).await;
            let ctx = Context::from_client(SocketAddr::new(source, 1)).with_listen(listen);
            let expected = model.pick(&ctx).expect("every host is up");
            assert_eq!(got, expected.name(), "source {source}");
            // The model is about the hosts' addresses too, not only their names.
            let named = backends.iter().find(|b| b.name == got).expect("a backend");
            assert_eq!(Some(named.addr), expected.backend().addr());
        }
        assert_eq!(relay.stats().total, 16);
    }
}
