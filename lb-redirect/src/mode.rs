//! [`Mode`]: how a redirect spreads new connections, and what each mode becomes in the
//! kernel.

use std::fmt;

/// relayd's redirect modes, as nftables rules.
///
/// Every mode looks up one nft map of `M` slots (see
/// [`RedirectBuilder::slots`](crate::RedirectBuilder::slots)) from slot to backend
/// address; the modes differ in the key of the lookup and in how lb fills the slots.
///
/// | mode | key (per new connection) | slots |
/// |---|---|---|
/// | [`SourceHash`](Mode::SourceHash) | `jhash ip saddr mod M` | Maglev over the configured hosts; a down host's slots go to the survivors, in proportion to their weights |
/// | [`RoundRobin`](Mode::RoundRobin) | `numgen inc mod M` | the usable hosts in smooth weighted round-robin order |
/// | [`Random`](Mode::Random) | `numgen random mod M` | each usable host's weighted share |
/// | [`LeastStates`](Mode::LeastStates) | `numgen random mod M` | shares that fill the least-loaded hosts first, from conntrack's state counts, refreshed every [`least_states_interval`](crate::RedirectBuilder::least_states_interval) |
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mode {
    /// relayd's default: hosts in turn, weighted.
    #[default]
    RoundRobin,
    /// Uniform (weighted) random.
    Random,
    /// Consistent source hashing (lb's `Consistent` in the kernel): a client address
    /// always maps to the same slot, and only a failed host's clients move.
    SourceHash,
    /// pf's `least-states`: new connections go to the hosts with the fewest states.
    LeastStates,
}

impl Mode {
    /// The mode's relayd spelling: `roundrobin`, `random`, `source-hash`,
    /// `least-states`.
    pub fn relayd_name(self) -> &'static str {
        match self {
            Mode::RoundRobin => "roundrobin",
            Mode::Random => "random",
            Mode::SourceHash => "source-hash",
            Mode::LeastStates => "least-states",
        }
    }

    /// The mode with this relayd name (`consistent` is accepted for
    /// [`SourceHash`](Mode::SourceHash)).
    pub fn from_relayd_name(name: &str) -> Option<Mode> {
        Some(match name {
            "roundrobin" => Mode::RoundRobin,
            "random" => Mode::Random,
            "source-hash" | "consistent" => Mode::SourceHash,
            "least-states" => Mode::LeastStates,
            _ => return None,
        })
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.relayd_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relayd_names_round_trip() {
        for m in [
            Mode::RoundRobin,
            Mode::Random,
            Mode::SourceHash,
            Mode::LeastStates,
        ] {
            assert_eq!(Mode::from_relayd_name(m.relayd_name()), Some(m));
        }
        assert_eq!(Mode::from_relayd_name("consistent"), Some(Mode::SourceHash));
        assert_eq!(Mode::from_relayd_name("loadbalance"), None);
    }
}
