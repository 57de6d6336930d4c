//! Runs (SPEC §4.5): scan a nonce range with the engine on every core, off the async runtime,
//! store the run and its hits atomically, page and export them.
//!
//! `POST /runs` answers when the scan is done. Meanwhile `GET /runs/active` and
//! `GET /runs/{id}/progress` report its progress (a client may choose the run's `id` up front to
//! follow it) and `POST /runs/{id}/cancel` (or `DELETE /runs/{id}`) stops it; a client that
//! disconnects cancels its scan too. At most [`MAX_CONCURRENT_RUNS`] scans run at once; the others
//! wait their turn, reported as `queued`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use pump_engine::scan::{RangeSummary, ScanControl, ScanError, ScanRequest};
use pump_engine::tables::cents;
use pump_engine::{Difficulty, RoundDeriver};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::Semaphore;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AppState;
use super::csv;
use super::error::{AppError, ErrorBody, Result};
use super::extract::JsonBody;
use super::openapi::{ById, IdPath, NotJson, Unreadable, WriteRefused};
use super::query::{Params, PathId};
use super::seeds::seed_hash;
use super::streams::parse_id;
use crate::ingest::message::FieldError;
use crate::store::model::{Page, Run, RunHit, RunSummary};
use crate::store::{NewRun, RunQuery};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(active))
        .routes(routes!(show, delete))
        .routes(routes!(progress))
        .routes(routes!(cancel))
        .routes(routes!(hits))
        .routes(routes!(export_hits))
        .routes(routes!(export_full))
}

/// Scans running at once (each already uses every core).
pub const MAX_CONCURRENT_RUNS: usize = 2;
/// Most hits one run may keep (bounds memory and storage).
pub const MAX_HITS: usize = 1_000_000;
const MAX_SEED: usize = 256;
const MAX_TARGETS: usize = 64;
/// Nonces recomputed per chunk of the full export.
const FULL_EXPORT_CHUNK: u64 = 16_384;

/// A scan in progress.
pub struct ActiveRun {
    pub id: Uuid,
    pub control: Arc<ScanControl>,
    pub total: u64,
    pub started: Instant,
    pub queued: std::sync::atomic::AtomicBool,
    pub client_seed: String,
    pub difficulty: Difficulty,
}

/// How far a run has come.
#[derive(Serialize, ToSchema)]
pub struct RunProgress {
    id: Uuid,
    /// `queued`, `running`, `cancelling` or `finished`.
    status: &'static str,
    /// Nonces scanned.
    done: u64,
    total: u64,
    /// `done / total`, 0 to 1.
    progress: f64,
    elapsed_ms: u64,
    /// The fields below: while the scan is in progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    nonces_per_second: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_seed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    difficulty: Option<Difficulty>,
}

impl ActiveRun {
    fn report(&self) -> RunProgress {
        let done = self.control.done().min(self.total);
        let elapsed = self.started.elapsed().as_secs_f64();
        let queued = self.queued.load(std::sync::atomic::Ordering::Relaxed);
        RunProgress {
            id: self.id,
            status: if self.control.is_cancelled() {
                "cancelling"
            } else if queued {
                "queued"
            } else {
                "running"
            },
            done,
            total: self.total,
            progress: if self.total == 0 { 1.0 } else { done as f64 / self.total as f64 },
            elapsed_ms: (elapsed * 1000.0) as u64,
            nonces_per_second: Some(if elapsed > 0.0 { (done as f64 / elapsed) as u64 } else { 0 }),
            client_seed: Some(self.client_seed.clone()),
            difficulty: Some(self.difficulty),
        }
    }
}

/// Scans in progress and the bound on how many run at once.
pub struct RunRegistry {
    active: Mutex<HashMap<Uuid, Arc<ActiveRun>>>,
    slots: Semaphore,
}

impl Default for RunRegistry {
    fn default() -> Self {
        Self { active: Mutex::new(HashMap::new()), slots: Semaphore::new(MAX_CONCURRENT_RUNS) }
    }
}

