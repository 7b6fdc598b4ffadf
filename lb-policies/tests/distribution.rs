//! How picks are distributed: smooth weighted round-robin is exact over every cycle and
//! never bursts; random and P2C picks follow the weights (Pearson's chi-square test at
//! p = 0.001 over at least 100 000 picks).
//!
//! The random tests are deterministic (seeded policies, a seeded thread RNG, a fixed
//! proptest seed): each one checks a fixed set of configurations, and a biased
//! implementation fails them rather than failing one run in a thousand.

mod common;

use common::{chi_square, chi_square_critical_001, counts, pick, set_health, table};
use lb_core::{Balancer, Health, Policy};
use lb_policies::{PowerOfTwo, Random, RoundRobin};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

/// At least this many picks per chi-square test.
const PICKS: usize = 100_000;

#[test]
fn wilson_hilferty_errs_on_the_safe_side() {
    // Exact chi-square quantiles at p = 0.001, from statistical tables.
    for (df, exact) in [
        (1, 10.828),
        (2, 13.816),
        (3, 16.266),
        (10, 29.588),
        (30, 59.703),
    ] {
        let approx = chi_square_critical_001(df);
        assert!(
            approx >= exact && approx <= exact * 1.035,
            "df {df}: {approx}"
        );
    }
}

/// Picks `PICKS` hosts and asserts the counts fit `weight / usable weight` at p = 0.001.
fn assert_fits_weights<P: Policy>(b: &Balancer<P>) {
    let snap = b.table().snapshot();
    let usable: Vec<usize> = snap.usable().iter().map(|&i| i as usize).collect();
    let total = snap.usable_weight() as f64;
    let expected: Vec<f64> = (0..snap.len())
        .map(|i| match usable.contains(&i) {
            true => PICKS as f64 * f64::from(snap.weight(i).get()) / total,
            false => 0.0,
        })
        .collect();
    let observed = counts(b, PICKS);
    for (i, &n) in observed.iter().enumerate() {
        assert!(
            n == 0 || usable.contains(&i),
            "host {i} is not usable but was picked"
        );
    }
    if usable.len() < 2 {
        return;
    }
    let statistic = chi_square(&observed, &expected);
    let critical = chi_square_critical_001(usable.len() - 1);
    assert!(
        statistic < critical,
        "chi-square {statistic:.2} >= {critical:.2} (df {}): observed {observed:?}, expected {expected:?}",
        usable.len() - 1
    );
}

#[test]
fn random_is_uniform_over_survivors() {
    // relayd's forward scan would give host 4 (after the down host 3) a double share.
    let t = table(&[1; 10]);
    set_health(&t, 3, Health::Down);
    assert_fits_weights(&Balancer::new(&t, Random::with_seed(2024)));
}

#[test]
fn random_follows_weights() {
    let t = table(&[1, 2, 3, 5, 8, 13, 21]);
    set_health(&t, 2, Health::Down);
    assert_fits_weights(&Balancer::new(&t, Random::with_seed(7)));
}

#[test]
fn random_with_the_thread_rng_follows_weights() {
    // Random::new() draws from fastrand's thread-local generator: seed it for this
    // test thread so the test is reproducible.
    fastrand::seed(0x5eed);
    assert_fits_weights(&Balancer::new(table(&[1; 7]), Random::new()));
    assert_fits_weights(&Balancer::new(table(&[100, 1, 10, 1000]), Random::new()));
}

#[test]
fn idle_p2c_follows_weights() {
    // With every lease dropped at once all loads are 0: P2C keeps its first draw,
    // which is weighted.
    assert_fits_weights(&Balancer::new(
        table(&[4, 1, 1, 2]),
        PowerOfTwo::with_seed(99),
    ));
    assert_fits_weights(&Balancer::new(table(&[1; 5]), PowerOfTwo::with_seed(98)));
}

/// Weights, and which hosts are down (at least one host stays up).
fn weights_and_health(
    max_hosts: usize,
    max_weight: u16,
) -> impl Strategy<Value = (Vec<u16>, Vec<bool>)> {
    (1..=max_hosts)
        .prop_flat_map(move |n| {
            (
                prop::collection::vec(1..=max_weight, n),
                prop::collection::vec(any::<bool>(), n),
            )
        })
        .prop_map(|(w, mut down)| {
            let keep = w.len() / 2;
            down[keep] = false;
            (w, down)
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 12,
        rng_seed: RngSeed::Fixed(0x1b_5eed),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_picks_fit_weights((weights, down) in weights_and_health(12, 40), seed in any::<u64>()) {
        let t = table(&weights);
        for (i, _) in down.iter().enumerate().filter(|(_, d)| **d) {
            set_health(&t, i, Health::Down);
        }
        assert_fits_weights(&Balancer::new(&t, Random::with_seed(seed)));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Over k full cycles of S picks (S = the usable weights' sum) every usable host gets
    /// exactly k·weight picks, and a host is picked twice in a row only if no other
    /// host has more credit left in the cycle (weight minus picks so far).
    #[test]
    fn smooth_round_robin_is_exact(
        (weights, down) in weights_and_health(8, 12),
        cycles in 1usize..=3,
        live in any::<bool>(),
    ) {
        let t = table(&weights);
        for (i, _) in down.iter().enumerate().filter(|(_, d)| **d) {
            set_health(&t, i, Health::Down);
        }
        let policy = if live { RoundRobin::new().with_schedule_limit(0) } else { RoundRobin::new() };
        let b = Balancer::new(&t, policy);
        let usable: Vec<usize> = (0..weights.len()).filter(|&i| !down[i]).collect();
        let cycle: usize = usable.iter().map(|&i| usize::from(weights[i])).sum();

        let mut total = vec![0usize; weights.len()];
        let mut previous = None;
        for _ in 0..cycles {
            let mut credit: Vec<usize> = weights.iter().map(|&w| usize::from(w)).collect();
            for _ in 0..cycle {
                let h = pick(&b);
                prop_assert!(!down[h], "down host {} picked", h);
                if previous == Some(h) {
                    for &o in usable.iter().filter(|&&o| o != h) {
                        prop_assert!(
                            credit[o] <= credit[h],
                            "{} twice in a row while {} has more credit ({} > {})", h, o, credit[o], credit[h]
                        );
                    }
                }
                credit[h] -= 1;
                total[h] += 1;
                previous = Some(h);
            }
        }
        for &i in &usable {
            prop_assert_eq!(total[i], cycles * usize::from(weights[i]), "host {}", i);
        }
    }
}
