//! The payout tables (SPEC §4.2): `multipliers(d)[max_pumps]`.
//!
//! Public implementations disagree on two cells: easy[15] (2.43 vs 2.45) and hard[12] (40.49 vs
//! 40.46). The values below follow the 0.98 / P(reach) rule for those cells. A correction is a
//! one-line change here; nothing else in the program holds a multiplier.

use crate::Difficulty;

const EASY: [f64; 25] = [
    1.00, 1.02, 1.06, 1.11, 1.17, 1.23, 1.29, 1.36, 1.44, 1.53, 1.62, 1.75, 1.88, 2.00, 2.23, 2.45, 2.72, 3.05, 3.50,
    4.08, 5.00, 6.25, 8.00, 12.25, 24.50,
];
const MEDIUM: [f64; 23] = [
    1.00, 1.11, 1.27, 1.46, 1.69, 1.98, 2.33, 2.76, 3.31, 4.03, 4.95, 6.19, 7.87, 10.25, 13.66, 18.78, 26.83, 38.76,
    64.40, 112.70, 225.40, 563.50, 2254.00,
];
const HARD: [f64; 21] = [
    1.00, 1.23, 1.55, 1.98, 2.56, 3.36, 4.48, 6.08, 8.41, 11.92, 17.00, 26.01, 40.46, 65.74, 112.70, 206.62, 413.23,
    929.77, 2479.40, 8677.90, 52067.40,
];
const EXPERT: [f64; 16] = [
    1.00, 1.63, 2.80, 4.95, 9.08, 17.34, 34.68, 73.21, 164.72, 400.02, 1066.73, 3200.18, 11200.65, 48536.13, 291216.80,
    3203384.80,
];

/// The multiplier paid for each possible `max_pumps` (index), 26 − M entries.
pub fn multipliers(difficulty: Difficulty) -> &'static [f64] {
    match difficulty {
        Difficulty::Easy => &EASY,
        Difficulty::Medium => &MEDIUM,
        Difficulty::Hard => &HARD,
        Difficulty::Expert => &EXPERT,
    }
}

/// The largest `max_pumps` of a difficulty: 25 − M.
pub fn max_pumps_limit(difficulty: Difficulty) -> usize {
    25 - difficulty.pops()
}

/// The `max_pumps` whose multiplier equals `multiplier` to two decimals, if any.
/// A multiplier as whole cents: multipliers are compared to 2 decimals, as the tables print them,
/// so 1066.73 typed by a user, sent by a bot or computed here is the same value.
pub fn cents(multiplier: f64) -> i64 {
    (multiplier * 100.0).round() as i64
}

pub fn pumps_for_multiplier(difficulty: Difficulty, multiplier: f64) -> Option<usize> {
    let target = cents(multiplier);
    multipliers(difficulty).iter().position(|m| cents(*m) == target)
}

/// The smallest `max_pumps` whose multiplier is at least `threshold` (a "hit" of that tier).
pub fn pumps_at_least(difficulty: Difficulty, threshold: f64) -> Option<usize> {
    let threshold = cents(threshold);
    multipliers(difficulty).iter().position(|m| cents(*m) >= threshold)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_table_has_26_minus_m_entries_and_rises() {
        for d in Difficulty::ALL {
            let table = multipliers(d);
            assert_eq!(table.len(), 26 - d.pops(), "{d}");
            assert_eq!(table[0], 1.0);
            assert!(table.windows(2).all(|w| w[0] < w[1]), "{d} must rise");
        }
    }

    #[test]
    fn the_disputed_cells_follow_the_documented_rule() {
        assert_eq!(multipliers(Difficulty::Easy)[15], 2.45);
        assert_eq!(multipliers(Difficulty::Hard)[12], 40.46);
    }

    #[test]
    fn multipliers_map_back_to_pumps() {
        assert_eq!(pumps_for_multiplier(Difficulty::Expert, 11200.65), Some(12));
        assert_eq!(pumps_for_multiplier(Difficulty::Expert, 11200.6), None);
        assert_eq!(pumps_at_least(Difficulty::Expert, 1066.73), Some(10));
        assert_eq!(pumps_at_least(Difficulty::Expert, 1000.0), Some(10));
        assert_eq!(pumps_at_least(Difficulty::Expert, 1e9), None);
    }
}
