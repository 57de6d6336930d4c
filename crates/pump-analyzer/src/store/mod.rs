//! The storage interface. Every SQL statement of the program lives below this module; callers see
//! typed operations only, so SQLite and PostgreSQL differ only here (SPEC §6, STYLE rule 4).

mod delta;
pub mod hub;
pub mod model;
mod postgres;
mod sqlite;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use uuid::Uuid;

use crate::config::{DatabaseUrl, SecretKeySource, SqliteSync};
use crate::ingest::message::Message;
use crate::store::hub::Hub;
use model::*;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// A storage failure. None of these is the client's fault.
#[derive(Debug, Clone)]
pub enum StoreError {
    /// The database cannot take the request now (closed, locked, disk full, read-only): 503.
    Unavailable(String),
    /// Anything else: 500, details logged and never sent.
    Internal(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Unavailable(m) => write!(f, "database unavailable: {m}"),
            StoreError::Internal(m) => write!(f, "database error: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// What happened to one ingested message.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestOutcome {
    pub stream_id: Uuid,
    /// This message created the stream.
    pub new_stream: bool,
    /// Stored now; `false` means the same bet id (or, for a heartbeat, the same nonce) was
    /// already stored for this stream and nothing changed.
    pub accepted: bool,
    /// The id assigned to a newly stored bet.
    pub bet_id: Option<i64>,
}

/// A stream resolved from its public id.
#[derive(Debug, Clone, Copy)]
pub struct StreamKey {
    pub pk: i64,
    pub id: Uuid,
    pub last_observed_nonce: Option<i64>,
}

/// A stream linked to a revealed seed.
#[derive(Debug, Clone)]
pub struct LinkedStream {
    pub pk: i64,
    pub id: Uuid,
    pub client_seed: String,
}

/// Rounds of a stream as the cadence and metrics analyses need them.
#[derive(Debug, Clone, Default)]
pub struct RoundScan {
    /// Rounds at or above the smallest threshold asked for, nonce order.
    pub hits: Vec<Round>,
    /// The most recent rounds, nonce order.
    pub recent: Vec<Round>,
    pub first_nonce: Option<i64>,
    pub rounds_count: i64,
}

#[derive(Debug, Clone)]
pub struct CadenceData {
    pub scan: RoundScan,
    pub last_observed_nonce: Option<i64>,
    /// Difficulty of the stream's most recent bet.
    pub difficulty: Option<pump_engine::Difficulty>,
}

/// A finished run ready to be stored.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub run: Run,
    pub created_at: i64,
    pub hits: Vec<RunHit>,
}

#[derive(Debug, Clone)]
pub struct RunQuery {
    pub limit: i64,
    pub offset: i64,
    pub search: Option<String>,
    pub difficulty: Option<pump_engine::Difficulty>,
}

/// What the SQLite writer has committed, for `/metrics`: group commits, the write requests they
/// carried (their ratio is the mean group size), the time spent in COMMIT, how many commits left
/// their sync to disk to the syncer thread, and that thread's syncs and the time they took.
#[derive(Default)]
pub struct CommitStats {
    commits: AtomicU64,
    writes: AtomicU64,
    commit_us: AtomicU64,
    deferred: AtomicU64,
    syncs: AtomicU64,
    sync_us: AtomicU64,
}

/// A reading of [`CommitStats`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CommitCounts {
    pub commits: u64,
    pub writes: u64,
    pub commit_seconds: f64,
    /// Commits whose sync ran on the syncer thread (their COMMIT time leaves it out).
    pub deferred: u64,
    /// Syncs of the log by the syncer thread (each covers every commit before it), and their time.
    pub syncs: u64,
    pub sync_seconds: f64,
}

