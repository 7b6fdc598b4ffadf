//! # lb-health: active and passive health checks for `lb` tables
//!
//! Filled in by the health-check work; see the workspace README.
#![warn(missing_docs)]
