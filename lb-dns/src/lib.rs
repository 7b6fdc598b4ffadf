//! # lb-dns: a table's hosts from DNS
//!
//! Keeps an `lb` table's membership in sync with DNS: hosts given by name (every A and
//! AAAA address of a name, or the targets of an SRV name with their ports and
//! weights) are looked up with `hickory-resolver` and looked up again when their TTL
//! ends, bounded below and above. Additions and removals go through the table, so a
//! host's id (derived from its address) stays the same across lookups and, with the
//! `Consistent` policy, only the clients of added or removed addresses move. A failed
//! lookup keeps the last good hosts and is reported as a [`DnsEvent`]; DNS never
//! empties a table.
//!
//! ```no_run
//! use std::time::Duration;
//! use lb_core::{Host, HostTable};
//! use lb_dns::{Membership, Resolver};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let table = HostTable::<Host>::builder("web").allow_empty().build()?;
//! let membership = Membership::builder(Resolver::system()?)
//!     .ip("www.example.com", 443) // every A/AAAA address, port 443
//!     .srv("_imaps._tcp.example.com") // SRV targets, ports and weights
//!     .max_ttl(Duration::from_secs(60))
//!     .start(table.clone())?;
//! membership.ready().await; // first lookups done, the table follows them
//! println!("{} hosts", table.snapshot().len());
//! # Ok(()) }
//! ```
//!
//! ## Map
//!
//! - [`Resolver`]: hickory's resolver, configured from the system, from given name
//!   servers, or from a hickory configuration; [`Resolver::lookup_ip`],
//!   [`Resolver::resolve`], and [`Resolver::lookup_ip_blocking`] for synchronous
//!   callers (lb-config resolves relayd.conf host names with it).
//! - [`Source`]: a name to follow (A/AAAA with a port, or SRV); [`Member`]: a host it
//!   gives.
//! - [`Membership`] and [`MembershipBuilder`]: the task that keeps a table in sync, its
//!   TTL bounds, its events ([`DnsEvent`]) and its stop.
//! - [`DnsBackend`]: how a member becomes a table backend (`Host`, `SocketAddr`).
//! - [`Error`] (settings) and [`ResolveError`] (one lookup).
//!
//! ## Timing
//!
//! A source is looked up again when the smallest TTL of its answer ends, bounded to
//! `min_ttl..=max_ttl` (default 1 s to 300 s). A failed lookup is tried again after
//! the minimum TTL, doubling with each failure in a row, up to the maximum. The
//! membership clears the resolver's cache for the names it asks again, so a maximum TTL
//! shorter than the records' takes effect.
#![warn(missing_docs)]

mod backend;
mod error;
mod event;
mod lookup;
mod membership;
mod resolver;
mod source;
mod sync;

pub use backend::DnsBackend;
pub use error::{Error, ResolveError};
pub use event::DnsEvent;
pub use lookup::{Answer, IpAnswer};
pub use membership::{Membership, MembershipBuilder, DEFAULT_MAX_TTL, DEFAULT_MIN_TTL};
pub use resolver::Resolver;
pub use source::{Member, Source};

/// hickory's configuration types, for [`Resolver::from_config`].
pub use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
