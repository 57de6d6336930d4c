//! `GET /verify` (SPEC §4.5): one nonce through the engine, off the async executor.

use axum::Json;
use pump_engine::Difficulty;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{AppError, ErrorBody, Result};
use super::query::Params;
use crate::ingest::message::FieldError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(verify))
}

/// Longest seed accepted (Stake's are 64 hex characters; client seeds are user-chosen).
const MAX_SEED: usize = 256;

fn seed(params: &Params, name: &'static str, errors: &mut Vec<FieldError>) -> Option<String> {
    match params.text(name) {
        None => errors.push(FieldError { field: name, message: "is required".into() }),
        Some(v) if v.chars().count() > MAX_SEED => {
            errors.push(FieldError { field: name, message: format!("must be at most {MAX_SEED} characters") })
        }
        Some(v) => return Some(v.to_string()),
    }
    None
}

/// One round as the engine plays it.
#[derive(Serialize, ToSchema)]
struct Verification {
    /// Safe pumps before the pop.
    max_pumps: u8,
    /// The multiplier of the last safe pump.
    max_multiplier: f64,
    /// The 1-based position at which the balloon pops.
    pop_point: u8,
    /// The shuffled 25 positions the round was drawn from.
    permutation: [u8; 25],
    #[schema(schema_with = crate::store::model::difficulty_schema)]
    difficulty: Difficulty,
    nonce: u64,
}

#[utoipa::path(get, path = "/verify", summary = "One nonce through the provably-fair engine",
    params(("server_seed" = String, Query), ("client_seed" = String, Query),
           ("nonce" = i64, Query, minimum = 1), ("difficulty" = String, Query, description = "easy, medium, hard or expert")),
    responses((status = 200, body = Verification), (status = 422, description = "A parameter is missing or invalid", body = ErrorBody)))]
async fn verify(params: Params) -> Result<Json<Verification>> {
    let mut errors = Vec::new();
    let server_seed = seed(&params, "server_seed", &mut errors);
    let client_seed = seed(&params, "client_seed", &mut errors);
    let nonce = match params.text("nonce").map(|n| n.trim().parse::<u64>()) {
        None => {
            errors.push(FieldError { field: "nonce", message: "is required".into() });
            None
        }
        Some(Ok(n)) if n >= 1 && n <= i64::MAX as u64 => Some(n),
        Some(_) => {
            errors.push(FieldError { field: "nonce", message: "must be an integer ≥ 1".into() });
            None
        }
    };
    let difficulty = match params.text("difficulty").map(|d| d.trim().to_ascii_lowercase().parse::<Difficulty>()) {
        None => {
            errors.push(FieldError { field: "difficulty", message: "is required".into() });
            None
        }
        Some(Ok(d)) => Some(d),
        Some(Err(e)) => {
            errors.push(FieldError { field: "difficulty", message: e.to_string() });
            None
        }
    };
    let (Some(server_seed), Some(client_seed), Some(nonce), Some(difficulty)) =
        (server_seed, client_seed, nonce, difficulty)
    else {
        return Err(AppError::Validation(errors));
    };
    let v = tokio::task::spawn_blocking(move || pump_engine::verify(&server_seed, &client_seed, nonce, difficulty))
        .await
        .map_err(|e| AppError::Internal(format!("verify task failed: {e}")))?;
    Ok(Json(Verification {
        max_pumps: v.result.max_pumps,
        max_multiplier: v.result.max_multiplier,
        pop_point: v.result.pop_point,
        permutation: v.permutation,
        difficulty,
        nonce,
    }))
}
