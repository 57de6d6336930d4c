//! The Live Streams read side (SPEC §3.2): list, detail, bets, tail, rounds, cadence, metrics,
//! notes, delete and the streamed CSV export.

use std::collections::HashMap;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::header;
use pump_engine::Difficulty;
use pump_engine::tables::cents;
use serde::Serialize;
use serde_json::Value;
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
use crate::live::analysis::{self, TierCadence};
use crate::store::model::{
    BetOrder, BetPage, BetQuery, BetRecord, Page, Round, StreamDetail, StreamSummary, difficulty_schema,
};
use crate::store::{CadenceData, StreamKey};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(detail, update_notes, delete))
        .routes(routes!(bets))
        .routes(routes!(tail))
        .routes(routes!(rounds))
        .routes(routes!(cadence))
        .routes(routes!(metrics))
        .routes(routes!(export))
}

/// Longest notes accepted, in characters.
pub const MAX_NOTES: usize = 1000;
/// The tiers players watch, used when `tiers` is not given.
pub const DEFAULT_TIERS: [f64; 5] = [164.72, 400.02, 1066.73, 3200.18, 11200.65];

/// Parses a stream id from the path: 422 when it is not a UUID.
pub fn parse_id(raw: &str, what: &'static str) -> Result<Uuid> {
    Uuid::parse_str(raw.trim()).map_err(|_| {
        AppError::validation("id", format!("{what} id must be a UUID (got {})", super::query::shorten(raw)))
    })
}

/// Resolves a stream id: 422 when malformed, 404 when unknown.
pub async fn resolve(state: &AppState, raw: &str) -> Result<StreamKey> {
    let id = parse_id(raw, "stream")?;
    state.store.stream_key(id).await?.ok_or_else(|| AppError::NotFound(format!("Stream {id} not found")))
}

#[derive(Serialize, ToSchema)]
struct StreamList {
    streams: Vec<StreamSummary>,
    total: i64,
    limit: i64,
    offset: i64,
}

#[utoipa::path(get, path = "/live/streams", operation_id = "list_streams", summary = "Streams, newest activity first",
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 100), ("offset" = Option<i64>, Query, minimum = 0)),
    responses((status = 200, body = StreamList), (status = 400, description = "A parameter is not a number", body = ErrorBody),
              (status = 422, description = "A parameter is out of range", body = ErrorBody)))]
async fn list(State(state): State<AppState>, params: Params) -> Result<Json<StreamList>> {
    let limit = params.int("limit", 50, 1, 100)?;
    let offset = params.int("offset", 0, 0, i64::MAX)?;
    let Page { items: streams, total } = state.store.list_streams(limit, offset).await?;
    Ok(Json(StreamList { streams, total, limit, offset }))
}

#[utoipa::path(get, path = "/live/streams/{id}", summary = "One stream with aggregates and recent bets",
    params(IdPath), responses((status = 200, body = StreamDetail), ById))]
async fn detail(State(state): State<AppState>, PathId(raw): PathId) -> Result<Json<StreamDetail>> {
    let id = parse_id(&raw, "stream")?;
    let detail =
        state.store.stream_detail(id).await?.ok_or_else(|| AppError::NotFound(format!("Stream {id} not found")))?;
    Ok(Json(detail))
}

#[utoipa::path(get, path = "/live/streams/{id}/bets", summary = "A page of a stream's bets",
    params(IdPath,
           ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000), ("offset" = Option<i64>, Query, minimum = 0),
           ("min_multiplier" = Option<f64>, Query), ("difficulty" = Option<String>, Query),
           ("order" = Option<String>, Query, description = "nonce_asc (default) or id_desc")),
    responses((status = 200, body = BetPage), Unreadable, ById))]
async fn bets(State(state): State<AppState>, PathId(raw): PathId, params: Params) -> Result<Json<BetPage>> {
    let key = resolve(&state, &raw).await?;
    let order = match params.text("order").map(str::trim) {
        None | Some("nonce_asc") => BetOrder::NonceAsc,
        Some("id_desc") => BetOrder::IdDesc,
        Some(other) => {
            return Err(AppError::bad_request(
                "order",
                format!("order must be nonce_asc or id_desc (got {})", super::query::shorten(other)),
            ));
        }
    };
    let query = BetQuery {
        limit: params.int("limit", 100, 1, 1000)?,
        offset: params.int("offset", 0, 0, i64::MAX)?,
        min_multiplier: params.opt_number("min_multiplier", 0.0)?,
        difficulty: params.difficulty("difficulty")?,
        order,
    };
    Ok(Json(state.store.bets(key, query).await?))
}

