//! `--mode`: every lb-policies mode by name, bound to a table as a balancer.
//!
//! With `--affinity service` (the default) each relay has its own table, so its own
//! balancer. The tables hold the same hosts under the same names, so the same
//! [`BackendId`](lb::core::BackendId)s, and a hash mode maps a client alike in every
//! table: a client reaches the same server over OWA, POP3, IMAP and RPC (Exchange
//! 2010 wants that: its sessions live on the Client Access server that started them)
//! on every relay whose service is up there. A sticky mode's source table belongs to
//! one balancer, so there a client sticks per relay. With `--affinity server` the one
//! table has one balancer that all eight relays share.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use lb::core::{Balancer, Host, HostTable, Policy, Select};
use lb::policies::{
    Consistent, LeastStates, LoadBalance, PowerOfTwo, Random, RoundRobin, SourceHash, StickyAddress,
};

/// How long a sticky entry outlives its last connection. pf's `src.track` default is
/// 0, which forgets a client between two short connections; five minutes keeps it.
pub const STICKY_TIMEOUT: Duration = Duration::from_secs(300);

/// A mode without stickiness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base {
    /// Consistent hashing of the client IP: our source-hash.
    Consistent,
    /// relayd's `source-hash`.
    SourceHash,
    /// relayd's `loadbalance`.
    LoadBalance,
    /// relayd's `roundrobin`.
    RoundRobin,
    /// relayd's `random` (uniform here).
    Random,
    /// pf's `least-states`.
    LeastStates,
    /// Power of two choices.
    PowerOfTwo,
}

const BASES: [(Base, &str); 7] = [
    (Base::Consistent, "consistent"),
    (Base::SourceHash, "source-hash"),
    (Base::LoadBalance, "loadbalance"),
    (Base::RoundRobin, "roundrobin"),
    (Base::Random, "random"),
    (Base::LeastStates, "least-states"),
    (Base::PowerOfTwo, "p2c"),
];

/// A balancing mode: a base mode, optionally behind pf's `sticky-address`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mode {
    /// The mode that places clients.
    pub base: Base,
    /// Whether a source table keeps each client on its first host.
    pub sticky: bool,
}

impl Default for Mode {
    fn default() -> Self {
        Mode {
            base: Base::Consistent,
            sticky: false,
        }
    }
}

/// Where a mode promises to send a client, and so what the demonstration checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// A client always reaches one server, whatever relay it uses.
    Source,
    /// A client reaches one server per relay (the hash includes the listen address).
    SourceAndRelay,
    /// None: each connection is placed on its own.
    None,
}

impl Mode {
    /// What the mode promises about where a client goes, with one balancer for all
    /// relays (`shared`) or one per relay.
    pub fn placement(self, shared: bool) -> Placement {
        match (self.sticky, self.base) {
            (true, _) if shared => Placement::Source,
            (true, _) => Placement::SourceAndRelay,
            (false, Base::Consistent | Base::SourceHash) => Placement::Source,
            (false, Base::LoadBalance) => Placement::SourceAndRelay,
            (false, _) => Placement::None,
        }
    }

    /// Whether clients go back to a host that recovers: true for the hash modes, whose
    /// mapping depends only on the configured hosts. Sticky modes keep a moved client
    /// where it is until its entry expires, as pf does.
    pub fn returns_after_recovery(self) -> bool {
        !self.sticky
            && matches!(
                self.base,
                Base::Consistent | Base::SourceHash | Base::LoadBalance
            )
    }

