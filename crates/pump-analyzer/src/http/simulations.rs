//! The strategy simulator over HTTP (SPEC §9.4): `POST /simulations` checks the request and the
//! script's syntax, stores it and answers 202 at once; the run goes to the blocking pool, one at
//! a time per CPU core (the rest wait their turn), and its result is stored when it ends.
//! `GET /simulations/{id}` shows progress and then the result, `GET /simulations` lists them,
//! `DELETE /simulations/{id}` cancels a running one or removes a finished one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Semaphore;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AppState;
use super::error::{AppError, ErrorBody, Result};
use super::extract::JsonBody;
use super::openapi::{ById, IdPath, NotJson, WriteRefused};
use super::query::{Params, PathId};
use super::streams::parse_id;
use crate::ingest::message::FieldError;
use crate::sim::{DEFAULT_BALANCE, DEFAULT_MAX_BETS, MAX_RUNS, SimConfig, SimControl};
use crate::store::model::Page;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, start)).routes(routes!(one, remove))
}

/// A simulation request as given and stored (the body of `POST /simulations`, defaults filled in).
#[derive(Serialize, ToSchema)]
#[schema(as = SimulationRequest)]
struct SimRequest<'a> {
    /// The Antebot script (JavaScript).
    script: &'a str,
    /// The seed pair to play; a random pair when absent. Not with `runs` > 1.
    #[schema(required = true)]
    server_seed: Option<&'a str>,
    #[schema(required = true)]
    client_seed: Option<&'a str>,
    #[schema(minimum = 1)]
    start_nonce: u64,
    /// Most bets per run (at most MAX_NONCES).
    #[schema(minimum = 1)]
    max_bets: u64,
    #[schema(minimum = 0)]
    balance: f64,
    /// Runs on random seed pairs (a Monte Carlo) when > 1.
    #[schema(minimum = 1)]
    runs: u64,
}

#[derive(Serialize, ToSchema)]
struct SimulationStarted {
    id: Uuid,
    /// Always `running`.
    status: &'static str,
}

/// Bets played so far, of the most the request allows.
#[derive(Serialize, ToSchema)]
struct SimProgress {
    bets: u64,
    of: u64,
}

#[derive(Serialize, ToSchema)]
struct Simulation {
    id: Uuid,
    /// `running`, `done`, `failed` or `cancelled`.
    status: String,
    created_at: String,
    #[schema(required = true)]
    finished_at: Option<String>,
    #[schema(value_type = SimRequest)]
    request: Value,
    progress: SimProgress,
    /// The report (SPEC §9.4), once the simulation has ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    result: Option<Value>,
}

/// A simulation in the list (without its script and result).
#[derive(Serialize, ToSchema)]
struct SimulationItem {
    id: Uuid,
    status: String,
    created_at: String,
    #[schema(required = true)]
    finished_at: Option<String>,
    #[schema(value_type = u64)]
    runs: Value,
    #[schema(value_type = u64)]
    max_bets: Value,
    #[schema(value_type = f64)]
    balance: Value,
    progress: SimProgress,
}

#[derive(Serialize, ToSchema)]
struct SimulationList {
    simulations: Vec<SimulationItem>,
    total: i64,
    limit: i64,
    offset: i64,
}

#[derive(Serialize, ToSchema)]
struct SimulationDeleted {
    id: Uuid,
    /// `cancelled` when it was still running.
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    /// `true` when a finished simulation was removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    deleted: Option<bool>,
}

/// Longest seed accepted, as for seed reveals.
const MAX_SEED: usize = 256;

/// Simulations of this process that have not ended, and the bound on how many run at once.
pub struct SimRegistry {
    active: Mutex<HashMap<Uuid, Arc<ActiveSim>>>,
    slots: Arc<Semaphore>,
}

impl Default for SimRegistry {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self { active: Mutex::default(), slots: Arc::new(Semaphore::new(cores)) }
    }
}

struct ActiveSim {
    control: Arc<SimControl>,
    finished: tokio::sync::watch::Sender<bool>,
}

impl SimRegistry {
    fn get(&self, id: Uuid) -> Option<Arc<ActiveSim>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner()).get(&id).cloned()
    }

    fn remove(&self, id: Uuid) {
        self.active.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }
}

/// A checked `POST /simulations` body.
struct Request {
    config: SimConfig,
    runs: u64,
}

