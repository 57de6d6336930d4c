//! The ingest body as `/openapi.json` documents it (SPEC §3.1).
//!
//! `message.rs` reads bodies by hand, field by field, so that a 422 names every offending field
//! and no map is built per item; these types state the same contract for the document and are
//! never built. Their limits are `message.rs`'s: change one, change the other.
#![expect(dead_code, reason = "documentation types: the parser in message.rs reads the wire format")]

use serde::Deserialize;
use utoipa::ToSchema;

/// A bet as Antebot reports it. Unknown fields are ignored.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Bet {
    /// `bet` or absent.
    r#type: Option<BetType>,
    /// Antebot's bet id: a stream keeps each once.
    #[schema(min_length = 1, max_length = 128)]
    id: String,
    #[schema(minimum = 1)]
    nonce: i64,
    #[schema(minimum = 0)]
    amount: f64,
    #[schema(minimum = 0)]
    payout: f64,
    difficulty: DifficultyName,
    #[schema(min_length = 1, max_length = 256)]
    client_seed: String,
    #[schema(min_length = 1, max_length = 256)]
    server_seed_hashed: String,
    /// The round's multiplier; one of `roundResult` / `payoutMultiplier` is required.
    #[schema(minimum = 0)]
    round_result: Option<f64>,
    #[schema(minimum = 0)]
    payout_multiplier: Option<f64>,
    #[schema(exclusive_minimum = 0)]
    round_target: Option<f64>,
    /// ISO-8601; `Z`, offsets and naive (UTC) are accepted.
    date_time: Option<String>,
}

/// A round observed without a bet.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    r#type: HeartbeatType,
    #[schema(minimum = 1)]
    nonce: i64,
    #[schema(minimum = 0)]
    round_result: f64,
    #[schema(min_length = 1, max_length = 256)]
    client_seed: String,
    #[schema(min_length = 1, max_length = 256)]
    server_seed_hashed: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum BetType {
    Bet,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum HeartbeatType {
    Heartbeat,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum DifficultyName {
    Easy,
    Medium,
    Hard,
    Expert,
}

/// One message.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum IngestItem {
    Bet(Bet),
    Heartbeat(Heartbeat),
}

/// One message, an array of up to 1,000, or `{"bets": [...]}`.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum IngestBody {
    One(IngestItem),
    Many(Batch),
    Wrapped(Wrapped),
}

#[derive(Deserialize, ToSchema)]
#[schema(max_items = 1000)]
pub struct Batch(Vec<IngestItem>);

#[derive(Deserialize, ToSchema)]
pub struct Wrapped {
    #[schema(max_items = 1000)]
    bets: Vec<IngestItem>,
}
