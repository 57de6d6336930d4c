//! SQLite backend: one writer thread with group commit, and a small pool of read connections.
//!
//! Why a single writer thread: SQLite has one writer at a time anyway. Funnelling every write
//! through one connection removes `SQLITE_BUSY` races (50 concurrent posts of a new seed pair
//! create exactly one stream), and lets the writer commit many requests in one transaction (group
//! commit). When any request of a group fails, the group is rolled back and each request is
//! replayed in a transaction of its own, so one failure never takes the others with it. (A
//! SAVEPOINT per request would do the same but costs a sub-journal copy of every page touched.)
//!
//! When callers are answered (`SQLITE_SYNC`): never before the COMMIT has written the group's
//! frames to the log (WAL) through the operating system, so an acknowledged bet survives
//! `kill -9` or a crash of the server (SPEC §3.1). By default (`background`) the
//! writer then answers at once and a second thread, `syncer`, syncs the log to disk soon after
//! (its syncs start at most every 2 ms), so a power cut can take only the last few milliseconds
//! of answers. With `full`, small groups sync in their COMMIT and large ones (batches) leave the
//! sync to the syncer, which answers them once it returns while the writer goes on with the next
//! group.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, params};
use rusqlite_migration::{M, Migrations};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use pump_engine::RoundDeriver;

use super::model::{BetRecord, StreamSummary};
use super::{CommitStats, IngestOutcome, StoreError, StoreOptions};
use crate::config::SqliteSync;
use crate::ingest::message::{Message, NewBet};
use crate::store::hub::{Hub, LiveEvent};

mod alloc;
mod ingest;
mod reads;
mod runs;
mod sessions;
mod simulations;
mod syncer;
mod wal_buffer;
mod writes;

/// Marks a rollback caused by a job's own error (as opposed to a failed COMMIT).
const JOB_FAILED: &str = "a request of the group failed";

/// Most jobs committed together in one transaction.
const MAX_GROUP: usize = 512;

/// With `SQLITE_SYNC=full`, groups carrying at least this many messages leave their sync to the
/// syncer thread, and the writer goes on with the next group (see `syncer`). Large groups spend
/// longer in their inserts than in the sync, so the overlap wins; small groups lose by it (the
/// writer, no longer waiting, commits groups half the size twice as often). The threshold and
/// its figures: `docs/performance-history.md`.
const DEFER_AT: usize = 256;
const READERS: usize = 4;

/// The write-ahead log of the database at `path`.
fn wal_path(path: &Path) -> std::path::PathBuf {
    with_suffix(path, "-wal")
}

