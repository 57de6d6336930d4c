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
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{CachedStatement, Connection, OpenFlags, OptionalExtension, ToSql, params};
use rusqlite_migration::{M, Migrations};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use pump_engine::{Difficulty, RoundDeriver};

use super::model::{BetRecord, StreamSummary};
use super::{CommitStats, IngestOutcome, StoreError, StoreOptions};
use crate::config::SqliteSync;
use crate::live::hub::{Hub, LiveEvent};
use crate::live::message::{Message, NewBet};

mod alloc;
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
/// longer in their inserts than in the sync, so the overlap wins: batches of 100 at 16
/// connections (groups of ~600 bets) gave +11-15 % bets/s on a disk whose sync took ~3 ms. Small
/// groups lose by it: the writer, no longer waiting for the sync, commits groups half the size,
/// twice as often (single bets -7-10 % requests/s and +12-15 % CPU per request; batches of 10,
/// groups of ~80 bets, -2-5 %; batches of 40 with this threshold, within noise). Measured with
/// scripts/bench-ingest.sh.
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
        M::up(include_str!("../../migrations/sqlite/0001_streams_bets_rounds.sql")),
        M::up(include_str!("../../migrations/sqlite/0002_read_side_seeds_runs.sql")),
        M::up(include_str!("../../migrations/sqlite/0003_sessions.sql")),
        M::up(include_str!("../../migrations/sqlite/0004_stream_multipliers.sql")),
        M::up(include_str!("../../migrations/sqlite/0005_stream_bet_range.sql")),
        M::up(include_str!("../../migrations/sqlite/0006_fold_stream_difficulties.sql")),
        M::up(include_str!("../../migrations/sqlite/0007_bet_rounds_in_place.sql")),
        M::up(include_str!("../../migrations/sqlite/0008_mult_cents_without_a_function.sql")),
        M::up(include_str!("../../migrations/sqlite/0009_demo_streams.sql")),
        M::up(include_str!("../../migrations/sqlite/0010_simulations.sql")),
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
        // single-bet request touches ~8 pages (table, three indexes, rounds, stream, counters,
        // sequence), so 4 KiB pages cost single-bet ingest ~30% of its throughput. Too small and
        // batches pay instead (more pages to fetch, split, checksum and copy per bet): 2 KiB
        // gave batches of 100 +15% against 1 KiB (server CPU per bet -11%), single bets within
        // noise (README, performance).
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

/// Rows per multi-row INSERT, largest first: a job's bets go in as few statements as these
/// sizes allow (100 bets: 64 + 16 + 16 + 4), each prepared once and kept in the statement cache.
const CHUNKS: [usize; 4] = [64, 16, 4, 1];

/// The statement texts for each size of `CHUNKS`. `OR FAIL`: a failed constraint stops the
/// statement without undoing its earlier rows, which spares SQLite the statement journal (a copy of
/// every page the statement touches) that undoing them needs. Nothing is lost by it: any failed
/// statement fails its job, and the writer then rolls the whole transaction back. (A function
/// call anywhere in the statement, a generated column's included, would bring the journal back:
/// see migration 0008.)
static INSERT_BETS: LazyLock<[String; CHUNKS.len()]> = LazyLock::new(|| {
    CHUNKS.map(|rows| {
        values_sql(
            "INSERT OR FAIL INTO bets (stream_pk, antebot_bet_id, received_at, date_time, nonce, amount, payout,
                payout_multiplier, difficulty, round_target, round_result, verified, expected_multiplier)",
            13,
            rows,
            "ON CONFLICT (stream_pk, antebot_bet_id) DO NOTHING",
        )
    })
});

/// `head VALUES (?, …), … tail` with `rows` groups of `columns` placeholders.
fn values_sql(head: &str, columns: usize, rows: usize, tail: &str) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    format!("{head} VALUES {} {tail}", vec![row; rows].join(", "))
}

/// One multi-row statement per size of `CHUNKS`, each taken from the cache at most once per job.
struct Chunked<'c> {
    conn: &'c Connection,
    texts: &'static [String; CHUNKS.len()],
    statements: [Option<CachedStatement<'c>>; CHUNKS.len()],
}

impl<'c> Chunked<'c> {
    fn new(conn: &'c Connection, texts: &'static [String; CHUNKS.len()]) -> Self {
        Self { conn, texts, statements: Default::default() }
    }

    /// The statement of the largest chunk that fits in `remaining` rows, and that chunk's size.
    fn next(&mut self, remaining: usize) -> Result<(&mut CachedStatement<'c>, usize), StoreError> {
        let which = CHUNKS.iter().position(|&size| size <= remaining).unwrap_or(CHUNKS.len() - 1);
        let statement = match &mut self.statements[which] {
            Some(statement) => statement,
            slot => slot.insert(self.conn.prepare_cached(&self.texts[which])?),
        };
        Ok((statement, CHUNKS[which]))
    }
}

/// Where a message goes: its stream, and the engine's multiplier when the stream's seed is known.
#[derive(Clone, Copy)]
struct Placed {
    pk: i64,
    stream_id: Uuid,
    new_stream: bool,
    expected: Option<f64>,
    /// The seed-reveal check of a bet: `None` while its server seed is unknown.
    verified: Option<bool>,
}

/// Inserts the job's bets in message order, in chunks; the id of each bet stored now (`None` for
/// heartbeats and for bets whose id the stream already had).
fn insert_bets(
    conn: &Connection,
    messages: &[Message],
    placed: &[Placed],
    now: i64,
) -> Result<Vec<Option<i64>>, StoreError> {
    let bets: Vec<(usize, &NewBet)> = messages
        .iter()
        .enumerate()
        .filter_map(|(i, m)| match m {
            Message::Bet(bet) => Some((i, bet)),
            Message::Heartbeat(_) => None,
        })
        .collect();
    let mut ids = vec![None; messages.len()];
    let mut statements = Chunked::new(conn, &INSERT_BETS);
    let mut rest = &bets[..];
    while !rest.is_empty() {
        let (statement, rows) = statements.next(rest.len())?;
        let (chunk, tail) = rest.split_at(rows);
        rest = tail;
        let mut column = 0;
        let mut bind = |value: &dyn ToSql| {
            column += 1;
            statement.raw_bind_parameter(column, value)
        };
        for &(i, bet) in chunk {
            let Placed { pk, expected, verified, .. } = placed[i];
            bind(&pk)?;
            bind(&bet.antebot_bet_id)?;
            bind(&now)?;
            bind(&bet.date_time.map(|d| d.timestamp_micros()))?;
            bind(&bet.nonce)?;
            bind(&bet.amount)?;
            bind(&bet.payout)?;
            bind(&bet.payout_multiplier)?;
            bind(&bet.difficulty.as_str())?;
            bind(&bet.round_target)?;
            bind(&bet.round_result)?;
            bind(&verified)?;
            bind(&expected)?;
        }
        let inserted = statement.raw_execute()?;
        if inserted == rows {
            // All new: AUTOINCREMENT gave them consecutive ids, in VALUES order, ending at the last.
            let last = conn.last_insert_rowid();
            for (k, &(i, _)) in chunk.iter().enumerate() {
                ids[i] = Some(last - (rows - 1 - k) as i64);
            }
        } else if inserted > 0 {
            new_ids_of(conn, chunk, placed, inserted, &mut ids)?;
        }
    }
    Ok(ids)
}

/// After a chunk stored only `inserted` of its bets (the others repeat stored ids, or an id
/// earlier in the chunk): finds which. Every id assigned now is above every id stored before, so
/// the new ones are the `inserted` largest of the chunk's ids, each owned by its first bet.
fn new_ids_of(
    conn: &Connection,
    chunk: &[(usize, &NewBet)],
    placed: &[Placed],
    inserted: usize,
    ids: &mut [Option<i64>],
) -> Result<(), StoreError> {
    let mut lookup = conn.prepare_cached("SELECT id FROM bets WHERE stream_pk = ?1 AND antebot_bet_id = ?2")?;
    let mut found = Vec::with_capacity(chunk.len());
    for &(i, bet) in chunk {
        found.push(lookup.query_row(params![placed[i].pk, bet.antebot_bet_id], |r| r.get::<_, i64>(0))?);
    }
    let mut distinct = found.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let lowest_new = distinct[distinct.len() - inserted];
    let mut claimed = Vec::with_capacity(inserted);
    for (&(i, _), id) in chunk.iter().zip(found) {
        if id >= lowest_new && !claimed.contains(&id) {
            claimed.push(id);
            ids[i] = Some(id);
        }
    }
    Ok(())
}

