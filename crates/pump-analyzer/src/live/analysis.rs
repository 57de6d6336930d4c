//! The analyses players use to time their sessions (SPEC §3.2): tier cadence (hits are rounds
//! *at or above* a threshold) and pinned-multiplier gap metrics (rounds *exactly at* a
//! multiplier), each next to the game's exact odds (SPEC §4.3). Pure functions over rounds.

use pump_engine::Difficulty;
use pump_engine::odds::{expected_gap_at_least, mean_gap_exactly, p_exactly, p_result_at_least};
use pump_engine::tables::{cents, pumps_for_multiplier};
use serde::Serialize;

use crate::store::RoundScan;
use crate::store::model::Round;

/// One gap between consecutive hits, ending at `nonce`.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Gap {
    pub gap: i64,
    /// `gap − expected_gap` (positive: the hit came later than average).
    #[schema(required = true)]
    pub deviation: Option<f64>,
    pub nonce: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct TierCadence {
    pub tier: f64,
    pub hits: usize,
    #[schema(required = true)]
    pub last_hit_nonce: Option<i64>,
    /// Last observed nonce − last hit nonce (rounds since the last hit, heartbeats included).
    #[schema(required = true)]
    pub current_streak: Option<i64>,
    /// Average rounds between hits, 1 / P(result ≥ tier): an average, not a prediction.
    #[schema(required = true)]
    pub expected_gap: Option<f64>,
    /// `expected_gap − current_streak`: positive "due in", negative "overdue by" (on average).
    #[schema(required = true)]
    pub delta_to_expected: Option<f64>,
    pub last_gaps: Vec<Gap>,
    #[schema(required = true)]
    pub mean_gap: Option<f64>,
    #[schema(required = true)]
    pub median_gap: Option<f64>,
    /// How many of `last_gaps` lie within ±band of `expected_gap`.
    pub within_band: usize,
    /// Hits among the last (up to) 1,000 observed rounds divided by their number.
    #[schema(required = true)]
    pub hit_rate_last_1000: Option<f64>,
    pub rounds_in_window: usize,
    /// P(result ≥ tier) for comparison with `hit_rate_last_1000`.
    pub expected_hit_rate: f64,
}

fn median(sorted: &[i64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2] as f64),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) as f64 / 2.0),
    }
}

fn mean(values: &[i64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<i64>() as f64 / values.len() as f64)
}

/// Gaps between consecutive nonces, each with the nonce it ended at.
fn gaps(nonces: &[i64]) -> Vec<(i64, i64)> {
    nonces.windows(2).map(|w| (w[1] - w[0], w[1])).collect()
}