fn parse(body: &Value, max_nonces: u64, time_limit: Duration) -> Result<Request> {
    let Some(fields) = body.as_object() else {
        return Err(AppError::validation("body", "must be a JSON object with at least a \"script\""));
    };
    let mut errors = Vec::new();
    let mut error = |field: &'static str, message: String| errors.push(FieldError { field, message });
    let script = match fields.get("script") {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            error("script", "is required: the Antebot script to run".into());
            None
        }
        Some(_) => {
            error("script", "must be a string".into());
            None
        }
    };
    let mut seed = |name: &'static str| match fields.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= MAX_SEED => Some(s.clone()),
        Some(_) => {
            error(name, format!("must be a string of 1 to {MAX_SEED} characters when given"));
            None
        }
    };
    let server_seed = seed("server_seed");
    let client_seed = seed("client_seed");
    let mut whole = |name: &'static str, default: u64, max: u64| match fields.get(name) {
        None | Some(Value::Null) => default,
        Some(v) => match v.as_u64().filter(|n| (1..=max).contains(n)) {
            Some(n) => n,
            None => {
                error(name, format!("must be a whole number from 1 to {max}"));
                default
            }
        },
    };
    let start_nonce = whole("start_nonce", 1, i64::MAX as u64);
    let max_bets = whole("max_bets", DEFAULT_MAX_BETS.min(max_nonces), max_nonces);
    let runs = whole("runs", 1, MAX_RUNS);
    let balance = match fields.get("balance") {
        None | Some(Value::Null) => DEFAULT_BALANCE,
        Some(v) => match v.as_f64().filter(|b| b.is_finite() && *b >= 0.0) {
            Some(b) => b,
            None => {
                error("balance", "must be a number ≥ 0".into());
                DEFAULT_BALANCE
            }
        },
    };
    if runs > 1 && (server_seed.is_some() || client_seed.is_some()) {
        error("runs", "a Monte Carlo (runs > 1) draws its own random seed pairs: leave the seeds out".into());
    }
    let Some(script) = script.filter(|_| errors.is_empty()) else { return Err(AppError::Validation(errors)) };
    let config = SimConfig { script, server_seed, client_seed, start_nonce, max_bets, balance, time_limit };
    Ok(Request { config, runs })
}

fn now() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

#[utoipa::path(post, path = "/simulations", operation_id = "start_simulation", summary = "Simulate an Antebot script against the engine",
    description = "Answers 202 at once; the simulation runs in the background.",
    request_body = SimRequest,
    responses((status = 202, body = SimulationStarted), NotJson, WriteRefused,
              (status = 422, description = "A field is invalid, or the script does not parse", body = ErrorBody)))]
async fn start(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<SimulationStarted>)> {
    let time_limit = Duration::from_secs(state.settings.sim_time_limit);
    let Request { config, runs } = parse(&body, state.settings.max_nonces, time_limit)?;
    let script = config.script.clone();
    let checked = tokio::task::spawn_blocking(move || crate::sim::check_syntax(&script))
        .await
        .map_err(|e| AppError::Internal(format!("syntax check failed: {e}")))?;
    if let Err(e) = checked {
        return Err(AppError::validation("script", format!("syntax error at {e}")));
    }
    let id = Uuid::new_v4();
    let request = SimRequest {
        script: &config.script,
        server_seed: config.server_seed.as_deref(),
        client_seed: config.client_seed.as_deref(),
        start_nonce: config.start_nonce,
        max_bets: config.max_bets,
        balance: config.balance,
        runs,
    };
    let request =
        serde_json::to_string(&request).map_err(|e| AppError::Internal(format!("simulation request: {e}")))?;
    state.store.insert_simulation(id, now(), request).await?;
    let active = Arc::new(ActiveSim {
        control: Arc::new(SimControl::default()),
        finished: tokio::sync::watch::channel(false).0,
    });
    state.simulations.active.lock().unwrap_or_else(|e| e.into_inner()).insert(id, active.clone());
    tokio::spawn(run(state.clone(), id, config, runs, active));
    Ok((StatusCode::ACCEPTED, Json(SimulationStarted { id, status: "running" })))
}

