//! PostgreSQL backend, for deployments of several instances (SPEC §6).
//!
//! Ingest runs through writer tasks with group commit, as on SQLite: requests that arrive while
//! a transaction runs are committed together in the next one. Each instance has two writers, one
//! per lane (see [`lane_of`]). No lock spans instances or streams: an ingest transaction locks
//! the rows of the streams it writes to, in key order, and the database's unique constraints keep
//! every bet and round once (`ingest.rs`).
//! Stream deletion and seed reveal lock the same rows, so they wait for the ingest transactions
//! of those streams, and those wait for them.
//!
//! Bet ids therefore commit out of order across transactions. SSE resumes by bet id, so bets are
//! shown only up to the bet-id horizon, below which every id is final (`horizon.rs`); the
//! listener publishes them in id order from there (`listen.rs`).
//!
//! Live events reach every instance through `NOTIFY` and one LISTEN connection per instance.
//! Ingest sends its notes right after its COMMIT; deletions and verification results send
//! theirs inside the transaction.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Transaction};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::NoTls;

use super::delta::{StreamDelta, now_micros};
use super::model::StreamSummary;
use super::{IngestOutcome, StoreError, StoreOptions};
use crate::ingest::message::Message;
use crate::store::hub::{Hub, LiveEvent};

mod horizon;
mod ingest;
mod listen;
mod reads;
mod runs;
mod sessions;
mod simulations;
mod tls;
mod writes;

/// Held while migrations run, so instances starting together migrate once.
const MIGRATION_LOCK: i64 = 0x7075_6d70_0002;
/// The NOTIFY channel of live events.
const CHANNEL: &str = "pump_events";
/// PostgreSQL refuses NOTIFY payloads of 8000 bytes or more.
const MAX_PAYLOAD: usize = 7_900;
/// Most ingest requests committed together.
const MAX_GROUP: usize = 256;
/// Longest a write transaction may take before its callers get a 503 (a blocked server, a
/// half-open connection): the transaction is then rolled back by the server or never commits.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
const POOL_SIZE: usize = 16;
/// Ingest transactions one instance runs at the same time, each for a lane of its own (see
/// [`lane_of`]).
const LANES: usize = 2;
/// Requests of this many messages or more are spread over the lanes; smaller ones share one.
const LANE_MESSAGES: usize = 32;

const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../../../migrations/postgres/0001_initial.sql")),
    (2, include_str!("../../../migrations/postgres/0002_demo_streams.sql")),
    (3, include_str!("../../../migrations/postgres/0003_simulations.sql")),
    (4, include_str!("../../../migrations/postgres/0004_ingest_without_global_order.sql")),
];

/// The error with what its causes add (the server's message, the TLS failure), for the log and
/// start-up errors: `tokio_postgres` shows only "db error" or "error performing TLS handshake".
fn described(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    if let Some(db) = e.as_db_error() {
        text = format!("{text}: {}", db.message());
    } else {
        let mut source = std::error::Error::source(e);
        while let Some(cause) = source {
            text = format!("{text}: {cause}");
            source = cause.source();
        }
    }
    text
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        let text = described(&e);
        if e.is_closed() {
            return StoreError::Unavailable(format!("the PostgreSQL connection closed: {text}"));
        }
        if let Some(code) = e.code() {
            // 08 connection, 53 resources (disk full, too many connections), 57 operator
            // intervention (shutdown), 40 rollback (serialization, deadlock), 25006 read-only.
            let c = code.code();
            if ["08", "53", "57", "40"].iter().any(|class| c.starts_with(class)) || c == "25006" {
                return StoreError::Unavailable(format!("PostgreSQL {c}: {text}"));
            }
            return StoreError::Internal(format!("PostgreSQL: {text}"));
        }
        let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
        if io || text.contains("timed out") {
            StoreError::Unavailable(format!("PostgreSQL: {text}"))
        } else {
            StoreError::Internal(format!("PostgreSQL: {text}"))
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => StoreError::Unavailable(format!("cannot reach PostgreSQL: {other}")),
        }
    }
}

/// The lane, and so the writer, of an ingest request. A large request goes to the lane of its
/// first seed pair: the two writers then fill large transactions with different streams, run at
/// once on two database connections and rarely wait for each other's row locks. Small requests
/// all go to the first lane and make one group there: spread over two writers, single bets made
/// groups half as large, which cost more per bet, and two instances lost throughput (figures in
/// docs/performance.md). Which writer runs a request changes nothing it stores: the row locks
/// order the transactions of one stream.
fn lane_of(messages: &[Message]) -> usize {
    use std::hash::{Hash, Hasher};
    match messages.first() {
        Some(first) if messages.len() >= LANE_MESSAGES => {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            first.seed_pair().hash(&mut hasher);
            (hasher.finish() % LANES as u64) as usize
        }
        _ => 0,
    }
}

