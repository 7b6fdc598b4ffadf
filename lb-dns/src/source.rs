//! What a membership resolves ([`Source`]) and what it finds ([`Member`]).

use std::fmt;
use std::net::SocketAddr;

use lb_core::Weight;

/// A name whose records give a table's hosts.
///
/// - [`Source::Ip`]: every A and AAAA address of a name, each with the same port
///   (relayd's `table <web> { www.example.com }` with the relay's port).
/// - [`Source::Srv`]: the targets of an SRV name (`_imap._tcp.example.com`), each
///   address of each target with the record's port and weight. Only the lowest
///   priority value present (the most preferred set) is used; records of higher
///   priority values are ignored, since lb has backup tables for that (relayd's
///   `forward to <backup>`), and mixing them in would send traffic to hosts the zone
///   marks as fallbacks. SRV weight 0 ("a very small share" in RFC 2782) becomes
///   weight 1, lb's smallest; the others keep their value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Source {
    /// The A and AAAA records of `name`, with `port`.
    Ip {
        /// The host name (an IP address literal is taken as is, without a lookup).
        name: String,
        /// The port of every address found.
        port: u16,
    },
    /// The SRV records of `name`.
    Srv {
        /// The service name, `_service._proto.domain`.
        name: String,
    },
}

impl Source {
    /// The A and AAAA addresses of `name`, each with `port`.
    pub fn ip(name: impl Into<String>, port: u16) -> Self {
        Source::Ip {
            name: name.into(),
            port,
        }
    }

    /// The targets of the SRV name `name` (`_service._proto.domain`).
    pub fn srv(name: impl Into<String>) -> Self {
        Source::Srv { name: name.into() }
    }

    /// The name looked up.
    pub fn name(&self) -> &str {
        match self {
            Source::Ip { name, .. } | Source::Srv { name } => name,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Ip { name, port } => write!(f, "{name} port {port} (A/AAAA)"),
            Source::Srv { name } => write!(f, "{name} (SRV)"),
        }
    }
}

/// One host found in DNS: an address and the weight it gets in the table.
///
/// Its table id is derived from the address alone (as for a host written as an
/// address in relayd.conf), so a host keeps its id across lookups and is the same
/// host in every balancer instance that sees the address, wherever it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Member {
    /// The address to connect to.
    pub addr: SocketAddr,
    /// The weight: an SRV record's (0 taken as 1), else 1.
    pub weight: Weight,
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} weight {}", self.addr, self.weight)
    }
}
