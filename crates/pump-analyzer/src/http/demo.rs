//! The demo stream's controls (SPEC §7 "First run"): `POST /live/demo` starts one, `GET
//! /live/demo` lists them, `PUT /live/demo/{id}` sets its pace, `DELETE /live/demo/{id}` stops
//! its feed (the stream stays until deleted like any other), and `POST /live/demo/{id}/reveal`
//! stops it and reveals its server seed, which verifies every recorded bet.

use axum::extract::State;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use http::StatusCode;
use serde_json::{Value, json};

use super::AppState;
use super::error::{AppError, Result};
use super::extract::JsonBody;
use super::query::PathId;
use super::streams::parse_id;
use crate::live::demo::{DEFAULT_RATE, Demo, MAX_RATE};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/live/demo", get(list).post(start))
        .route("/live/demo/{id}", put(set_rate).delete(stop))
        .route("/live/demo/{id}/reveal", post(reveal))
}

/// The `rate` field: rounds per second, 1..=MAX_RATE; `default` when absent.
fn rate(body: &Value, default: Option<u32>) -> Result<u32> {
    if !body.is_object() && !body.is_null() {
        return Err(AppError::validation("body", "must be a JSON object like {\"rate\": 10}"));
    }
    match (body.get("rate"), default) {
        (None | Some(Value::Null), Some(default)) => Ok(default),
        (None | Some(Value::Null), None) => Err(AppError::validation("rate", "is required")),
        (Some(v), _) => {
            v.as_u64().filter(|r| (1..=u64::from(MAX_RATE)).contains(r)).map(|r| r as u32).ok_or_else(|| {
                AppError::validation("rate", format!("must be a whole number of rounds per second, 1 to {MAX_RATE}"))
            })
        }
    }
}

fn demo_of(state: &AppState, raw: &str) -> Result<std::sync::Arc<Demo>> {
    let id = parse_id(raw, "stream")?;
    state.demos.get(id).ok_or_else(|| AppError::NotFound(format!("No demo feeds stream {id} in this server")))
}

async fn start(State(state): State<AppState>, request: axum::extract::Request) -> Result<(StatusCode, Json<Value>)> {
    // The body is optional: none (or blank) starts a demo at the default pace.
    let bytes = super::extract::read_limited(request.into_body()).await?;
    let body =
        if bytes.iter().all(u8::is_ascii_whitespace) { Value::Null } else { super::extract::parse_json(&bytes)? };
    let rate = rate(&body, Some(DEFAULT_RATE))?;
    let demo = state.demos.start(state.store.clone(), rate).await?;
    tracing::info!(stream = %demo.stream_id, rate, "demo stream started");
    Ok((StatusCode::CREATED, Json(json!(demo.status()))))
}

async fn list(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "demos": state.demos.list() }))
}

async fn set_rate(State(state): State<AppState>, PathId(raw): PathId, JsonBody(body): JsonBody) -> Result<Json<Value>> {
    let demo = demo_of(&state, &raw)?;
    demo.set_rate(rate(&body, None)?);
    Ok(Json(json!(demo.status())))
}

async fn stop(State(state): State<AppState>, PathId(raw): PathId) -> Result<Json<Value>> {
    let demo = demo_of(&state, &raw)?;
    demo.stop_and_wait().await;
    Ok(Json(json!(demo.status())))
}

async fn reveal(State(state): State<AppState>, PathId(raw): PathId) -> Result<(StatusCode, Json<Value>)> {
    let demo = demo_of(&state, &raw)?;
    let seed = demo.reveal().await;
    super::seeds::revealed(&state, seed).await
}
