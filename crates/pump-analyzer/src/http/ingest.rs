//! `POST /live/ingest` (SPEC §3.1): one bet or heartbeat, an array, or `{"bets": [...]}`.
//! The security guard in front of it is `security::ingest_guard`.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router, middleware};
use serde_json::{Value, json};
use tower::ServiceBuilder;

use super::AppState;
use super::error::{AppError, Result};
use super::extract::JsonBody;
use crate::live::message::{Body, Message, describe, parse_message, split_body};
use crate::metrics::{IngestTag, Metrics};
use crate::security::ingest_guard;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new().route("/live/ingest", post(ingest)).route_layer(
        ServiceBuilder::new()
            .layer(middleware::from_fn_with_state(state.clone(), measure))
            .layer(middleware::from_fn_with_state(state, ingest_guard::layer)),
    )
}

/// Counts every ingest request by outcome and times it (guard refusals included).
async fn measure(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let response = next.run(request).await;
    let tag = response.extensions().get::<IngestTag>().copied();
    state.metrics.record_ingest(Metrics::outcome(response.status().as_u16(), tag), started.elapsed());
    response
}

fn tagged(body: Value, tag: &'static str) -> Response {
    let mut response = Json(body).into_response();
    response.extensions_mut().insert(IngestTag(tag));
    response
}

async fn ingest(State(state): State<AppState>, JsonBody(value): JsonBody) -> Result<Response> {
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
            Ok(tagged(body, if outcome.accepted { "accepted" } else { "duplicate" }))
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
            let tag = if accepted > 0 {
                "accepted"
            } else if duplicates > 0 {
                "duplicate"
            } else {
                "rejected"
            };
            let body = json!({
                "results": results,
                "accepted": accepted,
                "duplicates": duplicates,
                "rejected": rejected,
            });
            Ok(tagged(body, tag))
        }
    }
}
