//! `POST /live/ingest` (SPEC §3.1): one bet or heartbeat, an array, or `{"bets": [...]}`.
//! The security guard in front of it is `ingest_guard`.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, middleware};
use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AppState;
use super::error::{AppError, ErrorBody, Result};
use super::extract::JsonBody;
use crate::http::ingest_guard;
use crate::ingest::message::{Body, Message, RawBody, describe, parse_message, split_body};
use crate::metrics::{IngestTag, Metrics};

pub fn router(state: AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(ingest)).route_layer(middleware::from_fn_with_state(state, measure))
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
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Stored<'a> {
    /// The item's position in a batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
    #[schema(value_type = Uuid)]
    stream_id: &'a RawValue,
    /// `false`: already stored (a duplicate), nothing changed.
    accepted: bool,
    /// Present (true) for a heartbeat.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    heartbeat: bool,
}

/// One entry of a batch answer.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum Entry<'a> {
    Stored(Stored<'a>),
    /// The item was refused; the rest of the batch was not.
    Refused {
        index: usize,
        error: String,
        fields: Vec<&'static str>,
    },
}

#[derive(Serialize, ToSchema)]
struct BatchAnswer<'a> {
    /// One entry per item, in order.
    results: Vec<Option<Entry<'a>>>,
    accepted: usize,
    duplicates: usize,
    rejected: usize,
}

/// The answer to one message, or to a batch.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[schema(as = IngestResult)]
enum Answer<'a> {
    One(Stored<'a>),
    Batch(BatchAnswer<'a>),
}

#[utoipa::path(post, path = "/live/ingest", summary = "Ingest one bet or heartbeat, or a batch",
    request_body = crate::ingest::wire::IngestBody,
    security(("ingestToken" = []), ()),
    responses(
        (status = 200, description = "Stored; a batch answers item by item", body = Answer),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "The ingest token is missing or wrong", body = ErrorBody),
        (status = 403, description = "A browser on another site sent it", body = ErrorBody),
        (status = 408, description = "The body stopped arriving", body = ErrorBody),
        (status = 413, description = "The body is over the size limit", body = ErrorBody),
        (status = 422, description = "The message breaks a rule: every offending field is named", body = ErrorBody),
        (status = 429, description = "Over the rate limit", body = ErrorBody),
        (status = 503, description = "The database or the shared rate limiter is unavailable", body = ErrorBody),
    ))]
async fn ingest(State(state): State<AppState>, JsonBody(body): JsonBody<RawBody>) -> Result<Response> {
    match split_body(body).map_err(|e| AppError::Validation(vec![e]))? {
        Body::Single(item) => {
            let message = parse_message(item).map_err(AppError::Validation)?;
            let heartbeat = matches!(message, Message::Heartbeat(_));
            let outcome = state.store.ingest(vec![message]).await?.pop();
            let outcome = outcome.ok_or_else(|| AppError::Internal("ingest returned no outcome".into()))?;
            let tag = if outcome.accepted { "accepted" } else { "duplicate" };
            let stream_id = quoted(outcome.stream_id);
            let stored = Stored { index: None, stream_id: &stream_id, accepted: outcome.accepted, heartbeat };
            Ok(tagged(Answer::One(stored), tag))
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
            Ok(tagged(Answer::Batch(BatchAnswer { results, accepted, duplicates, rejected }), tag))
        }
    }
}
