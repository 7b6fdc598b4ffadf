//! The one error type of `lb-core`.

use std::sync::Arc;

use crate::BackendId;

/// Everything that can go wrong when building or changing a table, or picking from it.
///
/// Each variant names the thing the caller can fix, and its message says what was
/// expected. The enum is `#[non_exhaustive]`: later versions may add variants.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A weight outside `1..=65535`. A weight of 0 would make a host unreachable; disable
    /// the host instead.
    #[error("weight {weight} is out of range: expected 1..=65535 (to take a host out of service, disable it)")]
    InvalidWeight {
        /// The weight that was given.
        weight: u64,
    },
    /// A table was built with no hosts without opting in to an empty table.
    #[error("table `{table}` has no hosts: give it at least one, or build it with `HostTable::builder(name).allow_empty()` if its hosts are added at run time")]
    EmptyTable {
        /// The table's name.
        table: String,
    },
    /// A table name that is empty or too long.
    #[error("invalid table name {name:?}: expected 1 to 64 characters")]
    InvalidTableName {
        /// The name that was given.
        name: String,
    },
    /// Two hosts with the same identity (the same name or address) in one table.
    #[error("host `{host}` is already in table `{table}`: each host's name (and so its id {id}) must be unique")]
    DuplicateHost {
        /// The table's name.
        table: String,
        /// The duplicate host's display name.
        host: String,
        /// The duplicate id.
        id: BackendId,
    },
    /// A write the table does not take: its membership is managed elsewhere (see
    /// [`Table::add`](crate::Table::add)).
    #[error("table `{table}` does not {operation}: its membership is managed elsewhere")]
    Unsupported {
        /// The table.
        table: String,
        /// What was asked, as "add a host".
        operation: &'static str,
    },
    /// An id that is not in the table.
    #[error("no host with id {id} in table `{table}`")]
    UnknownHost {
        /// The table's name.
        table: String,
        /// The id that was asked for.
        id: BackendId,
    },
    /// Every host of the table is down, unknown, disabled, draining or ejected, or the
    /// table has no hosts at all (`hosts` is then 0).
    #[error(
        "table `{table}` has no usable host: none of its {hosts} hosts is both up and enabled"
    )]
    NoUsableHost {
        /// The table's name: shared with the table's snapshot, so that building this
        /// error allocates nothing (during an outage every pick fails, and a failed pick
        /// must cost no more than a successful one).
        table: Arc<str>,
        /// How many hosts the table has, usable or not.
        hosts: usize,
    },
    /// A hash key that could not be parsed.
    #[error("invalid hash key: {reason}")]
    InvalidKey {
        /// What was wrong with it.
        reason: String,
    },
    /// A policy or table setting out of its allowed range.
    #[error("invalid setting `{setting}`: {expected}")]
    InvalidSetting {
        /// The setting's name.
        setting: &'static str,
        /// What the setting accepts.
        expected: String,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
