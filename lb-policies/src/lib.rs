//! # lb-policies: balancing modes for `lb`
#![warn(missing_docs)]