impl RunRegistry {
    fn get(&self, id: Uuid) -> Option<Arc<ActiveRun>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner()).get(&id).cloned()
    }

    /// Number of scans in progress (running or queued).
    pub fn in_progress(&self) -> usize {
        self.active.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Removes a run from the registry and cancels its scan when the request ends for any reason
/// (finished, failed, or the client disconnected and the handler was dropped).
struct Registration {
    registry: Arc<RunRegistry>,
    run: Arc<ActiveRun>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.run.control.cancel();
        self.registry.active.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.run.id);
    }
}

/// A validated `POST /runs` body.
struct RunSpec {
    id: Option<Uuid>,
    server_seed: String,
    client_seed: String,
    start: u64,
    end: u64,
    difficulty: Difficulty,
    targets: Vec<f64>,
}

fn seed_field(body: &Map<String, Value>, name: &'static str, errors: &mut Vec<FieldError>) -> Option<String> {
    match body.get(name) {
        None | Some(Value::Null) => errors.push(FieldError { field: name, message: "is required".into() }),
        Some(Value::String(s)) if s.trim().is_empty() => {
            errors.push(FieldError { field: name, message: "must not be blank".into() })
        }
        Some(Value::String(s)) if s.chars().count() > MAX_SEED => {
            errors.push(FieldError { field: name, message: format!("must be at most {MAX_SEED} characters") })
        }
        Some(Value::String(s)) => return Some(s.clone()),
        Some(_) => errors.push(FieldError { field: name, message: "must be a string".into() }),
    }
    None
}

/// A nonce: a JSON integer (or integer string) ≥ 1.
fn nonce_field(body: &Map<String, Value>, name: &'static str, errors: &mut Vec<FieldError>) -> Option<u64> {
    let parsed = match body.get(name) {
        None | Some(Value::Null) => {
            errors.push(FieldError { field: name, message: "is required".into() });
            return None;
        }
        Some(Value::Number(n)) => {
            n.as_u64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 9e15).map(|f| f as u64))
        }
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(_) => None,
    };
    match parsed {
        Some(n) if n >= 1 && n <= i64::MAX as u64 => Some(n),
        _ => {
            errors.push(FieldError { field: name, message: "must be an integer ≥ 1".into() });
            None
        }
    }
}

fn parse_spec(body: &Value) -> Result<RunSpec> {
    let Value::Object(body) = body else {
        return Err(AppError::validation("body", "must be a JSON object"));
    };
    let mut errors = Vec::new();
    let server_seed = seed_field(body, "server_seed", &mut errors);
    let client_seed = seed_field(body, "client_seed", &mut errors);
    let start = nonce_field(body, "start", &mut errors);
    let end = nonce_field(body, "end", &mut errors);
    if let (Some(s), Some(e)) = (start, end)
        && e < s
    {
        errors.push(FieldError { field: "end", message: format!("must be ≥ start ({s})") });
    }
    let difficulty = match body.get("difficulty") {
        None | Some(Value::Null) => {
            errors.push(FieldError { field: "difficulty", message: "is required".into() });
            None
        }
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().parse::<Difficulty>() {
            Ok(d) => Some(d),
            Err(e) => {
                errors.push(FieldError { field: "difficulty", message: e.to_string() });
                None
            }
        },
        Some(_) => {
            errors
                .push(FieldError { field: "difficulty", message: "must be one of easy, medium, hard, expert".into() });
            None
        }
    };
    let targets = match body.get("targets") {
        None | Some(Value::Null) => {
            errors.push(FieldError { field: "targets", message: "is required (a list of multipliers)".into() });
            None
        }
        Some(Value::Array(items)) => {
            let mut targets = Vec::with_capacity(items.len());
            let mut bad = false;
            for item in items {
                let v = match item {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.trim().parse::<f64>().ok(),
                    _ => None,
                };
                match v {
                    Some(v) if (1.0..1e9).contains(&v) => targets.push(cents(v) as f64 / 100.0),
                    _ => bad = true,
                }
            }
            targets.sort_by(f64::total_cmp);
            targets.dedup();
            if bad {
                errors.push(FieldError { field: "targets", message: "must contain only multipliers ≥ 1".into() });
                None
            } else if targets.is_empty() {
                errors.push(FieldError { field: "targets", message: "must contain at least one multiplier".into() });
                None
            } else if targets.len() > MAX_TARGETS {
                errors.push(FieldError {
                    field: "targets",
                    message: format!("may contain at most {MAX_TARGETS} multipliers"),
                });
                None
            } else {
                Some(targets)
            }
        }
        Some(_) => {
            errors.push(FieldError { field: "targets", message: "must be a list of multipliers".into() });
            None
        }
    };
    let id = match body.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match Uuid::parse_str(s) {
            Ok(id) => Some(id),
            Err(_) => {
                errors.push(FieldError { field: "id", message: "must be a UUID when given".into() });
                None
            }
        },
        Some(_) => {
            errors.push(FieldError { field: "id", message: "must be a UUID when given".into() });
            None
        }
    };
    match (server_seed, client_seed, start, end, difficulty, targets) {
        (Some(server_seed), Some(client_seed), Some(start), Some(end), Some(difficulty), Some(targets))
            if errors.is_empty() =>
        {
            Ok(RunSpec { id, server_seed, client_seed, start, end, difficulty, targets })
        }
        _ => Err(AppError::Validation(errors)),
    }
}

