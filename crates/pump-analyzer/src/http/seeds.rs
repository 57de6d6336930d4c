//! Seed reveal (SPEC §3.3): `POST /live/seeds` stores a revealed server seed and verifies every
//! bet of the streams it belongs to; `GET /live/seeds` lists the revealed seeds.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AppState;
use super::error::{AppError, ErrorBody, Result};
use super::extract::JsonBody;
use super::openapi::{NotJson, WriteRefused};
use crate::live::verifier;
use crate::store::model::{RevealedSeed, Verified};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, reveal))
}

/// The body of `POST /live/seeds`.
#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the body; the handler reads it to name each problem exactly")]
struct SeedReveal {
    /// The revealed server seed, exactly as Stake shows it.
    #[schema(min_length = 1, max_length = 256)]
    server_seed: String,
}

/// A revealed seed and what its reveal verified.
#[derive(Serialize, ToSchema)]
pub struct SeedRevealed {
    server_seed: String,
    server_seed_hashed: String,
    revealed_at: String,
    /// `false` when the seed had been revealed before.
    created: bool,
    streams: Vec<LinkedStream>,
}

/// A stream the seed belongs to, with its verification so far.
#[derive(Serialize, ToSchema)]
struct LinkedStream {
    id: Uuid,
    client_seed: String,
    total_bets: i64,
    #[schema(required = true)]
    verified: Option<Verified>,
}

#[derive(Serialize, ToSchema)]
struct SeedList {
    seeds: Vec<RevealedSeed>,
    total: usize,
}

/// Longest server seed accepted (Stake's are 64 hex characters).
const MAX_SEED: usize = 256;
/// How long the reveal request waits for verification before answering (large streams continue
/// in the background and report progress in `verified.pending`).
const WAIT_FOR_VERIFICATION: Duration = Duration::from_secs(3);

/// Lowercase hex SHA-256 of the seed string's UTF-8 bytes.
pub fn seed_hash(seed: &str) -> String {
    hex::encode(Sha256::digest(seed.as_bytes()))
}

#[utoipa::path(post, path = "/live/seeds", operation_id = "reveal_seed", summary = "Reveal a server seed and verify its streams",
    request_body = SeedReveal,
    responses((status = 200, description = "Revealed before", body = SeedRevealed),
              (status = 201, description = "Revealed now", body = SeedRevealed),
              NotJson, WriteRefused,
              (status = 422, description = "The seed is missing or invalid", body = ErrorBody)))]
async fn reveal(State(state): State<AppState>, JsonBody(body): JsonBody) -> Result<(StatusCode, Json<SeedRevealed>)> {
    let seed = match body.get("server_seed") {
        _ if !body.is_object() => {
            return Err(AppError::validation(
                "server_seed",
                "body must be a JSON object like {\"server_seed\": \"…\"}",
            ));
        }
        None | Some(Value::Null) => return Err(AppError::validation("server_seed", "is required")),
        Some(Value::String(s)) if s.trim().is_empty() => {
            return Err(AppError::validation("server_seed", "must not be blank"));
        }
        Some(Value::String(s)) if s.chars().count() > MAX_SEED => {
            return Err(AppError::validation("server_seed", format!("must be at most {MAX_SEED} characters")));
        }
        Some(Value::String(s)) if s.trim() != s => {
            return Err(AppError::validation("server_seed", "must not start or end with whitespace"));
        }
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(AppError::validation("server_seed", "must be a string")),
    };
    revealed(&state, seed).await
}

/// Stores `seed` as revealed, verifies the bets of every stream it belongs to (waiting a little
/// for small ones) and answers with what was linked: `POST /live/seeds`, and a demo's reveal.
pub async fn revealed(state: &AppState, seed: String) -> Result<(StatusCode, Json<SeedRevealed>)> {
    let hashed = seed_hash(&seed);
    let crate::store::model::Reveal { created, revealed_at, streams: linked } =
        state.store.reveal_seed(seed.clone(), hashed.clone()).await?;
    tracing::info!(server_seed_hashed = %hashed, streams = linked.len(), "server seed revealed");

    let mut tasks = Vec::with_capacity(linked.len());
    for stream in &linked {
        let task = tokio::spawn(verifier::verify_stream(
            state.store.clone(),
            stream.pk,
            stream.id,
            seed.clone(),
            stream.client_seed.clone(),
        ));
        tasks.push(task);
    }
    // Small streams are fully verified in the answer; big ones keep going in the background.
    let _ = tokio::time::timeout(WAIT_FOR_VERIFICATION, futures_util::future::join_all(tasks)).await;

    let mut streams = Vec::with_capacity(linked.len());
    for stream in &linked {
        if let Some(detail) = state.store.stream_detail(stream.id).await? {
            streams.push(LinkedStream {
                id: stream.id,
                client_seed: detail.summary.client_seed,
                total_bets: detail.summary.total_bets,
                verified: detail.summary.verified,
            });
        }
    }
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((
        status,
        Json(SeedRevealed {
            server_seed: seed,
            server_seed_hashed: hashed,
            revealed_at: crate::store::model::iso(revealed_at),
            created,
            streams,
        }),
    ))
}

#[utoipa::path(get, path = "/live/seeds", operation_id = "list_seeds", summary = "Revealed seeds", responses((status = 200, body = SeedList)))]
async fn list(State(state): State<AppState>) -> Result<Json<SeedList>> {
    let seeds = state.store.revealed_seeds().await?;
    Ok(Json(SeedList { total: seeds.len(), seeds }))
}
