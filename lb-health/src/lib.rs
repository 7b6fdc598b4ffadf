//! # lb-health: active and passive health checks for `lb` tables
#![warn(missing_docs)]

mod conn;

pub mod binary;
pub mod check;
pub mod digest;
pub mod error;
pub mod event;
pub mod expect;
pub mod http;
pub mod monitor;
pub mod passive;
pub mod reason;
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
pub use event::{Demotion, HostEvent, Source};
pub use expect::SendExpect;
pub use http::Http;
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
