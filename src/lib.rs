//! # lb: an embeddable load balancer
//!
//! The facade over the `lb-*` crates.
#![warn(missing_docs)]

pub use lb_core as core;
pub use lb_health as health;
pub use lb_policies as policies;
pub use lb_relay as relay;

pub mod service;
