//! The end of the fill without probing: each host's empty slots, sorted by where they
//! come in its permutation.
//!
//! Plain Maglev probing costs about `M / E` probes per claim when `E` slots are still
//! empty, so most of a fill's `~M ln M` probes happen when the table is nearly full
//! (the last eighth of the claims costs several times the first seven eighths). When
//! `E` drops to `M / (SPREAD * N)` the fill switches to this sieve: for every host it
//! computes the position of every empty slot in that host's permutation
//! (`(x - offset) * skip^-1 mod M`) and marks it in a bitmap of positions, one bitmap
//! per host. A host's next claim is then the first marked position from its cursor on
//! whose slot is still empty: a scan of a bitmap word by word instead of `M / E`
//! random probes. It claims exactly what probing claims: every slot before a host's
//! cursor in its permutation is already taken (the host passed it), so the first empty
//! slot from the cursor on is the first still-empty marked position.
//!
//! The setup costs `N * E` positions and `N * M / 8` bytes of bitmaps, so the fill
//! uses the sieve only while those bitmaps fit in [`MEMORY`]: up to 511 hosts at
//! 65 537 slots, the largest table Maglev's fill builds. Larger fills probe until the
//! last 64 slots (`TAIL`).

use super::Permutation;

/// Switch to the sieve when `M / (SPREAD * N)` slots are left: each host computes a
/// position for every empty slot, a few probes' worth each. Measured at N = 8: 2 and 4
/// are slower, 16 no faster.
const SPREAD: u64 = 8;

/// The most bytes of position bitmaps the sieve may use.
const MEMORY: usize = 4 << 20;

/// How many empty slots are left when the fill switches to the sieve for `hosts` hosts
/// and `m` slots, or `None` when its bitmaps would exceed [`MEMORY`].
pub(super) fn threshold(hosts: usize, m: u64) -> Option<usize> {
    let words = m.div_ceil(64) as usize;
    if hosts == 0 || hosts.saturating_mul(words).saturating_mul(8) > MEMORY {
        return None;
    }
    Some((m / (SPREAD * hosts as u64)) as usize)
}

/// `a mod m` by Barrett reduction: a multiply instead of a division, for the `a < 2^52`
/// (a slot offset times an inverse or a skip, both below `2^25`) the sieve needs.
#[derive(Clone, Copy)]
pub(super) struct Modulus {
    m: u64,
    /// `floor((2^64 - 1) / m)`.
    mu: u64,
}

impl Modulus {
    pub(super) fn new(m: u64) -> Self {
        Modulus {
            m,
            mu: u64::MAX / m,
        }
    }

    #[inline]
    pub(super) fn reduce(self, a: u64) -> u64 {
        // `q` is `floor(a / m)` or one less, so one subtraction at most remains; as a
        // minimum (`r - m` wraps when `r < m`), so that no branch depends on `a`.
        let q = ((u128::from(a) * u128::from(self.mu)) >> 64) as u64;
        let r = a - q * self.m;
        r.min(r.wrapping_sub(self.m))
    }
}

/// Each host's bitmap of the positions of the slots that were empty at the switch.
pub(super) struct Sieve {
    modulus: Modulus,
    /// Words per host.
    words: usize,
    /// Host `r`'s bitmap is `bits[r * words..(r + 1) * words]`; bit `p` is the slot at
    /// position `p` of its permutation.
    bits: Vec<u64>,
    /// The next position each host looks at.
    next: Vec<u64>,
}

impl Sieve {
    /// The sieve of these hosts (by rank, cursors where probing left them) over the
    /// slots not set in `occupied`.
    pub(super) fn new(hosts: &[Permutation], occupied: &[u64], m: u64) -> Sieve {
        let modulus = Modulus::new(m);
        let empty: Vec<u64> = occupied
            .iter()
            .enumerate()
            .flat_map(|(i, &word)| {
                let mut free = !word;
                std::iter::from_fn(move || {
                    (free != 0).then(|| {
                        let bit = free.trailing_zeros();
                        free &= free - 1;
                        i as u64 * 64 + u64::from(bit)
                    })
                })
            })
            .take_while(|&x| x < m)
            .collect();
        let words = m.div_ceil(64) as usize;
        let mut bits = vec![0u64; hosts.len() * words];
        let mut next = Vec::with_capacity(hosts.len());
        for (host, row) in hosts.iter().zip(bits.chunks_exact_mut(words)) {
            next.push(host.position(host.cursor, m));
            for &x in &empty {
                let mut from_offset = x + m - host.offset;
                if from_offset >= m {
                    from_offset -= m;
                }
                let p = modulus.reduce(from_offset * host.inverse) as usize;
                row[p / 64] |= 1 << (p % 64);
            }
        }
        Sieve {
            modulus,
            words,
            bits,
            next,
        }
    }

    /// Claims host `rank`'s next slot, the first empty one from its cursor on, and
    /// marks it in `occupied`. `None` only if no slot is empty.
    pub(super) fn claim(
        &mut self,
        rank: usize,
        host: &Permutation,
        occupied: &mut [u64],
    ) -> Option<usize> {
        let row = self.bits.get(rank * self.words..(rank + 1) * self.words)?;
        let mut p = *self.next.get(rank)? as usize;
        loop {
            let mut i = p / 64;
            let mut word = row.get(i)? & (u64::MAX << (p % 64));
            while word == 0 {
                i += 1;
                word = *row.get(i)?;
            }
            p = i * 64 + word.trailing_zeros() as usize;
            let mut slot = self.modulus.reduce(p as u64 * host.skip) + host.offset;
            if slot >= self.modulus.m {
                slot -= self.modulus.m;
            }
            let slot = slot as usize;
            p += 1;
            let cell = occupied.get_mut(slot / 64)?;
            let bit = 1u64 << (slot % 64);
            if *cell & bit == 0 {
                *cell |= bit;
                self.next[rank] = p as u64;
                return Some(slot);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn barrett_reduction_is_the_remainder() {
        for m in [2u64, 3, 1009, 65_537, 1_310_723, 4_194_319, 16_777_259] {
            let modulus = Modulus::new(m);
            let big = (m - 1) * (m - 1);
            for a in [0, 1, m - 1, m, m + 1, 2 * m - 1, big, big - 1, 1 << 51] {
                assert_eq!(modulus.reduce(a), a % m, "{a} mod {m}");
            }
        }
    }

    #[test]
    fn the_sieve_is_used_while_its_bitmaps_fit() {
        assert_eq!(threshold(8, 65_537), Some(1024));
        assert_eq!(threshold(511, 65_537), Some(16));
        assert_eq!(threshold(512, 65_537), None);
        assert_eq!(threshold(127, 262_147), Some(258));
        assert_eq!(threshold(128, 262_147), None);
        assert_eq!(threshold(0, 7), None);
    }
}
