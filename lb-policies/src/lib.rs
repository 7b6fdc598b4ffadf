//! # lb-policies: balancing modes for `lb`
//!
//! Every relayd and pf balancing mode as an [`lb_core::Policy`], plus the ones relayd
//! lacks: smooth weighted round-robin, weighted random, weighted least-states, power of
//! two choices, consistent hashing. A policy only orders the usable hosts of a table's
//! snapshot; bind it to a table with [`lb_core::Balancer`] and pick. Whatever a mode
//! precomputes (a smooth schedule, an alias table, a hash ring) is rebuilt when the
//! table changes, so a pick takes no lock and allocates nothing.
//!
//! ```
//! use lb_core::{Balancer, Context, Health, HostTable};
//! use lb_policies::RoundRobin;
//! use std::net::SocketAddr;
//!
//! let hosts: Vec<SocketAddr> = vec!["10.0.0.11:443".parse()?, "10.0.0.12:443".parse()?];
//! let table = HostTable::new("exchange", hosts)?;
//! let balancer = Balancer::new(&table, RoundRobin::new());
//! let lease = balancer.pick(&Context::new())?; // counts one state until dropped
//! assert_eq!(lease.name(), "10.0.0.11:443");
//! table.set_health(lease.id(), Health::Down, "connect refused")?;
//! assert_eq!(balancer.pick(&Context::new())?.name(), "10.0.0.12:443");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Map of modes
//!
//! - [`round_robin`]: relayd's `roundrobin` cursor; smooth weighted round-robin (nginx)
//!   when weights differ. O(1).
//! - [`random`]: uniform over the usable hosts (not relayd's forward scan); weighted by
//!   a Vose alias table. O(1).
//! - [`least_states`]: pf's `least-states`: fewest active leases per weight, ties
//!   rotating. O(hosts).
//! - [`power_of_two`]: two random hosts, the less loaded one (P2C). O(1).
//! - [`source_hash`]: relayd's `source-hash` and `loadbalance`, keyed and stable.
//! - [`consistent`]: consistent hashing: only a changed host's keys move.
//! - [`sticky`]: pf's `sticky-address` over any mode.
//! - [`sample`]: the random choice [`Random`] and [`PowerOfTwo`] share.
#![warn(missing_docs)]

// Modules, one per mode. (Each `pub use` line below is owned by that module's author.)
pub mod least_states;
pub mod power_of_two;
pub mod random;
pub mod round_robin;
pub mod sample;
// -- helpers of the modes above --
mod dice;
mod load;
mod smooth;
#[cfg(test)]
mod testing;
// -- hashing modes --
pub mod consistent;
pub mod source_hash;
// -- sticky --
pub mod sticky;

pub use consistent::{Consistent, ConsistentPlan};
pub use least_states::LeastStates;
pub use power_of_two::PowerOfTwo;
pub use random::Random;
pub use round_robin::RoundRobin;
pub use source_hash::{LoadBalance, SourceHash};
pub use sticky::{StickyAddress, StickyBuilder, StickyStats};
