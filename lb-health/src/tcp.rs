//! relayd's `check tcp`: [`Tcp`].

use futures_util::future::BoxFuture;

use crate::{conn, Check, Outcome, Probe};

/// relayd's `check tcp`: the host is up if a TCP connection to it completes.
///
/// relayd opens a non-blocking connection and marks the host up as soon as it is
/// established, then closes it (`check_tcp.c`, `tcp_host_up`). Fails with
/// [`Reason::ConnectRefused`](crate::Reason::ConnectRefused),
/// [`Reason::ConnectTimeout`](crate::Reason::ConnectTimeout) or
/// [`Reason::ConnectError`](crate::Reason::ConnectError).
///
/// ```no_run
/// use lb_health::{Check, Probe, Tcp};
/// use std::time::Duration;
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let probe = Probe::new("10.0.0.11:25".parse()?, Duration::from_millis(200));
/// println!("{}", Tcp.check(&probe).await);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tcp;

impl Check for Tcp {
    fn name(&self) -> &'static str {
        "tcp"
    }

    fn check<'a>(&'a self, probe: &'a Probe) -> BoxFuture<'a, Outcome> {
        Box::pin(async move { conn::connect(probe).await.map(drop).into() })
    }
}
