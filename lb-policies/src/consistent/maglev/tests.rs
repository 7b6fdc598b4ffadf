//! Unit tests of the Maglev build: sizes, quotas, turns, the sieve and tail shortcuts.

use super::*;

#[test]
fn sizes_are_primes_in_steps() {
    for (hosts, size) in [
        (0, 65_537),
        (1, 65_537),
        (32, 65_537),
        (57, 65_537),
        (58, 262_147),
        (209, 262_147),
        (210, 1_310_723),
        (467, 1_310_723),
        (1024, 1_310_723),
        (100_000, 1_310_723),
    ] {
        assert_eq!(table_size_for(hosts), size, "{hosts} hosts");
    }
    for m in SIZE_STEPS.into_iter().chain([MAX_TABLE_SIZE]) {
        assert!(is_prime(m as u64), "{m}");
    }
    assert!(!is_prime(MAX_TABLE_SIZE as u64 - 2));
    assert!((MAX_TABLE_SIZE - 42..MAX_TABLE_SIZE).all(|m| !is_prime(m as u64)));
}

#[test]
fn quotas_are_hamilton_apportionment() {
    // 10 slots over weights 1, 1, 1: 3.33 each; the extra slot to rank 0.
    assert_eq!(quotas(&[1, 1, 1], 10), vec![4, 3, 3]);
    // 7 slots over 3:1 -> 5.25 and 1.75: remainders .25 and .75.
    assert_eq!(quotas(&[3, 1], 7), vec![5, 2]);
}

#[test]
fn turns_are_spread_evenly_in_rank_order() {
    // Quotas 4, 2, 1: four rounds; rank 1 in rounds 1 and 3, rank 2 in round 3.
    assert_eq!(turn_order::<u16>(&[4, 2, 1]), vec![0, 0, 1, 0, 0, 1, 2]);
    // Equal quotas: round-robin.
    assert_eq!(turn_order::<u16>(&[2, 2, 2]), vec![0, 1, 2, 0, 1, 2]);
    // Quota 3 of 5 rounds: rounds floor((5(j+1) - 1) / 3) = 1, 3, 4.
    assert_eq!(turn_order::<u16>(&[5, 3]), vec![0, 0, 1, 0, 0, 1, 0, 1]);
    assert_eq!(turn_order::<u16>(&[0, 1]), vec![1]);
}

/// Plain Maglev probing all the way, as a reference for `fill`'s shortcuts.
fn fill_by_probing(ids: &[BackendId], weights: &[Weight], size: usize) -> Vec<u16> {
    let m = size as u64;
    let mut by_id: Vec<usize> = (0..ids.len()).collect();
    by_id.sort_unstable_by_key(|&i| ids[i]);
    let w: Vec<u64> = by_id.iter().map(|&i| u64::from(weights[i].get())).collect();
    let mut hosts: Vec<Permutation> = by_id.iter().map(|&i| Permutation::of(ids[i], m)).collect();
    let mut occupied = vec![0u64; size.div_ceil(64)];
    let mut slots = vec![0u16; size];
    for rank in turn_order::<u16>(&quotas(&w, size)) {
        let r = rank as usize;
        slots[hosts[r].claim_by_probing(&mut occupied, m)] = by_id[r] as u16;
    }
    slots
}

#[test]
fn the_shortcuts_claim_what_probing_claims() {
    // Small weight spreads (turns generated round by round) and a skewed one (turns
    // listed); fills that finish with the sieve, and 600 hosts of 65 537 slots, too
    // many for its bitmaps, that finish by positions.
    for (n, size, skew) in [
        (1, 2, 1),
        (3, 7, 1),
        (5, 61, 1),
        (7, 1009, 1),
        (8, 65_537, 1),
        (8, 65_537, 40),
        (40, 4099, 1),
        (600, 65_537, 1),
    ] {
        let ids: Vec<BackendId> = (0..n as u64)
            .map(|i| BackendId::from_raw(mix64(i + 99)))
            .collect();
        let weights: Vec<Weight> = (0..n as u64)
            .map(|i| Weight::new(if i == 0 { skew } else { i % 3 + 1 }).unwrap())
            .collect();
        let Slots::Narrow(fast) = Slots::build(&ids, &weights, size) else {
            panic!("narrow");
        };
        assert_eq!(
            fast.to_vec(),
            fill_by_probing(&ids, &weights, size),
            "{n} hosts, {size} slots, skew {skew}"
        );
    }
    assert_eq!(inverse_mod(3, 7), 5);
    assert_eq!(inverse_mod(65_536, 65_537), 65_536);
}

#[test]
fn every_slot_is_filled_with_exact_quotas() {
    let ids: Vec<BackendId> = (0..5u64).map(|i| BackendId::from_raw(mix64(i))).collect();
    let weights: Vec<Weight> = [1, 2, 3, 4, 5].map(|w| Weight::new(w).unwrap()).to_vec();
    let Slots::Narrow(slots) = Slots::build(&ids, &weights, 1009) else {
        panic!("5 hosts use 2-byte entries");
    };
    let mut counts = [0usize; 5];
    for &s in slots.iter() {
        counts[s as usize] += 1;
    }
    // 1009 * w / 15 = 67.27, 134.53, 201.8, 269.07, 336.33: floors sum to 1007;
    // the two extra slots go to the largest remainders (.8 and .53).
    assert_eq!(counts, [67, 135, 202, 269, 336]);
}

