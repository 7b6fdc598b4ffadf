//! The settings of a relay, with relayd's defaults where relayd has one and the reason
//! where we differ: [`BackendPort`], [`TcpOptions`] and the resolved [`Settings`].

use std::net::SocketAddr;
use std::time::Duration;

use crate::proxy::ProxyProtocol;

/// Which port a relay connects to on the chosen host.
///
/// relayd's `forward to <table> port P`: without `port`, the seed's configuration
/// (`listen on port 443` / `forward to <exchange>`) relies on the backend listening on
/// the same port as the relay, which is the default here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum BackendPort {
    /// The port the client connected to (the relay's listen port). The default.
    #[default]
    Listen,
    /// Always this port (relayd's `forward to <table> port P`). Must not be 0.
    Fixed(u16),
    /// The port of the host's own address ([`Backend::addr`](lb_core::Backend::addr)):
    /// for tables whose hosts listen on different ports.
    Host,
}

impl BackendPort {
    /// The address to connect to for a host at `host` reached through `local`.
    pub fn resolve(self, host: SocketAddr, local: SocketAddr) -> SocketAddr {
        let port = match self {
            BackendPort::Listen => local.port(),
            BackendPort::Fixed(port) => port,
            BackendPort::Host => host.port(),
        };
        SocketAddr::new(host.ip(), port)
    }
}

/// Socket options for the relay's listening sockets, the client connections it accepts
/// and the backend connections it opens.
///
/// Defaults:
/// - `nodelay`: `true` (relayd's default is off; a relay that holds back small writes
///   adds Nagle's delay to every request/response exchange it forwards);
/// - `send_buffer`, `recv_buffer`: `None`, the system's defaults (Linux autotunes them;
///   setting them disables autotuning);
/// - `backlog`: 1024 (relayd's 10 overflows under a burst of connections; the kernel
///   caps it at `net.core.somaxconn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpOptions {
    /// Disable Nagle's algorithm on both sides of every session.
    pub nodelay: bool,
    /// `SO_SNDBUF` in bytes, or the system's default.
    pub send_buffer: Option<u32>,
    /// `SO_RCVBUF` in bytes, or the system's default.
    pub recv_buffer: Option<u32>,
    /// The listen queue length.
    pub backlog: u32,
}

impl Default for TcpOptions {
    fn default() -> Self {
        TcpOptions {
            nodelay: true,
            send_buffer: None,
            recv_buffer: None,
            backlog: 1024,
        }
    }
}

/// The relay's validated settings, as [`RelayBuilder::build`](crate::RelayBuilder::build)
/// resolved them. Read-only: see the builder for what each one means.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Settings {
    /// The relay's name.
    pub name: String,
    /// The addresses listened on (IP and port; port 0 picks a free one per address).
    pub listen: Vec<SocketAddr>,
    /// The backend port.
    pub backend_port: BackendPort,
    /// How long a connect to a backend may take before the next candidate is tried.
    pub connect_timeout: Duration,
    /// How long a session may stay silent in both directions before it is closed.
    pub idle_timeout: Duration,
    /// How many further candidates to try after a failed connect.
    pub failover: u32,
    /// At most this many sessions at once; beyond it the relay stops accepting.
    pub max_sessions: usize,
    /// Consecutive failed connects that eject a host (passive health).
    pub passive_threshold: u32,
    /// How long a first ejection lasts; doubled on each consecutive one.
    pub ejection_time: Duration,
    /// The longest ejection.
    pub max_ejection_time: Duration,
    /// The largest share of a table's up and enabled hosts ejected at once, in percent.
    pub max_ejected_percent: u8,
    /// Socket options.
    pub tcp: TcpOptions,
    /// The PROXY protocol header sent to backends, if any.
    pub proxy_protocol: Option<ProxyProtocol>,
    /// Whether sessions may use `splice(2)` (Linux, `splice` feature).
    pub splice: bool,
}

/// Defaults, shared by the builder and the documentation.
pub(crate) mod defaults {
    use std::time::Duration;

    /// relayd's `session timeout`.
    pub const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
    /// Separate from the session timeout, unlike relayd.
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
    /// Further candidates after a failed connect.
    pub const FAILOVER: u32 = 2;
    /// Concurrent sessions.
    pub const MAX_SESSIONS: usize = 10_000;
    /// The first failed connect ejects a host.
    pub const PASSIVE_THRESHOLD: u32 = 1;
    /// Envoy's `base_ejection_time` is 30 s; 10 s brings back a backend that restarted
    /// sooner, and the back-off lengthens it for one that keeps failing.
    pub const EJECTION_TIME: Duration = Duration::from_secs(10);
    /// Envoy's `max_ejection_time` default.
    pub const MAX_EJECTION_TIME: Duration = Duration::from_secs(300);
    /// Envoy's `max_ejection_percent` defaults to 10 %, which ejects nothing in a table
    /// of fewer than ten hosts; half keeps at least half the capacity in rotation.
    pub const MAX_EJECTED_PERCENT: u8 = 50;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_port_resolution() {
        let host: SocketAddr = "10.0.0.1:8443".parse().unwrap();
        let local: SocketAddr = "192.0.2.1:443".parse().unwrap();
        assert_eq!(
            BackendPort::Listen.resolve(host, local),
            "10.0.0.1:443".parse().unwrap()
        );
        assert_eq!(
            BackendPort::Fixed(25).resolve(host, local),
            "10.0.0.1:25".parse().unwrap()
        );
        assert_eq!(BackendPort::Host.resolve(host, local), host);
        assert_eq!(BackendPort::default(), BackendPort::Listen);
    }
}