    /// How the mode relates to relayd's and pf's modes.
    pub fn relayd_name(self) -> &'static str {
        if self.sticky {
            return "pf's sticky-address";
        }
        match self.base {
            Base::Consistent => "in place of relayd's source-hash",
            Base::SourceHash => "relayd's source-hash, exactly",
            Base::LoadBalance => "relayd's loadbalance, exactly",
            Base::RoundRobin => "relayd's roundrobin",
            Base::Random => "relayd's random, made uniform",
            Base::LeastStates => "pf's least-states; relayd has it for redirects only",
            Base::PowerOfTwo => "not in relayd",
        }
    }

    /// Why a user would choose this mode, in one or two lines.
    pub fn explanation(self) -> String {
        let base = match self.base {
            Base::Consistent => {
                "our source-hash: the client IP is hashed, with a fixed key, into a \
                 Maglev table of the configured hosts. Every relay and every balancer \
                 instance maps a client alike; a down host's clients spread over the \
                 others and return to it exactly when it comes back; the others never \
                 move. relayd's source-hash (--mode source-hash) hashes modulo the host \
                 count, so a membership change remaps most clients, and its key is \
                 random at every start unless configured."
            }
            Base::SourceHash => {
                "relayd's source-hash bit for bit (SipHash-2-4, hash % hosts, then \
                 shifted retries and a forward scan): for migrations that must keep \
                 relayd's mapping"
            }
            Base::LoadBalance => {
                "relayd's loadbalance: the hash also covers the listen address and \
                 port, so a client may reach different servers on different relays"
            }
            Base::RoundRobin => "each new connection goes to the next host in turn",
            Base::Random => "each new connection goes to a host drawn at random",
            Base::LeastStates => "each new connection goes to the host with the fewest sessions",
            Base::PowerOfTwo => "each new connection goes to the less loaded of two random hosts",
        };
        if self.sticky {
            format!(
                "pf's sticky-address: a client's first connection is placed by {} ({base}); \
                 later ones follow it while it is up, and for {} s after its last one ends",
                Mode {
                    base: self.base,
                    sticky: false
                },
                STICKY_TIMEOUT.as_secs()
            )
        } else {
            base.to_owned()
        }
    }

    /// Binds the mode to `table`.
    pub fn balancer(
        self,
        table: &Arc<HostTable<Host>>,
    ) -> Result<Arc<dyn Select<Host>>, lb::core::Error> {
        match self.base {
            Base::Consistent => bind(table, Consistent::new(), self.sticky),
            Base::SourceHash => bind(table, SourceHash::new(), self.sticky),
            Base::LoadBalance => bind(table, LoadBalance::new(), self.sticky),
            Base::RoundRobin => bind(table, RoundRobin::new(), self.sticky),
            Base::Random => bind(table, Random::new(), self.sticky),
            Base::LeastStates => bind(table, LeastStates::new(), self.sticky),
            Base::PowerOfTwo => bind(table, PowerOfTwo::new(), self.sticky),
        }
    }
}

fn bind<P: Policy>(
    table: &Arc<HostTable<Host>>,
    policy: P,
    sticky: bool,
) -> Result<Arc<dyn Select<Host>>, lb::core::Error> {
    if sticky {
        let sticky = StickyAddress::builder(policy)
            .timeout(STICKY_TIMEOUT)
            .build()?;
        Ok(Balancer::new(table, sticky))
    } else {
        Ok(Balancer::new(table, policy))
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = BASES
            .iter()
            .find(|(b, _)| *b == self.base)
            .map_or("?", |(_, n)| n);
        if self.sticky {
            write!(f, "sticky-{name}")
        } else {
            f.write_str(name)
        }
    }
}

impl FromStr for Mode {
    /// What was expected, for the error message.
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let base = |name: &str| {
            let name = if name == "power-of-two" { "p2c" } else { name };
            BASES.iter().find(|(_, n)| *n == name).map(|(b, _)| *b)
        };
        let (sticky, rest) = match s {
            "sticky-address" => (true, "roundrobin"),
            _ => match s.strip_prefix("sticky-") {
                Some(rest) => (true, rest),
                None => (false, s),
            },
        };
        base(rest).map(|base| Mode { base, sticky }).ok_or_else(|| {
            let names: Vec<&str> = BASES.iter().map(|(_, n)| *n).collect();
            format!(
                "one of {}, or sticky-MODE / sticky-address",
                names.join(", ")
            )
        })
    }
}
