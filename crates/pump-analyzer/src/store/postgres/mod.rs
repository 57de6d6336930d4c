//! PostgreSQL backend, for deployments of several instances (SPEC §6).
//!
//! Ingest runs through one writer task per instance with group commit, as on SQLite: requests
//! that arrive while a transaction runs are committed together in the next one. Every write
//! transaction that creates bets or changes what ingest depends on (stream deletion, seed reveal)
//! first takes one transaction-scoped advisory lock, so across all instances these transactions
//! commit one at a time: bet ids then commit in increasing order, which keeps SSE resume by id
//! gap-free, and a transaction sees every stream and seed committed before it.
//!
//! Live events reach every instance through `NOTIFY` sent inside the writing transaction:
//! PostgreSQL delivers notifications only on COMMIT, in commit order, and drops them on ROLLBACK,
//! so an event is seen exactly when its data is. Each instance LISTENs on one connection and
//! republishes what arrives to its in-process hub. (Redis pub/sub would need a second system to
//! agree with the database about what was committed; NOTIFY cannot disagree.)

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Transaction};
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::NoTls;

use super::delta::{StreamDelta, now_micros};
use super::model::{BetRecord, StreamSummary};
use super::{IngestOutcome, StoreError, StoreOptions};
use crate::ingest::message::Message;
use crate::store::hub::{Hub, LiveEvent};

mod ingest;
mod reads;
mod runs;
mod sessions;
mod simulations;
mod tls;
mod writes;

/// The advisory lock every ordering-sensitive write transaction holds (an arbitrary constant).
const WRITE_LOCK: i64 = 0x7075_6d70_0001;
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

const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../../../migrations/postgres/0001_initial.sql")),
    (2, include_str!("../../../migrations/postgres/0002_demo_streams.sql")),
    (3, include_str!("../../../migrations/postgres/0003_simulations.sql")),
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
                return StoreError::Unavailable(format!("PostgreSQL: {text}"));
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

fn timed_out() -> StoreError {
    StoreError::Unavailable("PostgreSQL did not answer in time".into())
}

struct IngestJob {
    messages: Vec<Message>,
    reply: oneshot::Sender<Result<Vec<IngestOutcome>, StoreError>>,
}

pub struct PostgresStore {
    pool: Pool,
    jobs: mpsc::Sender<IngestJob>,
    /// Dropped with the store: stops the LISTEN task.
    _alive: watch::Sender<()>,
}

impl PostgresStore {
    /// Connects, applies the migrations, and starts the ingest writer and the LISTEN task.
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

        let (jobs, rx) = mpsc::channel(8192);
        tokio::spawn(ingest::run_writer(pool.clone(), options, rx));
        let (alive, watch_rx) = watch::channel(());
        tokio::spawn(listen(config, tls, hub, watch_rx));
        Ok(Self { pool, jobs, _alive: alive })
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.pool.get().await?)
    }

    pub async fn ingest(&self, messages: Vec<Message>) -> Result<Vec<IngestOutcome>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.jobs
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

/// Starts a write transaction holding the write lock.
pub(crate) async fn begin(client: &mut deadpool_postgres::Object) -> Result<Transaction<'_>, StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK]).await?;
    Ok(tx)
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

/// Drives a LISTEN connection and hands each notification's payload over the channel.
fn pump_notifications<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
) -> (mpsc::UnboundedReceiver<String>, tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let pump = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_string()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    (rx, pump)
}

/// Receives this database's live events and republishes them on the local hub; reconnects by
/// itself when the connection is lost. Ends when the store is dropped.
async fn listen(config: tokio_postgres::Config, tls: tls::Tls, hub: Hub, mut alive: watch::Receiver<()>) {
    // Warn once per outage, not once per reconnection attempt.
    let warned = std::sync::atomic::AtomicBool::new(false);
    loop {
        let session = async {
            let (client, mut rx, pump) = match &tls {
                tls::Tls::Off => {
                    let (client, connection) = config.connect(NoTls).await?;
                    let (rx, pump) = pump_notifications(connection);
                    (client, rx, pump)
                }
                tls::Tls::On(connector) => {
                    let (client, connection) = config.connect(connector.clone()).await?;
                    let (rx, pump) = pump_notifications(connection);
                    (client, rx, pump)
                }
            };
            client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
            if warned.swap(false, std::sync::atomic::Ordering::Relaxed) {
                tracing::info!("live events from PostgreSQL resumed");
            }
            // Whatever was committed while nobody listened is in the database: SSE clients
            // re-read from their last event id.
            hub.publish(LiveEvent::Resync);
            while let Some(payload) = rx.recv().await {
                match serde_json::from_str::<LiveEvent>(&payload) {
                    Ok(event) => hub.publish(event),
                    Err(e) => tracing::warn!(error = %e, "ignoring an unreadable live event"),
                }
            }
            drop(client);
            match pump.await {
                Ok(Err(e)) => Err(e),
                _ => Ok::<(), tokio_postgres::Error>(()),
            }
        };
        tokio::select! {
            result = session => {
                if let Err(e) = result && !warned.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    tracing::warn!(error = %e, "live events from PostgreSQL interrupted; reconnecting");
                }
            }
            _ = alive.changed() => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = alive.changed() => return,
        }
    }
}
