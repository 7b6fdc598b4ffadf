//! # lb: an embeddable load balancer
//!
//! relayd's and pf's tables, balancing modes, health checks and TCP relays as a Rust
//! library. This crate is the facade: it re-exports the `lb-*` crates under short names
//! and adds [`service`], a `tower` request balancer. Use the relay to balance TCP
//! connections, or a [`Balancer`](core::Balancer) to pick a host for anything else.
//!
//! ```
//! use lb::core::{Balancer, Context, Health, Host, HostTable};
//! use lb::policies::Consistent;
//!
//! let table = HostTable::new("exchange", [
//!     Host::new("exchange1", "10.0.0.11:443".parse()?),
//!     Host::new("exchange2", "10.0.0.12:443".parse()?),
//! ])?;
//! let balancer = Balancer::new(&table, Consistent::new());
//! let client = Context::from_client("192.0.2.7:50000".parse()?);
//! let lease = balancer.pick(&client)?; // one active state on its host...
//! table.set_health(lease.id(), Health::Down, "connect refused")?;
//! assert_ne!(balancer.pick(&client)?.id(), lease.id()); // ...which no longer gets clients
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Map
//!
//! - [`core`] (`lb-core`): tables, snapshots, the `Policy` trait, balancers, leases,
//!   contexts, keyed hashing. No async runtime.
//! - [`policies`] (`lb-policies`): the modes (`RoundRobin`, `LeastStates`, `SourceHash`,
//!   `Consistent`, ...). No async runtime.
//! - [`health`] (`lb-health`): the `Monitor` and its checks, `Passive` ejections (tokio).
//! - [`relay`] (`lb-relay`): the TCP `Relay` with failover, timeouts, PROXY protocol
//!   and drain (tokio).
//! - [`config`] (`lb-config`): relayd.conf (and Halon's load-balancer block): parse,
//!   report errors with their place, build the running relays, reload by difference.
//! - [`dns`] (`lb-dns`): a table's hosts from DNS (A/AAAA and SRV names, looked up
//!   again when their TTL ends; failures keep the last good hosts) (tokio, hickory).
//! - `redirect` (`lb-redirect`, Linux): layer-3 redirects on nftables; the kernel
//!   rewrites destinations, lb keeps the rules in sync with the table.
//! - [`service`]: [`Balance`](service::Balance), a `tower::Service` over inner services,
//!   fixed or following a tower `Discover` stream ([`Balance::discover`](service::Balance::discover)).
#![warn(missing_docs)]

pub use lb_config as config;
pub use lb_core as core;
pub use lb_dns as dns;
pub use lb_health as health;
pub use lb_policies as policies;
/// `lb-redirect`: relayd's redirects (layer 3) on nftables. Linux only.
#[cfg(target_os = "linux")]
pub use lb_redirect as redirect;
pub use lb_relay as relay;

pub mod service;
