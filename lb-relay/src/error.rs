//! The errors of `lb-relay`: invalid settings ([`BuildError`], caught by
//! [`RelayBuilder::build`](crate::RelayBuilder::build) before anything runs), sockets
//! that cannot be bound ([`StartError`]), and control actions on a running relay
//! ([`ControlError`]).
//!
//! Each variant names the setting or the thing the caller can fix, and its message says
//! what was expected, so that a configuration mistake reads like relayd's parser error
//! rather than a panic deep inside the accept loop.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// A relay setting that cannot work, reported by
/// [`RelayBuilder::build`](crate::RelayBuilder::build).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The relay's name is empty or too long.
    #[error("invalid relay name {name:?}: expected 1 to 64 characters")]
    InvalidName {
        /// The name that was given.
        name: String,
    },
    /// No listen address was given.
    #[error("relay `{relay}` has no listen address: add at least one with `listen(ip)`")]
    NoListenAddress {
        /// The relay's name.
        relay: String,
    },
    /// The same listen address was given twice.
    #[error("relay `{relay}` listens on {ip} twice: each listen address must be unique")]
    DuplicateListenAddress {
        /// The relay's name.
        relay: String,
        /// The duplicate address.
        ip: std::net::IpAddr,
    },
    /// No table to forward to.
    #[error("relay `{relay}` forwards to no table: add at least one with `forward_to(table)`")]
    NoTable {
        /// The relay's name.
        relay: String,
    },
    /// The same table was given twice (by name).
    #[error("relay `{relay}` forwards to table `{table}` twice: each table may appear once")]
    DuplicateTable {
        /// The relay's name.
        relay: String,
        /// The table's name.
        table: String,
    },
    /// A fixed backend port of 0.
    #[error("relay `{relay}`: backend port 0 is not a port: expected 1..=65535")]
    ZeroBackendPort {
        /// The relay's name.
        relay: String,
    },
    /// A timeout of zero.
    #[error("relay `{relay}`: {setting} of {value:?} is too short: expected at least 1 ms")]
    ZeroTimeout {
        /// The relay's name.
        relay: String,
        /// Which timeout (`"connect timeout"`, `"session timeout"`).
        setting: &'static str,
        /// The value given.
        value: Duration,
    },
    /// An ejection time longer than the maximum ejection time.
    #[error("relay `{relay}`: ejection time {base:?} is longer than the maximum ejection time {max:?}: expected base <= max")]
    EjectionTime {
        /// The relay's name.
        relay: String,
        /// The base ejection time given.
        base: Duration,
        /// The maximum ejection time given.
        max: Duration,
    },
    /// Passive health refused a setting the relay's checks let through.
    #[error("relay `{relay}`: passive health settings: {reason}")]
    Passive {
        /// The relay's name.
        relay: String,
        /// Passive health's error.
        reason: String,
    },
    /// A limit or size of zero, or beyond what the system accepts.
    #[error("relay `{relay}`: {setting} {value} is out of range: expected {expected}")]
    OutOfRange {
        /// The relay's name.
        relay: String,
        /// Which setting (`"max sessions"`, `"backlog"`, `"send buffer"`, ...).
        setting: &'static str,
        /// The value given.
        value: u64,
        /// The accepted range, in words.
        expected: &'static str,
    },
}

/// A relay that could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// [`Relay::start`](crate::Relay::start) was called outside a Tokio runtime.
    #[error("relay `{relay}` cannot start outside a Tokio runtime: call start() from within one")]
    NoRuntime {
        /// The relay's name.
        relay: String,
    },
    /// Creating, configuring or binding the listening socket failed (address in use,
    /// address not available on this machine, permission denied for a port below 1024).
    #[error("relay `{relay}` cannot listen on {addr}: {source}")]
    Bind {
        /// The relay's name.
        relay: String,
        /// The address it tried to listen on.
        addr: SocketAddr,
        /// The system's error.
        #[source]
        source: io::Error,
    },
}

/// A control action on a running relay that could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// The relay does not forward to a table of that name.
    #[error("relay `{relay}` has no table `{table}`: expected one of the tables it forwards to")]
    UnknownTable {
        /// The relay's name.
        relay: String,
        /// The name that was asked for.
        table: String,
    },
    /// The table refused the change (an unknown host, a duplicate).
    #[error(transparent)]
    Table(#[from] lb_core::Error),
    /// The runtime was shutting down before a membership change could run on its
    /// blocking pool: the change was not made.
    #[error("relay `{relay}`: the runtime is shutting down; the change was not made")]
    ShuttingDown {
        /// The relay's name.
        relay: String,
    },
}