/// A stream's bets after a bet id, for polling clients.
#[derive(Serialize, ToSchema)]
#[schema(as = Tail)]
struct StreamTail {
    bets: Vec<BetRecord>,
    /// Pass as `since_id` next time.
    last_id: i64,
    /// More bets are waiting past `limit`.
    has_more: bool,
    stream_id: Uuid,
}

#[utoipa::path(get, path = "/live/streams/{id}/tail", summary = "Bets after since_id, for polling",
    params(IdPath,
           ("since_id" = Option<i64>, Query, minimum = 0), ("limit" = Option<i64>, Query, minimum = 1, maximum = 5000)),
    responses((status = 200, body = StreamTail), Unreadable, ById))]
async fn tail(State(state): State<AppState>, PathId(raw): PathId, params: Params) -> Result<Json<StreamTail>> {
    let key = resolve(&state, &raw).await?;
    let since_id = params.int("since_id", 0, 0, i64::MAX)?;
    let limit = params.int("limit", 1000, 1, 5000)?;
    let tail = state.store.bets_since(Some(key.pk), since_id, limit).await?;
    Ok(Json(StreamTail { bets: tail.bets, last_id: tail.last_id, has_more: tail.has_more, stream_id: key.id }))
}

#[derive(Serialize, ToSchema)]
struct Rounds {
    stream_id: Uuid,
    /// Every observed round (bets and heartbeats), nonce ascending.
    rounds: Vec<Round>,
    /// The last nonce of this page: pass as `since_nonce` next time.
    #[schema(required = true)]
    last_nonce: Option<i64>,
    #[schema(required = true)]
    last_observed_nonce: Option<i64>,
}

#[utoipa::path(get, path = "/live/streams/{id}/rounds", summary = "Observed rounds after since_nonce",
    params(IdPath,
           ("since_nonce" = Option<i64>, Query, minimum = 0), ("limit" = Option<i64>, Query, minimum = 1, maximum = 10000)),
    responses((status = 200, body = Rounds), Unreadable, ById))]
async fn rounds(State(state): State<AppState>, PathId(raw): PathId, params: Params) -> Result<Json<Rounds>> {
    let key = resolve(&state, &raw).await?;
    let since = params.opt_int("since_nonce", 0, i64::MAX)?;
    let limit = params.int("limit", 5000, 1, 10_000)?;
    let rounds = state.store.rounds(key.pk, since, limit).await?;
    let last_nonce = rounds.last().map(|r| r.nonce);
    Ok(Json(Rounds { stream_id: key.id, rounds, last_nonce, last_observed_nonce: key.last_observed_nonce }))
}

/// The difficulty used for odds: `difficulty=` when given, else the stream's latest bet's, else expert.
fn odds_difficulty(params: &Params, stream: Option<Difficulty>) -> Result<Difficulty> {
    Ok(params.difficulty("difficulty")?.or(stream).unwrap_or(Difficulty::Expert))
}

/// What a stream's cadence and multiplier metrics were computed from.
#[derive(Serialize, ToSchema)]
struct OddsBasis {
    stream_id: Uuid,
    /// The difficulty the odds are computed for.
    #[schema(schema_with = difficulty_schema)]
    difficulty: Difficulty,
    #[schema(required = true)]
    last_observed_nonce: Option<i64>,
    rounds_observed: i64,
}

impl OddsBasis {
    fn of(key: StreamKey, difficulty: Difficulty, data: &CadenceData) -> Self {
        OddsBasis {
            stream_id: key.id,
            difficulty,
            last_observed_nonce: data.last_observed_nonce,
            rounds_observed: data.scan.rounds_count,
        }
    }
}

#[derive(Serialize, ToSchema)]
struct Cadence {
    #[serde(flatten)]
    basis: OddsBasis,
    k: usize,
    band: f64,
    tiers: Vec<TierCadence>,
}

#[utoipa::path(get, path = "/live/streams/{id}/cadence", summary = "How often each tier is hit, against its odds",
    params(IdPath,
           ("tiers" = Option<String>, Query, description = "comma-separated multipliers (default: the watched tiers)"),
           ("k" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "gaps listed per tier"),
           ("band" = Option<f64>, Query), ("difficulty" = Option<String>, Query)),
    responses((status = 200, body = Cadence), Unreadable, ById))]
