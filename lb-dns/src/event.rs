//! [`DnsEvent`]: what a running [`Membership`](crate::Membership) reports.

use std::fmt;
use std::time::Duration;

use crate::{Member, ResolveError, Source};

/// Something a membership did or found, sent to every subscriber
/// ([`Membership::subscribe`](crate::Membership::subscribe)) and logged with `tracing`
/// (failures at `warn`, table changes at `info`, lookups at `debug`).
///
/// Subscribers that fall behind by more than the channel's capacity miss the oldest
/// events (tokio's broadcast `Lagged`), never the table changes themselves.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DnsEvent {
    /// A source was resolved; its hosts are now `members`.
    Resolved {
        /// The source.
        source: Source,
        /// Its hosts, sorted by address.
        members: Vec<Member>,
        /// The TTL of the answer, as the records gave it.
        ttl: Duration,
        /// When the source is resolved again: `ttl` bounded by the minimum and maximum
        /// TTL.
        next_in: Duration,
    },
    /// A lookup failed (NXDOMAIN, an empty answer, SERVFAIL, a timeout, ...). The
    /// source keeps its last good hosts, and the table is not changed for it.
    LookupFailed {
        /// The source.
        source: Source,
        /// Why.
        error: ResolveError,
        /// How many hosts the source keeps from its last good answer (0 if it never had
        /// one).
        kept: usize,
        /// When it is tried again: the minimum TTL, doubled after each further failure
        /// in a row, up to the maximum TTL.
        retry_in: Duration,
    },
    /// The table was changed to follow DNS.
    TableChanged {
        /// The table's name.
        table: String,
        /// Hosts added.
        added: Vec<Member>,
        /// Hosts removed.
        removed: Vec<Member>,
        /// Hosts whose weight changed (with their new weight).
        reweighted: Vec<Member>,
    },
    /// A write to the table failed; it is tried again after the next lookup.
    TableError {
        /// The table's name.
        table: String,
        /// The table's error.
        error: lb_core::Error,
    },
}

impl fmt::Display for DnsEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |members: &[Member]| {
            members
                .iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            DnsEvent::Resolved {
                source,
                members,
                next_in,
                ..
            } => write!(
                f,
                "{source}: {} hosts [{}], next lookup in {next_in:?}",
                members.len(),
                list(members)
            ),
            DnsEvent::LookupFailed {
                source,
                error,
                kept,
                retry_in,
            } => write!(
                f,
                "{source}: lookup failed: {error}; keeping the last {kept} hosts, retrying in {retry_in:?}"
            ),
            DnsEvent::TableChanged {
                table,
                added,
                removed,
                reweighted,
            } => write!(
                f,
                "table {table}: added [{}], removed [{}], reweighted [{}]",
                list(added),
                list(removed),
                list(reweighted)
            ),
            DnsEvent::TableError { table, error } => write!(f, "table {table}: {error}"),
        }
    }
}
