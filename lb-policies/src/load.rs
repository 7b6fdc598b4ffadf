//! Comparing hosts by active states per weight, exactly.
//!
//! pf's weighted least-states compares `65535 * states / weight`, truncating; we compare
//! the fractions themselves by cross-multiplying: `a.states * b.weight` against
//! `b.states * a.weight`, in 128 bits so that no count can overflow.

use lb_core::{Backend, Snapshot};

/// A host's load: its active states and its weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Load {
    pub(crate) states: u64,
    pub(crate) weight: u16,
}

impl Load {
    /// The load of the host at `index` in `snapshot`, now.
    pub(crate) fn of<B: Backend>(snapshot: &Snapshot<B>, index: usize) -> Self {
        Load {
            states: snapshot.host(index).state().active(),
            weight: snapshot.weight(index).get(),
        }
    }

    /// Whether `self` has strictly fewer states per weight than `other`.
    pub(crate) fn is_lighter_than(self, other: Load) -> bool {
        u128::from(self.states) * u128::from(other.weight)
            < u128::from(other.states) * u128::from(self.weight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(states: u64, weight: u16) -> Load {
        Load { states, weight }
    }

    #[test]
    fn states_per_weight() {
        assert!(load(1, 1).is_lighter_than(load(2, 1)));
        assert!(!load(2, 2).is_lighter_than(load(1, 1))); // equal: 1 per weight
        assert!(load(3, 2).is_lighter_than(load(2, 1))); // 1.5 < 2
        assert!(load(0, 1).is_lighter_than(load(1, 65535)));
        // pf's 65535 * states / weight is 1 for both 1/65535 and 1/65534 (truncated);
        // the exact comparison still orders them.
        assert!(load(1, 65535).is_lighter_than(load(1, 65534)));
        assert!(load(u64::MAX - 1, 65535).is_lighter_than(load(u64::MAX, 65535)));
    }
}
