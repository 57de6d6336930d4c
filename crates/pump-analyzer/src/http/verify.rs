//! `GET /verify` (SPEC §4.5): one nonce through the engine, off the async executor.

use axum::routing::get;
use axum::{Json, Router};
use pump_engine::Difficulty;
use serde_json::{Value, json};

use super::AppState;
use super::error::{AppError, Result};
use super::query::Params;
use crate::ingest::message::FieldError;

pub fn router() -> Router<AppState> {
    Router::new().route("/verify", get(verify))
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

async fn verify(params: Params) -> Result<Json<Value>> {
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
    Ok(Json(json!({
        "max_pumps": v.result.max_pumps,
        "max_multiplier": v.result.max_multiplier,
        "pop_point": v.result.pop_point,
        "permutation": v.permutation,
        "difficulty": difficulty.as_str(),
        "nonce": nonce,
    })))
}
