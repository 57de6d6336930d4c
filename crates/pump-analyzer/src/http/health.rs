//! `GET /healthz`: the process is up and its database answers.

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use http::header;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ErrorBody, Result};
use crate::metrics::Gauges;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health)).routes(routes!(metrics))
}

/// Prometheus text exposition of the ingest counters and the live gauges.
#[utoipa::path(get, path = "/metrics", summary = "Counters and gauges in Prometheus text format",
    responses((status = 200, description = "Prometheus text exposition 0.0.4", body = String, content_type = "text/plain"),
              (status = 503, description = "The database is unavailable", body = ErrorBody)))]
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

#[derive(Serialize, ToSchema)]
struct Health {
    /// Always `ok`: a database that does not answer gives a 503 instead.
    #[schema(pattern = "^ok$")]
    status: &'static str,
}

#[utoipa::path(get, path = "/healthz", summary = "Liveness and database check",
    responses((status = 200, body = Health), (status = 503, description = "The database is unavailable", body = ErrorBody)))]
async fn health(State(state): State<AppState>) -> Result<Json<Health>> {
    state.store.ping().await?;
    Ok(Json(Health { status: "ok" }))
}
