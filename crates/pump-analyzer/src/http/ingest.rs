//! `POST /live/ingest` (SPEC §3.1): one bet or heartbeat, an array, or `{"bets": [...]}`.
//! The security guard in front of it is `security::ingest_guard`.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router, middleware};
use serde::Serialize;
use uuid::Uuid;

use super::AppState;
use super::error::{AppError, Result};
use super::extract::JsonBody;
use crate::live::message::{Body, Message, RawBody, describe, parse_message, split_body};
use crate::metrics::{IngestTag, Metrics};
use crate::security::ingest_guard;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new().route("/live/ingest", post(ingest)).route_layer(middleware::from_fn_with_state(state, measure))
}

/// Counts every ingest request by outcome and times it, guard refusals included: the guard runs
/// inside it (a call, not another `from_fn` layer with its boxing per request).
async fn measure(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let response = ingest_guard::layer(State(state.clone()), request, next).await;
    let tag = response.extensions().get::<IngestTag>().copied();
    state.metrics.record_ingest(Metrics::outcome(response.status().as_u16(), tag), started.elapsed());
    response
}

fn tagged(body: impl Serialize, tag: &'static str) -> Response {
    let mut response = Json(body).into_response();
    response.extensions_mut().insert(IngestTag(tag));
    response
}

/// The answer for one stored (or already stored) message.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
    stream_id: Uuid,
    accepted: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    heartbeat: bool,
}

/// One entry of a batch answer.
#[derive(Serialize)]
#[serde(untagged)]
enum Entry {
    Stored(Stored),
    Refused { index: usize, error: String, fields: Vec<&'static str> },
}

#[derive(Serialize)]
struct BatchAnswer {
    results: Vec<Option<Entry>>,
    accepted: usize,
    duplicates: usize,
    rejected: usize,
}

async fn ingest(State(state): State<AppState>, JsonBody(body): JsonBody<RawBody>) -> Result<Response> {
    match split_body(body).map_err(|e| AppError::Validation(vec![e]))? {
        Body::Single(item) => {
            let message = parse_message(item).map_err(AppError::Validation)?;
            let heartbeat = matches!(message, Message::Heartbeat(_));
            let outcome = state.store.ingest(vec![message]).await?.pop();
            let outcome = outcome.ok_or_else(|| AppError::Internal("ingest returned no outcome".into()))?;
            let tag = if outcome.accepted { "accepted" } else { "duplicate" };
            Ok(tagged(Stored { index: None, stream_id: outcome.stream_id, accepted: outcome.accepted, heartbeat }, tag))
        }
        Body::Batch(items) => {
            let count = items.len();
            let mut results: Vec<Option<Entry>> = Vec::with_capacity(count);
            let mut valid = Vec::with_capacity(count);
            let mut valid_at = Vec::with_capacity(count);
            for (index, item) in items.into_iter().enumerate() {
                match parse_message(item) {
                    Ok(message) => {
                        valid_at.push((index, matches!(message, Message::Heartbeat(_))));
                        valid.push(message);
                        results.push(None);
                    }
                    Err(errors) => {
                        let fields = errors.iter().map(|e| e.field).collect();
                        results.push(Some(Entry::Refused { index, error: describe(&errors), fields }));
                    }
                }
            }
            let rejected = count - valid.len();
            let outcomes = if valid.is_empty() { Vec::new() } else { state.store.ingest(valid).await? };
            let (mut accepted, mut duplicates) = (0usize, 0usize);
            for ((index, heartbeat), outcome) in valid_at.into_iter().zip(outcomes) {
                if outcome.accepted {
                    accepted += 1;
                } else {
                    duplicates += 1;
                }
                let stored =
                    Stored { index: Some(index), stream_id: outcome.stream_id, accepted: outcome.accepted, heartbeat };
                results[index] = Some(Entry::Stored(stored));
            }
            let tag = if accepted > 0 {
                "accepted"
            } else if duplicates > 0 {
                "duplicate"
            } else {
                "rejected"
            };
            Ok(tagged(BatchAnswer { results, accepted, duplicates, rejected }, tag))
        }
    }
}