fn target_key(t: f64) -> String {
    format!("{t:.2}")
}

/// SPEC §4.5 summary: the whole scanned range (count, maximum, median and the first nonces at
/// the maximum, whatever the targets) and the hits per target.
fn summarize(hits: &[RunHit], range: &RangeSummary, targets: &[f64]) -> Result<Value> {
    let mut counts_by_target = Map::new();
    for &t in targets {
        let n = hits.iter().filter(|h| cents(h.max_multiplier) == cents(t)).count();
        counts_by_target.insert(target_key(t), Value::from(n));
    }
    let summary = RunSummary {
        count: range.count(),
        max_multiplier: range.max_multiplier(),
        median_multiplier: range.median_multiplier(),
        counts_by_target,
        top_max: range.top.iter().map(RunHit::from).collect(),
    };
    serde_json::to_value(summary).map_err(|e| AppError::Internal(format!("run summary: {e}")))
}

/// The body of `POST /runs`.
#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the body; `parse_spec` reads it to name every problem")]
struct RunRequest {
    /// Choose the run's id to follow its progress while `POST /runs` is still answering.
    id: Option<Uuid>,
    #[schema(min_length = 1, max_length = 256)]
    server_seed: String,
    #[schema(min_length = 1, max_length = 256)]
    client_seed: String,
    /// First nonce (≥ 1).
    #[schema(minimum = 1)]
    start: i64,
    /// Last nonce (≥ start); at most MAX_NONCES in the range.
    #[schema(minimum = 1)]
    end: i64,
    #[schema(schema_with = crate::store::model::difficulty_schema)]
    difficulty: Difficulty,
    /// Multipliers to keep hits of (1 to 64 of them, each ≥ 1).
    #[schema(min_items = 1, max_items = 64)]
    targets: Vec<f64>,
}

#[derive(Serialize, ToSchema)]
struct RunList {
    runs: Vec<Run>,
    total: i64,
    limit: i64,
    offset: i64,
}

#[derive(Serialize, ToSchema)]
struct ActiveRuns {
    runs: Vec<RunProgress>,
}

#[derive(Serialize, ToSchema)]
struct RunCancelled {
    id: Uuid,
    cancelled: bool,
}

#[derive(Serialize, ToSchema)]
struct RunDeleted {
    deleted: bool,
    run_id: Uuid,
    /// Present when the run was still scanning: it was cancelled instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    cancelled: Option<bool>,
}

#[derive(Serialize, ToSchema)]
struct HitPage {
    hits: Vec<RunHit>,
    total: i64,
    limit: i64,
    offset: i64,
    run_id: Uuid,
}

#[utoipa::path(post, path = "/runs", summary = "Scan a nonce range; answers when the scan is done",
    request_body = RunRequest,
    responses((status = 201, body = Run), NotJson, WriteRefused,
              (status = 409, description = "The id is taken, or the run was cancelled", body = ErrorBody),
              (status = 413, description = "The range is over MAX_NONCES", body = ErrorBody),
              (status = 422, description = "A field is missing or invalid", body = ErrorBody)))]
