//! # lb-health: active and passive health checks for `lb` tables
//!
//! A balancer is only as good as its knowledge of which hosts are alive. This crate
//! runs relayd's health checks against the hosts of an [`lb_core::Table`] and writes
//! the results into it, so that every balancer of the table stops picking a dead host
//! and picks it again when it recovers. Relays also report failed connects
//! ([`Passive`]), which eject a dead host at once instead of at the next check, for an
//! ejection time that ends by itself.
//!
//! ```no_run
//! use lb_core::{Health, HostTable};
//! use lb_health::{EventKind, Monitor, Passive, Reason, SendExpect};
//! use std::net::SocketAddr;
//! use std::time::Duration;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let hosts: Vec<SocketAddr> = vec!["10.0.0.11:25".parse()?, "10.0.0.12:25".parse()?];
//! let table = HostTable::new("smtp", hosts)?;
//!
//! // relayd: `check send nothing expect "220*"`, `interval 10`, `timeout 200`, `retry 2`.
//! let builder = Monitor::builder(table.clone())
//!     .check(SendExpect::smtp())
//!     .interval(Duration::from_secs(10))
//!     .timeout(Duration::from_millis(200))
//!     .retry(2)
//!     .on_demote(|table, d| eprintln!("table {table}: {d:?}"));
//! let mut events = builder.subscribe();
//! let monitor = builder.start()?;
//!
//! // A relay reports a refused connect: the host is ejected at once, for 10 s.
//! let passive = Passive::new(table.clone());
//! passive.report_failure(table.snapshot().id(0), Reason::ConnectRefused);
//!
//! while let Ok(e) = events.recv().await {
//!     println!("{} {} {:?}: {} -> {} ({})", e.table, e.host, e.kind, e.old, e.new, e.reason);
//!     if e.kind == EventKind::Health && e.new == Health::Up { break; }
//! }
//! println!("{:?}", monitor.stats());
//! # Ok(()) }
//! ```
//!
//! ## Map
//!
//! - [`check`][] — the [`Check`] trait, [`Probe`], [`Outcome`], [`Failure`].
//! - The checks, one module each, in relayd's words: [`tcp`][] ([`Tcp`]),
//!   [`tls`][] ([`Tls`], [`TlsOptions`]), [`http`][] ([`Http`], with [`digest`][]'s
//!   [`Digest`]), [`expect`][] ([`SendExpect`], SMTP/POP3/IMAP banners, matched by
//!   [`fnmatch`][]),
//!   [`binary`][] ([`Binary`]), [`script`][] ([`Script`]), [`icmp`][] ([`Icmp`],
//!   unix); [`verifier`][] holds the
//!   certificate verifier that accepts anything, relayd's default.
//! - [`monitor`][] — [`Monitor`] and [`MonitorBuilder`]: interval, timeout, retry, rise,
//!   fast interval, spreading.
//! - [`event`][] — [`HostEvent`], [`EventKind`], [`Source`], [`Demotion`]; [`stats`][] —
//!   [`CheckStats`].
//! - [`passive`][] — [`Passive`], ejections from traffic that end by themselves.
//! - [`reason`][] — [`Reason`], why a check or a connection failed, in relayd's words.
//! - [`error`][] — [`Error`], settings that cannot work.
//!
//! ## Features
//!
//! - `tls` (default): the `tls` check, `https`, and `send ... tls`, through rustls with
//!   the ring provider.
#![warn(missing_docs)]

mod conn;

pub mod binary;
pub mod check;
pub mod digest;
pub mod error;
pub mod event;
pub mod expect;
pub mod fnmatch;
pub mod http;
#[cfg(unix)]
pub mod icmp;
pub mod monitor;
pub mod passive;
pub mod reason;
mod response;
mod runner;
mod schedule;
pub mod script;
pub mod stats;
pub mod tcp;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(feature = "tls")]
pub mod verifier;

pub use binary::Binary;
pub use check::{Check, Failure, Outcome, Probe};
pub use digest::Digest;
pub use error::Error;
pub use event::{Demotion, EventKind, HostEvent, Source};
pub use expect::SendExpect;
pub use http::Http;
#[cfg(unix)]
pub use icmp::{Icmp, IcmpSocket};
pub use monitor::{Monitor, MonitorBuilder};
pub use passive::Passive;
pub use reason::{Reason, UnknownReason};
pub use script::Script;
pub use stats::CheckStats;
pub use tcp::Tcp;
#[cfg(feature = "tls")]
pub use tls::{Tls, TlsOptions};
#[cfg(feature = "tls")]
pub use verifier::AcceptAnyServerCert;
