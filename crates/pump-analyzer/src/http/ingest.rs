//! `POST /live/ingest` (SPEC §3.1): one bet or heartbeat, an array, or `{"bets": [...]}`.
//! The security guard in front of it is `security::ingest_guard`.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router, middleware};
use serde_json::{Value, json};

use super::AppState;
use super::error::{AppError, Result};
use super::extract::JsonBody;
use crate::live::message::{Body, Message, describe, parse_message, split_body};
use crate::security::ingest_guard;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/live/ingest", post(ingest))
        .route_layer(middleware::from_fn_with_state(state, ingest_guard::layer))
}

async fn ingest(State(state): State<AppState>, JsonBody(value): JsonBody) -> Result<Json<Value>> {
    match split_body(value).map_err(|e| AppError::Validation(vec![e]))? {
        Body::Single(item) => {
            let message = parse_message(&item).map_err(AppError::Validation)?;
            let heartbeat = matches!(message, Message::Heartbeat(_));
            let outcome = state.store.ingest(vec![message]).await?.pop();
            let outcome = outcome.ok_or_else(|| AppError::Internal("ingest returned no outcome".into()))?;
            let mut body = json!({ "streamId": outcome.stream_id, "accepted": outcome.accepted });
            if heartbeat {
                body["heartbeat"] = Value::Bool(true);
            }
            Ok(Json(body))
        }
        Body::Batch(items) => {
            let mut results: Vec<Value> = Vec::with_capacity(items.len());
            let mut valid = Vec::with_capacity(items.len());
            let mut valid_at = Vec::with_capacity(items.len());
            for (index, item) in items.iter().enumerate() {
                match parse_message(item) {
                    Ok(message) => {
                        valid_at.push((index, matches!(message, Message::Heartbeat(_))));
                        valid.push(message);
                        results.push(Value::Null);
                    }
                    Err(errors) => {
                        let fields: Vec<&str> = errors.iter().map(|e| e.field).collect();
                        results.push(json!({ "index": index, "error": describe(&errors), "fields": fields }));
                    }
                }
            }
            let rejected = items.len() - valid.len();
            let outcomes = if valid.is_empty() { Vec::new() } else { state.store.ingest(valid).await? };
            let (mut accepted, mut duplicates) = (0usize, 0usize);
            for ((index, heartbeat), outcome) in valid_at.into_iter().zip(outcomes) {
                if outcome.accepted {
                    accepted += 1;
                } else {
                    duplicates += 1;
                }
                let mut entry = json!({ "index": index, "streamId": outcome.stream_id, "accepted": outcome.accepted });
                if heartbeat {
                    entry["heartbeat"] = Value::Bool(true);
                }
                results[index] = entry;
            }
            Ok(Json(json!({
                "results": results,
                "accepted": accepted,
                "duplicates": duplicates,
                "rejected": rejected,
            })))
        }
    }
}