/// Cadence of each tier over a stream's rounds.
pub fn cadence(
    scan: &RoundScan,
    last_observed_nonce: Option<i64>,
    difficulty: Difficulty,
    tiers: &[f64],
    k: usize,
    band: f64,
) -> Vec<TierCadence> {
    tiers
        .iter()
        .map(|&tier| {
            let threshold = cents(tier);
            let hit = |r: &Round| cents(r.round_result) >= threshold;
            let nonces: Vec<i64> = scan.hits.iter().filter(|r| hit(r)).map(|r| r.nonce).collect();
            let expected_gap = expected_gap_at_least(difficulty, tier);
            let all_gaps = gaps(&nonces);
            let last: Vec<Gap> = all_gaps[all_gaps.len().saturating_sub(k)..]
                .iter()
                .map(|&(gap, nonce)| Gap { gap, deviation: expected_gap.map(|e| gap as f64 - e), nonce })
                .collect();
            let within_band = match expected_gap {
                Some(e) => last.iter().filter(|g| (g.gap as f64 - e).abs() <= band).count(),
                None => 0,
            };
            let mut sorted: Vec<i64> = all_gaps.iter().map(|g| g.0).collect();
            sorted.sort_unstable();
            let last_hit = nonces.last().copied();
            let current_streak = match (last_observed_nonce, last_hit) {
                (Some(observed), Some(hit)) => Some(observed - hit),
                // No hit yet: every observed round since the stream's first one is part of the streak.
                (Some(observed), None) => scan.first_nonce.map(|first| observed - first + 1),
                _ => None,
            };
            let window_hits = scan.recent.iter().filter(|r| hit(r)).count();
            TierCadence {
                tier,
                hits: nonces.len(),
                last_hit_nonce: last_hit,
                current_streak,
                expected_gap,
                delta_to_expected: match (expected_gap, current_streak) {
                    (Some(e), Some(s)) => Some(e - s as f64),
                    _ => None,
                },
                last_gaps: last,
                mean_gap: mean(&sorted),
                median_gap: median(&sorted),
                within_band,
                hit_rate_last_1000: (!scan.recent.is_empty()).then(|| window_hits as f64 / scan.recent.len() as f64),
                rounds_in_window: scan.recent.len(),
                expected_hit_rate: p_result_at_least(difficulty, tier),
            }
        })
        .collect()
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[schema(as = PinnedMultiplier)]
pub struct MultiplierMetrics {
    pub multiplier: f64,
    pub count: usize,
    #[schema(required = true)]
    pub last_nonce: Option<i64>,
    #[schema(required = true)]
    pub mean_gap: Option<f64>,
    #[schema(required = true)]
    pub median_gap: Option<f64>,
    #[schema(required = true)]
    pub p90_gap: Option<f64>,
    #[schema(required = true)]
    pub max_gap: Option<i64>,
    /// 1 / P(max_pumps = k) for this multiplier's k; `None` when it is not on the table.
    #[schema(required = true)]
    pub theoretical_mean_gap: Option<f64>,
    #[schema(required = true)]
    pub probability: Option<f64>,
    /// Last observed nonce − last nonce of this multiplier.
    #[schema(required = true)]
    pub current_gap: Option<i64>,
}

/// Gap statistics of rounds exactly at each pinned multiplier (2 decimals).
pub fn multiplier_metrics(
    rounds: &[Round],
    last_observed_nonce: Option<i64>,
    difficulty: Difficulty,
    multipliers: &[f64],
) -> Vec<MultiplierMetrics> {
    multipliers
        .iter()
        .map(|&m| {
            let target = cents(m);
            let nonces: Vec<i64> = rounds.iter().filter(|r| cents(r.round_result) == target).map(|r| r.nonce).collect();
            let mut sorted: Vec<i64> = gaps(&nonces).into_iter().map(|g| g.0).collect();
            sorted.sort_unstable();
            // Nearest-rank 90th percentile.
            let p90 = (!sorted.is_empty()).then(|| sorted[(sorted.len() * 9).div_ceil(10) - 1] as f64);
            let k = pumps_for_multiplier(difficulty, m);
            let last = nonces.last().copied();
            MultiplierMetrics {
                multiplier: m,
                count: nonces.len(),
                last_nonce: last,
                mean_gap: mean(&sorted),
                median_gap: median(&sorted),
                p90_gap: p90,
                max_gap: sorted.last().copied(),
                theoretical_mean_gap: k.and_then(|k| mean_gap_exactly(difficulty, k)),
                probability: k.map(|k| p_exactly(difficulty, k)),
                current_gap: last.zip(last_observed_nonce).map(|(l, o)| o - l),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rounds(hits: &[(i64, f64)], upto: i64) -> Vec<Round> {
        (1..=upto)
            .map(|n| Round { nonce: n, round_result: hits.iter().find(|h| h.0 == n).map_or(1.63, |h| h.1) })
            .collect()
    }

    #[test]
    fn cadence_counts_hits_at_or_above_the_tier() {
        let all = rounds(&[(100, 1066.73), (1200, 3200.18), (2500, 1066.73), (2600, 400.02)], 3000);
        let scan = RoundScan {
            hits: all.iter().filter(|r| r.round_result >= 400.0).copied().collect(),
            recent: all[2000..].to_vec(),
            first_nonce: Some(1),
            rounds_count: 3000,
        };
        let report = cadence(&scan, Some(3000), Difficulty::Expert, &[1066.73], 10, 400.0);
        let t = &report[0];
        assert_eq!(t.hits, 3);
        assert_eq!(t.last_hit_nonce, Some(2500));
        assert_eq!(t.current_streak, Some(500));
        let expected = 3_268_760.0 / 3003.0;
        assert!((t.expected_gap.unwrap() - expected).abs() < 1e-9);
        assert_eq!(t.last_gaps.iter().map(|g| (g.gap, g.nonce)).collect::<Vec<_>>(), vec![(1100, 1200), (1300, 2500)]);
        assert!((t.last_gaps[0].deviation.unwrap() - (1100.0 - expected)).abs() < 1e-9);
        assert_eq!(t.within_band, 2);
        assert_eq!(t.median_gap, Some(1200.0));
        assert_eq!(t.hit_rate_last_1000, Some(1.0 / 1000.0));
        assert!((t.delta_to_expected.unwrap() - (expected - 500.0)).abs() < 1e-9);
    }

    #[test]
    fn metrics_use_exact_multipliers_and_theoretical_gaps() {
        let all = rounds(&[(10, 11200.65), (30, 11200.65), (35, 48536.13), (70, 11200.65)], 100);
        let m = multiplier_metrics(&all, Some(100), Difficulty::Expert, &[11200.65]);
        assert_eq!(m[0].count, 3);
        assert_eq!(m[0].last_nonce, Some(70));
        assert_eq!(m[0].max_gap, Some(40));
        assert_eq!(m[0].mean_gap, Some(30.0));
        assert_eq!(m[0].p90_gap, Some(40.0));
        assert_eq!(m[0].current_gap, Some(30));
        assert!((m[0].theoretical_mean_gap.unwrap() - 3_268_760.0 / 220.0).abs() < 1e-6);
    }
}
