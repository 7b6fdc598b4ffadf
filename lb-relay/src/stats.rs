//! Relay counters and the [`RelayStats`] snapshot.
//!
//! Counters are relaxed atomics updated by sessions as they happen. Bytes are counted
//! live by the copy loop, in each session's own [`Progress`] and in the relay's, so a
//! long transfer shows up while it runs, not only when it ends, and a session costs the
//! stats no allocation and no lock. Per-host figures (active states, totals, failed connects) are not duplicated
//! here: they live in each host's [`HostState`](lb_core::HostState) in lb-core, shared by
//! every relay and balancer that uses the table, and [`RelayStats::tables`] reads them.

use std::sync::atomic::{AtomicU64, Ordering};

use lb_core::HostStats;

use crate::copy::Progress;
use crate::window::{WindowCounts, Windows};

/// The live counters of one relay.
pub(crate) struct Counters {
    /// Sessions being served now.
    pub(crate) active: AtomicU64,
    /// Sessions ever handled (connections that reached the session service).
    pub(crate) total: AtomicU64,
    /// Sessions closed because no host of any table could be reached.
    pub(crate) failed: AtomicU64,
    /// Sessions closed at once because the relay was disabled.
    pub(crate) refused: AtomicU64,
    /// Sessions closed by the idle timeout.
    pub(crate) idle_timeouts: AtomicU64,
    /// Failed connect attempts (each one is followed by failover, or counts in `failed`).
    pub(crate) connect_failures: AtomicU64,
    /// Accept calls that failed (descriptor exhaustion, aborted connections).
    pub(crate) accept_errors: AtomicU64,
    /// Bytes each way: finished sessions, and the live progress of running ones.
    pub(crate) bytes: Bytes,
    /// Session starts over time.
    pub(crate) windows: Windows,
}

impl Counters {
    pub(crate) fn new(windows: Windows) -> Self {
        Counters {
            active: AtomicU64::new(0),
            total: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            idle_timeouts: AtomicU64::new(0),
            connect_failures: AtomicU64::new(0),
            accept_errors: AtomicU64::new(0),
            bytes: Bytes::default(),
            windows,
        }
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Bytes relayed: every session's copy adds the bytes it delivers here as it delivers
/// them, so running sessions are included and a finished one needs no bookkeeping.
#[derive(Default)]
pub(crate) struct Bytes {
    pub(crate) progress: Progress,
}

/// Bytes relayed each way, and how many of them were spliced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ByteTotals {
    pub(crate) client_to_server: u64,
    pub(crate) server_to_client: u64,
    pub(crate) spliced_client_to_server: u64,
    pub(crate) spliced_server_to_client: u64,
}

impl Bytes {
    /// Bytes relayed so far, running sessions included.
    pub(crate) fn totals(&self) -> ByteTotals {
        let p = &self.progress;
        ByteTotals {
            client_to_server: p.client_to_server(),
            server_to_client: p.server_to_client(),
            spliced_client_to_server: p.spliced_client_to_server(),
            spliced_server_to_client: p.spliced_server_to_client(),
        }
    }
}

/// A relay's counters at one moment, with the state of every host it forwards to.
///
/// From [`RelayHandle::stats`](crate::RelayHandle::stats).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RelayStats {
    /// The relay's name.
    pub name: String,
    /// Whether the relay takes new sessions (see
    /// [`RelayHandle::disable`](crate::RelayHandle::disable)).
    pub enabled: bool,
    /// Whether the listening sockets are open (false once shutdown began).
    pub accepting: bool,
    /// Sessions being served now.
    pub active: u64,
    /// Sessions ever handled.
    pub total: u64,
    /// Sessions closed because no host of any table could be reached.
    pub failed: u64,
    /// Sessions closed at once because the relay was disabled.
    pub refused: u64,
    /// Sessions closed by the idle timeout.
    pub idle_timeouts: u64,
    /// Failed connect attempts to backends.
    pub connect_failures: u64,
    /// Failed accept calls (the loop logged them, backed off and resumed).
    pub accept_errors: u64,
    /// Bytes from clients to backends.
    pub bytes_client_to_server: u64,
    /// Bytes from backends to clients.
    pub bytes_server_to_client: u64,
    /// Of `bytes_client_to_server`, those moved by `splice(2)` (zero copy). 0 with
    /// splice off, without the `splice` feature, off Linux, and for sessions whose
    /// direction never passed its first 64 KiB (copied through user space, so short
    /// exchanges pay for no pipe).
    pub bytes_spliced_client_to_server: u64,
    /// Of `bytes_server_to_client`, those moved by `splice(2)`; see
    /// `bytes_spliced_client_to_server`.
    pub bytes_spliced_server_to_client: u64,
    /// Sessions started in the last minute, hour and day (true sliding windows).
    pub sessions: WindowCounts,
    /// Each table the relay forwards to, in order, with its hosts.
    pub tables: Vec<TableStats>,
}

/// One table's hosts as a relay sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableStats {
    /// The table's name.
    pub name: String,
    /// Every host, in configuration order: health, admin state, active states, totals
    /// and failed connects.
    pub hosts: Vec<HostStats>,
}

impl RelayStats {
    /// The stats of the host called `name` in table `table`, if there is one.
    pub fn host(&self, table: &str, name: &str) -> Option<&HostStats> {
        self.tables
            .iter()
            .find(|t| t.name == table)?
            .hosts
            .iter()
            .find(|h| h.name == name)
    }
}
