//! Server-Sent Events (SPEC §3.2): `GET /live/streams/{id}/events` and `GET /live/events`.
//!
//! Each connection gets a task that subscribes to the hub *before* reading the database, sends
//! what the client missed (everything after `Last-Event-ID`, or what committed while it
//! connected), then forwards live events. The bet id is the SSE id, so a reconnect resumes with no
//! gap and no duplicate. The task writes into a small bounded channel: a slow client makes its own
//! task wait, its hub subscription lags, and on lag the task re-reads from the database. Ingest
//! never waits for a client and memory per client is bounded.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use http::HeaderMap;
use serde_json::json;
use tokio::sync::{broadcast, mpsc};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{AppError, ErrorBody, Result};
use super::openapi::{ById, IdPath};
use super::query::{Params, PathId};
use super::streams::resolve;
use crate::store::StreamKey;
use crate::store::hub::LiveEvent;
use crate::store::model::BetRecord;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(all_streams)).routes(routes!(one_stream))
}

/// Keep-alive comment interval (SPEC: at least every 15 s).
const KEEP_ALIVE: Duration = Duration::from_secs(10);
/// Events buffered per client between its task and its socket.
const CLIENT_BUFFER: usize = 64;
/// Bets read per database round trip while catching up.
const BACKFILL: i64 = 500;

/// `Last-Event-ID` header, else `last_event_id` query parameter (EventSource cannot set headers
/// on its first connection).
fn resume_from(headers: &HeaderMap, params: &Params) -> Result<Option<i64>> {
    if let Some(raw) = headers.get("last-event-id") {
        let text = raw.to_str().unwrap_or("").trim();
        if text.is_empty() {
            return Ok(None);
        }
        return text
            .parse::<i64>()
            .ok()
            .filter(|v| *v >= 0)
            .map(Some)
            .ok_or_else(|| AppError::bad_request("Last-Event-ID", "Last-Event-ID must be a bet id (an integer ≥ 0)"));
    }
    params.opt_int("last_event_id", 0, i64::MAX)
}

#[utoipa::path(get, path = "/live/streams/{id}/events", summary = "Server-Sent Events of one stream",
    description = "Events `bet` (a BetRecord, its id the SSE id), `round`, `stream_deleted`, `seed_revealed`; \
        a reconnect with Last-Event-ID resumes with no gap and no duplicate.",
    params(IdPath,
           ("Last-Event-ID" = Option<i64>, Header, description = "resume after this bet id"),
           ("last_event_id" = Option<i64>, Query, minimum = 0, description = "the same, for a first EventSource connection")),
    responses((status = 200, description = "An endless event stream", body = String, content_type = "text/event-stream"),
              (status = 400, description = "Last-Event-ID is not a bet id", body = ErrorBody),
              ById,
              (status = 503, description = "SSE_MAX_CLIENTS are connected", body = ErrorBody)))]
async fn one_stream(
    State(state): State<AppState>,
    PathId(raw): PathId,
    headers: HeaderMap,
    params: Params,
) -> Result<Sse<impl Stream<Item = std::result::Result<Event, Infallible>>>> {
    let key = resolve(&state, &raw).await?;
    let resume = resume_from(&headers, &params)?;
    open(state, Some(key), resume, true).await
}

#[utoipa::path(get, path = "/live/events", summary = "Server-Sent Events of every stream",
    description = "Every stream's `bet` events; with rounds=1 their `round` events too.",
    params(("Last-Event-ID" = Option<i64>, Header, description = "resume after this bet id"),
           ("last_event_id" = Option<i64>, Query, minimum = 0, description = "the same, for a first EventSource connection"),
           ("rounds" = Option<i64>, Query, description = "1: every stream's round events too")),
    responses((status = 200, description = "An endless event stream", body = String, content_type = "text/event-stream"),
              (status = 400, description = "Last-Event-ID is not a bet id", body = ErrorBody),
              (status = 422, description = "A parameter is invalid", body = ErrorBody),
              (status = 503, description = "SSE_MAX_CLIENTS are connected", body = ErrorBody)))]