async fn create(State(state): State<AppState>, JsonBody(body): JsonBody) -> Result<(StatusCode, Json<Run>)> {
    let spec = parse_spec(&body)?;
    let total = spec.end - spec.start + 1;
    let max = state.settings.max_nonces;
    if total > max {
        return Err(AppError::PayloadTooLarge(format!(
            "The range holds {total} nonces; the limit is MAX_NONCES = {max}. Split it into smaller runs."
        )));
    }
    let id = spec.id.unwrap_or_else(Uuid::new_v4);
    if state.store.run(id).await?.is_some() || state.runs.get(id).is_some() {
        return Err(AppError::Conflict(format!("A run with id {id} already exists")));
    }
    let run = Arc::new(ActiveRun {
        id,
        control: Arc::new(ScanControl::default()),
        total,
        started: Instant::now(),
        queued: std::sync::atomic::AtomicBool::new(true),
        client_seed: spec.client_seed.clone(),
        difficulty: spec.difficulty,
    });
    state.runs.active.lock().unwrap_or_else(|e| e.into_inner()).insert(id, run.clone());
    let registration = Registration { registry: state.runs.clone(), run: run.clone() };

    let _slot = state.runs.slots.acquire().await.map_err(|_| AppError::Unavailable("run queue closed".into()))?;
    run.queued.store(false, std::sync::atomic::Ordering::Relaxed);
    let created_at = chrono::Utc::now().timestamp_micros();
    let started = Instant::now();
    let control = run.control.clone();
    let (server_seed, client_seed, targets) =
        (spec.server_seed.clone(), spec.client_seed.clone(), spec.targets.clone());
    let (start, end, difficulty) = (spec.start, spec.end, spec.difficulty);
    let scanned = tokio::task::spawn_blocking(move || {
        let request = ScanRequest {
            server_seed: &server_seed,
            client_seed: &client_seed,
            start,
            end,
            difficulty,
            targets: &targets,
            max_hits: MAX_HITS,
        };
        pump_engine::scan::scan(&request, &control)
    })
    .await
    .map_err(|e| AppError::Internal(format!("scan task failed: {e}")))?;
    let pump_engine::scan::Scan { hits, summary: range } = match scanned {
        Ok(scan) => scan,
        Err(ScanError::Cancelled) => {
            let done = run.control.done().min(total);
            return Err(AppError::Conflict(format!(
                "Run {id} was cancelled after {done} of {total} nonces; nothing was stored"
            )));
        }
        Err(e @ ScanError::TooManyHits(_)) => return Err(AppError::validation("targets", e.to_string())),
        Err(e @ ScanError::InvalidRange) => return Err(AppError::validation("end", e.to_string())),
    };
    let duration_ms = started.elapsed().as_millis() as i64;
    let hits: Vec<RunHit> = hits.iter().map(RunHit::from).collect();
    let stored = Run {
        id,
        created_at: crate::store::model::iso(created_at),
        server_seed_sha256: seed_hash(&spec.server_seed),
        server_seed: spec.server_seed,
        client_seed: spec.client_seed,
        nonce_start: start as i64,
        nonce_end: end as i64,
        difficulty,
        summary: summarize(&hits, &range, &spec.targets)?,
        targets: spec.targets,
        duration_ms,
        engine_version: pump_engine::ENGINE_VERSION.to_string(),
    };
    state.store.insert_run(NewRun { run: stored.clone(), created_at, hits }).await?;
    drop(registration);
    tracing::info!(run = %id, nonces = total, duration_ms, "run stored");
    Ok((StatusCode::CREATED, Json(stored)))
}

#[utoipa::path(get, path = "/runs", operation_id = "list_runs", summary = "Stored runs, newest first",
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 100), ("offset" = Option<i64>, Query, minimum = 0),
           ("search" = Option<String>, Query, description = "part of the client seed or the server seed's hash"),
           ("difficulty" = Option<String>, Query)),
    responses((status = 200, body = RunList), (status = 400, description = "A parameter cannot be read", body = ErrorBody),
              (status = 422, description = "A parameter is invalid", body = ErrorBody)))]