async fn cadence(State(state): State<AppState>, PathId(raw): PathId, params: Params) -> Result<Json<Cadence>> {
    let key = resolve(&state, &raw).await?;
    let mut tiers = params.numbers("tiers", 20)?.unwrap_or_else(|| DEFAULT_TIERS.to_vec());
    tiers.sort_by(f64::total_cmp);
    tiers.dedup_by(|a, b| cents(*a) == cents(*b));
    let k = params.int("k", 10, 1, 1000)? as usize;
    let band = params.opt_number("band", 0.0)?.unwrap_or(400.0);
    let min = tiers.first().copied().unwrap_or(1.0);
    let data = state.store.round_scan(key, min, 1000).await?;
    let difficulty = odds_difficulty(&params, data.difficulty)?;
    let tiers = analysis::cadence(&data.scan, data.last_observed_nonce, difficulty, &tiers, k, band);
    Ok(Json(Cadence { basis: OddsBasis::of(key, difficulty, &data), k, band, tiers }))
}

#[derive(Serialize, ToSchema)]
#[schema(as = MultiplierMetrics)]
struct MultiplierReport {
    #[serde(flatten)]
    basis: OddsBasis,
    multipliers: Vec<analysis::MultiplierMetrics>,
}

#[utoipa::path(get, path = "/live/streams/{id}/metrics", operation_id = "multiplier_metrics", summary = "Gap statistics of pinned multipliers",
    params(IdPath,
           ("multipliers" = Option<String>, Query, description = "comma-separated multipliers (default: the watched tiers)"),
           ("difficulty" = Option<String>, Query)),
    responses((status = 200, body = MultiplierReport), Unreadable, ById))]
async fn metrics(State(state): State<AppState>, PathId(raw): PathId, params: Params) -> Result<Json<MultiplierReport>> {
    let key = resolve(&state, &raw).await?;
    let mut pinned = params.numbers("multipliers", 50)?.unwrap_or_else(|| DEFAULT_TIERS.to_vec());
    pinned.dedup_by(|a, b| cents(*a) == cents(*b));
    let min = pinned.iter().copied().fold(f64::INFINITY, f64::min);
    let data = state.store.round_scan(key, min, 0).await?;
    let difficulty = odds_difficulty(&params, data.difficulty)?;
    let multipliers = analysis::multiplier_metrics(&data.scan.hits, data.last_observed_nonce, difficulty, &pinned);
    Ok(Json(MultiplierReport { basis: OddsBasis::of(key, difficulty, &data), multipliers }))
}

/// The body of `PUT /live/streams/{id}`.
#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the body; the handler reads it field by field to name each problem")]
struct NotesUpdate {
    /// Up to 1,000 characters, trimmed; `null` or blank clears them.
    #[schema(required = true)]
    notes: Option<String>,
}

#[utoipa::path(put, path = "/live/streams/{id}", summary = "Set or clear a stream's notes",
    params(IdPath), request_body = NotesUpdate,
    responses((status = 200, body = StreamSummary), NotJson, WriteRefused,
              (status = 404, description = "No such stream", body = ErrorBody),
              (status = 422, description = "The notes are invalid", body = ErrorBody)))]
async fn update_notes(
    State(state): State<AppState>,
    PathId(raw): PathId,
    JsonBody(body): JsonBody,
) -> Result<Json<StreamSummary>> {
    let key = resolve(&state, &raw).await?;
    let Value::Object(fields) = &body else {
        return Err(AppError::validation("notes", "body must be a JSON object like {\"notes\": \"…\"}"));
    };
    let notes = match fields.get("notes") {
        None => return Err(AppError::validation("notes", "is required (a string, or null to clear)")),
        Some(Value::Null) => None,
        Some(Value::String(s)) => {
            let trimmed = s.trim();
            if trimmed.chars().count() > MAX_NOTES {
                return Err(AppError::validation("notes", format!("must be at most {MAX_NOTES} characters")));
            }
            (!trimmed.is_empty()).then(|| trimmed.to_string())
        }
        Some(_) => return Err(AppError::validation("notes", "must be a string or null")),
    };
    if !state.store.set_notes(key.pk, notes).await? {
        return Err(AppError::NotFound(format!("Stream {} not found", key.id)));
    }
    let detail = state.store.stream_detail(key.id).await?;
    let detail = detail.ok_or_else(|| AppError::NotFound(format!("Stream {} not found", key.id)))?;
    Ok(Json(detail.summary))
}

