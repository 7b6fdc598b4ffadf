//! # lb-core: the vocabulary of `lb`
//!
//! Tables of backends, the snapshots readers load without locking, the [`Policy`]
//! trait every balancing mode implements, the [`Context`] a pick is made for, and the
//! [`Lease`] that counts an active state until it is dropped. No async runtime: this
//! crate sits under packet paths, relays and request balancers alike.
//!
//! ```
//! use lb_core::{Backend, Balancer, Context, HostTable, Order, Policy, Snapshot};
//! use std::net::SocketAddr;
//!
//! // The simplest policy: prefer nothing, scan from the first host.
//! struct FirstUsable;
//! impl Policy for FirstUsable {
//!     type Plan = ();
//!     fn plan<B: Backend>(&self, _: &Snapshot<B>, _: Option<(&Snapshot<B>, &())>) {}
//!     fn order<B: Backend>(&self, _: &(), _: &Snapshot<B>, _: &Context<'_>, _: &mut Order) {}
//! }
//!
//! let hosts: Vec<SocketAddr> = vec!["10.0.0.11:443".parse()?, "10.0.0.12:443".parse()?];
//! let table = HostTable::new("exchange", hosts)?;
//! let balancer = Balancer::new(&table, FirstUsable);
//! let lease = balancer.pick(&Context::from_client("192.0.2.1:5555".parse()?))?;
//! println!("sending the client to {}", lease.name());
//!
//! // A worker deciding again and again keeps a picker: no shared load per decision.
//! let mut picker = balancer.picker();
//! let lease = picker.pick(&Context::from_client("192.0.2.2:5555".parse()?))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Map
//!
//! - [`backend`]: [`Backend`], [`BackendId`], [`Weight`], [`Host`].
//! - The three traits: [`Backend`] (what a host is), [`Table`] (a set of hosts,
//!   published as snapshots) and [`Policy`] (how a host is chosen).
//! - [`table`]: the [`Table`] trait, [`HostTable`] (its implementation) and its
//!   [`TableBuilder`], [`IntoTable`], [`Watcher`], batched membership [`Update`]s.
//! - [`event`]: the [`TableEvent`]s listeners hear, [`Change`], [`ListenerId`].
//! - [`snapshot`]: [`Snapshot`], what readers see.
//! - [`host`]: per-host [`Health`], [`Admin`], [`HostState`] counters.
//! - [`policy`]: the [`Policy`] trait and the [`Order`] it fills.
//! - [`balancer`]: [`Balancer`], [`Candidates`], the object-safe [`Select`]; the
//!   per-thread [`Picker`] (and the object-safe [`Pick`]).
//! - [`lease`]: [`Lease`] and the [`Release`] hook.
//! - [`context`][]: [`Context`].
//! - [`clock`]: [`Clock`], [`SystemClock`], [`ManualClock`].
//! - [`hash`]: [`HashKey`], keyed [`siphash24`] (relayd) and [`fast_hash`] (addresses).
//! - [`error`][]: [`Error`].
#![warn(missing_docs)]

pub mod backend;
pub mod balancer;
pub mod clock;
pub mod context;
pub mod error;
pub mod event;
pub mod hash;
pub mod host;
pub mod lease;
pub mod policy;
pub mod snapshot;
pub mod table;

pub use backend::{Backend, BackendId, Host, Weight};
pub use balancer::{Balancer, Candidate, Candidates, Pick, Picker, Select};
pub use clock::{Clock, ManualClock, SystemClock};
pub use context::Context;
pub use error::{Error, Result};
pub use event::{Change, Listener, ListenerId, TableEvent};
pub use hash::{fast_hash, fast_hash_ip, siphash24, siphash24_ip, HashKey, SipHash24};
pub use host::{Admin, Health, HostSlot, HostState, HostStats};
pub use lease::{Lease, LeaseHook, Release};
pub use policy::{Order, Policy};
pub use snapshot::Snapshot;
pub use table::{HostTable, IntoTable, Table, TableBuilder, Update, Watcher};