fn with_suffix(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

/// The database holds the secret key and every session's CSRF token: it (and its -wal/-shm,
/// which SQLite creates with the database's own mode) is readable by its owner only (SPEC §2.7).
/// A missing file is created 0600 before SQLite opens it; an existing one is tightened.
fn restrict_to_owner(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let denied =
        |e: std::io::Error| StoreError::Unavailable(format!("cannot restrict {} to its owner: {e}", path.display()));
    if !path.exists() {
        std::fs::OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(path).map_err(denied)?;
    }
    for file in [path.to_path_buf(), wal_path(path), with_suffix(path, "-shm")] {
        match std::fs::metadata(&file) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(denied)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// One queued write: `run` may be called again after a rollback; `finish` answers the caller.
trait WriteJob: Send {
    fn run(&mut self, writer: &mut Writer) -> bool;
    fn finish(self: Box<Self>, commit: Result<(), StoreError>);
    /// An ingest request, which the writer runs together with the ingest requests next to it.
    fn as_ingest(&mut self) -> Option<&mut IngestJob> {
        None
    }
}

/// A queued `POST /live/ingest`. Consecutive ones in a group go through one `Writer::ingest`:
/// their bets share multi-row INSERTs, so a statement's fixed cost is paid once per group
/// rather than once per request (single-bet requests: ~6 per group at 16 connections).
struct IngestJob {
    messages: Vec<Message>,
    result: Option<Result<Vec<IngestOutcome>, StoreError>>,
    reply: oneshot::Sender<Result<Vec<IngestOutcome>, StoreError>>,
}

impl WriteJob for IngestJob {
    fn run(&mut self, writer: &mut Writer) -> bool {
        let result = writer.ingest(&self.messages);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), StoreError>) {
        let result = self.result.unwrap_or_else(|| Err(StoreError::Internal("write job never ran".into())));
        let _ = self.reply.send(commit.and(result));
    }

    fn as_ingest(&mut self) -> Option<&mut IngestJob> {
        Some(self)
    }
}

struct Pending<R, F> {
    work: F,
    result: Option<Result<R, StoreError>>,
    reply: oneshot::Sender<Result<R, StoreError>>,
}

impl<R, F> WriteJob for Pending<R, F>
where
    R: Send + 'static,
    F: FnMut(&mut Writer) -> Result<R, StoreError> + Send + 'static,
{
    fn run(&mut self, writer: &mut Writer) -> bool {
        let result = (self.work)(writer);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), StoreError>) {
        let result = self.result.unwrap_or_else(|| Err(StoreError::Internal("write job never ran".into())));
        let _ = self.reply.send(commit.and(result));
    }
}

type Job = Box<dyn WriteJob>;

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../../../migrations/sqlite/0001_streams_bets_rounds.sql")),
        M::up(include_str!("../../../migrations/sqlite/0002_read_side_seeds_runs.sql")),
        M::up(include_str!("../../../migrations/sqlite/0003_sessions.sql")),
        M::up(include_str!("../../../migrations/sqlite/0004_stream_multipliers.sql")),
        M::up(include_str!("../../../migrations/sqlite/0005_stream_bet_range.sql")),
        M::up(include_str!("../../../migrations/sqlite/0006_fold_stream_difficulties.sql")),
        M::up(include_str!("../../../migrations/sqlite/0007_bet_rounds_in_place.sql")),
        M::up(include_str!("../../../migrations/sqlite/0008_mult_cents_without_a_function.sql")),
        M::up(include_str!("../../../migrations/sqlite/0009_demo_streams.sql")),
        M::up(include_str!("../../../migrations/sqlite/0010_simulations.sql")),
    ])
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::*;
        match e.sqlite_error_code() {
            Some(DatabaseBusy | DatabaseLocked | DiskFull | ReadOnly | CannotOpen | SystemIoFailure) => {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Internal(e.to_string()),
        }
    }
}

/// Maps keyed by stream pk, looked up for every message: foldhash instead of the default
/// SipHash, whose hashing was ~3% of the writer's instructions in batches.
type PkMap<V> = foldhash::HashMap<i64, V>;

/// State owned by the writer thread.
pub(crate) struct Writer {
    conn: Connection,
    streams: StreamCache,
    /// Events of the current transaction, published after its COMMIT (in commit order).
    events: Vec<LiveEvent>,
    hub: Hub,
    /// Stream counters changed by the current transaction, written once per stream just before
    /// COMMIT (one UPDATE per stream per group instead of one per request).
    deltas: PkMap<StreamDelta>,
    options: StoreOptions,
    stats: Arc<CommitStats>,
    /// Time the last COMMIT took (recorded in `stats` with its group's size).
    last_commit: Duration,
    /// Syncs the log for large groups and answers them (see `syncer`).
    syncer: syncer::Syncer,
}

/// The streams the writer has seen, cleared whenever a transaction fails and whenever a stream is
/// deleted or a seed revealed. Kept apart from the connection so that ingest can hold its
/// prepared statements (borrowing the connection) while it finds and creates streams.
#[derive(Default)]
struct StreamCache {
    /// (server_seed_hashed, client_seed) → stream pk.
    pks: HashMap<(String, String), i64>,
    /// pk → what the writer keeps about a stream.
    entries: PkMap<StreamEntry>,
    /// The most recently used key of `pks` and its pk.
    last: Option<(String, String, i64)>,
    /// (stream pk, multiplier in cents) → the highest nonce of the stream's bets of that
    /// multiplier, for the `distance_prev` of live events. Exact for every key it holds: kept
    /// only while someone listens (each stored bet then updates its key), emptied otherwise.
    last_nonces: foldhash::HashMap<(i64, i64), i64>,
}

