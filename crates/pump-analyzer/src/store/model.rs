//! The records the storage layer hands out. They serialize straight into the JSON of SPEC §3.2
//! (snake_case, times as RFC 3339 UTC strings).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Unix microseconds → RFC 3339 with microseconds, UTC (`2026-11-23T10:00:00.000000Z`).
pub fn iso(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Seed-reveal verification of a stream (SPEC §3.3); absent while the seed is unknown.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Verified {
    pub checked: i64,
    pub matched: i64,
    pub mismatched: i64,
    /// Lowest-nonce bet whose recorded result differs from the engine's.
    pub first_mismatch: Option<Mismatch>,
    /// Bets still waiting for their check (a large stream is verified in the background).
    pub pending: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Mismatch {
    pub bet_id: i64,
    pub antebot_bet_id: String,
    pub nonce: i64,
    pub difficulty: String,
    pub round_result: f64,
    pub expected_multiplier: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StreamSummary {
    pub id: Uuid,
    pub server_seed_hashed: String,
    pub client_seed: String,
    pub created_at: String,
    pub last_seen_at: String,
    pub total_bets: i64,
    pub highest_multiplier: Option<f64>,
    pub last_observed_nonce: Option<i64>,
    pub notes: Option<String>,
    pub verified: Option<Verified>,
    pub seed_revealed: bool,
    pub rounds_count: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StreamDetail {
    #[serde(flatten)]
    pub summary: StreamSummary,
    pub lowest_multiplier: Option<f64>,
    pub average_multiplier: Option<f64>,
    pub total_amount: f64,
    pub total_payout: f64,
    pub difficulty_breakdown: BTreeMap<String, i64>,
    /// The difficulty of the most recent bet (used for odds); `None` before any bet.
    pub difficulty: Option<String>,
    /// The revealed server seed, once known.
    pub server_seed: Option<String>,
    pub recent_bets: Vec<BetRecord>,
}

/// One stored bet as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BetRecord {
    pub id: i64,
    pub stream_id: Uuid,
    pub antebot_bet_id: String,
    pub received_at: String,
    pub date_time: Option<String>,
    pub nonce: i64,
    pub amount: f64,
    pub payout: f64,
    pub payout_multiplier: f64,
    pub difficulty: String,
    pub round_target: Option<f64>,
    pub round_result: f64,
    /// Nonces since the previous bet of the same 2-decimal multiplier in the whole stream.
    pub distance_prev: Option<i64>,
    /// Seed-reveal check: `None` until the seed is known, then whether the engine agrees.
    pub verified: Option<bool>,
    pub expected_multiplier: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BetOrder {
    NonceAsc,
    IdDesc,
}

#[derive(Debug, Clone)]
pub struct BetQuery {
    pub limit: i64,
    pub offset: i64,
    pub min_multiplier: Option<f64>,
    pub difficulty: Option<String>,
    pub order: BetOrder,
}

#[derive(Debug, Clone, Serialize)]
pub struct BetPage {
    pub bets: Vec<BetRecord>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
    pub stream_id: Uuid,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tail {
    pub bets: Vec<BetRecord>,
    pub last_id: i64,
    pub has_more: bool,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Round {
    pub nonce: i64,
    pub round_result: f64,
}

/// A revealed seed and the streams it opened.
#[derive(Debug, Clone, Serialize)]
pub struct RevealedSeed {
    pub server_seed: String,
    pub server_seed_hashed: String,
    pub revealed_at: String,
    pub streams: Vec<Uuid>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
}

/// One hit of a run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunHit {
    pub nonce: i64,
    pub max_pumps: i64,
    pub max_multiplier: f64,
    pub pop_point: i64,
}

/// A stored run (SPEC §4.5); `summary` and `targets` are kept as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub id: Uuid,
    pub created_at: String,
    pub server_seed_sha256: String,
    pub server_seed: String,
    pub client_seed: String,
    pub nonce_start: i64,
    pub nonce_end: i64,
    pub difficulty: String,
    pub targets: Vec<f64>,
    pub duration_ms: i64,
    pub engine_version: String,
    pub summary: serde_json::Value,
}

/// What `Store::delete_stream` removed.
#[derive(Debug, Clone, Copy)]
pub struct Deleted {
    pub bets: i64,
}

/// A stored browser session. Times are Unix microseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    /// SHA-256 (hex) of the cookie's secret part.
    pub secret_hash: String,
    /// The identifier shown in JSON (`session_id`); unrelated to the cookie secret.
    pub public_id: String,
    pub csrf_token: String,
    pub created_at: i64,
    pub last_activity: i64,
    /// Logged in with `DASHBOARD_PASSWORD`.
    pub authenticated: bool,
}

impl StreamSummary {
    /// A stream created now, before any bet or round is counted (the live `stream` event).
    pub fn created(id: Uuid, server_seed_hashed: &str, client_seed: &str, now: i64, seed_revealed: bool) -> Self {
        StreamSummary {
            id,
            server_seed_hashed: server_seed_hashed.to_string(),
            client_seed: client_seed.to_string(),
            created_at: iso(now),
            last_seen_at: iso(now),
            total_bets: 0,
            highest_multiplier: None,
            last_observed_nonce: None,
            notes: None,
            verified: None,
            seed_revealed,
            rounds_count: 0,
        }
    }
}

impl BetRecord {
    /// The record of a bet just stored with `id` (the live `bet` event).
    pub fn stored(
        id: i64,
        stream_id: Uuid,
        bet: &crate::live::message::NewBet,
        received_at: i64,
        distance_prev: Option<i64>,
        expected_multiplier: Option<f64>,
    ) -> Self {
        BetRecord {
            id,
            stream_id,
            antebot_bet_id: bet.antebot_bet_id.clone(),
            received_at: iso(received_at),
            date_time: bet.date_time.map(|d| iso(d.timestamp_micros())),
            nonce: bet.nonce,
            amount: bet.amount,
            payout: bet.payout,
            payout_multiplier: bet.payout_multiplier,
            difficulty: bet.difficulty.as_str().to_string(),
            round_target: bet.round_target,
            round_result: bet.round_result,
            distance_prev,
            verified: expected_multiplier
                .map(|e| pump_engine::tables::cents(e) == pump_engine::tables::cents(bet.round_result)),
            expected_multiplier,
        }
    }
}