async fn list(State(state): State<AppState>, params: Params) -> Result<Json<RunList>> {
    let query = RunQuery {
        limit: params.int("limit", 50, 1, 100)?,
        offset: params.int("offset", 0, 0, i64::MAX)?,
        search: params.text("search").map(|s| s.trim().chars().take(256).collect()),
        difficulty: params.difficulty("difficulty")?,
    };
    let Page { items: runs, total } = state.store.list_runs(query.clone()).await?;
    Ok(Json(RunList { runs, total, limit: query.limit, offset: query.offset }))
}

#[utoipa::path(get, path = "/runs/active", summary = "Scans in progress", responses((status = 200, body = ActiveRuns)))]
async fn active(State(state): State<AppState>) -> Json<ActiveRuns> {
    let runs = state.runs.active.lock().unwrap_or_else(|e| e.into_inner()).values().map(|r| r.report()).collect();
    Json(ActiveRuns { runs })
}

async fn load(state: &AppState, raw: &str) -> Result<Run> {
    let id = parse_id(raw, "run")?;
    state.store.run(id).await?.ok_or_else(|| AppError::NotFound(format!("Run {id} not found")))
}

#[utoipa::path(get, path = "/runs/{id}", summary = "One run",
    params(IdPath), responses((status = 200, body = Run), ById))]
async fn show(State(state): State<AppState>, PathId(raw): PathId) -> Result<Json<Run>> {
    Ok(Json(load(&state, &raw).await?))
}

#[utoipa::path(get, path = "/runs/{id}/progress", summary = "Progress of a run",
    params(IdPath), responses((status = 200, body = RunProgress), ById))]
async fn progress(State(state): State<AppState>, PathId(raw): PathId) -> Result<Json<RunProgress>> {
    let id = parse_id(&raw, "run")?;
    if let Some(run) = state.runs.get(id) {
        return Ok(Json(run.report()));
    }
    let run = state.store.run(id).await?.ok_or_else(|| AppError::NotFound(format!("Run {id} not found")))?;
    let total = (run.nonce_end - run.nonce_start + 1) as u64;
    Ok(Json(RunProgress {
        id,
        status: "finished",
        done: total,
        total,
        progress: 1.0,
        elapsed_ms: run.duration_ms as u64,
        nonces_per_second: None,
        client_seed: None,
        difficulty: None,
    }))
}

#[utoipa::path(post, path = "/runs/{id}/cancel", summary = "Cancel a scan in progress",
    params(IdPath), responses((status = 202, body = RunCancelled),
              WriteRefused,
              (status = 404, description = "No such run", body = ErrorBody),
              (status = 409, description = "The run has finished already", body = ErrorBody),
              (status = 422, description = "The id is not a UUID", body = ErrorBody)))]
async fn cancel(State(state): State<AppState>, PathId(raw): PathId) -> Result<(StatusCode, Json<RunCancelled>)> {
    let id = parse_id(&raw, "run")?;
    match state.runs.get(id) {
        Some(run) => {
            run.control.cancel();
            Ok((StatusCode::ACCEPTED, Json(RunCancelled { id, cancelled: true })))
        }
        None if state.store.run(id).await?.is_some() => {
            Err(AppError::Conflict(format!("Run {id} has already finished; delete it instead")))
        }
        None => Err(AppError::NotFound(format!("Run {id} not found"))),
    }
}

#[utoipa::path(delete, path = "/runs/{id}", operation_id = "delete_run", summary = "Delete a run (or cancel one in progress)",
    params(IdPath), responses((status = 200, body = RunDeleted), WriteRefused, ById))]
async fn delete(State(state): State<AppState>, PathId(raw): PathId) -> Result<Json<RunDeleted>> {
    let id = parse_id(&raw, "run")?;
    if let Some(run) = state.runs.get(id) {
        run.control.cancel();
        return Ok(Json(RunDeleted { deleted: true, run_id: id, cancelled: Some(true) }));
    }
    if !state.store.delete_run(id).await? {
        return Err(AppError::NotFound(format!("Run {id} not found")));
    }
    Ok(Json(RunDeleted { deleted: true, run_id: id, cancelled: None }))
}

#[utoipa::path(get, path = "/runs/{id}/hits", summary = "A page of a run's hits, nonce ascending",
    params(IdPath, ("min_multiplier" = Option<f64>, Query),
           ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000), ("offset" = Option<i64>, Query, minimum = 0)),
    responses((status = 200, body = HitPage), Unreadable, ById))]