#[derive(Serialize, ToSchema)]
struct StreamDeleted {
    deleted: bool,
    stream_id: Uuid,
    bets_deleted: i64,
}

#[utoipa::path(delete, path = "/live/streams/{id}", operation_id = "delete_stream", summary = "Delete a stream and its bets",
    params(IdPath), responses((status = 200, body = StreamDeleted), WriteRefused, ById))]
async fn delete(State(state): State<AppState>, PathId(raw): PathId) -> Result<Json<StreamDeleted>> {
    let key = resolve(&state, &raw).await?;
    let deleted = state
        .store
        .delete_stream(key)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("Stream {} not found", key.id)))?;
    state.demos.forget(key.id);
    tracing::info!(stream = %key.id, bets = deleted.bets, "stream deleted");
    Ok(Json(StreamDeleted { deleted: true, stream_id: key.id, bets_deleted: deleted.bets }))
}

pub const EXPORT_HEADER: &str = "id,antebot_bet_id,received_at,date_time,nonce,amount,payout,payout_multiplier,\
difficulty,round_target,round_result,distance_prev,verified\n";
/// Rows read per database round trip while exporting.
const EXPORT_CHUNK: i64 = 2000;

/// Appends one bet as a CSV row.
fn bet_row(out: &mut String, b: &BetRecord) {
    use std::fmt::Write;
    let _ = write!(out, "{},", b.id);
    csv::text(out, &b.antebot_bet_id);
    let _ = write!(
        out,
        ",{},{},{},{},{},{},",
        b.received_at,
        b.date_time.as_deref().unwrap_or(""),
        b.nonce,
        b.amount,
        b.payout,
        b.payout_multiplier
    );
    csv::text(out, b.difficulty.as_str());
    out.push(',');
    csv::number(out, b.round_target);
    let _ = write!(out, ",{},", b.round_result);
    csv::number(out, b.distance_prev);
    out.push(',');
    out.push_str(match b.verified {
        Some(true) => "true",
        Some(false) => "false",
        None => "",
    });
    out.push('\n');
}

struct ExportCursor {
    state: AppState,
    pk: i64,
    after: (i64, i64),
    /// Last nonce seen per 2-decimal multiplier: distance_prev as the export walks in nonce order.
    last_by_multiplier: HashMap<i64, i64>,
    header_sent: bool,
    done: bool,
}

/// Streams the stream's bets as CSV, nonce ascending, a chunk at a time: memory stays flat
/// whatever the stream's size.
#[utoipa::path(get, path = "/live/streams/{id}/export.csv", summary = "All of a stream's bets as CSV",
    params(IdPath), responses((status = 200, description = "CSV, nonce ascending", body = String, content_type = "text/csv"),
              ById))]
async fn export(State(state): State<AppState>, PathId(raw): PathId) -> Result<Response> {
    let key = resolve(&state, &raw).await?;
    let detail = state.store.stream_detail(key.id).await?;
    let client_seed = detail.map(|d| d.summary.client_seed).unwrap_or_default();
    let cursor = ExportCursor {
        state,
        pk: key.pk,
        after: (i64::MIN, i64::MIN),
        last_by_multiplier: HashMap::new(),
        header_sent: false,
        done: false,
    };
    let body = futures_util::stream::unfold(cursor, |mut c| async move {
        if c.done {
            return None;
        }
        let mut out = String::new();
        if !c.header_sent {
            c.header_sent = true;
            out.push_str(EXPORT_HEADER);
        }
        match c.state.store.export_chunk(c.pk, c.after, EXPORT_CHUNK).await {
            Ok(rows) => {
                c.done = (rows.len() as i64) < EXPORT_CHUNK;
                for mut b in rows {
                    let key = cents(b.round_result);
                    b.distance_prev = c.last_by_multiplier.insert(key, b.nonce).map(|prev| b.nonce - prev);
                    c.after = (b.nonce, b.id);
                    bet_row(&mut out, &b);
                }
                Some((Ok::<_, std::io::Error>(Bytes::from(out)), c))
            }
            Err(e) => {
                // Headers are gone already: end the body early so the client sees a broken download.
                tracing::error!(error = %e, "export failed mid-stream");
                c.done = true;
                Some((Err(std::io::Error::other(e.to_string())), c))
            }
        }
    });
    let file = csv::file_name(&client_seed, &format!("stream-{}", key.id));
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file}\"")),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Body::from_stream(body),
    )
        .into_response())
}
