//! [`DnsBackend`]: how a host found in DNS becomes a table's backend.

use std::net::SocketAddr;

use lb_core::{Backend, Host};

use crate::Member;

/// A backend type a [`Membership`](crate::Membership) can add to a table.
///
/// The backend's id must derive from the address alone (as [`Host::from`] and
/// `SocketAddr` do: the id of the text `10.0.0.1:443`), so that a host keeps its id
/// from one lookup to the next and is the same host in every instance.
pub trait DnsBackend: Backend + Sized {
    /// The backend for a host found in DNS. A backend that cannot carry the weight
    /// may ignore it: the membership then sets it on the table.
    fn from_dns(member: &Member) -> Self;
}

impl DnsBackend for Host {
    /// A host named by its address, with the member's weight.
    fn from_dns(member: &Member) -> Self {
        let host = Host::from(member.addr);
        match host.clone().with_weight(u64::from(member.weight.get())) {
            Ok(weighted) => weighted,
            // Unreachable (a `Weight` is always in range); the table's weight is set
            // after the add in that case.
            Err(_) => host,
        }
    }
}

impl DnsBackend for SocketAddr {
    /// The address (weight 1; the membership sets the member's weight on the table).
    fn from_dns(member: &Member) -> Self {
        member.addr
    }
}