/// Whether each message brings a new round, in message order. A stored bet is the record of its
/// own round; heartbeats, and bets whose id the stream already had, get a row of `rounds`. A
/// round is new when its nonce is above every nonce its stream has seen (no query: the common
/// case), else when no row of `rounds` and no earlier bet holds it. The first message to bring a
/// round records it: when a second bet comes for a nonce an earlier bet holds, the earlier bet's
/// round gets a row, and a row stands over the bets of its nonce, so readers never have to tell
/// the bets of one nonce apart. Bets below the stream's floor are rounds the retention dropped.
fn record_rounds(
    conn: &Connection,
    messages: &[Message],
    placed: &[Placed],
    bet_ids: &[Option<i64>],
    streams: &mut StreamCache,
    deltas: &mut PkMap<StreamDelta>,
) -> Result<Vec<bool>, StoreError> {
    // For each message, the id of the first bet the job stored at or after it: ids follow message
    // order, so the bets below it are the ones stored before this message.
    let mut next_id = vec![i64::MAX; messages.len()];
    let mut following = i64::MAX;
    for (slot, id) in next_id.iter_mut().zip(bet_ids).rev() {
        following = id.unwrap_or(following);
        *slot = following;
    }
    let mut new_rounds = Vec::with_capacity(messages.len());
    for (i, message) in messages.iter().enumerate() {
        let (pk, nonce) = (placed[i].pk, message.nonce());
        let entry = streams.entries.get_mut(&pk).ok_or_else(|| StoreError::Internal("stream not cached".into()))?;
        let fresh = entry.max_nonce.is_none_or(|max| nonce > max);
        entry.max_nonce = Some(entry.max_nonce.map_or(nonce, |max| max.max(nonce)));
        let above_floor = entry.floor.is_none_or(|floor| nonce >= floor);
        // The round of the first bet stored before `before` at this nonce.
        let first_bet = |before: i64| -> Result<Option<f64>, StoreError> {
            if !above_floor {
                return Ok(None);
            }
            Ok(conn
                .prepare_cached(
                    "SELECT round_result FROM bets WHERE stream_pk = ?1 AND nonce = ?2 AND id < ?3 ORDER BY id LIMIT 1",
                )?
                .query_row(params![pk, nonce, before], |r| r.get(0))
                .optional()?)
        };
        let add_row = |round_result: f64| -> Result<bool, StoreError> {
            let mut insert = conn.prepare_cached(
                "INSERT INTO rounds (stream_pk, nonce, round_result) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            )?;
            Ok(insert.execute(params![pk, nonce, round_result])? == 1)
        };
        let new = match (message, bet_ids[i]) {
            (Message::Bet(_), Some(_)) if fresh => true,
            (Message::Bet(_), Some(_)) if !above_floor => false,
            (Message::Bet(_), Some(id)) => match first_bet(id)? {
                Some(first) => {
                    add_row(first)?;
                    false
                }
                None => !conn
                    .prepare_cached("SELECT 1 FROM rounds WHERE stream_pk = ?1 AND nonce = ?2")?
                    .exists(params![pk, nonce])?,
            },
            _ => (fresh || first_bet(next_id[i])?.is_none()) && add_row(message.round_result())?,
        };
        if new {
            deltas.entry(pk).or_default().rounds += 1;
        }
        new_rounds.push(new);
    }
    Ok(new_rounds)
}

impl StreamCache {
    /// Finds or creates the stream of a seed pair: (pk, id, created now).
    fn stream_for(
        &mut self,
        conn: &Connection,
        events: &mut Vec<LiveEvent>,
        server_seed_hashed: &str,
        client_seed: &str,
        now: i64,
    ) -> Result<(i64, Uuid, bool), StoreError> {
        // Consecutive messages nearly always share a seed pair: answer those without building a
        // key (two allocations) for the map.
        if let Some((server, client, pk)) = &self.last
            && server == server_seed_hashed
            && client == client_seed
            && let Some(entry) = self.entries.get(pk)
        {
            return Ok((*pk, entry.id, false));
        }
        let key = (server_seed_hashed.to_string(), client_seed.to_string());
        if let Some(&pk) = self.pks.get(&key)
            && let Some(entry) = self.entries.get(&pk)
        {
            let id = entry.id;
            self.last = Some((key.0, key.1, pk));
            return Ok((pk, id, false));
        }
        let existing = conn
            .prepare_cached(
                "SELECT pk, id, rounds_count, last_observed_nonce, rounds_floor FROM streams
                 WHERE server_seed_hashed = ?1 AND client_seed = ?2",
            )?
            .query_row(params![server_seed_hashed, client_seed], |r| {
                let entry = StreamEntry {
                    id: Uuid::nil(),
                    rounds: r.get(2)?,
                    max_nonce: r.get(3)?,
                    floor: r.get(4)?,
                    deriver: None,
                };
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, entry))
            })
            .optional()?;
        let (pk, mut entry, created) = match existing {
            Some((pk, id, entry)) => {
                let id = Uuid::parse_str(&id).map_err(|e| StoreError::Internal(e.to_string()))?;
                (pk, StreamEntry { id, ..entry }, false)
            }
            None => {
                let id = Uuid::new_v4();
                let pk: i64 = conn
                    .prepare_cached(
                        "INSERT INTO streams (id, server_seed_hashed, client_seed, created_at, last_seen_at)
                         VALUES (?1, ?2, ?3, ?4, ?4) RETURNING pk",
                    )?
                    .query_row(params![id.to_string(), server_seed_hashed, client_seed, now], |r| r.get(0))?;
                (pk, StreamEntry { id, rounds: 0, max_nonce: None, floor: None, deriver: None }, true)
            }
        };
        let id = entry.id;
        let seed: Option<String> = conn
            .prepare_cached("SELECT server_seed FROM revealed_seeds WHERE server_seed_hashed = lower(?1)")?
            .query_row([server_seed_hashed], |r| r.get(0))
            .optional()?;
        entry.deriver = seed.map(|seed| Box::new(RoundDeriver::new(&seed, client_seed)));
        if created {
            events.push(LiveEvent::Stream(Box::new(StreamSummary::created(
                id,
                server_seed_hashed,
                client_seed,
                now,
                entry.deriver.is_some(),
            ))));
        }
        self.pks.insert(key.clone(), pk);
        self.entries.insert(pk, entry);
        self.last = Some((key.0, key.1, pk));
        Ok((pk, id, created))
    }

    /// The engine's multiplier for a bet of a stream whose seed is revealed.
    fn expected_multiplier(&mut self, pk: i64, nonce: i64, difficulty: Difficulty) -> Option<f64> {
        let deriver = self.entries.get_mut(&pk)?.deriver.as_mut()?;
        let nonce = u64::try_from(nonce).ok()?;
        Some(deriver.result(nonce, difficulty).max_multiplier)
    }
}

/// Keys `StreamCache::last_nonces` may hold before it is emptied (bounds its memory).
const LAST_NONCES_MAX: usize = 100_000;

/// Each stored bet's `distance_prev` (SPEC §3.2: nonces since the previous bet of the same
/// 2-decimal multiplier in the whole stream), for its live event, as the query below gives it
/// once the job's bets are in, without running it per bet: the previous bet is the higher of the
/// highest one stored before the job (`last_nonces`, when it lies below this bet) and the
/// highest one below it among the job's own. Bets out of nonce order, and keys not yet known,
/// are asked of the (stream, multiplier, nonce) index.
fn distances(
    conn: &Connection,
    messages: &[Message],
    placed: &[Placed],
    bet_ids: &[Option<i64>],
    last_nonces: &mut foldhash::HashMap<(i64, i64), i64>,
) -> Result<Vec<Option<i64>>, StoreError> {
    let stored = || {
        messages.iter().zip(placed).zip(bet_ids).enumerate().filter_map(|(i, ((message, place), id))| match message {
            Message::Bet(bet) if id.is_some() => Some((i, (place.pk, cents(bet.round_result)), bet.nonce)),
            _ => None,
        })
    };
    let mut job: foldhash::HashMap<(i64, i64), Vec<i64>> = foldhash::HashMap::default();
    for (_, key, nonce) in stored() {
        job.entry(key).or_default().push(nonce);
    }
    job.values_mut().for_each(|nonces| nonces.sort_unstable());
    let mut below =
        conn.prepare_cached("SELECT max(nonce) FROM bets WHERE stream_pk = ?1 AND mult_cents = ?2 AND nonce < ?3")?;
    let mut distances = vec![None; messages.len()];
    for (i, key, nonce) in stored() {
        let previous = match last_nonces.get(&key) {
            Some(&before) if before < nonce => {
                let nonces = &job[&key];
                let in_job = nonces[..nonces.partition_point(|&n| n < nonce)].last().copied();
                Some(in_job.map_or(before, |n| n.max(before)))
            }
            _ => below.query_row(params![key.0, key.1, nonce], |r| r.get::<_, Option<i64>>(0))?,
        };
        distances[i] = previous.map(|p| nonce - p);
    }
    // Now the job's bets are stored too.
    for (key, nonces) in job {
        let top = nonces[nonces.len() - 1];
        match last_nonces.get_mut(&key) {
            Some(highest) => *highest = (*highest).max(top),
            None => {
                let highest = below.query_row(params![key.0, key.1, i64::MAX], |r| r.get::<_, Option<i64>>(0))?;
                last_nonces.insert(key, highest.unwrap_or(top).max(top));
            }
        }
    }
    if last_nonces.len() > LAST_NONCES_MAX {
        last_nonces.clear();
    }
    Ok(distances)
}

