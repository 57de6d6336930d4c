//! Per-stream counters accumulated while a write transaction runs and written once per stream
//! just before COMMIT. Shared by both backends so their running aggregates agree exactly.

use pump_engine::tables::cents;

use crate::ingest::message::NewBet;

pub(crate) fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Per-stream changes accumulated while one job runs, written once per stream.
#[derive(Default)]
pub(crate) struct StreamDelta {
    pub(crate) seen_at: i64,
    pub(crate) bets: i64,
    pub(crate) highest: Option<f64>,
    pub(crate) lowest: Option<f64>,
    pub(crate) sum_multiplier: f64,
    pub(crate) amount: f64,
    pub(crate) payout: f64,
    pub(crate) max_nonce: i64,
    pub(crate) rounds: i64,
    /// (difficulty, multiplier in cents) → (bets, last bet id)
    pub(crate) multipliers: Vec<(&'static str, i64, i64, i64)>,
    pub(crate) checked: i64,
    pub(crate) matched: i64,
    /// Ids of the first and last bet stored (ids grow with every insert).
    pub(crate) first_id: Option<i64>,
    pub(crate) last_id: Option<i64>,
}

impl StreamDelta {
    pub(crate) fn add_bet(&mut self, bet: &NewBet, id: i64, verified: Option<bool>) {
        let r = bet.round_result;
        self.bets += 1;
        self.first_id = Some(self.first_id.map_or(id, |first| first.min(id)));
        self.last_id = Some(self.last_id.map_or(id, |last| last.max(id)));
        self.highest = Some(self.highest.map_or(r, |h| h.max(r)));
        self.lowest = Some(self.lowest.map_or(r, |l| l.min(r)));
        self.sum_multiplier += r;
        self.amount += bet.amount;
        self.payout += bet.payout;
        let name = bet.difficulty.as_str();
        let key = cents(r);
        match self.multipliers.iter_mut().find(|(d, c, _, _)| *d == name && *c == key) {
            Some(entry) => {
                entry.2 += 1;
                entry.3 = entry.3.max(id);
            }
            None => self.multipliers.push((name, key, 1, id)),
        }
        if let Some(matched) = verified {
            self.checked += 1;
            self.matched += i64::from(matched);
        }
    }
}
