//! `POST /live/ingest` (SPEC §3.1): one bet or heartbeat, an array, or `{"bets": [...]}`.
//! The security guard in front of it is `ingest_guard`.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router, middleware};
use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use super::AppState;
use super::error::{AppError, Result};
use super::extract::JsonBody;
use crate::http::ingest_guard;
use crate::ingest::message::{Body, Message, RawBody, describe, parse_message, split_body};
use crate::metrics::{IngestTag, Metrics};

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

/// A stream id as a JSON string, written out once: serializing the `Uuid` for every item would
/// scan its 36 characters for escapes each time (~7% of the answer's work for a batch).
fn quoted(id: Uuid) -> Box<RawValue> {
    RawValue::from_string(format!("\"{id}\"")).expect("a hyphenated UUID is a valid JSON string")
}

fn tagged(body: impl Serialize, tag: &'static str) -> Response {
    let mut response = Json(body).into_response();
    response.extensions_mut().insert(IngestTag(tag));
    response
}

/// The answer for one stored (or already stored) message.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Stored<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
    stream_id: &'a RawValue,
    accepted: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    heartbeat: bool,
}

/// One entry of a batch answer.
#[derive(Serialize)]
#[serde(untagged)]
enum Entry<'a> {
    Stored(Stored<'a>),
    Refused { index: usize, error: String, fields: Vec<&'static str> },
}

#[derive(Serialize)]
struct BatchAnswer<'a> {
    results: Vec<Option<Entry<'a>>>,
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
            let stream_id = quoted(outcome.stream_id);
            Ok(tagged(Stored { index: None, stream_id: &stream_id, accepted: outcome.accepted, heartbeat }, tag))
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
            // Each stream's id once per answer: a batch's items nearly all share one or two.
            let mut ids: Vec<(Uuid, Box<RawValue>)> = Vec::new();
            for outcome in &outcomes {
                if !ids.iter().any(|(id, _)| *id == outcome.stream_id) {
                    ids.push((outcome.stream_id, quoted(outcome.stream_id)));
                }
            }
            let (mut accepted, mut duplicates) = (0usize, 0usize);
            for ((index, heartbeat), outcome) in valid_at.into_iter().zip(outcomes) {
                if outcome.accepted {
                    accepted += 1;
                } else {
                    duplicates += 1;
                }
                let stream_id = ids.iter().find(|(id, _)| *id == outcome.stream_id).map(|(_, raw)| &**raw);
                let stream_id = stream_id.ok_or_else(|| AppError::Internal("stream id not listed".into()))?;
                let stored = Stored { index: Some(index), stream_id, accepted: outcome.accepted, heartbeat };
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