impl Writer {
    /// Stores one job's messages in four passes: streams (in message order), bets, rounds, then
    /// counters, events and answers (in message order). Bets go in as multi-row INSERTs: a
    /// statement's fixed cost (opening a cursor per index, the AUTOINCREMENT bookkeeping,
    /// halting) is then paid once per chunk, not per row.
    fn ingest(&mut self, messages: &[Message]) -> Result<Vec<IngestOutcome>, StoreError> {
        let now = now_micros();
        // Live events are built only when someone is subscribed.
        let live = self.hub.has_subscribers();
        let Writer { conn, streams, events, deltas, .. } = self;
        let conn = &*conn;
        let mut placed = Vec::with_capacity(messages.len());
        for message in messages {
            let (server, client) = message.seed_pair();
            let (pk, stream_id, new_stream) = streams.stream_for(conn, events, server, client, now)?;
            let (expected, verified) = match message {
                Message::Bet(bet) => {
                    let expected = streams.expected_multiplier(pk, bet.nonce, bet.difficulty);
                    (expected, expected.map(|e| cents(e) == cents(bet.round_result)))
                }
                Message::Heartbeat(_) => (None, None),
            };
            placed.push(Placed { pk, stream_id, new_stream, expected, verified });
        }
        let bet_ids = insert_bets(conn, messages, &placed, now)?;
        let new_rounds = record_rounds(conn, messages, &placed, &bet_ids, streams, deltas)?;
        let distances = if live {
            distances(conn, messages, &placed, &bet_ids, &mut streams.last_nonces)?
        } else {
            // Bets go in unseen by the cache: forget it (once: clearing keeps the capacity, and
            // would sweep it at every job).
            if !streams.last_nonces.is_empty() {
                streams.last_nonces = foldhash::HashMap::default();
            }
            Vec::new()
        };

        let mut outcomes = Vec::with_capacity(messages.len());
        for (i, message) in messages.iter().enumerate() {
            let Placed { pk, stream_id, new_stream, expected, verified } = placed[i];
            let delta = deltas.entry(pk).or_default();
            delta.seen_at = now;
            delta.max_nonce = delta.max_nonce.max(message.nonce());
            let bet_id = bet_ids[i];
            if let (Message::Bet(bet), Some(id)) = (message, bet_id) {
                delta.add_bet(bet, id, verified);
                if live {
                    let record = BetRecord::stored(id, stream_id, bet, now, distances[i], expected);
                    events.push(LiveEvent::Bet(Box::new(record)));
                }
            }
            let new_round = new_rounds[i];
            if new_round && live {
                let (nonce, round_result) = (message.nonce(), message.round_result());
                events.push(LiveEvent::Round { stream_id, nonce, round_result });
            }
            let accepted = match message {
                Message::Bet(_) => bet_id.is_some(),
                Message::Heartbeat(_) => new_round,
            };
            outcomes.push(IngestOutcome { stream_id, new_stream, accepted, bet_id });
        }
        Ok(outcomes)
    }

    fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let background = self.options.sqlite_sync == SqliteSync::Background;
        while let Some(first) = rx.blocking_recv() {
            let mut jobs = super::gather(first, &mut rx, MAX_GROUP);
            if let Some(e) = self.syncer.failure() {
                jobs.into_iter().for_each(|job| job.finish(Err(e.clone())));
                continue;
            }
            let messages: usize = jobs.iter_mut().filter_map(|job| job.as_ingest()).map(|job| job.messages.len()).sum();
            wal_buffer::defer_commit_syncs(background || messages >= DEFER_AT);
            let grouped = self.transaction(|writer| {
                let mut all_ok = true;
                let mut rest = &mut jobs[..];
                while !rest.is_empty() {
                    let ingests = rest.iter_mut().position(|job| job.as_ingest().is_none()).unwrap_or(rest.len());
                    let (now, later) = rest.split_at_mut(ingests.max(1));
                    all_ok &= match now {
                        [job] => job.run(writer),
                        together => writer.ingest_together(together),
                    };
                    rest = later;
                }
                all_ok
            });
            wal_buffer::defer_commit_syncs(false);
            // Taken whatever the outcome, so that a failed group's flag never carries over.
            let deferred = wal_buffer::take_deferred();
            match grouped {
                Ok(()) => {
                    self.stats.record(jobs.len(), self.last_commit, deferred);
                    self.publish();
                    if deferred && !background {
                        self.syncer.hand_over(jobs);
                    } else {
                        jobs.into_iter().for_each(|job| job.finish(Ok(())));
                        if deferred {
                            // The group's frames are in the operating system's hands: they survive
                            // the server's death now, and a power cut once the syncer has synced.
                            self.syncer.sync_soon();
                        }
                    }
                }
                Err(_) if jobs.len() > 1 => {
                    // Replay one by one so only the failing request fails.
                    for mut job in jobs {
                        let commit = self.transaction(|writer| job.run(writer));
                        if commit.is_ok() {
                            self.stats.record(1, self.last_commit, false);
                            self.publish();
                        }
                        let commit = match commit {
                            Err(StoreError::Internal(m)) if m == JOB_FAILED => Ok(()),
                            other => other,
                        };
                        job.finish(commit);
                    }
                }
                Err(e) => {
                    let commit = if matches!(&e, StoreError::Internal(m) if m == JOB_FAILED) { Ok(()) } else { Err(e) };
                    jobs.into_iter().for_each(|job| job.finish(commit.clone()));
                }
            }
        }
    }

    /// Runs several ingest jobs as one: their messages in one `ingest`, each job answered with
    /// its own outcomes. The messages go back to their jobs, which a rollback replays one by one.
    fn ingest_together(&mut self, jobs: &mut [Job]) -> bool {
        let mut parts: Vec<&mut IngestJob> = jobs.iter_mut().filter_map(|job| job.as_ingest()).collect();
        let mut messages = Vec::with_capacity(parts.iter().map(|part| part.messages.len()).sum());
        let sizes: Vec<usize> = parts.iter().map(|part| part.messages.len()).collect();
        for part in parts.iter_mut() {
            messages.append(&mut part.messages);
        }
        let mut result = self.ingest(&messages);
        for (part, &size) in parts.iter_mut().zip(&sizes).rev() {
            part.messages = messages.split_off(messages.len() - size);
            part.result = Some(match &mut result {
                Ok(all) => Ok(all.split_off(all.len() - size)),
                Err(e) => Err(e.clone()),
            });
        }
        result.is_ok()
    }

    /// Runs `body` in `BEGIN IMMEDIATE … COMMIT`; rolls back when it reports a failed job or the
    /// commit fails. A failed job is reported as the `JOB_FAILED` marker: its own result says why.
    fn transaction(&mut self, body: impl FnOnce(&mut Writer) -> bool) -> Result<(), StoreError> {
        // Cached statements: `execute_batch` would parse the SQL again for every group.
        if let Err(e) = self.conn.prepare_cached("BEGIN IMMEDIATE").and_then(|mut begin| begin.execute([])) {
            tracing::error!(error = %e, "cannot begin a write transaction");
            return Err(e.into());
        }
        let outcome = if body(self) {
            self.flush_deltas().and_then(|()| {
                let started = Instant::now();
                let committed = self.conn.prepare_cached("COMMIT").and_then(|mut commit| commit.execute([]));
                self.last_commit = started.elapsed();
                committed.map(drop).map_err(StoreError::from)
            })
        } else {
            Err(StoreError::Internal(JOB_FAILED.into()))
        };
        if let Err(e) = &outcome {
            if !matches!(e, StoreError::Internal(m) if m == JOB_FAILED) {
                tracing::error!(error = %e, "write transaction failed; its requests are answered with an error");
            }
            let _ = self.conn.execute_batch("ROLLBACK");
            self.forget_streams();
            self.deltas.clear();
            self.events.clear();
        }
        outcome
    }

    /// Drops every cached stream (after a rollback, a delete or a seed reveal).
    fn forget_streams(&mut self) {
        self.streams = StreamCache::default();
    }

    fn publish(&mut self) {
        for event in self.events.drain(..) {
            self.hub.publish(event);
        }
    }

    /// Writes the counters the transaction changed, one stream at a time, with the three
    /// statements taken from the cache once per flush.
    fn flush_deltas(&mut self) -> Result<(), StoreError> {
        if self.deltas.is_empty() {
            return Ok(());
        }
        let Writer { conn, streams, deltas, options, .. } = self;
        let conn = &*conn;
        let mut update_stream = conn.prepare_cached(UPDATE_STREAM)?;
        let mut add_multiplier = conn.prepare_cached(ADD_MULTIPLIER)?;
        let retention = i64::try_from(options.rounds_retention).unwrap_or(i64::MAX);
        for (pk, delta) in deltas.drain() {
            update_stream.execute(params![
                pk,
                delta.bets,
                delta.highest,
                delta.max_nonce,
                delta.rounds,
                delta.seen_at,
                delta.lowest,
                delta.sum_multiplier,
                delta.amount,
                delta.payout,
                delta.checked,
                delta.matched,
                delta.first_id,
                delta.last_id
            ])?;
            for (difficulty, mult_cents, bets, last_bet) in &delta.multipliers {
                add_multiplier.execute(params![pk, difficulty, mult_cents, bets, last_bet])?;
            }
            if delta.rounds > 0 {
                let entry = streams.entries.get_mut(&pk);
                let (rounds_count, floor) = match &entry {
                    Some(entry) => (entry.rounds + delta.rounds, entry.floor),
                    // Dropped from the cache during this transaction (a seed reveal): ask.
                    None => conn
                        .prepare_cached("SELECT rounds_count, rounds_floor FROM streams WHERE pk = ?1")?
                        .query_row([pk], |r| Ok((r.get(0)?, r.get(1)?)))?,
                };
                let (kept, floor) = if rounds_count > retention {
                    (retention, Some(trim_rounds(conn, pk, rounds_count - retention, retention, floor)?))
                } else {
                    (rounds_count, floor)
                };
                if let Some(entry) = entry {
                    entry.rounds = kept;
                    entry.floor = floor;
                }
            }
        }
        Ok(())
    }
}

