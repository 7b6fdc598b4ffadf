//! # lb-health: active and passive health checks for `lb` tables
//!
//! ## Map
//!
//! - [`reason`][] — [`Reason`], why a check or a connection failed, in relayd's words.
//! - [`passive`][] — [`Passive`], marks from traffic.
#![warn(missing_docs)]

pub mod passive;
pub mod reason;

pub use passive::Passive;
pub use reason::Reason;