/// What the writer caches about one stream.
struct StreamEntry {
    id: Uuid,
    /// The stream's `rounds_count` as of the last write (the retention check needs no query).
    rounds: i64,
    /// The highest nonce the stream has seen (its `last_observed_nonce`, kept up to date by each
    /// message): a round above it is new without a query.
    max_nonce: Option<i64>,
    /// The stream's `rounds_floor`: its bets below it are rounds the retention dropped.
    floor: Option<i64>,
    /// Present once the stream's server seed is revealed: new bets are verified on arrival.
    deriver: Option<Box<RoundDeriver>>,
}

pub struct SqliteStore {
    jobs: mpsc::Sender<Job>,
    readers: Arc<ReaderPool>,
    stats: Arc<CommitStats>,
}

/// The read connections and one permit per connection. A permit is held for exactly as long as a
/// connection is out of the pool, so a caller that holds one always finds a connection.
struct ReaderPool {
    idle: Mutex<Vec<Connection>>,
    slots: Arc<tokio::sync::Semaphore>,
}

/// A read connection out of the pool, with its permit. Dropping it, on the blocking thread after
/// the read, puts the connection back before the permit is released, whatever happened to the
/// request that asked for it: cancelled (the blocking task still runs to its end) or panicked
/// (the guard drops during unwinding). Returning it after an `.await` in the request's future
/// would lose it whenever that future is dropped (SPEC §2.7).
struct ReaderGuard {
    pool: Arc<ReaderPool>,
    conn: Option<Connection>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl ReaderGuard {
    fn conn(&self) -> &Connection {
        self.conn.as_ref().expect("a reader guard holds its connection until dropped")
    }
}

impl Drop for ReaderGuard {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.idle.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
        }
    }
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // A small page cache, on purpose: when a b-tree balance swaps two pages, SQLite parks one
    // under the page number of the lock byte (1 GiB / page size), and the COMMIT after it then
    // scans the whole cache to drop pages past the end of the file (`pcache1TruncateUnsafe`),
    // which at 16 MB was ~6% of the writer's time. Ingest touches few hot pages; 2 MiB holds them.
    conn.pragma_update(None, "cache_size", -2048)?;
    // Savepoint sub-journals and temp b-trees in memory: on disk they cost a write per page.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Checkpoint less often: hot pages rewritten by many commits are copied back once.
    conn.pragma_update(None, "wal_autocheckpoint", 16_384)?;
    // Checkpoints (and a new log's header) sync with SQLITE_SYNC_FULL, which on Linux costs the
    // same as a normal sync but tells them apart from commits' syncs: only the latter may be left
    // to the syncer thread (`wal_buffer::defer_commit_syncs`).
    conn.pragma_update(None, "checkpoint_fullfsync", "ON")?;
    Ok(())
}

