//! The records the storage layer hands out. They serialize straight into the JSON of SPEC §3.2
//! (snake_case, times as RFC 3339 UTC strings).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The OpenAPI schema of a difficulty wherever one travels (`pump_engine::Difficulty` is the
/// engine's own type, kept free of documentation dependencies).
pub fn difficulty_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["easy", "medium", "hard", "expert"]))
        .build()
}

/// [`difficulty_schema`] or `null`.
pub fn optional_difficulty_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            utoipa::openapi::schema::Type::String,
            utoipa::openapi::schema::Type::Null,
        ]))
        .enum_values(Some([Some("easy"), Some("medium"), Some("hard"), Some("expert"), None]))
        .build()
}

/// Unix microseconds → RFC 3339 with microseconds, UTC (`2026-11-23T10:00:00.000000Z`).
///
/// Written by hand for years 0–9999: chrono's `to_rfc3339_opts` goes through its general
/// formatting machinery and its calendar types, ~880 instructions a timestamp (this: ~460),
/// which the SQLite writer paid twice for each bet it published to a live dashboard, and every
/// bets page pays for each row. Other years (RFC 3339 has four digits for the year) are left to
/// chrono; the test below holds the two to the same text.
pub fn iso(micros: i64) -> String {
    const DAY: i64 = 86_400_000_000;
    let (days, of_day) = (micros.div_euclid(DAY), micros.rem_euclid(DAY));
    let (year, month, day) = civil_from_days(days);
    let Some(year) = u32::try_from(year).ok().filter(|year| *year <= 9999) else {
        return chrono::DateTime::from_timestamp_micros(micros)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    };
    // Below 86,400 seconds and a million microseconds: every value below fits a u32.
    let (seconds, fraction) = ((of_day / 1_000_000) as u32, (of_day % 1_000_000) as u32);
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    let pairs = [
        (0, year / 100),
        (2, year % 100),
        (5, month),
        (8, day),
        (11, seconds / 3600),
        (14, seconds / 60 % 60),
        (17, seconds % 60),
        (20, fraction / 10_000),
        (22, fraction / 100 % 100),
        (24, fraction % 100),
    ];
    for (at, value) in pairs {
        // Every value is below 100.
        text[at] = b'0' + (value / 10) as u8;
        text[at + 1] = b'0' + (value % 10) as u8;
    }
    String::from_utf8(text.to_vec()).unwrap_or_default()
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar (Howard
/// Hinnant's `civil_from_days`: 400-year eras of 146,097 days, years starting in March).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468; // from 0000-03-01
    let era = days.div_euclid(146_097);
    let of_era = days.rem_euclid(146_097); // [0, 146096]
    let year_of_era = (of_era - of_era / 1460 + of_era / 36_524 - of_era / 146_096) / 365; // [0, 399]
    let day_of_year = of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100); // [0, 365]
    let shifted_month = (5 * day_of_year + 2) / 153; // [0, 11], March first
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1; // [1, 31]
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 }; // [1, 12]
    // Both are small and positive, as the ranges above say.
    (year_of_era + era * 400 + i64::from(month <= 2), month as u32, day as u32)
}