async fn hits(State(state): State<AppState>, PathId(raw): PathId, params: Params) -> Result<Json<HitPage>> {
    let id = parse_id(&raw, "run")?;
    let min = params.opt_number("min_multiplier", 0.0)?;
    let limit = params.int("limit", 100, 1, 1000)?;
    let offset = params.int("offset", 0, 0, i64::MAX)?;
    let Page { items: hits, total } = state
        .store
        .run_hits(id, min, limit, None, offset)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("Run {id} not found")))?;
    Ok(Json(HitPage { hits, total, limit, offset, run_id: id }))
}

fn csv_response(file: String, body: Body) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file}\"")),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body,
    )
        .into_response()
}

pub const HITS_HEADER: &str = "nonce,max_pumps,max_multiplier,pop_point\n";

#[utoipa::path(get, path = "/runs/{id}/export/hits.csv", summary = "A run's hits as CSV",
    params(IdPath), responses((status = 200, description = "CSV, nonce ascending", body = String, content_type = "text/csv"),
              ById))]
async fn export_hits(State(state): State<AppState>, PathId(raw): PathId) -> Result<Response> {
    let run = load(&state, &raw).await?;
    let id = run.id;
    // Pages by nonce (keyset), so memory stays flat however many hits the run has.
    let stream = futures_util::stream::unfold(Some((state, None::<i64>, true)), move |cursor| async move {
        let (state, after, first) = cursor?;
        let mut out = if first { HITS_HEADER.to_string() } else { String::new() };
        match state.store.run_hits(id, None, 5000, after, 0).await {
            Ok(Some(Page { items: hits, .. })) => {
                for h in &hits {
                    out.push_str(&format!("{},{},{:.2},{}\n", h.nonce, h.max_pumps, h.max_multiplier, h.pop_point));
                }
                let next = (hits.len() == 5000).then(|| (state, hits.last().map(|h| h.nonce), false));
                Some((Ok::<_, std::io::Error>(Bytes::from(out)), next))
            }
            Ok(None) => Some((Ok(Bytes::from(out)), None)),
            Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
        }
    });
    Ok(csv_response(csv::file_name(&run.client_seed, &format!("run-{id}-hits")), Body::from_stream(stream)))
}

/// Every nonce of the run's range, recomputed chunk by chunk on the blocking pool and streamed.
#[utoipa::path(get, path = "/runs/{id}/export/full.csv", summary = "Every nonce of a run's range, recomputed, as CSV",
    params(IdPath), responses((status = 200, description = "CSV, one row per nonce", body = String, content_type = "text/csv"),
              ById))]
async fn export_full(State(state): State<AppState>, PathId(raw): PathId) -> Result<Response> {
    let run = load(&state, &raw).await?;
    let difficulty: Difficulty = run.difficulty;
    let deriver = RoundDeriver::new(&run.server_seed, &run.client_seed);
    let (start, end) = (run.nonce_start as u64, run.nonce_end as u64);
    let stream = futures_util::stream::unfold(Some((deriver, start, true)), move |cursor| async move {
        let (mut deriver, from, first) = cursor?;
        if from > end {
            return first.then(|| (Ok::<_, std::io::Error>(Bytes::from(HITS_HEADER)), None));
        }
        let to = end.min(from + FULL_EXPORT_CHUNK - 1);
        let chunk = tokio::task::spawn_blocking(move || {
            use std::fmt::Write;
            let mut out = String::with_capacity(((to - from + 1) * 24) as usize + 64);
            if first {
                out.push_str(HITS_HEADER);
            }
            for nonce in from..=to {
                let r = deriver.result(nonce, difficulty);
                let _ = writeln!(out, "{nonce},{},{:.2},{}", r.max_pumps, r.max_multiplier, r.pop_point);
            }
            (deriver, out)
        })
        .await;
        match chunk {
            Ok((deriver, out)) => {
                let next = (to < end).then_some((deriver, to + 1, false));
                Some((Ok(Bytes::from(out)), next))
            }
            Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
        }
    });
    let file = csv::file_name(&run.client_seed, &format!("run-{}-full", run.id));
    Ok(csv_response(file, Body::from_stream(stream)))
}