const UPDATE_STREAM: &str = "UPDATE streams SET
        total_bets = total_bets + ?2,
        highest_multiplier = CASE WHEN ?3 IS NULL THEN highest_multiplier
                                  ELSE max(coalesce(highest_multiplier, ?3), ?3) END,
        lowest_multiplier = CASE WHEN ?7 IS NULL THEN lowest_multiplier
                                 ELSE min(coalesce(lowest_multiplier, ?7), ?7) END,
        last_observed_nonce = max(coalesce(last_observed_nonce, ?4), ?4),
        rounds_count = rounds_count + ?5,
        last_seen_at = ?6,
        sum_multiplier = sum_multiplier + ?8,
        total_amount = total_amount + ?9,
        total_payout = total_payout + ?10,
        verified_checked = verified_checked + ?11,
        verified_matched = verified_matched + ?12,
        verified_mismatched = verified_mismatched + (?11 - ?12),
        first_bet_id = coalesce(first_bet_id, ?13),
        -- Ids only grow: the group's last bet is the stream's last.
        last_bet_id = coalesce(?14, last_bet_id)
    WHERE pk = ?1";
const ADD_MULTIPLIER: &str = "INSERT INTO stream_multipliers (stream_pk, difficulty, mult_cents, bets, last_bet)
    VALUES (?1, ?2, ?3, ?4, ?5)
    ON CONFLICT (stream_pk, difficulty, mult_cents)
    DO UPDATE SET bets = bets + excluded.bets, last_bet = max(last_bet, excluded.last_bet)";