/// Waits for a core, runs the simulation on the blocking pool, stores its result.
async fn run(state: AppState, id: Uuid, config: SimConfig, runs: u64, active: Arc<ActiveSim>) {
    let slots = state.simulations.slots.clone();
    let permit = slots.acquire_owned().await;
    let control = active.control.clone();
    let outcome = if control.is_cancelled() {
        Ok(None)
    } else {
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            Some(if runs > 1 {
                crate::sim::monte_carlo(&config, runs, &control)
            } else {
                crate::sim::simulate(&config, &control)
            })
        })
        .await
    };
    let (status, result) = match outcome {
        Ok(result) if active.control.is_cancelled() => ("cancelled", result),
        Ok(result) => ("done", result),
        Err(e) => {
            tracing::error!(simulation = %id, error = %e, "simulation task failed");
            ("failed", None)
        }
    };
    if let Err(e) = state.store.finish_simulation(id, now(), status, result.map(|r| r.to_string())).await {
        tracing::error!(simulation = %id, error = %e, "could not store a simulation's result");
    }
    state.simulations.remove(id);
    active.finished.send_replace(true);
}

fn progress(state: &AppState, id: Uuid, status: &str, request: &Value, result: Option<&Value>) -> SimProgress {
    let of = request["max_bets"].as_u64().unwrap_or(0).saturating_mul(request["runs"].as_u64().unwrap_or(1));
    let bets = match (state.simulations.get(id), result) {
        (Some(active), _) => active.control.bets(),
        (None, Some(r)) if r.get("runs").is_some() => {
            r["runs"].as_array().map_or(0, |runs| runs.iter().filter_map(|x| x["stats"]["bets"].as_u64()).sum())
        }
        (None, Some(r)) => r["stats"]["bets"].as_u64().unwrap_or(0),
        (None, None) if status == "done" => of,
        (None, None) => 0,
    };
    SimProgress { bets, of }
}

#[utoipa::path(get, path = "/simulations/{id}", summary = "One simulation: progress, then its result",
    params(IdPath), responses((status = 200, body = Simulation), ById))]
async fn one(State(state): State<AppState>, PathId(raw): PathId) -> Result<Json<Simulation>> {
    let id = parse_id(&raw, "simulation")?;
    let record =
        state.store.simulation(id).await?.ok_or_else(|| AppError::NotFound(format!("Simulation {id} not found")))?;
    let progress = progress(&state, id, &record.status, &record.request, record.result.as_ref());
    Ok(Json(Simulation {
        id: record.id,
        status: record.status,
        created_at: record.created_at,
        finished_at: record.finished_at,
        request: record.request,
        progress,
        result: record.result,
    }))
}

#[utoipa::path(get, path = "/simulations", operation_id = "list_simulations", summary = "Simulations, newest first",
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 100), ("offset" = Option<i64>, Query, minimum = 0)),
    responses((status = 200, body = SimulationList), (status = 400, description = "A parameter cannot be read", body = ErrorBody),
              (status = 422, description = "A parameter is out of range", body = ErrorBody)))]
async fn list(State(state): State<AppState>, params: Params) -> Result<Json<SimulationList>> {
    let limit = params.int("limit", 50, 1, 100)?;
    let offset = params.int("offset", 0, 0, i64::MAX)?;
    let Page { items: records, total } = state.store.list_simulations(limit, offset).await?;
    let simulations = records
        .into_iter()
        .map(|r| SimulationItem {
            progress: progress(&state, r.id, &r.status, &r.request, None),
            id: r.id,
            status: r.status,
            created_at: r.created_at,
            finished_at: r.finished_at,
            runs: r.request["runs"].clone(),
            max_bets: r.request["max_bets"].clone(),
            balance: r.request["balance"].clone(),
        })
        .collect();
    Ok(Json(SimulationList { simulations, total, limit, offset }))
}

#[utoipa::path(delete, path = "/simulations/{id}", summary = "Cancel a running simulation, or delete a finished one",
    params(IdPath), responses((status = 200, body = SimulationDeleted), WriteRefused, ById))]
async fn remove(State(state): State<AppState>, PathId(raw): PathId) -> Result<Json<SimulationDeleted>> {
    let id = parse_id(&raw, "simulation")?;
    if let Some(active) = state.simulations.get(id) {
        active.control.cancel();
        let mut finished = active.finished.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(5), finished.wait_for(|done| *done)).await;
        return Ok(Json(SimulationDeleted { id, status: Some("cancelled"), deleted: None }));
    }
    if !state.store.delete_simulation(id).await? {
        return Err(AppError::NotFound(format!("Simulation {id} not found")));
    }
    Ok(Json(SimulationDeleted { id, status: None, deleted: Some(true) }))
}
