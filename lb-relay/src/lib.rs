//! # lb-relay: a tokio TCP relay for `lb` tables
//!
//! Filled in by the relay work; see the workspace README.
#![warn(missing_docs)]
pub mod copy;
pub mod proxy;
