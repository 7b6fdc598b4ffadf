//! # lb-redirect: relayd's redirects (layer 3) on Linux nftables
//!
//! A [`Redirect`] is relayd's `redirect` (pf's `rdr-to` over a pool): connections to a
//! virtual address and port are sent to a table's hosts by the kernel, which rewrites
//! their destination; no byte crosses user space and backends see the clients' real
//! addresses. lb keeps one nftables table of its own (`inet lb_<name>`) in sync with a
//! [`lb_core::Table`]: health checks, admin changes and membership changes become small
//! atomic `nft` transactions. Linux only; elsewhere this crate is empty.
//!
//! ```no_run
//! use lb_core::{Host, HostTable};
//! use lb_redirect::{Mode, Redirect};
//! use std::time::Duration;
//!
//! let table = HostTable::new("exchange", [
//!     Host::new("exchange1", "198.18.1.2:443".parse()?),
//!     Host::new("exchange2", "198.18.2.2:443".parse()?),
//! ])?;
//! let redirect = Redirect::builder("exchange")
//!     .listen("198.18.100.1".parse()?)
//!     .port(443)
//!     .forward_to(table.clone())
//!     .mode(Mode::LeastStates)
//!     .sticky_address(Duration::from_secs(300))
//!     .start()?; // needs root (CAP_NET_ADMIN) and the nft tool
//! println!("{}", redirect.ruleset()?); // nft list table inet lb_exchange
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## What the kernel holds
//!
//! One map of `M` slots (default 4093, a prime) from slot to backend `address . port`;
//! the mode decides the lookup key and how lb fills the slots (see [`Mode`]):
//! `dnat to jhash ip saddr mod M map @slots4` for source-hash, `numgen inc` for
//! round-robin, `numgen random` for random and least-states. With sticky-address each
//! host has a dynamic set of client addresses with a timeout, filled from the packet
//! path and looked up before the map. `nft list table inet lb_web` for a round-robin
//! redirect of `198.18.100.1` port 80 without sticky-address (slot elements cut):
//!
//! ```text
//! table inet lb_web {
//!     map slots4 {
//!         typeof numgen inc mod 4093 : ip daddr . tcp dport
//!         elements = { 0 : 198.18.1.2 . 80, 1 : 198.18.2.2 . 80, 2 : 198.18.1.2 . 80, ... }
//!     }
//!     chain prerouting {
//!         type nat hook prerouting priority dstnat; policy accept;
//!         ip daddr 198.18.100.1 tcp dport 80 jump vip4
//!     }
//!     chain vip4 {
//!         tcp dport 80 dnat ip to numgen inc mod 4093 map @slots4
//!     }
//! }
//! ```
//!
//! A host going down is one transaction: its slots rewritten to the survivors (and,
//! with sticky-address, its set and chains flushed). Nothing outside `lb_<name>` is
//! ever touched; the namespace tests compare the rest of the ruleset before and after.
//!
//! ## How close to pf
//!
//! - source-hash is lb's `Consistent` (Maglev) over `M` slots keyed by the kernel's
//!   `jhash`: a down host's clients, and only they, move, spread over the survivors by
//!   weight, and come back. pf's source-hash remaps most clients on any change.
//! - least-states: pf sends each new source to the host with the fewest states at that
//!   moment. Here lb reads the counts from conntrack every interval (1 s) and fills the
//!   slots so that the next arrivals go to the least-loaded hosts (water-filling,
//!   weighted); between two readings the kernel follows the last fill, so a burst of
//!   new connections inside one interval is spread by that fill rather than by exact
//!   counts. Counts are live conntrack entries (TIME_WAIT and CLOSE excluded), where pf
//!   counts every state until it is purged.
//! - sticky-address: an entry lives while its connections carry traffic, plus the
//!   timeout (pf: while states exist, plus `src.track`); an idle connection longer than
//!   the timeout loses its entry, though not its connection.
//! - All hosts down: the map is empty and connections to the VIP are not rewritten.
//! - Connections from the balancer itself (the output hook) are not redirected.
//!
//! ## Requirements
//!
//! Root or `CAP_NET_ADMIN`, the `nft` tool (nftables) and, for least-states, the
//! `conntrack` tool (conntrack-tools); forwarding enabled; replies from the backends
//! must route through this machine (no masquerade is done). The redirect works in the
//! network namespace of the thread that starts it.
//!
//! ## Map
//!
//! - [`Redirect`], [`RedirectBuilder`], [`RedirectStats`], [`HostStates`].
//! - [`Mode`].
//! - [`Error`].
#![warn(missing_docs)]

#[cfg(target_os = "linux")]
mod builder;
#[cfg(target_os = "linux")]
mod conntrack;
#[cfg(target_os = "linux")]
mod error;
#[cfg(target_os = "linux")]
mod mode;
#[cfg(target_os = "linux")]
mod nft;
#[cfg(target_os = "linux")]
mod redirect;
#[cfg(target_os = "linux")]
mod ruleset;
#[cfg(target_os = "linux")]
mod slots;
#[cfg(target_os = "linux")]
mod worker;

#[cfg(target_os = "linux")]
pub use builder::{RedirectBuilder, DEFAULT_SLOTS};
#[cfg(target_os = "linux")]
pub use error::Error;
#[cfg(target_os = "linux")]
pub use mode::Mode;
#[cfg(target_os = "linux")]
pub use redirect::{HostStates, Redirect, RedirectStats};
