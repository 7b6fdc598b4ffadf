//! Starting a relay on a port that a closed connection may still hold (TIME_WAIT), with
//! a message a user can act on when the port cannot be had.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use lb::relay::{BuildError, Relay, RelayHandle, StartError};
use tokio::time::Instant;

use crate::setup::SetupError;

/// How long a relay waits for a port held by closing connections: Linux keeps a
/// connection in TIME_WAIT for 60 s.
pub const TIME_WAIT_LIMIT: Duration = Duration::from_secs(65);

/// Starts a relay. 59532 and 59533 lie in Linux's ephemeral port range, so an outgoing
/// connection of any program may have used 127.0.0.1:59532 and left it in TIME_WAIT,
/// which blocks the bind for up to a minute; when nothing listens there, wait for it.
pub async fn start_relay(
    make: impl Fn() -> Result<Relay, BuildError>,
    port: u16,
) -> Result<RelayHandle, SetupError> {
    let deadline = Instant::now() + TIME_WAIT_LIMIT;
    let mut told = false;
    loop {
        let error = match make()?.start() {
            Ok(handle) => return Ok(handle),
            Err(error) => error,
        };
        if !held_by_time_wait(&error, deadline, &mut told).await {
            return Err(start_error(error, port));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Whether a bind that failed with `error` is worth trying again: its port is busy
/// but nothing listens there (a connection in TIME_WAIT holds it) and `deadline` has
/// not passed. Says so once (`told`).
pub async fn held_by_time_wait(error: &StartError, deadline: Instant, told: &mut bool) -> bool {
    let addr = match error {
        StartError::Bind { addr, source, .. } if source.kind() == std::io::ErrorKind::AddrInUse => {
            *addr
        }
        _ => return false,
    };
    if Instant::now() >= deadline || listening(addr).await {
        return false;
    }
    if !*told {
        println!(
            "  {addr} is busy but nothing listens there: a closed connection that used it \
             (TIME_WAIT) holds it; the kernel frees it within 60 s. Waiting..."
        );
        *told = true;
    }
    true
}

/// Whether something accepts connections at `addr`.
async fn listening(addr: SocketAddr) -> bool {
    let addr = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => {
            SocketAddr::new([127, 0, 0, 1].into(), addr.port())
        }
        ip if ip.is_unspecified() => {
            SocketAddr::new(std::net::Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    };
    // Through the demo's client socket (SO_REUSEADDR): this probe closes first, and its
    // TIME_WAIT must not block a later bind of its port.
    let any: IpAddr = if addr.is_ipv4() {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    };
    let connect = crate::clients::connect_from(any, addr);
    matches!(
        tokio::time::timeout(Duration::from_millis(500), connect).await,
        Ok(Ok(_))
    )
}

fn start_error(error: StartError, port: u16) -> SetupError {
    match &error {
        StartError::Bind {
            relay,
            addr,
            source,
            ..
        } => format!(
            "relay `{relay}` cannot listen on {addr}: {}",
            crate::demo_servers::bind_hint(source, port)
        )
        .into(),
        _ => error.into(),
    }
}