/// Seed-reveal verification of a stream (SPEC §3.3); absent while the seed is unknown.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Verified {
    pub checked: i64,
    pub matched: i64,
    pub mismatched: i64,
    /// Lowest-nonce bet whose recorded result differs from the engine's.
    #[schema(required = true)]
    pub first_mismatch: Option<Mismatch>,
    /// Bets still waiting for their check (a large stream is verified in the background).
    pub pending: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Mismatch {
    pub bet_id: i64,
    pub antebot_bet_id: String,
    pub nonce: i64,
    #[schema(schema_with = difficulty_schema)]
    pub difficulty: pump_engine::Difficulty,
    pub round_result: f64,
    #[schema(required = true)]
    pub expected_multiplier: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct StreamSummary {
    pub id: Uuid,
    pub server_seed_hashed: String,
    pub client_seed: String,
    pub created_at: String,
    pub last_seen_at: String,
    pub total_bets: i64,
    #[schema(required = true)]
    pub highest_multiplier: Option<f64>,
    #[schema(required = true)]
    pub last_observed_nonce: Option<i64>,
    #[schema(required = true)]
    pub notes: Option<String>,
    #[schema(required = true)]
    pub verified: Option<Verified>,
    pub seed_revealed: bool,
    pub rounds_count: i64,
    /// Fed by the built-in demo, not by a bot (SPEC §7).
    #[serde(default)]
    #[schema(required = true)]
    pub demo: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct StreamDetail {
    #[serde(flatten)]
    pub summary: StreamSummary,
    #[schema(required = true)]
    pub lowest_multiplier: Option<f64>,
    #[schema(required = true)]
    pub average_multiplier: Option<f64>,
    pub total_amount: f64,
    pub total_payout: f64,
    pub difficulty_breakdown: BTreeMap<String, i64>,
    /// The difficulty of the most recent bet (used for odds); `None` before any bet.
    #[schema(required = true, schema_with = optional_difficulty_schema)]
    pub difficulty: Option<pump_engine::Difficulty>,
    /// The revealed server seed, once known.
    #[schema(required = true)]
    pub server_seed: Option<String>,
    pub recent_bets: Vec<BetRecord>,
}

/// One page of a listing and how many items the whole listing holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
}

/// One stored bet as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct BetRecord {
    pub id: i64,
    pub stream_id: Uuid,
    pub antebot_bet_id: String,
    pub received_at: String,
    #[schema(required = true)]
    pub date_time: Option<String>,
    pub nonce: i64,
    pub amount: f64,
    pub payout: f64,
    pub payout_multiplier: f64,
    #[schema(schema_with = difficulty_schema)]
    pub difficulty: pump_engine::Difficulty,
    #[schema(required = true)]
    pub round_target: Option<f64>,
    pub round_result: f64,
    /// Nonces since the previous bet of the same 2-decimal multiplier in the whole stream.
    #[schema(required = true)]
    pub distance_prev: Option<i64>,
    /// Seed-reveal check: `None` until the seed is known, then whether the engine agrees.
    #[schema(required = true)]
    pub verified: Option<bool>,
    #[schema(required = true)]
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
    pub difficulty: Option<pump_engine::Difficulty>,
    pub order: BetOrder,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BetPage {
    pub bets: Vec<BetRecord>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
    pub stream_id: Uuid,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Tail {
    pub bets: Vec<BetRecord>,
    pub last_id: i64,
    pub has_more: bool,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Round {
    pub nonce: i64,
    pub round_result: f64,
}

/// A revealed seed and the streams it opened.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RevealedSeed {
    pub server_seed: String,
    pub server_seed_hashed: String,
    pub revealed_at: String,
    pub streams: Vec<Uuid>,
    #[schema(required = true)]
    pub first_seen: Option<String>,
    #[schema(required = true)]
    pub last_seen: Option<String>,
}

/// One hit of a run.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct RunHit {
    pub nonce: i64,
    pub max_pumps: i64,
    pub max_multiplier: f64,
    pub pop_point: i64,
}

impl From<&pump_engine::scan::Hit> for RunHit {
    fn from(h: &pump_engine::scan::Hit) -> Self {
        RunHit {
            nonce: h.nonce as i64,
            max_pumps: i64::from(h.max_pumps),
            max_multiplier: h.max_multiplier,
            pop_point: i64::from(h.pop_point),
        }
    }
}

/// A bet not yet checked against its stream's revealed seed.
#[derive(Debug, Clone, PartialEq)]
pub struct UnverifiedBet {
    pub id: i64,
    pub nonce: i64,
    pub difficulty: pump_engine::Difficulty,
    pub round_result: f64,
}

/// The engine's answer for one recorded bet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BetCheck {
    pub bet_id: i64,
    pub nonce: i64,
    pub expected_multiplier: f64,
    pub matched: bool,
}

