//! # lb-policies: balancing modes for `lb`
#![warn(missing_docs)]

// Modules, one per mode. (Each `pub use` line below is owned by that module's author.)
pub mod least_states;
pub mod power_of_two;
pub mod random;
pub mod round_robin;
// -- hashing modes --
pub mod consistent;
pub mod source_hash;
// -- sticky --
pub mod sticky;

// re-exports: round_robin, random, least_states, power_of_two
// re-exports: source_hash, consistent
// re-exports: sticky