impl CommitStats {
    pub(crate) fn record(&self, writes: usize, commit: std::time::Duration, deferred: bool) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.writes.fetch_add(writes as u64, Ordering::Relaxed);
        self.commit_us.fetch_add(u64::try_from(commit.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.deferred.fetch_add(u64::from(deferred), Ordering::Relaxed);
    }

    pub(crate) fn record_sync(&self, took: std::time::Duration) {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.sync_us.fetch_add(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub fn read(&self) -> CommitCounts {
        CommitCounts {
            commits: self.commits.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            commit_seconds: self.commit_us.load(Ordering::Relaxed) as f64 / 1e6,
            deferred: self.deferred.load(Ordering::Relaxed),
            syncs: self.syncs.load(Ordering::Relaxed),
            sync_seconds: self.sync_us.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

/// Storage limits that come from configuration.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    pub rounds_retention: u64,
    /// When the SQLite writer answers (PostgreSQL: its own `synchronous_commit` decides).
    pub sqlite_sync: SqliteSync,
    /// Caps the SQLite file at this many pages (`PRAGMA max_page_count`); `None` in production.
    /// Lets tests reproduce a full disk exactly as SQLite reports it.
    pub max_pages: Option<u64>,
}

/// Forwards a call to the backend in use.
macro_rules! dispatch {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            Store::Sqlite($s) => $call,
            Store::Postgres($s) => $call,
        }
    };
}

/// The storage backend in use. Cheap to clone.
#[derive(Clone)]
pub enum Store {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PostgresStore>),
}

impl Store {
    /// The SQLite writer's commit counters (PostgreSQL commits per request: none).
    pub fn commit_stats(&self) -> Option<&CommitStats> {
        match self {
            Store::Sqlite(store) => Some(store.commit_stats()),
            Store::Postgres(_) => None,
        }
    }

    /// Opens (creating when missing) and migrates the database named by `url`.
    pub async fn open(url: &DatabaseUrl, options: StoreOptions, hub: Hub) -> Result<Self, StoreError> {
        match url {
            DatabaseUrl::Sqlite(path) => {
                let path = path.clone();
                let store = tokio::task::spawn_blocking(move || SqliteStore::open(&path, options, hub))
                    .await
                    .map_err(|e| StoreError::Internal(e.to_string()))??;
                Ok(Store::Sqlite(Arc::new(store)))
            }
            DatabaseUrl::Postgres(url) => {
                Ok(Store::Postgres(Arc::new(PostgresStore::open(url.expose(), options, hub).await?)))
            }
        }
    }

    /// Stores validated messages atomically with respect to each other and durably: when this
    /// returns `Ok`, the data has been committed (SPEC §3.1 "Acknowledged means durable").
    pub async fn ingest(&self, messages: Vec<Message>) -> Result<Vec<IngestOutcome>, StoreError> {
        dispatch!(self, s => s.ingest(messages).await)
    }

    /// The cookie-signing secret: the configured one, else the one generated on first start and
    /// kept in the database.
    pub async fn secret_key(&self, configured: Option<&str>) -> Result<(String, SecretKeySource), StoreError> {
        if let Some(key) = configured {
            return Ok((key.to_string(), SecretKeySource::Environment));
        }
        let fresh = crate::security::random_hex(32);
        let (key, created) = dispatch!(self, s => s.setting_or_insert("secret_key", fresh).await?);
        let source = if created { SecretKeySource::GeneratedAndStored } else { SecretKeySource::LoadedFromDatabase };
        Ok((key, source))
    }

    pub async fn stream_key(&self, id: Uuid) -> Result<Option<StreamKey>, StoreError> {
        dispatch!(self, s => s.stream_key(id).await)
    }

    pub async fn list_streams(&self, limit: i64, offset: i64) -> Result<model::Page<StreamSummary>, StoreError> {
        dispatch!(self, s => s.list_streams(limit, offset).await)
    }

    pub async fn stream_detail(&self, id: Uuid) -> Result<Option<StreamDetail>, StoreError> {
        dispatch!(self, s => s.stream_detail(id).await)
    }

    pub async fn bets(&self, key: StreamKey, query: BetQuery) -> Result<BetPage, StoreError> {
        dispatch!(self, s => s.bets(key, query).await)
    }

    /// Bets with id > `since_id` (of one stream, or of all with `None`), id order.
    pub async fn bets_since(&self, stream: Option<i64>, since_id: i64, limit: i64) -> Result<Tail, StoreError> {
        dispatch!(self, s => s.bets_since(stream, since_id, limit).await)
    }

    pub async fn last_bet_id(&self) -> Result<i64, StoreError> {
        dispatch!(self, s => s.last_bet_id().await)
    }

    pub async fn rounds(&self, pk: i64, since_nonce: Option<i64>, limit: i64) -> Result<Vec<Round>, StoreError> {
        dispatch!(self, s => s.rounds(pk, since_nonce, limit).await)
    }

    pub async fn round_scan(&self, key: StreamKey, min_result: f64, recent: i64) -> Result<CadenceData, StoreError> {
        dispatch!(self, s => s.round_scan(key, min_result, recent).await)
    }

    pub async fn export_chunk(&self, pk: i64, after: (i64, i64), limit: i64) -> Result<Vec<BetRecord>, StoreError> {
        dispatch!(self, s => s.export_chunk(pk, after, limit).await)
    }

    pub async fn set_notes(&self, pk: i64, notes: Option<String>) -> Result<bool, StoreError> {
        dispatch!(self, s => s.set_notes(pk, notes).await)
    }

    pub async fn insert_simulation(&self, id: Uuid, created_at: i64, request: String) -> Result<(), StoreError> {
        dispatch!(self, s => s.insert_simulation(id, created_at, request).await)
    }

    pub async fn finish_simulation(
        &self,
        id: Uuid,
        finished_at: i64,
        status: &'static str,
        result: Option<String>,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.finish_simulation(id, finished_at, status, result).await)
    }

    pub async fn fail_unfinished_simulations(&self, before: i64) -> Result<u64, StoreError> {
        dispatch!(self, s => s.fail_unfinished_simulations(before).await)
    }

    pub async fn simulation(&self, id: Uuid) -> Result<Option<model::SimulationRecord>, StoreError> {
        dispatch!(self, s => s.simulation(id).await)
    }

    pub async fn list_simulations(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<model::Page<model::SimulationRecord>, StoreError> {
        dispatch!(self, s => s.list_simulations(limit, offset).await)
    }

    pub async fn delete_simulation(&self, id: Uuid) -> Result<bool, StoreError> {
        dispatch!(self, s => s.delete_simulation(id).await)
    }

    pub async fn mark_demo(&self, pk: i64) -> Result<bool, StoreError> {
        dispatch!(self, s => s.mark_demo(pk).await)
    }

    pub async fn delete_stream(&self, key: StreamKey) -> Result<Option<Deleted>, StoreError> {
        dispatch!(self, s => s.delete_stream(key).await)
    }

    pub async fn reveal_seed(&self, server_seed: String, hashed: String) -> Result<model::Reveal, StoreError> {
        dispatch!(self, s => s.reveal_seed(server_seed, hashed).await)
    }

    pub async fn revealed_seeds(&self) -> Result<Vec<RevealedSeed>, StoreError> {
        dispatch!(self, s => s.revealed_seeds().await)
    }

    /// Bets per chunk of a seed verification. On SQLite a chunk is recorded by the one writer, so
    /// it stays small enough (well under a millisecond of engine time) that ingest waits at most a
    /// few milliseconds behind it. On PostgreSQL a chunk's transaction locks only its own stream,
    /// and each chunk is a round trip: larger chunks, fewer trips (`docs/performance.md`).
    pub fn verification_chunk(&self) -> i64 {
        match self {
            Store::Sqlite(_) => 1000,
            Store::Postgres(_) => 8000,
        }
    }

    /// Bets of stream `pk` not verified on arrival, after `after` in (nonce, id) order: one chunk
    /// of a verification, which starts at `(i64::MIN, i64::MIN)`. A bet may already be checked
    /// (a verification resumed after a restart); `record_verification` counts it once.
    pub async fn unverified_bets(
        &self,
        pk: i64,
        after: (i64, i64),
        limit: i64,
    ) -> Result<Vec<model::UnverifiedBet>, StoreError> {
        dispatch!(self, s => s.unverified_bets(pk, after, limit).await)
    }

    pub async fn record_verification(
        &self,
        pk: i64,
        stream_id: Uuid,
        results: Vec<model::BetCheck>,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.record_verification(pk, stream_id, results).await)
    }

    pub async fn streams_to_verify(&self) -> Result<Vec<model::StreamToVerify>, StoreError> {
        dispatch!(self, s => s.streams_to_verify().await)
    }

    pub async fn insert_run(&self, run: NewRun) -> Result<(), StoreError> {
        dispatch!(self, s => s.insert_run(run).await)
    }

    pub async fn list_runs(&self, query: RunQuery) -> Result<model::Page<Run>, StoreError> {
        dispatch!(self, s => s.list_runs(query).await)
    }

    pub async fn run(&self, id: Uuid) -> Result<Option<Run>, StoreError> {
        dispatch!(self, s => s.run(id).await)
    }

    pub async fn run_hits(
        &self,
        id: Uuid,
        min_multiplier: Option<f64>,
        limit: i64,
        after_nonce: Option<i64>,
        offset: i64,
    ) -> Result<Option<model::Page<RunHit>>, StoreError> {
        dispatch!(self, s => s.run_hits(id, min_multiplier, limit, after_nonce, offset).await)
    }

    pub async fn delete_run(&self, id: Uuid) -> Result<bool, StoreError> {
        dispatch!(self, s => s.delete_run(id).await)
    }

    pub async fn create_session(&self, record: SessionRecord) -> Result<(), StoreError> {
        dispatch!(self, s => s.create_session(record).await)
    }

    pub async fn session(&self, secret_hash: String) -> Result<Option<SessionRecord>, StoreError> {
        dispatch!(self, s => s.session(secret_hash).await)
    }

    pub async fn touch_session(&self, secret_hash: String, now: i64) -> Result<bool, StoreError> {
        dispatch!(self, s => s.touch_session(secret_hash, now).await)
    }

    pub async fn delete_session(&self, secret_hash: String) -> Result<bool, StoreError> {
        dispatch!(self, s => s.delete_session(secret_hash).await)
    }

    pub async fn purge_sessions(&self, idle_before: i64, created_before: i64) -> Result<usize, StoreError> {
        dispatch!(self, s => s.purge_sessions(idle_before, created_before).await)
    }

    pub async fn count_sessions(&self) -> Result<i64, StoreError> {
        dispatch!(self, s => s.count_sessions().await)
    }

    /// Cheap liveness check of the database.
    pub async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self, s => s.ping().await)
    }
}

/// A writer's next group: `first`, then whatever else is already queued, up to `max` jobs in all
/// (group commit: one transaction for every request waiting).
/// A difficulty as stored (validated when the bet came in).
pub(crate) fn stored_difficulty(raw: &str) -> Result<pump_engine::Difficulty, StoreError> {
    raw.parse().map_err(|_| StoreError::Internal(format!("a stored difficulty is not one: {raw:?}")))
}

/// Unchecked bets from their rows; a row whose difficulty no longer parses (it cannot be
/// replayed) is left out.
pub(crate) fn unverified(rows: Vec<(i64, i64, String, f64)>) -> Vec<model::UnverifiedBet> {
    rows.into_iter()
        .filter_map(|(id, nonce, difficulty, round_result)| {
            Some(model::UnverifiedBet { id, nonce, difficulty: difficulty.parse().ok()?, round_result })
        })
        .collect()
}

pub(crate) fn gather<T>(first: T, rx: &mut tokio::sync::mpsc::Receiver<T>, max: usize) -> Vec<T> {
    let mut jobs = Vec::with_capacity(16);
    jobs.push(first);
    while jobs.len() < max {
        match rx.try_recv() {
            Ok(job) => jobs.push(job),
            Err(_) => break,
        }
    }
    jobs
}