/// A stream whose seed is revealed and which still holds unchecked bets.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamToVerify {
    pub pk: i64,
    pub id: Uuid,
    pub server_seed: String,
    pub client_seed: String,
}

/// What storing a revealed seed did.
#[derive(Debug, Clone)]
pub struct Reveal {
    /// The seed was not known before.
    pub created: bool,
    /// When it was first revealed (microseconds).
    pub revealed_at: i64,
    /// The streams it belongs to.
    pub streams: Vec<crate::store::LinkedStream>,
}

/// A stored simulation (SPEC §9.4).
#[derive(Debug, Clone, Serialize)]
pub struct SimulationRecord {
    pub id: Uuid,
    pub created_at: String,
    pub finished_at: Option<String>,
    /// `running`, `done`, `failed` or `cancelled`.
    pub status: String,
    /// The request as given (script and options).
    pub request: serde_json::Value,
    pub result: Option<serde_json::Value>,
}

/// A stored run (SPEC §4.5); `summary` and `targets` are kept as JSON.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Run {
    pub id: Uuid,
    pub created_at: String,
    pub server_seed_sha256: String,
    pub server_seed: String,
    pub client_seed: String,
    pub nonce_start: i64,
    pub nonce_end: i64,
    #[schema(schema_with = difficulty_schema)]
    pub difficulty: pump_engine::Difficulty,
    pub targets: Vec<f64>,
    pub duration_ms: i64,
    pub engine_version: String,
    /// Kept as JSON in the database; written from a [`RunSummary`].
    #[schema(value_type = RunSummary)]
    pub summary: serde_json::Value,
}

/// SPEC §4.5's summary of a run's whole range, whatever the targets.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RunSummary {
    /// Nonces scanned.
    pub count: u64,
    #[schema(required = true)]
    pub max_multiplier: Option<f64>,
    #[schema(required = true)]
    pub median_multiplier: Option<f64>,
    /// Hits per target, keyed by the target with two decimals.
    #[schema(value_type = BTreeMap<String, u64>)]
    pub counts_by_target: serde_json::Map<String, serde_json::Value>,
    /// The first nonces at the range's maximum.
    pub top_max: Vec<RunHit>,
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
            demo: false,
        }
    }
}

impl BetRecord {
    /// The record of a bet just stored with `id` (the live `bet` event).
    pub fn stored(
        id: i64,
        stream_id: Uuid,
        bet: &crate::ingest::message::NewBet,
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
            difficulty: bet.difficulty,
            round_target: bet.round_target,
            round_result: bet.round_result,
            distance_prev,
            verified: expected_multiplier
                .map(|e| pump_engine::tables::cents(e) == pump_engine::tables::cents(bet.round_result)),
            expected_multiplier,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::iso;

    fn chrono_iso(micros: i64) -> String {
        chrono::DateTime::from_timestamp_micros(micros)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    }

    #[test]
    fn timestamps_read_as_chrono_writes_them() {
        assert_eq!(iso(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(iso(1_795_428_000_123_456), "2026-11-23T10:00:00.123456Z");
        assert_eq!(iso(-1), "1969-12-31T23:59:59.999999Z");
        // The edges of four-digit years, leap days, and what chrono cannot represent.
        let edges = [
            -62_167_219_200_000_000, // 0000-01-01
            -62_167_219_200_000_001, // the last microsecond of year -1
            253_402_300_799_999_999, // 9999-12-31T23:59:59.999999
            253_402_300_800_000_000, // 10000-01-01
            951_782_400_000_000,     // 2000-02-29
            4_107_456_000_000_000,   // 2100-02-28 (2100 is not a leap year)
            i64::MIN,
            i64::MAX,
        ];
        for micros in edges {
            assert_eq!(iso(micros), chrono_iso(micros), "{micros}");
        }
        // Spread over years 0–9999 and over every digit position.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let micros = (state % 316_000_000_000_000_000) as i64 - 62_200_000_000_000_000;
            assert_eq!(iso(micros), chrono_iso(micros), "{micros}");
        }
    }
}
