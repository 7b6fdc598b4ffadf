//! The errors of `lb-dns`: [`Error`] for settings and start, [`ResolveError`] for one
//! lookup.

use std::time::Duration;

/// Why a [`Membership`](crate::Membership) (or a [`Resolver`](crate::Resolver)) could
/// not be set up.
///
/// Each variant names the setting to fix. Lookup failures are never an `Error`: a
/// running membership reports them as [`DnsEvent::LookupFailed`](crate::DnsEvent) and
/// keeps the last good set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `start` was called outside a tokio runtime.
    #[error("a DNS membership runs as a tokio task: call start from within a tokio runtime")]
    NoRuntime,
    /// The builder was given no name to resolve.
    #[error(
        "a DNS membership needs at least one name: add one with `ip(name, port)` or `srv(name)`"
    )]
    NoSources,
    /// A name that is not a valid DNS name.
    #[error("invalid DNS name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A setting out of its range.
    #[error("invalid setting `{setting}`: expected {expected}")]
    InvalidSetting {
        /// The setting's name.
        setting: &'static str,
        /// What it accepts.
        expected: String,
    },
    /// The system's resolver configuration (`/etc/resolv.conf`) could not be read.
    #[error("cannot read the system's DNS configuration: {reason}")]
    SystemConfig {
        /// Why.
        reason: String,
    },
}

/// Why a lookup gave no usable addresses.
///
/// Every variant carries the name that was looked up, and its message says what the
/// server answered (or did not), so that a log line or a configuration error names
/// the host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The name does not exist (NXDOMAIN).
    #[error("{name} does not exist (NXDOMAIN)")]
    NxDomain {
        /// The name looked up.
        name: String,
    },
    /// The name exists but has no records of the kind asked for (an empty answer), or an
    /// SRV answer whose targets all have no address.
    #[error("{name} has no {kind} records (empty answer)")]
    Empty {
        /// The name looked up.
        name: String,
        /// The record types asked for: `"A/AAAA"` or `"SRV"`.
        kind: &'static str,
    },
    /// The server answered with an error code: SERVFAIL, REFUSED, ...
    #[error("the DNS server failed to answer for {name}: {code}")]
    ServerFailure {
        /// The name looked up.
        name: String,
        /// The response code, as text (`"Server Failure"`, `"Refused"`).
        code: String,
    },
    /// No answer came within the resolver's timeout, for every attempt.
    #[error("no answer for {name} within {timeout:?} (after every attempt)")]
    Timeout {
        /// The name looked up.
        name: String,
        /// The resolver's timeout per attempt.
        timeout: Duration,
    },
    /// The name is not a valid DNS name.
    #[error("invalid DNS name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Anything else: no name server configured, an I/O error, a malformed answer.
    #[error("lookup of {name} failed: {reason}")]
    Other {
        /// The name looked up.
        name: String,
        /// What went wrong.
        reason: String,
    },
}

impl ResolveError {
    /// The name that was looked up.
    pub fn name(&self) -> &str {
        match self {
            ResolveError::NxDomain { name }
            | ResolveError::Empty { name, .. }
            | ResolveError::ServerFailure { name, .. }
            | ResolveError::Timeout { name, .. }
            | ResolveError::InvalidName { name, .. }
            | ResolveError::Other { name, .. } => name,
        }
    }

    /// Whether the answer says the name has no addresses (NXDOMAIN or an empty
    /// answer), as opposed to a failure to get an answer at all.
    pub fn is_no_records(&self) -> bool {
        matches!(
            self,
            ResolveError::NxDomain { .. } | ResolveError::Empty { .. }
        )
    }
}