/// A deadlock or serialization failure (class 40): the transaction can simply be run again.
fn is_transient(e: &StoreError) -> bool {
    matches!(e, StoreError::Unavailable(m) if m.starts_with("PostgreSQL 40"))
}

fn timed_out() -> StoreError {
    StoreError::Unavailable("PostgreSQL did not answer in time".into())
}

struct IngestJob {
    messages: Vec<Message>,
    reply: oneshot::Sender<Result<Vec<IngestOutcome>, StoreError>>,
}

pub struct PostgresStore {
    pool: Pool,
    /// One queue per lane, each with its writer.
    jobs: Vec<mpsc::Sender<IngestJob>>,
    /// Dropped with the store: stops the LISTEN task.
    _alive: watch::Sender<()>,
}

impl PostgresStore {
    /// Connects, applies the migrations, and starts the ingest writers and the LISTEN task.
    pub async fn open(url: &str, options: StoreOptions, hub: Hub) -> Result<Self, StoreError> {
        let (url, tls) = tls::from_url(url)?;
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Unavailable(format!("DATABASE_URL is not a valid PostgreSQL URL: {e}")))?;
        config.connect_timeout(Duration::from_secs(5));
        config.application_name("pump-analyzer");
        let recycling = ManagerConfig { recycling_method: RecyclingMethod::Fast };
        let manager = match &tls {
            tls::Tls::Off => Manager::from_config(config.clone(), NoTls, recycling),
            tls::Tls::On(connector) => Manager::from_config(config.clone(), connector.clone(), recycling),
        };
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(5)))
            .create_timeout(Some(Duration::from_secs(5)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| StoreError::Internal(format!("cannot build the PostgreSQL pool: {e}")))?;
        migrate(&pool).await?;

        let jobs = (0..LANES)
            .map(|_| {
                let (jobs, rx) = mpsc::channel(8192);
                tokio::spawn(ingest::run_writer(pool.clone(), options, rx));
                jobs
            })
            .collect();
        let (alive, watch_rx) = watch::channel(());
        tokio::spawn(listen::listen(config, tls, hub, watch_rx));
        Ok(Self { pool, jobs, _alive: alive })
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.pool.get().await?)
    }

    pub async fn ingest(&self, messages: Vec<Message>) -> Result<Vec<IngestOutcome>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.jobs[lane_of(&messages)]
            .send(IngestJob { messages, reply })
            .await
            .map_err(|_| StoreError::Unavailable("the database writer has stopped".into()))?;
        rx.await.map_err(|_| StoreError::Unavailable("the database writer has stopped".into()))?
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await?;
        Ok(())
    }
}

/// Applies the migrations not yet recorded, each in its own transaction, under an advisory lock.
async fn migrate(pool: &Pool) -> Result<(), StoreError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .await?;
    for (version, sql) in MIGRATIONS {
        let done = tx.query_opt("SELECT 1 FROM schema_migrations WHERE version = $1", &[version]).await?.is_some();
        if done {
            continue;
        }
        tx.batch_execute(sql).await.map_err(|e| StoreError::Internal(format!("migration {version} failed: {e}")))?;
        tx.execute("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)", &[version, &now_micros()])
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Queues `events` for delivery to every instance and commits.
pub(crate) async fn commit(tx: Transaction<'_>, events: &[LiveEvent]) -> Result<(), StoreError> {
    if !events.is_empty() {
        tx.execute(
            "SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS t(p, n) ORDER BY n",
            &[&CHANNEL, &notify_payloads(events)],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The NOTIFY payloads of `events`, in order.
fn notify_payloads(events: &[LiveEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| match serde_json::to_string(event) {
            Ok(json) if json.len() <= MAX_PAYLOAD => Some(json),
            Ok(json) => {
                tracing::warn!(
                    bytes = json.len(),
                    "live event too large for NOTIFY; SSE clients read it from the database on resume"
                );
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot encode a live event");
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::message::Heartbeat;

    fn heartbeats(server: &str, count: usize) -> Vec<Message> {
        (1..=count as i64)
            .map(|nonce| {
                Message::Heartbeat(Heartbeat {
                    nonce,
                    round_result: 1.63,
                    client_seed: "client".into(),
                    server_seed_hashed: server.into(),
                })
            })
            .collect()
    }

    #[test]
    fn large_requests_spread_over_the_lanes_by_seed_pair_and_small_ones_share_the_first() {
        let lanes: std::collections::HashSet<usize> =
            (0..16).map(|s| lane_of(&heartbeats(&format!("hash-{s}"), LANE_MESSAGES))).collect();
        assert_eq!(lanes.len(), LANES, "16 seed pairs reach every lane");
        for s in 0..16 {
            let server = format!("hash-{s}");
            assert_eq!(lane_of(&heartbeats(&server, LANE_MESSAGES - 1)), 0);
            assert_eq!(lane_of(&heartbeats(&server, 1000)), lane_of(&heartbeats(&server, LANE_MESSAGES)));
        }
        assert_eq!(lane_of(&[]), 0);
    }
}
