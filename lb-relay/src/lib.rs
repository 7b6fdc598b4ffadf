//! # lb-relay: a tokio TCP relay for `lb` tables
//!
//! relayd's layer-4 relay (`relay "name" { listen on ... forward to <table> ... }`) as a
//! library, without its flaws: a failed connect fails over to the next candidate within
//! the same session and ejects the host at once for a while (passive health; the
//! ejection ends by itself, and the last usable host is never ejected), the backend
//! connect has its own short timeout instead of the 600 s session timeout, and the
//! sessions-per-period counters are true sliding windows.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use lb_core::{Host, HostTable};
//! use lb_relay::{BackendPort, Relay};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let exchange = HostTable::new("exchange", [
//!     Host::new("exchange1", "10.0.0.11:443".parse()?),
//!     Host::new("exchange2", "10.0.0.12:443".parse()?),
//! ])?;
//! let relay = Relay::builder("exchangeHTTPS")
//!     .listen("0.0.0.0".parse()?)
//!     .listen("::".parse()?)
//!     .port(443)
//!     .forward_to(exchange)
//!     .backend_port(BackendPort::Listen) // the default: 443 here
//!     .connect_timeout(Duration::from_secs(3))
//!     .build()?
//!     .start()?;
//! println!("{:?}", relay.stats());
//! relay.shutdown(Duration::from_secs(30)).await;
//! # Ok(()) }
//! ```
//!
//! ## tower
//!
//! Each accepted connection is a call to a [`tower::Service`](tower_service::Service)
//! of [`Accepted`] connections, [`SessionService`] at the core. Wrap it in your own
//! layers with [`RelayBuilder::layer`]: here a concurrency limit and a filter that
//! only lets clients from `127.0.0.0/8` through (others are closed at once).
//!
//! ```
//! use std::sync::Arc;
//! use lb_core::{Host, HostTable};
//! use lb_relay::{Accepted, BackendPort, Relay};
//! use tower::filter::FilterLayer;
//! use tower::limit::ConcurrencyLimitLayer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let backend = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let table = HostTable::new("local", [Host::from(backend.local_addr()?)])?;
//! let relay = Relay::builder("filtered")
//!     .listen("127.0.0.1".parse()?)
//!     .forward_to(table)
//!     .backend_port(BackendPort::Host)
//!     .layer(ConcurrencyLimitLayer::new(100))
//!     .layer(FilterLayer::new(|conn: Accepted| {
//!         if conn.peer.ip().is_loopback() {
//!             Ok(conn)
//!         } else {
//!             Err("client outside 127.0.0.0/8")
//!         }
//!     }))
//!     .build()?
//!     .start()?;
//! let _client = tokio::net::TcpStream::connect(relay.local_addrs()[0]).await?;
//! let (_server, _) = backend.accept().await?; // the filter let the client through
//! # Ok(()) }
//! ```
//!
//! ## Map
//!
//! - [`builder`]: [`RelayBuilder`], every setting and its default (also in `docs/relay.md`).
//! - [`relay`]: [`Relay`], built and ready to [`start`](Relay::start).
//! - [`handle`]: [`RelayHandle`], a running relay: control, stats, shutdown.
//! - [`service`]: [`SessionService`], [`Accepted`], [`Outcome`]: the tower side.
//! - [`options`]: [`BackendPort`], [`TcpOptions`], [`Settings`].
//! - [`stats`]: [`RelayStats`], [`TableStats`]; [`window`]: [`WindowCounts`].
//! - [`proxy`]: PROXY protocol v1/v2 headers.
//! - [`copy`]: the bidirectional copy (half-close, idle timeout, splice).
//! - [`error`]: [`BuildError`], [`StartError`], [`ControlError`].
//! - Internals: `accept` (listeners, the accept loop and its back-off), `forward`
//!   (failover over candidates and tables), `session` (one session), `connect`
//!   (backend connects), `lifecycle` (phases and the session tracker), `validate`
//!   (the build-time checks).
#![warn(missing_docs)]

mod accept;
pub mod builder;
mod connect;
pub mod copy;
pub mod error;
mod forward;
pub mod handle;
mod lifecycle;
pub mod options;
pub mod proxy;
pub mod relay;
pub mod service;
mod session;
pub mod stats;
mod validate;
pub mod window;

/// The `SO_REUSEADDR` test shared with lb-health (used by `connect`'s tests).
#[cfg(all(test, target_os = "linux"))]
#[path = "../../test-support/rebind.rs"]
mod rebind;

pub use builder::RelayBuilder;
pub use error::{BuildError, ControlError, StartError};
pub use handle::{RelayHandle, ShutdownReport};
pub use options::{BackendPort, Settings, TcpOptions};
pub use proxy::ProxyProtocol;
pub use relay::{BoxError, Relay, RelayService};
pub use service::{Accepted, Outcome, SessionService};
pub use stats::{RelayStats, TableStats};
pub use window::WindowCounts;