/// Drops a stream's `excess` oldest rounds, leaving `retention` of them: walks its rounds (rows
/// of `rounds`, and bets from the floor up) from the lowest nonce, raises the floor to the first
/// round kept and deletes the rows below it. Returns the new floor.
fn trim_rounds(conn: &Connection, pk: i64, excess: i64, retention: i64, floor: Option<i64>) -> Result<i64, StoreError> {
    let floor = {
        let mut rows = conn.prepare_cached("SELECT nonce FROM rounds WHERE stream_pk = ?1 ORDER BY nonce")?;
        let mut bets =
            conn.prepare_cached("SELECT nonce FROM bets WHERE stream_pk = ?1 AND nonce >= ?2 ORDER BY nonce")?;
        let mut rows = rows.query([pk])?;
        let mut bets = bets.query(params![pk, floor.unwrap_or(i64::MIN)])?;
        let next = |rows: &mut rusqlite::Rows<'_>| -> Result<Option<i64>, StoreError> {
            Ok(rows.next()?.map(|r| r.get(0)).transpose()?)
        };
        let (mut row, mut bet) = (next(&mut rows)?, next(&mut bets)?);
        let mut dropped = 0;
        let mut last_dropped = floor.unwrap_or(i64::MIN);
        loop {
            let Some(lowest) = row.into_iter().chain(bet).min() else {
                // Fewer rounds than counted: none is left.
                break last_dropped.saturating_add(1);
            };
            if dropped == excess {
                break lowest;
            }
            dropped += 1;
            last_dropped = lowest;
            while row == Some(lowest) {
                row = next(&mut rows)?;
            }
            while bet == Some(lowest) {
                bet = next(&mut bets)?;
            }
        }
    };
    conn.prepare_cached("DELETE FROM rounds WHERE stream_pk = ?1 AND nonce < ?2")?.execute(params![pk, floor])?;
    conn.prepare_cached("UPDATE streams SET rounds_count = ?2, rounds_floor = ?3 WHERE pk = ?1")?
        .execute(params![pk, retention, floor])?;
    Ok(floor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::message::{Heartbeat, Message};
    use crate::store::model::{BetOrder, BetQuery, Round};
    use crate::store::{CommitCounts, StreamKey};

    fn heartbeats(from: i64, count: i64) -> Vec<Message> {
        (from..from + count)
            .map(|nonce| {
                Message::Heartbeat(Heartbeat {
                    nonce,
                    round_result: 1.63,
                    client_seed: "c".repeat(200),
                    server_seed_hashed: "h".into(),
                })
            })
            .collect()
    }

    fn bet(id: &str, nonce: i64, client_seed: &str) -> Message {
        Message::Bet(NewBet {
            antebot_bet_id: id.into(),
            nonce,
            amount: 1.0,
            payout: 2.0,
            difficulty: Difficulty::Medium,
            client_seed: client_seed.into(),
            server_seed_hashed: "h".into(),
            round_result: 1.0 + (nonce % 7) as f64,
            payout_multiplier: 2.0,
            round_target: Some(2.0),
            date_time: None,
        })
    }

    /// The default options: those of a server started without settings.
    fn options() -> StoreOptions {
        StoreOptions { rounds_retention: 1_000_000, sqlite_sync: SqliteSync::Background, max_pages: None }
    }

    /// A fresh store in a directory of its own, which the test removes when it ends.
    fn scratch_store(name: &str, max_pages: Option<u64>) -> (std::path::PathBuf, SqliteStore) {
        scratch_store_on(name, StoreOptions { max_pages, ..options() }, Hub::new())
    }

    fn scratch_store_on(name: &str, options: StoreOptions, hub: Hub) -> (std::path::PathBuf, SqliteStore) {
        let dir = std::env::temp_dir().join(format!("pump-{name}-{}", crate::security::random_hex(6)));
        std::fs::create_dir_all(&dir).unwrap();
        let store = SqliteStore::open(&dir.join(format!("{name}.db")), options, hub).unwrap();
        (dir, store)
    }

    /// A seeded pseudo-random source for the randomised tests: `next(bound)` is in `0..bound`.
    fn xorshift(mut state: u64) -> impl FnMut(u64) -> u64 {
        move |bound| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        }
    }

    async fn count(store: &SqliteStore, sql: &'static str) -> i64 {
        store.read(move |c| Ok(c.query_row(sql, [], |r| r.get(0))?)).await.unwrap()
    }

    #[tokio::test]
    async fn the_database_and_its_log_files_are_readable_by_their_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, store) = scratch_store("modes", None);
        store.ingest(vec![bet("b1", 1, "c")]).await.unwrap();
        let mode = |suffix: &str| {
            let file = dir.join(format!("modes.db{suffix}"));
            std::fs::metadata(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display())).permissions().mode() & 0o777
        };
        assert_eq!(mode(""), 0o600);
        assert_eq!(mode("-wal"), 0o600);
        assert_eq!(mode("-shm"), 0o600);
        drop(store);

        // A database made world-readable by an older build is tightened when opened.
        let path = dir.join("modes.db");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let store = SqliteStore::open(&path, options(), Hub::new()).unwrap();
        assert_eq!(mode(""), 0o600);
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A read whose work panics, and reads whose callers give up (their futures dropped while the
    /// blocking work runs, as when a client resets its connection), still return their
    /// connections: afterwards every connection is back and a read that needs all of them at once
    /// is served.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn panicking_and_cancelled_reads_give_their_connections_back() {
        let (dir, store) = scratch_store("reader-pool", None);
        let store = Arc::new(store);
        for _ in 0..(READERS * 2) {
            let outcome = store.read(|_| -> Result<(), StoreError> { panic!("a read that panics") }).await;
            assert!(matches!(outcome, Err(StoreError::Internal(_))), "{outcome:?}");
        }
        assert_eq!(store.idle_readers(), READERS);

        let (started_tx, mut started_rx) = mpsc::unbounded_channel();
        for _ in 0..(READERS * 10) {
            let started = started_tx.clone();
            let read = store.read(move |c| {
                let _ = started.send(());
                std::thread::sleep(Duration::from_millis(5));
                Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?)
            });
            // Give the read time to take a connection, then drop it mid-flight.
            let _ = tokio::time::timeout(Duration::from_millis(1), read).await;
        }
        drop(started_tx);
        while started_rx.recv().await.is_some() {}
        let deadline = Instant::now() + Duration::from_secs(5);
        while store.idle_readers() < READERS && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(store.idle_readers(), READERS, "every connection is back in the pool");

        // More concurrent reads than connections: they wait for one instead of failing.
        let reads = (0..(READERS * 8)).map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .read(|c| {
                        std::thread::sleep(Duration::from_millis(2));
                        Ok(c.query_row("SELECT 7", [], |r| r.get::<_, i64>(0))?)
                    })
                    .await
            })
        });
        for read in reads.collect::<Vec<_>>() {
            assert_eq!(read.await.unwrap().unwrap(), 7);
        }
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Bets go in as multi-row INSERTs (64 + 16 + 4 + 1 rows here). Ids follow message order,
    /// and a chunk holding repeats (of stored bets and within itself) still answers each bet
    /// right: the first copy of a new id is accepted with the id it was stored under.
    #[tokio::test]
    async fn chunked_bets_keep_message_order_and_tell_repeats_apart() {
        let (dir, store) = scratch_store("chunks", None);

        let first: Vec<Message> = (1..=85).map(|n| bet(&format!("b{n}"), n, "c")).collect();
        let outcomes = store.ingest(first).await.unwrap();
        assert!(outcomes.iter().all(|o| o.accepted));
        let ids: Vec<i64> = outcomes.iter().map(|o| o.bet_id.unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "consecutive ids in message order: {ids:?}");
        let stored: Vec<(i64, i64)> = store
            .read(|c| {
                let mut s = c.prepare("SELECT id, nonce FROM bets ORDER BY id")?;
                Ok(s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?)
            })
            .await
            .unwrap();
        assert_eq!(stored, ids.iter().zip(1..).map(|(&id, nonce)| (id, nonce)).collect::<Vec<_>>());

        // 70 bets (a chunk of 64, then 4, 1, 1): new ones, repeats of stored ids, a repeat of a
        // new id inside the same chunk, and a second stream in the middle of the run.
        let mut second: Vec<Message> = Vec::new();
        for n in 0..70 {
            second.push(match n {
                5 | 40 => bet(&format!("b{}", n + 1), n + 1, "c"),
                20 => bet("n10", 500, "c"),
                30 => bet("other", 7, "d"),
                66 => bet("n66", 1000, "c"),
                69 => bet("n66", 1001, "c"),
                _ => bet(&format!("n{n}"), 100 + n, "c"),
            });
        }
        let outcomes = store.ingest(second).await.unwrap();
        let accepted: Vec<usize> = (0..70).filter(|&n| outcomes[n].accepted).collect();
        let refused: Vec<usize> = (0..70).filter(|&n| !outcomes[n].accepted).collect();
        assert_eq!(refused, vec![5, 20, 40, 69], "repeats are not accepted");
        assert!(refused.iter().all(|&n| outcomes[n].bet_id.is_none()));
        let new_ids: Vec<i64> = accepted.iter().map(|&n| outcomes[n].bet_id.unwrap()).collect();
        assert!(new_ids.windows(2).all(|w| w[1] > w[0]), "ids rise in message order: {new_ids:?}");
        assert!(new_ids[0] > *ids.last().unwrap());
        for &n in &accepted {
            let id = outcomes[n].bet_id.unwrap();
            let (client, bet_id): (String, String) = store
                .read(move |c| {
                    Ok(c.query_row(
                        "SELECT s.client_seed, b.antebot_bet_id FROM bets b JOIN streams s ON s.pk = b.stream_pk
                         WHERE b.id = ?1",
                        [id],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )?)
                })
                .await
                .unwrap();
            let expected = match n {
                30 => ("d", "other".to_string()),
                66 => ("c", "n66".to_string()),
                _ => ("c", format!("n{n}")),
            };
            assert_eq!((client.as_str(), bet_id), (expected.0, expected.1), "bet {n}");
        }
        assert_eq!(count(&store, "SELECT count(*) FROM bets").await, 85 + 66);
        assert_eq!(count(&store, "SELECT sum(total_bets) FROM streams").await, 85 + 66);
        // Every message's round, once per (stream, nonce): 85, then 68 of the 70 (the repeats of
        // b6 and b41 carry nonces already recorded).
        // (A stored bet is its round's record; `rounds` holds the others.)
        let rounds =
            "SELECT count(*) FROM (SELECT stream_pk, nonce FROM rounds UNION SELECT stream_pk, nonce FROM bets)";
        assert_eq!(count(&store, rounds).await, 85 + 68);
        assert_eq!(count(&store, "SELECT sum(rounds_count) FROM streams").await, 85 + 68);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Ingest requests queued together run as one `ingest`, yet each is answered as if it ran
    /// alone: repeats across requests are refused in queue order, heartbeats see the rounds of
    /// bets before them, and a request that fails is replayed alone, failing only itself.
    #[tokio::test]
    async fn ingest_requests_of_one_group_run_together_and_answer_alone() {
        let (dir, store) = scratch_store("together", None);
        let store = Arc::new(store);
        let heartbeat = |nonce, client_seed: &str| {
            Message::Heartbeat(Heartbeat {
                nonce,
                round_result: 1.5,
                client_seed: client_seed.into(),
                server_seed_hashed: "h".into(),
            })
        };
        let broken = || match bet("nan", 50, "c") {
            Message::Bet(mut b) => {
                b.amount = f64::NAN; // stored as NULL: the NOT NULL amount makes this request fail
                Message::Bet(b)
            }
            other => other,
        };
        for with_failure in [false, true] {
            let round = if with_failure { "2" } else { "1" };
            let seed = |s: &str| format!("{s}{round}");
            let CommitCounts { commits: commits_before, writes: writes_before, .. } = store.commit_stats().read();
            // Hold the writer so that the requests below queue up and form one group.
            let (held, release) = std::sync::mpsc::channel::<()>();
            let blocker = {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .write(move |_| {
                            let _ = release.recv_timeout(Duration::from_secs(5));
                            Ok(())
                        })
                        .await
                })
            };
            tokio::time::sleep(Duration::from_millis(50)).await;
            let mut requests = vec![
                vec![bet("x1", 1, &seed("c")), bet("x2", 2, &seed("c"))],
                vec![bet("x2", 2, &seed("c")), bet("y1", 1, &seed("d"))],
                vec![heartbeat(1, &seed("c")), heartbeat(99, &seed("c"))],
            ];
            if with_failure {
                requests.insert(1, vec![broken()]);
            }
            let pending: Vec<_> = requests
                .into_iter()
                .map(|messages| {
                    let store = store.clone();
                    tokio::spawn(async move { store.ingest(messages).await })
                })
                .collect();
            tokio::time::sleep(Duration::from_millis(100)).await;
            held.send(()).unwrap();
            blocker.await.unwrap().unwrap();
            let mut answers = Vec::new();
            for request in pending {
                answers.push(request.await.unwrap());
            }
            let CommitCounts { commits, writes, .. } = store.commit_stats().read();
            if with_failure {
                assert!(answers.remove(1).is_err(), "the broken request fails");
            } else {
                // The held job's commit, then one for the three requests together.
                assert_eq!((commits - commits_before, writes - writes_before), (2, 4));
            }
            let answers: Vec<Vec<IngestOutcome>> = answers.into_iter().map(Result::unwrap).collect();
            let accepted: Vec<Vec<bool>> = answers.iter().map(|a| a.iter().map(|o| o.accepted).collect()).collect();
            // The first heartbeat's round came with bet x1, earlier in the same group.
            assert_eq!(accepted, vec![vec![true, true], vec![false, true], vec![false, true]]);
            let ids: Vec<i64> = [answers[0][0].bet_id, answers[0][1].bet_id, answers[1][1].bet_id]
                .into_iter()
                .map(Option::unwrap)
                .collect();
            assert!(ids.windows(2).all(|w| w[1] > w[0]), "ids in queue order: {ids:?}");
            assert_eq!(answers[1][0].bet_id, None);
            assert_eq!(answers[0][0].stream_id, answers[1][0].stream_id);
        }
        assert_eq!(count(&store, "SELECT count(*) FROM bets").await, 6);
        assert_eq!(count(&store, "SELECT count(*) FROM bets WHERE antebot_bet_id = 'nan'").await, 0);
        assert_eq!(count(&store, "SELECT sum(total_bets) FROM streams").await, 6);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A stream's bets in arrival order come from its id range of the table, which other
    /// streams' bets interleave: `order=id_desc` pages (with and without a filter) and tails must
    /// hold exactly that stream's bets, in id order, whatever lies between them.
    #[tokio::test]
    async fn arrival_order_reads_skip_the_bets_of_interleaved_streams() {
        let (dir, store) = scratch_store("range", None);
        let hard = |mut m: Message| {
            if let Message::Bet(b) = &mut m {
                b.difficulty = Difficulty::Hard;
            }
            m
        };
        // Streams "c" and "d" interleave within and across requests; "e" has bets only before
        // them and "f" none (a heartbeat alone).
        store.ingest((1..=4).map(|n| bet(&format!("e{n}"), n, "e")).collect()).await.unwrap();
        let mut expected: HashMap<&str, Vec<(i64, bool)>> = HashMap::new();
        let mut stream_ids: HashMap<&str, Uuid> = HashMap::new();
        for round in 0..12i64 {
            let mut job = Vec::new();
            for k in 0..(round % 4 + 1) {
                let seed = if (round + k) % 3 == 0 { "d" } else { "c" };
                let nonce = round * 10 + k;
                let m = bet(&format!("{seed}{nonce}"), nonce, seed);
                job.push(if nonce % 2 == 0 { hard(m) } else { m });
            }
            let seeds: Vec<&str> = job
                .iter()
                .map(|m| match m {
                    Message::Bet(b) if b.client_seed == "d" => "d",
                    _ => "c",
                })
                .collect();
            let hard_flags: Vec<bool> =
                job.iter().map(|m| matches!(m, Message::Bet(b) if b.difficulty == Difficulty::Hard)).collect();
            let outcomes = store.ingest(job).await.unwrap();
            for ((outcome, seed), hard) in outcomes.iter().zip(seeds).zip(hard_flags) {
                expected.entry(seed).or_default().push((outcome.bet_id.unwrap(), hard));
                stream_ids.insert(seed, outcome.stream_id);
            }
        }
        let f = store
            .ingest(vec![Message::Heartbeat(Heartbeat {
                nonce: 1,
                round_result: 1.5,
                client_seed: "f".into(),
                server_seed_hashed: "h".into(),
            })])
            .await
            .unwrap()[0]
            .stream_id;
        let key_of = |id: Uuid| {
            let store = &store;
            async move { store.stream_key(id).await.unwrap().unwrap() }
        };
        for (seed, id) in [("c", stream_ids["c"]), ("d", stream_ids["d"])] {
            let key = key_of(id).await;
            let all: Vec<i64> = expected[seed].iter().map(|&(id, _)| id).collect();
            let hard: Vec<i64> = expected[seed].iter().filter(|&&(_, h)| h).map(|&(id, _)| id).collect();
            let page = |offset: i64, difficulty: Option<&str>| BetQuery {
                limit: 5,
                offset,
                min_multiplier: None,
                difficulty: difficulty.map(str::to_string),
                order: BetOrder::IdDesc,
            };
            for (difficulty, ids) in [(None, &all), (Some("hard"), &hard)] {
                let mut newest_first = ids.clone();
                newest_first.reverse();
                let mut seen = Vec::new();
                for offset in (0..newest_first.len() as i64 + 5).step_by(5) {
                    let got = store.bets(key, page(offset, difficulty)).await.unwrap();
                    assert_eq!(got.total, ids.len() as i64, "{seed} {difficulty:?}");
                    assert!(got.bets.iter().all(|b| b.stream_id == id));
                    seen.extend(got.bets.iter().map(|b| b.id));
                }
                assert_eq!(seen, newest_first, "{seed} {difficulty:?}: id_desc pages");
            }
            // Tails from before the stream, from inside its range, and past its end.
            for since in [0, all[0], all[all.len() / 2], *all.last().unwrap()] {
                let tail = store.bets_since(Some(key.pk), since, 4).await.unwrap();
                let after: Vec<i64> = all.iter().copied().filter(|&id| id > since).collect();
                let got: Vec<i64> = tail.bets.iter().map(|b| b.id).collect();
                assert_eq!(got, after.iter().copied().take(4).collect::<Vec<_>>(), "{seed} tail since {since}");
                assert_eq!(tail.has_more, after.len() > 4);
                assert_eq!(tail.last_id, got.last().copied().unwrap_or(since));
            }
        }
        let empty = key_of(f).await;
        let page = BetQuery { limit: 5, offset: 0, min_multiplier: None, difficulty: None, order: BetOrder::IdDesc };
        assert!(store.bets(empty, page).await.unwrap().bets.is_empty());
        let tail = store.bets_since(Some(empty.pk), 0, 4).await.unwrap();
        assert!(tail.bets.is_empty() && !tail.has_more && tail.last_id == 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Upgrading a database made before the bet-range columns and the folded difficulty counts
    /// fills both from the bets it holds.
    #[test]
    fn upgrades_fill_bet_ranges_and_the_multiplier_rows_last_bets() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_version(&mut conn, 4).unwrap();
        conn.execute_batch(
            "INSERT INTO streams (pk, id, server_seed_hashed, client_seed, created_at, last_seen_at)
                 VALUES (1, 'a', 'h', 'c', 0, 0), (2, 'b', 'h', 'd', 0, 0), (3, 'e', 'h', 'e', 0, 0);
             INSERT INTO bets (id, stream_pk, antebot_bet_id, received_at, nonce, amount, payout,
                               payout_multiplier, difficulty, round_result)
                 VALUES (1, 1, 'x', 0, 1, 1, 0, 0, 'easy', 1), (2, 2, 'y', 0, 1, 1, 0, 0, 'easy', 1),
                        (3, 1, 'z', 0, 2, 1, 0, 0, 'easy', 1), (5, 1, 'v', 0, 3, 1, 0, 0, 'hard', 2),
                        (7, 1, 'w', 0, 4, 1, 0, 0, 'easy', 1);
             INSERT INTO stream_multipliers (stream_pk, difficulty, mult_cents, bets)
                 VALUES (1, 'easy', 100, 3), (1, 'hard', 200, 1), (2, 'easy', 100, 1);
             INSERT INTO stream_difficulties (stream_pk, difficulty, bets, last_bet)
                 VALUES (1, 'easy', 3, 7), (1, 'hard', 1, 5), (2, 'easy', 1, 2);",
        )
        .unwrap();
        migrations().to_latest(&mut conn).unwrap();
        let rows: Vec<(i64, String, i64, i64)> = conn
            .prepare(
                "SELECT stream_pk, difficulty, bets, last_bet FROM stream_multipliers ORDER BY stream_pk, difficulty",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let row = |pk, d: &str, bets, last| (pk, d.to_string(), bets, last);
        assert_eq!(rows, vec![row(1, "easy", 3, 7), row(1, "hard", 1, 5), row(2, "easy", 1, 2)]);
        assert_eq!(reads::difficulty_of(&conn, 1).unwrap().as_deref(), Some("easy"));
        let left: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master WHERE name = 'stream_difficulties'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
        let ranges: Vec<(i64, Option<i64>, Option<i64>)> = conn
            .prepare("SELECT pk, first_bet_id, last_bet_id FROM streams ORDER BY pk")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(ranges, vec![(1, Some(1), Some(7)), (2, Some(2), Some(2)), (3, None, None)]);
    }

    /// Migration 0008 computes `mult_cents` without `round()`: every stored bet keeps its value,
    /// and the rebuilt index agrees with the table.
    #[test]
    fn upgrades_keep_every_bets_multiplier_in_cents() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_version(&mut conn, 7).unwrap();
        conn.execute("INSERT INTO streams (pk, id, server_seed_hashed, client_seed, created_at, last_seen_at) VALUES (1, 'a', 'h', 'c', 0, 0)", []).unwrap();
        let results = [0.0, 1.0, 1.005, 1.015, 2.675, 1066.73, 1066.735, 3_203_384.8, 0.004_999, 4.5e13];
        for (i, result) in results.iter().enumerate() {
            conn.execute(
                "INSERT INTO bets (stream_pk, antebot_bet_id, received_at, nonce, amount, payout, payout_multiplier,
                                   difficulty, round_result) VALUES (1, ?1, 0, ?2, 1, 0, 0, 'easy', ?3)",
                params![format!("b{i}"), i as i64, result],
            )
            .unwrap();
        }
        let cents = |conn: &Connection| -> Vec<i64> {
            conn.prepare("SELECT mult_cents FROM bets ORDER BY id")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let before = cents(&conn);
        migrations().to_latest(&mut conn).unwrap();
        assert_eq!(cents(&conn), before);
        let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok");
        let indexed: i64 = conn
            .query_row(
                "SELECT count(*) FROM bets INDEXED BY bets_by_multiplier WHERE stream_pk = 1 AND mult_cents = 320338480",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexed, 1);
    }

    /// The multi-row INSERT of bets must not need a statement journal: it has no function call
    /// (one would bring the journal back) and no constraint that aborts (`OR FAIL`), as read from
    /// its program (`EXPLAIN`; `OE_Abort` is 2).
    #[test]
    fn bet_inserts_run_without_a_statement_journal() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut conn).unwrap();
        for text in INSERT_BETS.iter() {
            // Explained with its parameters unbound (`raw_query` does not insist on them).
            let mut explain = conn.prepare(&format!("EXPLAIN {text}")).unwrap();
            let mut rows = explain.raw_query();
            let mut program: Vec<(String, i64)> = Vec::new();
            while let Some(row) = rows.next().unwrap() {
                program.push((row.get("opcode").unwrap(), row.get("p2").unwrap()));
            }
            assert!(program.iter().any(|(op, _)| op == "Insert"), "not an insert program: {program:?}");
            for (op, p2) in &program {
                assert!(op != "Function" && op != "PureFunc", "a function call in the bets INSERT: {op}");
                if op == "Halt" || op == "HaltIfNull" {
                    assert_ne!(*p2, 2, "a constraint of the bets INSERT aborts: {op}");
                }
            }
        }
    }

    /// Before migration 0007 every bet also had a row in `rounds`, dropped only by the retention.
    /// The upgrade keeps those rows and sets the floor where the retention had cut a stream's
    /// bets; the merged rounds, and the retention afterwards, carry on from there.
    #[tokio::test]
    async fn upgrades_keep_the_rounds_of_older_bets_and_where_the_retention_cut_them() {
        let dir = std::env::temp_dir().join(format!("pump-upgrade-{}", crate::security::random_hex(6)));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("old.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            migrations().to_version(&mut conn, 6).unwrap();
            // Stream 1 was cut by a retention of 3: bets 1..=5, rows of 4, 5 and a heartbeat at 6.
            // Stream 2 was not: bets 1 and 2 with their rows, and a heartbeat at 3.
            conn.execute_batch(
                "INSERT INTO streams (pk, id, server_seed_hashed, client_seed, created_at, last_seen_at,
                                      rounds_count, last_observed_nonce)
                     VALUES (1, '6f1c0f6e-56b1-4c34-9d3c-7d0c4c1b1a01', 'h', 'c1', 0, 0, 3, 6),
                            (2, '6f1c0f6e-56b1-4c34-9d3c-7d0c4c1b1a02', 'h', 'c2', 0, 0, 3, 3);
                 INSERT INTO bets (id, stream_pk, antebot_bet_id, received_at, nonce, amount, payout,
                                   payout_multiplier, difficulty, round_result)
                     VALUES (1, 1, 'a1', 0, 1, 1, 0, 0, 'easy', 1), (2, 1, 'a2', 0, 2, 1, 0, 0, 'easy', 2),
                            (3, 1, 'a3', 0, 3, 1, 0, 0, 'easy', 3), (4, 1, 'a4', 0, 4, 1, 0, 0, 'easy', 4),
                            (5, 1, 'a5', 0, 5, 1, 0, 0, 'easy', 5), (6, 2, 'b1', 0, 1, 1, 0, 0, 'easy', 1),
                            (7, 2, 'b2', 0, 2, 1, 0, 0, 'easy', 2);
                 INSERT INTO rounds (stream_pk, nonce, round_result)
                     VALUES (1, 4, 4), (1, 5, 5), (1, 6, 1.5), (2, 1, 1), (2, 2, 2), (2, 3, 1.5);",
            )
            .unwrap();
        }
        let options = StoreOptions { rounds_retention: 3, ..options() };
        let store = SqliteStore::open(&path, options, Hub::new()).unwrap();
        assert_eq!(count(&store, "SELECT rounds_floor FROM streams WHERE pk = 1").await, 4);
        assert_eq!(count(&store, "SELECT rounds_floor IS NULL FROM streams WHERE pk = 2").await, 1);
        let nonces = |rounds: Vec<Round>| rounds.iter().map(|r| r.nonce).collect::<Vec<_>>();
        assert_eq!(nonces(store.rounds(1, None, 10).await.unwrap()), [4, 5, 6]);
        assert_eq!(nonces(store.rounds(2, None, 10).await.unwrap()), [1, 2, 3]);

        // New bets are rounds without rows; each stream's oldest round goes.
        store.ingest(vec![bet("a7", 7, "c1"), bet("b4", 4, "c2")]).await.unwrap();
        assert_eq!(nonces(store.rounds(1, None, 10).await.unwrap()), [5, 6, 7]);
        assert_eq!(nonces(store.rounds(2, None, 10).await.unwrap()), [2, 3, 4]);
        assert_eq!(count(&store, "SELECT count(*) FROM rounds WHERE stream_pk = 1").await, 2);
        assert_eq!(count(&store, "SELECT rounds_floor FROM streams WHERE pk = 2").await, 2);
        assert_eq!(count(&store, "SELECT sum(rounds_count) FROM streams").await, 6);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The rounds a stream shows, as a model: the first message to bring a nonce records its
    /// round; after each commit the oldest rounds beyond the retention go, and a stored bet below
    /// the lowest round kept is no round. Random heartbeats, new bets, repeated bet ids and second
    /// bets at a nonce, in random jobs and under random retentions, leave the store showing the
    /// model: the rounds view, its count, the cadence hits and every answer.
    #[tokio::test]
    async fn rounds_follow_the_model_through_random_messages_and_retentions() {
        use std::collections::{BTreeMap, HashSet};
        for seed in 1..=24u64 {
            let mut next = xorshift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let retention = 1 + next(10) as i64;
            let options = StoreOptions { rounds_retention: retention as u64, ..options() };
            let (dir, store) = scratch_store_on("model", options, Hub::new());
            let (mut shown, mut floor) = (BTreeMap::<i64, f64>::new(), None::<i64>);
            let (mut ids, mut fresh_id) = (HashSet::<String>::new(), 0);
            for _job in 0..30 {
                let mut messages = Vec::new();
                let mut expected = Vec::new();
                for _ in 0..1 + next(6) {
                    let nonce = next(40) as i64;
                    let round_result = 1.0 + next(100_000) as f64 / 100.0;
                    let kind = next(10);
                    let message = if kind < 4 {
                        Message::Heartbeat(Heartbeat {
                            nonce,
                            round_result,
                            client_seed: "c".into(),
                            server_seed_hashed: "h".into(),
                        })
                    } else {
                        let id = if kind < 8 || ids.is_empty() {
                            fresh_id += 1;
                            format!("b{fresh_id}")
                        } else {
                            format!("b{}", 1 + next(fresh_id))
                        };
                        let Message::Bet(mut b) = bet(&id, nonce, "c") else { unreachable!() };
                        b.round_result = round_result;
                        Message::Bet(b)
                    };
                    let stored = match &message {
                        Message::Bet(b) => ids.insert(b.antebot_bet_id.clone()),
                        Message::Heartbeat(_) => false,
                    };
                    // A stored bet below the floor is no round; anything else new is one.
                    let below_floor = floor.is_some_and(|f| nonce < f);
                    let new = !(shown.contains_key(&nonce) || (stored && below_floor));
                    if new {
                        shown.insert(nonce, round_result);
                    }
                    expected.push(if matches!(message, Message::Bet(_)) { stored } else { new });
                    messages.push(message);
                }
                let outcomes = store.ingest(messages).await.unwrap();
                let accepted: Vec<bool> = outcomes.iter().map(|o| o.accepted).collect();
                assert_eq!(accepted, expected, "seed {seed}");
                if shown.len() as i64 > retention {
                    while shown.len() as i64 > retention {
                        shown.pop_first();
                    }
                    floor = shown.keys().next().copied();
                }
                let model: Vec<(i64, f64)> = shown.iter().map(|(&n, &r)| (n, r)).collect();
                let view: Vec<(i64, f64)> =
                    store.rounds(1, None, 1000).await.unwrap().iter().map(|r| (r.nonce, r.round_result)).collect();
                assert_eq!(view, model, "seed {seed}, retention {retention}");
                let since = next(40) as i64 - 1;
                let limit = 1 + next(4) as usize;
                let after: Vec<(i64, f64)> = model.iter().filter(|(n, _)| *n > since).take(limit).copied().collect();
                let view: Vec<(i64, f64)> = store
                    .rounds(1, Some(since), limit as i64)
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| (r.nonce, r.round_result))
                    .collect();
                assert_eq!(view, after, "seed {seed}, since {since}, limit {limit}");
                assert_eq!(count(&store, "SELECT rounds_count FROM streams").await, model.len() as i64);
                let min = 1.0 + next(100_000) as f64 / 100.0;
                let key = StreamKey { pk: 1, id: outcomes[0].stream_id, last_observed_nonce: None };
                let scan = store.round_scan(key, min, 3).await.unwrap().scan;
                let hits: Vec<i64> = model.iter().filter(|(_, r)| cents(*r) >= cents(min)).map(|(n, _)| *n).collect();
                assert_eq!(scan.hits.iter().map(|r| r.nonce).collect::<Vec<_>>(), hits, "seed {seed}, min {min}");
                let recent: Vec<i64> = model.iter().rev().take(3).rev().map(|(n, _)| *n).collect();
                assert_eq!(scan.recent.iter().map(|r| r.nonce).collect::<Vec<_>>(), recent);
                assert_eq!(scan.first_nonce, model.first().map(|(n, _)| *n));
            }
            drop(store);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    /// Live bet events carry `distance_prev` from the writer's cache of each multiplier's last
    /// nonce: it must give what the query over the whole stream gives, through bets out of nonce
    /// order, repeated ids, several streams, and listeners leaving and coming back (bets stored
    /// meanwhile are unseen by the cache).
    #[tokio::test]
    async fn live_distances_match_the_whole_stream_through_random_jobs() {
        let hub = Hub::new();
        let (dir, store) = scratch_store_on("distances", options(), hub.clone());
        let mut next = xorshift(0x2545_F491_4F6C_DD1D);
        // (client seed, cents, nonce) of every stored bet, and the ids used.
        let mut stored: Vec<(String, i64, i64)> = Vec::new();
        let mut ids = std::collections::HashSet::new();
        let mut listener = Some(hub.subscribe());
        let mut checked = 0;
        for job in 0..120 {
            if job % 40 == 20 {
                listener = None;
            } else if listener.is_none() && job % 40 == 30 {
                listener = Some(hub.subscribe());
            }
            let mut messages = Vec::new();
            for _ in 0..1 + next(12) {
                let client = format!("c{}", next(2));
                let id = format!("b{}", next(400));
                // Mostly rising nonces, as from a bot, some late ones.
                let nonce = if next(4) == 0 { 1 + next(300) as i64 } else { 300 + job * 20 + next(20) as i64 };
                let Message::Bet(mut b) = bet(&id, nonce, &client) else { unreachable!() };
                b.round_result = [1.0, 2.0, 3.5][next(3) as usize];
                if ids.insert((client.clone(), id)) {
                    stored.push((client, cents(b.round_result), nonce));
                }
                messages.push(Message::Bet(b));
            }
            store.ingest(messages).await.unwrap();
            let Some(rx) = listener.as_mut() else { continue };
            while let Ok(event) = rx.try_recv() {
                let LiveEvent::Bet(record) = &*event else { continue };
                let client: String = store
                    .read({
                        let id = record.stream_id.to_string();
                        move |c| Ok(c.query_row("SELECT client_seed FROM streams WHERE id = ?1", [id], |r| r.get(0))?)
                    })
                    .await
                    .unwrap();
                let key = cents(record.round_result);
                let previous =
                    stored.iter().filter(|(c, k, n)| *c == client && *k == key && *n < record.nonce).map(|s| s.2).max();
                assert_eq!(
                    record.distance_prev,
                    previous.map(|p| record.nonce - p),
                    "job {job}, bet {}",
                    record.antebot_bet_id
                );
                checked += 1;
            }
        }
        assert!(checked > 300, "{checked} events checked");
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A full disk is a 503 ("unavailable"), never a 500, and what was acknowledged before stays.
    #[tokio::test]
    async fn a_full_database_refuses_writes_as_unavailable_and_keeps_what_it_had() {
        let (dir, store) = scratch_store("full", Some(400));
        let mut acknowledged = 0i64;
        let mut failure = None;
        for batch in 0..1000 {
            match store.ingest(heartbeats(batch * 50 + 1, 50)).await {
                Ok(outcomes) => acknowledged += outcomes.iter().filter(|o| o.accepted).count() as i64,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        assert!(matches!(failure, Some(StoreError::Unavailable(_))), "{failure:?}");
        assert!(acknowledged > 0);
        let stored: i64 =
            store.read(|c| Ok(c.query_row("SELECT count(*) FROM rounds", [], |r| r.get(0))?)).await.unwrap();
        assert_eq!(stored, acknowledged, "every acknowledged round is still there");
        // The writer keeps working for what still fits (a read-only check here: ping).
        store.ping().await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn full_sync() -> StoreOptions {
        StoreOptions { sqlite_sync: SqliteSync::Full, ..options() }
    }

    /// With `SQLITE_SYNC=full`, a job of `DEFER_AT` messages or more commits without waiting for
    /// the sync and is answered by the syncer; smaller groups sync in COMMIT. Both end up in the
    /// file.
    #[tokio::test]
    async fn large_groups_are_answered_after_the_syncer_syncs() {
        let (dir, store) = scratch_store_on("deferred", full_sync(), Hub::new());
        let large: Vec<Message> = (1..=DEFER_AT as i64).map(|n| bet(&format!("b{n}"), n, "c")).collect();
        let outcomes = store.ingest(large).await.unwrap();
        assert!(outcomes.iter().all(|o| o.accepted));
        assert_eq!(store.commit_stats().read().deferred, 1);
        let small: Vec<Message> = (1..DEFER_AT as i64).map(|n| bet(&format!("s{n}"), n, "d")).collect();
        store.ingest(small).await.unwrap();
        let counts = store.commit_stats().read();
        assert_eq!((counts.deferred, counts.commits >= 2), (1, true), "{counts:?}");
        assert_eq!(count(&store, "SELECT count(*) FROM bets").await, 2 * DEFER_AT as i64 - 1);
        let path = dir.join("deferred.db");
        drop(store);
        let again = SqliteStore::open(&path, full_sync(), Hub::new()).unwrap();
        assert_eq!(count(&again, "SELECT count(*) FROM bets").await, 2 * DEFER_AT as i64 - 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// By default (`SQLITE_SYNC=background`) every group, however small, commits without waiting
    /// for the sync and is answered at once; the syncer then syncs the log. What was answered is
    /// in the file, for a plain connection and after reopening.
    #[tokio::test]
    async fn by_default_groups_are_answered_before_the_syncer_syncs_them() {
        let (dir, store) = scratch_store("background", None);
        for n in 1..=3 {
            let outcome = store.ingest(vec![bet(&format!("b{n}"), n, "c")]).await.unwrap();
            assert!(outcome[0].accepted);
        }
        let counts = store.commit_stats().read();
        assert_eq!(counts.deferred, counts.commits, "{counts:?}");
        assert!(counts.commits >= 3, "{counts:?}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while store.commit_stats().read().syncs == 0 {
            assert!(Instant::now() < deadline, "the syncer never synced");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let path = dir.join("background.db");
        let plain = Connection::open(&path).unwrap();
        assert_eq!(plain.query_row("SELECT count(*) FROM bets", [], |r| r.get::<_, i64>(0)).unwrap(), 3);
        drop(plain);
        drop(store);
        let again = SqliteStore::open(&path, full_sync(), Hub::new()).unwrap();
        assert_eq!(count(&again, "SELECT count(*) FROM bets").await, 3);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
