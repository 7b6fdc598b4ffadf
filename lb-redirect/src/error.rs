//! [`Error`]: what can go wrong between a redirect and the kernel, one variant per thing
//! a user can do something about.

use std::path::PathBuf;

/// A redirect's errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The `nft` tool is not installed (or not at the configured path).
    #[error("the nft tool was not found at {path:?}: install nftables (Debian: apt-get install nftables)")]
    NftMissing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// `nft` ran but the kernel refused: the process is not root and lacks
    /// `CAP_NET_ADMIN` in its network namespace.
    #[error("nftables refused the change: operation not permitted (run as root or with CAP_NET_ADMIN): {detail}")]
    NotPermitted {
        /// What `nft` said.
        detail: String,
    },
    /// The kernel has no nf_tables (or not the NAT, conntrack or hash parts a redirect
    /// needs).
    #[error("the kernel does not support nf_tables with NAT (modules nf_tables, nft_nat, nf_conntrack): {detail}")]
    NoNfTables {
        /// What `nft` said.
        detail: String,
    },
    /// `nft` rejected a transaction for another reason; nothing of it was applied.
    #[error("nft rejected the transaction: {detail}")]
    Nft {
        /// What `nft` said.
        detail: String,
    },
    /// The `conntrack` tool, needed by least-states to read state counts, is missing.
    #[error("least-states reads state counts with the conntrack tool, which was not found at {path:?}: install conntrack (Debian: apt-get install conntrack)")]
    ConntrackMissing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// `conntrack` failed.
    #[error("conntrack failed: {detail}")]
    Conntrack {
        /// What it said.
        detail: String,
    },
    /// A setting of the builder is invalid.
    #[error("invalid redirect setting {setting}: expected {expected}")]
    InvalidSetting {
        /// The setting.
        setting: &'static str,
        /// What it accepts, and what it got.
        expected: String,
    },
    /// Running a tool failed at the operating-system level.
    #[error("could not run {tool}: {source}")]
    Io {
        /// The tool.
        tool: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The redirect's worker thread is gone (it panicked, or the redirect was shut down).
    #[error("the redirect's worker thread has stopped")]
    Stopped,
}