/// The rendezvous fill by its definition: every (host, position) pair in order of
/// (round, rank), round `floor(p * w_max / w)`, taking the slot when it is empty and
/// the host has quota left.
fn fill_by_rounds(ids: &[BackendId], weights: &[Weight], size: usize) -> Vec<u16> {
    let m = size as u64;
    let mut by_id: Vec<usize> = (0..ids.len()).collect();
    by_id.sort_unstable_by_key(|&i| ids[i]);
    let w: Vec<u64> = by_id.iter().map(|&i| u64::from(weights[i].get())).collect();
    let w_max = w.iter().copied().max().unwrap();
    let mut left = quotas(&w, size);
    let mut pairs = Vec::new();
    for (r, &i) in by_id.iter().enumerate() {
        let p = Permutation::of(ids[i], m);
        for pos in 0..m {
            pairs.push((pos * w_max / w[r], r, (p.offset + pos * p.skip) % m));
        }
    }
    pairs.sort_unstable();
    let mut slots = vec![u16::MAX; size];
    for (_, r, x) in pairs {
        if slots[x as usize] == u16::MAX && left[r] > 0 {
            slots[x as usize] = by_id[r] as u16;
            left[r] -= 1;
        }
    }
    slots
}

/// `rendezvous::fill` for these hosts, settling once `empty * hungry <= budget`.
fn fill_rendezvous(ids: &[BackendId], weights: &[Weight], size: usize, budget: u128) -> Vec<u16> {
    let m = size as u64;
    let mut by_id: Vec<usize> = (0..ids.len()).collect();
    by_id.sort_unstable_by_key(|&i| ids[i]);
    let w: Vec<u64> = by_id.iter().map(|&i| u64::from(weights[i].get())).collect();
    let perms: Vec<Permutation> = by_id.iter().map(|&i| Permutation::of(ids[i], m)).collect();
    let entries: Vec<u16> = by_id.iter().map(|&i| i as u16).collect();
    rendezvous::fill(&perms, &w, &quotas(&w, size), &entries, m, budget)
}

fn hosts_for_test(n: usize, skew: u64) -> (Vec<BackendId>, Vec<Weight>) {
    let ids = (0..n as u64)
        .map(|i| BackendId::from_raw(mix64(i + 7)))
        .collect();
    let weights = (0..n as u64)
        .map(|i| Weight::new(if i == 0 { skew } else { i % 3 + 1 }).unwrap())
        .collect();
    (ids, weights)
}

#[test]
fn the_rendezvous_fill_is_its_definition_whenever_it_settles() {
    // Equal weights (rounds of one look per host) and unequal ones (paced looks), small
    // and skewed (skews of 9 and 1000 take the queue instead of rounds); settling never
    // (looking to the end), at the default point (`size / 2`), at `size`, and at once
    // (deferred acceptance places every slot).
    for (n, size, skew, equal) in [
        (1, 2, 1, true),
        (3, 7, 1, true),
        (5, 61, 1, false),
        (7, 1009, 1, true),
        (7, 1009, 1, false),
        (40, 4099, 1, true),
        (40, 4099, 9, false),
        (30, 4099, 1000, false),
        (300, 4099, 1, true),
    ] {
        let (ids, mut weights) = hosts_for_test(n, skew);
        if equal {
            weights = vec![Weight::new(2).unwrap(); n];
        }
        let expected = fill_by_rounds(&ids, &weights, size);
        for budget in [0, size as u128 / 2, size as u128, u128::MAX] {
            assert_eq!(
                fill_rendezvous(&ids, &weights, size, budget),
                expected,
                "{n} hosts, {size} slots, skew {skew}, equal {equal}, settle at {budget}"
            );
        }
    }
}

#[test]
fn larger_rendezvous_fills_do_not_depend_on_when_they_settle() {
    let (ids, weights) = hosts_for_test(60, 1);
    let looked = fill_rendezvous(&ids, &weights, 20_011, 0);
    assert_eq!(fill_rendezvous(&ids, &weights, 20_011, 20_011 / 2), looked);
    assert_eq!(fill_rendezvous(&ids, &weights, 20_011, 20_011), looked);
    assert_eq!(fill_rendezvous(&ids, &weights, 20_011, u128::MAX), looked);
    let equal = vec![Weight::ONE; 60];
    let looked = fill_rendezvous(&ids, &equal, 20_011, 0);
    assert_eq!(fill_rendezvous(&ids, &equal, 20_011, 20_011 / 2), looked);
    assert_eq!(fill_rendezvous(&ids, &equal, 20_011, u128::MAX), looked);
}

#[test]
fn long_equal_weight_fills_are_their_definition() {
    // 8 hosts of 2 501 slots: dozens of blocks of 64 rounds without quota checks
    // (takes counted per block), then blocks where hosts fill up mid-block, their
    // takes noted as bits either way.
    let (ids, _) = hosts_for_test(8, 1);
    let equal = vec![Weight::ONE; 8];
    let expected = fill_by_rounds(&ids, &equal, 20_011);
    for budget in [0, 20_011 / 2, u128::MAX] {
        assert_eq!(
            fill_rendezvous(&ids, &equal, 20_011, budget),
            expected,
            "{budget}"
        );
    }
}

#[test]
fn tables_above_the_maglev_size_are_rendezvous_fills_with_exact_quotas() {
    let (ids, weights) = hosts_for_test(70, 4);
    let Slots::Narrow(slots) = Slots::build(&ids, &weights, 262_147) else {
        panic!("narrow");
    };
    assert_eq!(slots.to_vec(), fill_rendezvous(&ids, &weights, 262_147, 0));
    let mut counts = vec![0u64; 70];
    for &s in slots.iter() {
        counts[usize::from(s)] += 1;
    }
    let w: Vec<u64> = weights.iter().map(|w| u64::from(w.get())).collect();
    let total: u64 = w.iter().sum();
    for (i, &c) in counts.iter().enumerate() {
        assert!(
            (c * total).abs_diff(262_147 * w[i]) < total,
            "host {i}: {c} slots"
        );
    }
}
