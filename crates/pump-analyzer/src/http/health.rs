//! `GET /healthz`: the process is up and its database answers.

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use http::header;
use serde_json::{Value, json};

use super::AppState;
use super::error::Result;
use crate::metrics::Gauges;

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(health)).route("/metrics", get(metrics))
}

/// Prometheus text exposition of the ingest counters and the live gauges.
async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse> {
    let gauges = Gauges {
        sse_clients: state.sse_clients(),
        connections: (state.connections.open(), state.connections.max()),
        runs_in_progress: state.runs.in_progress(),
        sessions_active: state.store.count_sessions().await?,
        commits: state.store.commit_stats().map(|stats| stats.read()),
    };
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render(&gauges)))
}

async fn health(State(state): State<AppState>) -> Result<Json<Value>> {
    state.store.ping().await?;
    Ok(Json(json!({ "status": "ok" })))
}