async fn all_streams(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Result<Sse<impl Stream<Item = std::result::Result<Event, Infallible>>>> {
    let resume = resume_from(&headers, &params)?;
    // `rounds=1`: every stream's `round` events too, for a dashboard that shares one connection
    // among all its tabs (SPEC §7), whatever stream each tab shows.
    let rounds = match params.text("rounds") {
        None | Some("0") | Some("false") => false,
        Some("1") | Some("true") => true,
        Some(_) => return Err(AppError::bad_request("rounds", "rounds must be 1 or 0")),
    };
    open(state, None, resume, rounds).await
}

async fn open(
    state: AppState,
    key: Option<StreamKey>,
    resume: Option<i64>,
    rounds: bool,
) -> Result<Sse<impl Stream<Item = std::result::Result<Event, Infallible>>>> {
    // Baseline first, then subscribe, then catch up from the baseline: nothing committed in
    // between is missed, and ids at or below the last sent one are dropped (no duplicates).
    // SPEC §2.7: subscribers are capped, each holding its permit until its connection ends.
    let Ok(permit) = state.sse_slots.clone().try_acquire_owned() else {
        let max = state.settings.sse_max_clients;
        return Err(AppError::ServiceUnavailable(format!(
            "Too many live connections: {max} are open (SSE_MAX_CLIENTS={max}); close some tabs or retry later"
        )));
    };
    let baseline = match resume {
        Some(id) => id,
        None => state.store.last_bet_id().await?,
    };
    let rx = state.hub.subscribe();
    let (tx, out) = mpsc::channel::<Event>(CLIENT_BUFFER);
    let mut connection = Connection { state, key, rounds, last_id: baseline, tx, rx };
    tokio::spawn(async move {
        let mut closing = connection.state.closing.subscribe();
        tokio::select! {
            _ = connection.run() => {}
            _ = closing.wait_for(|c| *c) => {}
        }
        drop(permit);
    });
    let stream = futures_util::stream::unfold(out, |mut out| async move {
        out.recv().await.map(|event| (Ok::<_, Infallible>(event), out))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive")))
}

struct Connection {
    state: AppState,
    /// `None`: every stream.
    key: Option<StreamKey>,
    /// Whether `round` events are sent (always for one stream; on request for every stream).
    rounds: bool,
    last_id: i64,
    tx: mpsc::Sender<Event>,
    rx: broadcast::Receiver<Arc<LiveEvent>>,
}

enum Flow {
    Continue,
    Stop,
}

fn bet_event(bet: &BetRecord) -> Event {
    json_event(Event::default().event("bet").id(bet.id.to_string()), bet)
}

/// `event` with `value` as its JSON data. The JSON is written out first and handed over whole:
/// `Event::json_data` feeds axum's data writer piece by piece, scanning each piece for line
/// breaks (~1.2k instructions per bet event); compact JSON has none, so one scan of the whole
/// text gives the same event.
fn json_event(event: Event, value: &impl serde::Serialize) -> Event {
    match serde_json::to_string(value) {
        Ok(text) => event.data(text),
        Err(_) => Event::default(),
    }
}

impl Connection {
    async fn run(&mut self) {
        if self.send(Event::default().comment("connected")).await.is_err() {
            return;
        }
        if self.backfill().await.is_err() {
            return;
        }
        loop {
            let received = tokio::select! {
                received = self.rx.recv() => received,
                // The client went away: stop now rather than at the next event.
                _ = self.tx.closed() => return,
            };
            match received {
                Ok(event) => match self.forward(&event).await {
                    Ok(Flow::Continue) => {}
                    Ok(Flow::Stop) | Err(()) => return,
                },
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    if self.backfill().await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    async fn send(&self, event: Event) -> std::result::Result<(), ()> {
        self.tx.send(event).await.map_err(|_| ())
    }

    /// Sends every stored bet after `last_id` (of this stream, or of all).
    async fn backfill(&mut self) -> std::result::Result<(), ()> {
        loop {
            let page = match self.state.store.bets_since(self.key.map(|k| k.pk), self.last_id, BACKFILL).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, "SSE catch-up failed; closing the connection so the client resumes");
                    return Err(());
                }
            };
            for bet in &page.bets {
                self.send(bet_event(bet)).await?;
                self.last_id = bet.id;
            }
            if !page.has_more {
                return Ok(());
            }
        }
    }

    async fn forward(&mut self, event: &LiveEvent) -> std::result::Result<Flow, ()> {
        if let (Some(key), Some(stream)) = (self.key, event.stream_id())
            && stream != key.id
        {
            return Ok(Flow::Continue);
        }
        let per_stream = self.key.is_some();
        match event {
            LiveEvent::Bet(bet) if bet.id > self.last_id => {
                self.send(bet_event(bet)).await?;
                self.last_id = bet.id;
            }
            LiveEvent::Bet(_) => {}
            LiveEvent::Round { stream_id, nonce, round_result } if self.rounds => {
                let data = json!({ "stream_id": stream_id, "nonce": nonce, "round_result": round_result });
                self.send(json_event(Event::default().event("round"), &data)).await?;
            }
            LiveEvent::Round { .. } => {}
            LiveEvent::Stream(summary) if !per_stream => {
                self.send(json_event(Event::default().event("stream"), &summary)).await?;
            }
            LiveEvent::Stream(_) => {}
            LiveEvent::StreamDeleted { stream_id } => {
                let data = json!({ "stream_id": stream_id, "deleted": true });
                self.send(json_event(Event::default().event("deleted"), &data)).await?;
                if per_stream {
                    return Ok(Flow::Stop);
                }
            }
            LiveEvent::Verified { stream_id } => {
                let data = json!({ "stream_id": stream_id });
                self.send(json_event(Event::default().event("verified"), &data)).await?;
            }
            LiveEvent::Resync => self.backfill().await?,
        }
        Ok(Flow::Continue)
    }
}
