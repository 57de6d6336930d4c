//! The demo stream's controls (SPEC §7 "First run"): `POST /live/demo` starts one, `GET
//! /live/demo` lists them, `PUT /live/demo/{id}` sets its pace, `DELETE /live/demo/{id}` stops
//! its feed (the stream stays until deleted like any other), and `POST /live/demo/{id}/reveal`
//! stops it and reveals its server seed, which verifies every recorded bet.

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{AppError, ErrorBody, Result};
use super::extract::JsonBody;
use super::openapi::{ById, IdPath, NotJson, WriteRefused};
use super::query::PathId;
use super::seeds::SeedRevealed;
use super::streams::parse_id;
use crate::live::demo::{DEFAULT_RATE, Demo, DemoStatus, MAX_RATE};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, start)).routes(routes!(set_rate, stop)).routes(routes!(reveal))
}

/// The body of `POST /live/demo` (optional) and `PUT /live/demo/{id}`.
#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the body; `rate` reads it to name the problem exactly")]
struct DemoRate {
    /// Rounds per second, 1 to 1,000 (`MAX_RATE`); 10 when starting without one.
    #[schema(minimum = 1, maximum = 1000)]
    rate: Option<u32>,
}

#[derive(Serialize, ToSchema)]
struct DemoList {
    demos: Vec<DemoStatus>,
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

#[utoipa::path(post, path = "/live/demo", operation_id = "start_demo", summary = "Start a demo stream fed live from the engine",
    request_body(content = DemoRate, description = "optional"),
    responses((status = 201, body = DemoStatus), NotJson, WriteRefused,
              (status = 422, description = "The rate is out of range", body = ErrorBody)))]
async fn start(
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> Result<(StatusCode, Json<DemoStatus>)> {
    // The body is optional: none (or blank) starts a demo at the default pace.
    let bytes = super::extract::read_limited(request.into_body()).await?;
    let body =
        if bytes.iter().all(u8::is_ascii_whitespace) { Value::Null } else { super::extract::parse_json(&bytes)? };
    let rate = rate(&body, Some(DEFAULT_RATE))?;
    let demo = state.demos.start(state.store.clone(), rate).await?;
    tracing::info!(stream = %demo.stream_id, rate, "demo stream started");
    Ok((StatusCode::CREATED, Json(demo.status())))
}

#[utoipa::path(get, path = "/live/demo", operation_id = "list_demos", summary = "Demo feeds of this server", responses((status = 200, body = DemoList)))]
async fn list(State(state): State<AppState>) -> Json<DemoList> {
    Json(DemoList { demos: state.demos.list() })
}

#[utoipa::path(put, path = "/live/demo/{id}", summary = "Set a demo's pace (rounds per second)",
    params(IdPath), request_body = DemoRate,
    responses((status = 200, body = DemoStatus), NotJson, WriteRefused,
              (status = 404, description = "No demo feeds this stream", body = ErrorBody),
              (status = 422, description = "The rate is out of range", body = ErrorBody)))]
async fn set_rate(
    State(state): State<AppState>,
    PathId(raw): PathId,
    JsonBody(body): JsonBody,
) -> Result<Json<DemoStatus>> {
    let demo = demo_of(&state, &raw)?;
    demo.set_rate(rate(&body, None)?);
    Ok(Json(demo.status()))
}

#[utoipa::path(delete, path = "/live/demo/{id}", summary = "Stop a demo's feed (the stream stays)",
    params(IdPath), responses((status = 200, body = DemoStatus), WriteRefused, ById))]
async fn stop(State(state): State<AppState>, PathId(raw): PathId) -> Result<Json<DemoStatus>> {
    let demo = demo_of(&state, &raw)?;
    demo.stop_and_wait().await;
    Ok(Json(demo.status()))
}

#[utoipa::path(post, path = "/live/demo/{id}/reveal", operation_id = "reveal_demo_seed",
    summary = "Stop a demo and reveal its server seed: every recorded bet is verified",
    params(IdPath), responses((status = 200, body = SeedRevealed), (status = 201, description = "First revealed now", body = SeedRevealed), WriteRefused, ById))]
async fn reveal(State(state): State<AppState>, PathId(raw): PathId) -> Result<(StatusCode, Json<SeedRevealed>)> {
    let demo = demo_of(&state, &raw)?;
    let seed = demo.reveal().await;
    super::seeds::revealed(&state, seed).await
}
