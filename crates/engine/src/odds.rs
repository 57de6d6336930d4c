//! Exact odds (SPEC §4.3): P(max_pumps ≥ k) = C(25−k, M) / C(25, M).

use crate::Difficulty;
use crate::tables::{max_pumps_limit, pumps_at_least};

/// Binomial coefficient C(n, k) for n ≤ 25 (exact in u64).
fn choose(n: usize, k: usize) -> u64 {
    if k > n {
        return 0;
    }
    let k = k.min(n - k);
    (0..k).fold(1u64, |acc, i| acc * (n - i) as u64 / (i + 1) as u64)
}

/// The probability as a fraction `numerator / C(25, M)`, exact.
pub fn at_least_fraction(difficulty: Difficulty, k: usize) -> (u64, u64) {
    let m = difficulty.pops();
    let denominator = choose(25, m);
    if k > max_pumps_limit(difficulty) {
        return (0, denominator);
    }
    (choose(25 - k, m), denominator)
}

/// P(max_pumps ≥ k).
pub fn p_at_least(difficulty: Difficulty, k: usize) -> f64 {
    let (n, d) = at_least_fraction(difficulty, k);
    n as f64 / d as f64
}

/// P(max_pumps = k).
pub fn p_exactly(difficulty: Difficulty, k: usize) -> f64 {
    let (a, d) = at_least_fraction(difficulty, k);
    let (b, _) = at_least_fraction(difficulty, k + 1);
    (a - b) as f64 / d as f64
}

/// Theoretical mean gap between two rounds of exactly `max_pumps = k`: 1 / P(exactly k).
pub fn mean_gap_exactly(difficulty: Difficulty, k: usize) -> Option<f64> {
    let p = p_exactly(difficulty, k);
    (p > 0.0).then(|| 1.0 / p)
}

/// P(round multiplier ≥ threshold): the chance one round is a "hit" of that tier.
pub fn p_result_at_least(difficulty: Difficulty, threshold: f64) -> f64 {
    match pumps_at_least(difficulty, threshold) {
        Some(k) => p_at_least(difficulty, k),
        None => 0.0,
    }
}

/// Expected gap between hits of a tier: 1 / P(result ≥ threshold); `None` when unreachable.
pub fn expected_gap_at_least(difficulty: Difficulty, threshold: f64) -> Option<f64> {
    let p = p_result_at_least(difficulty, threshold);
    (p > 0.0).then(|| 1.0 / p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_examples_are_exact() {
        // expert 11200.65 (k = 12): 220 / 3268760
        let (a, d) = at_least_fraction(Difficulty::Expert, 12);
        let (b, _) = at_least_fraction(Difficulty::Expert, 13);
        assert_eq!((a - b, d), (220, 3_268_760));
        // expert 1066.73: expected gap 3268760 / 3003 ≈ 1088.5
        let gap = expected_gap_at_least(Difficulty::Expert, 1066.73).unwrap();
        assert!((gap - 3_268_760.0 / 3003.0).abs() < 1e-9);
        assert!((gap - 1088.5).abs() < 0.05);
    }

    #[test]
    fn exact_probabilities_sum_to_one() {
        for d in Difficulty::ALL {
            let total: f64 = (0..=max_pumps_limit(d)).map(|k| p_exactly(d, k)).sum();
            assert!((total - 1.0).abs() < 1e-12, "{d}: {total}");
            assert_eq!(p_at_least(d, 0), 1.0);
            assert_eq!(p_at_least(d, max_pumps_limit(d) + 1), 0.0);
        }
    }
}
