//! The strategy simulator over HTTP (SPEC §9.4): `POST /simulations` checks the request and the
//! script's syntax, stores it and answers 202 at once; the run goes to the blocking pool, one at
//! a time per CPU core (the rest wait their turn), and its result is stored when it ends.
//! `GET /simulations/{id}` shows progress and then the result, `GET /simulations` lists them,
//! `DELETE /simulations/{id}` cancels a running one or removes a finished one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::AppState;
use super::error::{AppError, Result};
use super::extract::JsonBody;
use super::query::{Params, PathId};
use super::streams::parse_id;
use crate::ingest::message::FieldError;
use crate::sim::{DEFAULT_BALANCE, DEFAULT_MAX_BETS, MAX_RUNS, SimConfig, SimControl};

pub fn router() -> Router<AppState> {
    Router::new().route("/simulations", get(list).post(start)).route("/simulations/{id}", get(one).delete(remove))
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

async fn start(State(state): State<AppState>, JsonBody(body): JsonBody) -> Result<(StatusCode, Json<Value>)> {
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
    let request = json!({
        "script": config.script,
        "server_seed": config.server_seed,
        "client_seed": config.client_seed,
        "start_nonce": config.start_nonce,
        "max_bets": config.max_bets,
        "balance": config.balance,
        "runs": runs,
    });
    state.store.insert_simulation(id, now(), request.to_string()).await?;
    let active = Arc::new(ActiveSim {
        control: Arc::new(SimControl::default()),
        finished: tokio::sync::watch::channel(false).0,
    });
    state.simulations.active.lock().unwrap_or_else(|e| e.into_inner()).insert(id, active.clone());
    tokio::spawn(run(state.clone(), id, config, runs, active));
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": id, "status": "running" }))))
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

fn progress(state: &AppState, id: Uuid, status: &str, request: &Value, result: Option<&Value>) -> Value {
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
    json!({ "bets": bets, "of": of })
}

async fn one(State(state): State<AppState>, PathId(raw): PathId) -> Result<Json<Value>> {
    let id = parse_id(&raw, "simulation")?;
    let record =
        state.store.simulation(id).await?.ok_or_else(|| AppError::NotFound(format!("Simulation {id} not found")))?;
    let progress = progress(&state, id, &record.status, &record.request, record.result.as_ref());
    let mut answer = json!({
        "id": record.id,
        "status": record.status,
        "created_at": record.created_at,
        "finished_at": record.finished_at,
        "request": record.request,
        "progress": progress,
    });
    if let Some(result) = record.result {
        answer["result"] = result;
    }
    Ok(Json(answer))
}

async fn list(State(state): State<AppState>, params: Params) -> Result<Json<Value>> {
    let limit = params.int("limit", 50, 1, 100)?;
    let offset = params.int("offset", 0, 0, i64::MAX)?;
    let (records, total) = state.store.list_simulations(limit, offset).await?;
    let simulations: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "status": r.status,
                "created_at": r.created_at,
                "finished_at": r.finished_at,
                "runs": r.request["runs"],
                "max_bets": r.request["max_bets"],
                "balance": r.request["balance"],
                "progress": progress(&state, r.id, &r.status, &r.request, None),
            })
        })
        .collect();
    Ok(Json(json!({ "simulations": simulations, "total": total, "limit": limit, "offset": offset })))
}

async fn remove(State(state): State<AppState>, PathId(raw): PathId) -> Result<Json<Value>> {
    let id = parse_id(&raw, "simulation")?;
    if let Some(active) = state.simulations.get(id) {
        active.control.cancel();
        let mut finished = active.finished.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(5), finished.wait_for(|done| *done)).await;
        return Ok(Json(json!({ "id": id, "status": "cancelled" })));
    }
    if !state.store.delete_simulation(id).await? {
        return Err(AppError::NotFound(format!("Simulation {id} not found")));
    }
    Ok(Json(json!({ "id": id, "deleted": true })))
}