impl SqliteStore {
    /// Opens or creates the file, switches it to WAL and applies the embedded migrations.
    pub fn open(path: &Path, options: StoreOptions, hub: Hub) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", parent.display())))?;
        }
        restrict_to_owner(path)?;
        alloc::install();
        // The writer alone goes through the WAL-buffering VFS (see `wal_buffer`); readers never
        // write to the WAL.
        wal_buffer::register()
            .map_err(|rc| StoreError::Internal(format!("cannot register the WAL-buffering VFS (SQLite code {rc})")))?;
        let mut conn = Connection::open_with_flags_and_vfs(path, OpenFlags::default(), wal_buffer::NAME)?;
        // Small pages: a group commit writes every touched page to the WAL in full, and a
        // single-bet request touches about eight pages, so large pages cost single bets; too
        // small and batches pay instead (more pages per bet). 2 KiB is where both do well
        // (docs/performance-history.md).
        // (Only effective when the file is created; an existing database keeps its page size.)
        conn.pragma_update(None, "page_size", 2048)?;
        let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unavailable(format!("could not switch {} to WAL (got {mode})", path.display())));
        }
        configure(&conn)?;
        // Ingest alone keeps about ten statements (four chunk sizes for bets, the round probes and
        // inserts, the distance look-up); the default cache of 16 would evict the writer's others.
        conn.set_prepared_statement_cache_capacity(64);
        if let Some(pages) = options.max_pages {
            conn.pragma_update(None, "max_page_count", i64::try_from(pages).unwrap_or(i64::MAX))?;
        }
        migrations().to_latest(&mut conn).map_err(|e| StoreError::Internal(format!("migration failed: {e}")))?;

        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let reader = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
            )?;
            reader.busy_timeout(Duration::from_secs(5))?;
            readers.push(reader);
        }

        let (tx, rx) = mpsc::channel::<Job>(8192);
        let stats = Arc::new(CommitStats::default());
        // With `full` the writer or its callers wait for each sync: it must start at once.
        let sync_spacing = match options.sqlite_sync {
            SqliteSync::Background => syncer::BACKGROUND_SPACING,
            SqliteSync::Full => Duration::ZERO,
        };
        let writer = Writer {
            conn,
            streams: StreamCache::default(),
            events: Vec::new(),
            hub,
            deltas: PkMap::default(),
            options,
            stats: stats.clone(),
            last_commit: Duration::ZERO,
            syncer: syncer::Syncer::start(wal_path(path), stats.clone(), sync_spacing)?,
        };
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Internal(format!("cannot start the writer thread: {e}")))?;
        let readers =
            Arc::new(ReaderPool { idle: Mutex::new(readers), slots: Arc::new(tokio::sync::Semaphore::new(READERS)) });
        Ok(Self { jobs: tx, readers, stats })
    }

    /// Runs `work` on the writer thread; answers after the COMMIT of its group. `work` may run
    /// twice (after a rollback caused by another request), so it must not consume its inputs.
    pub(crate) async fn write<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnMut(&mut Writer) -> Result<R, StoreError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        self.submit(Box::new(Pending { work, result: None, reply }), rx).await
    }

    /// Queues `job` for the writer and waits for its answer on `rx`.
    async fn submit<R>(&self, job: Job, rx: oneshot::Receiver<Result<R, StoreError>>) -> Result<R, StoreError> {
        self.jobs.send(job).await.map_err(|_| StoreError::Unavailable("the database writer has stopped".into()))?;
        rx.await.map_err(|_| StoreError::Unavailable("the database writer has stopped".into()))?
    }

    /// Runs `work` on a pooled read connection on the blocking pool. When every connection is
    /// busy the call waits for one.
    pub(crate) async fn read<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let permit = self
            .readers
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Unavailable("reader pool closed".into()))?;
        let conn = self.readers.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        // Unreachable while every checkout goes through a guard: a permit means a free connection.
        let conn = conn.ok_or_else(|| StoreError::Internal("reader pool is empty".into()))?;
        let guard = ReaderGuard { pool: self.readers.clone(), conn: Some(conn), _permit: permit };
        tokio::task::spawn_blocking(move || work(guard.conn()))
            .await
            .map_err(|e| StoreError::Internal(format!("read task failed: {e}")))?
    }

    /// How many read connections are in the pool now (all of them when no read runs).
    pub fn idle_readers(&self) -> usize {
        self.readers.idle.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn commit_stats(&self) -> &CommitStats {
        &self.stats
    }

    pub async fn ingest(&self, messages: Vec<Message>) -> Result<Vec<IngestOutcome>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.submit(Box::new(IngestJob { messages, result: None, reply }), rx).await
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?)).await
    }

    /// Returns the stored value of `name`, storing `fresh` first when there is none.
    /// The flag says whether `fresh` was stored now.
    pub async fn setting_or_insert(&self, name: &'static str, fresh: String) -> Result<(String, bool), StoreError> {
        self.write(move |writer| {
            let inserted = writer.conn.execute(
                "INSERT INTO app_settings (name, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                params![name, fresh],
            )?;
            let value: String =
                writer.conn.query_row("SELECT value FROM app_settings WHERE name = ?1", [name], |r| r.get(0))?;
            Ok((value, inserted == 1))
        })
        .await
    }
}

pub(crate) use super::delta::{StreamDelta, now_micros};
pub(crate) use pump_engine::tables::cents;

#[cfg(test)]
mod tests;
