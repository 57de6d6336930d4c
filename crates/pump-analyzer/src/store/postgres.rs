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

use std::collections::HashMap;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Transaction};
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::NoTls;
use uuid::Uuid;

use pump_engine::RoundDeriver;

use super::delta::{StreamDelta, now_micros};
use super::model::{BetRecord, StreamSummary, iso};
use super::{IngestOutcome, StoreError, StoreOptions};
use crate::live::hub::{Hub, LiveEvent};
use crate::live::message::Message;
use pump_engine::tables::cents;

mod reads;
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

const MIGRATIONS: &[(i32, &str)] = &[(1, include_str!("../../migrations/postgres/0001_initial.sql"))];

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        if e.is_closed() {
            return StoreError::Unavailable(format!("the PostgreSQL connection closed: {e}"));
        }
        if let Some(code) = e.code() {
            // 08 connection, 53 resources (disk full, too many connections), 57 operator
            // intervention (shutdown), 40 rollback (serialization, deadlock), 25006 read-only.
            let c = code.code();
            if ["08", "53", "57", "40"].iter().any(|class| c.starts_with(class)) || c == "25006" {
                return StoreError::Unavailable(format!("PostgreSQL: {e}"));
            }
            return StoreError::Internal(format!("PostgreSQL: {e}"));
        }
        let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
        if io || e.to_string().contains("timed out") {
            StoreError::Unavailable(format!("PostgreSQL: {e}"))
        } else {
            StoreError::Internal(format!("PostgreSQL: {e}"))
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
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Unavailable(format!("DATABASE_URL is not a valid PostgreSQL URL: {e}")))?;
        config.connect_timeout(Duration::from_secs(5));
        config.application_name("pump-analyzer");
        let manager =
            Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
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
        tokio::spawn(run_writer(pool.clone(), options, rx));
        let (alive, watch_rx) = watch::channel(());
        tokio::spawn(listen(config, hub, watch_rx));
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
        let payloads: Vec<String> = events
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
            .collect();
        tx.execute(
            "SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS t(p, n) ORDER BY n",
            &[&CHANNEL, &payloads],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Receives this database's live events and republishes them on the local hub; reconnects by
/// itself when the connection is lost. Ends when the store is dropped.
async fn listen(config: tokio_postgres::Config, hub: Hub, mut alive: watch::Receiver<()>) {
    let mut warned = false;
    loop {
        let session = async {
            let (client, mut connection) = config.connect(NoTls).await?;
            let (tx, mut rx) = mpsc::unbounded_channel();
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
            client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
            tracing::info!("listening for live events of other instances");
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
                if let Err(e) = result && !warned {
                    tracing::warn!(error = %e, "live events from PostgreSQL interrupted; reconnecting");
                    warned = true;
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

async fn run_writer(pool: Pool, options: StoreOptions, mut rx: mpsc::Receiver<IngestJob>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = Vec::with_capacity(16);
        jobs.push(first);
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let grouped = ingest_group(&pool, options, &jobs).await;
        match grouped {
            Ok(results) => {
                for (job, result) in jobs.into_iter().zip(results) {
                    let _ = job.reply.send(Ok(result));
                }
            }
            Err(_) if jobs.len() > 1 => {
                // Replay one by one so that only a failing request fails.
                for job in jobs {
                    let result = ingest_group(&pool, options, std::slice::from_ref(&job)).await;
                    let _ = job.reply.send(result.map(|mut all| all.remove(0)));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "ingest transaction failed");
                for job in jobs {
                    let _ = job.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

async fn ingest_group(
    pool: &Pool,
    options: StoreOptions,
    jobs: &[IngestJob],
) -> Result<Vec<Vec<IngestOutcome>>, StoreError> {
    let work = async {
        let mut client = pool.get().await?;
        let tx = begin(&mut client).await?;
        let mut group = Group { tx: &tx, streams: HashMap::new(), deltas: HashMap::new(), events: Vec::new() };
        let mut results = Vec::with_capacity(jobs.len());
        for job in jobs {
            results.push(group.ingest(&job.messages).await?);
        }
        group.flush_deltas(options).await?;
        let events = std::mem::take(&mut group.events);
        commit(tx, &events).await?;
        Ok(results)
    };
    tokio::time::timeout(WRITE_TIMEOUT, work).await.unwrap_or_else(|_| Err(timed_out()))
}

/// What one ingest transaction knows about a stream. Valid only inside the transaction: it holds
/// the write lock, so no other instance can create, delete or reveal anything meanwhile.
struct StreamState {
    pk: i64,
    id: Uuid,
    deriver: Option<Box<RoundDeriver>>,
}

struct Group<'a, 't> {
    tx: &'a Transaction<'t>,
    streams: HashMap<(String, String), StreamState>,
    deltas: HashMap<i64, StreamDelta>,
    events: Vec<LiveEvent>,
}

impl Group<'_, '_> {
    async fn stream_for(&mut self, server: &str, client: &str, now: i64) -> Result<(i64, Uuid, bool), StoreError> {
        let key = (server.to_string(), client.to_string());
        if let Some(state) = self.streams.get(&key) {
            return Ok((state.pk, state.id, false));
        }
        let existing = self
            .tx
            .query_opt(
                &self
                    .tx
                    .prepare_cached(
                        "SELECT s.pk, s.id, r.server_seed FROM streams s
                         LEFT JOIN revealed_seeds r ON r.server_seed_hashed = lower(s.server_seed_hashed)
                         WHERE s.server_seed_hashed = $1 AND s.client_seed = $2",
                    )
                    .await?,
                &[&server, &client],
            )
            .await?;
        let (pk, id, seed, created) = match existing {
            Some(row) => (row.try_get(0)?, row.try_get(1)?, row.try_get::<_, Option<String>>(2)?, false),
            None => {
                let id = Uuid::new_v4();
                let row = self
                    .tx
                    .query_one(
                        &self
                            .tx
                            .prepare_cached(
                                "INSERT INTO streams (id, server_seed_hashed, client_seed, created_at, last_seen_at)
                                 VALUES ($1, $2, $3, $4, $4) RETURNING pk",
                            )
                            .await?,
                        &[&id, &server, &client, &now],
                    )
                    .await?;
                let seed = self
                    .tx
                    .query_opt(
                        "SELECT server_seed FROM revealed_seeds WHERE server_seed_hashed = lower($1)",
                        &[&server],
                    )
                    .await?
                    .map(|r| r.try_get::<_, String>(0))
                    .transpose()?;
                (row.try_get(0)?, id, seed, true)
            }
        };
        let deriver = seed.map(|seed| Box::new(RoundDeriver::new(&seed, client)));
        if created {
            self.events.push(LiveEvent::Stream(Box::new(StreamSummary {
                id,
                server_seed_hashed: server.to_string(),
                client_seed: client.to_string(),
                created_at: iso(now),
                last_seen_at: iso(now),
                total_bets: 0,
                highest_multiplier: None,
                last_observed_nonce: None,
                notes: None,
                verified: None,
                seed_revealed: deriver.is_some(),
                rounds_count: 0,
            })));
        }
        self.streams.insert(key, StreamState { pk, id, deriver });
        Ok((pk, id, created))
    }

    async fn insert_round(&mut self, pk: i64, stream_id: Uuid, nonce: i64, result: f64) -> Result<bool, StoreError> {
        let statement = self
            .tx
            .prepare_cached(
                "INSERT INTO rounds (stream_pk, nonce, round_result) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .await?;
        let added = self.tx.execute(&statement, &[&pk, &nonce, &result]).await? == 1;
        if added {
            self.events.push(LiveEvent::Round { stream_id, nonce, round_result: result });
        }
        Ok(added)
    }

    async fn ingest(&mut self, messages: &[Message]) -> Result<Vec<IngestOutcome>, StoreError> {
        let now = now_micros();
        let mut outcomes = Vec::with_capacity(messages.len());
        for message in messages {
            let (server, client) = message.seed_pair();
            let (pk, stream_id, new_stream) = self.stream_for(server, client, now).await?;
            let mut delta = self.deltas.remove(&pk).unwrap_or_default();
            delta.seen_at = now;
            delta.max_nonce = delta.max_nonce.max(message.nonce());
            let (accepted, bet_id) = match message {
                Message::Bet(bet) => {
                    let expected = self
                        .streams
                        .get_mut(&(server.to_string(), client.to_string()))
                        .and_then(|s| s.deriver.as_mut())
                        .zip(u64::try_from(bet.nonce).ok())
                        .map(|(deriver, nonce)| deriver.result(nonce, bet.difficulty).max_multiplier);
                    let verified = expected.map(|e| cents(e) == cents(bet.round_result));
                    let statement = self
                        .tx
                        .prepare_cached(
                            "INSERT INTO bets (stream_pk, antebot_bet_id, received_at, date_time, nonce, amount, payout,
                                               payout_multiplier, difficulty, round_target, round_result, mult_cents,
                                               verified, expected_multiplier)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                             ON CONFLICT (stream_pk, antebot_bet_id) DO NOTHING
                             RETURNING id, $5 - (SELECT max(p.nonce) FROM bets p
                                                 WHERE p.stream_pk = $1 AND p.mult_cents = $12 AND p.nonce < $5)",
                        )
                        .await?;
                    let row = self
                        .tx
                        .query_opt(
                            &statement,
                            &[
                                &pk,
                                &bet.antebot_bet_id,
                                &now,
                                &bet.date_time.map(|d| d.timestamp_micros()),
                                &bet.nonce,
                                &bet.amount,
                                &bet.payout,
                                &bet.payout_multiplier,
                                &bet.difficulty.as_str(),
                                &bet.round_target,
                                &bet.round_result,
                                &cents(bet.round_result),
                                &verified,
                                &expected,
                            ],
                        )
                        .await?;
                    let bet_id = match row {
                        Some(row) => {
                            let id: i64 = row.try_get(0)?;
                            delta.add_bet(bet, id, verified);
                            self.events.push(LiveEvent::Bet(Box::new(BetRecord {
                                id,
                                stream_id,
                                antebot_bet_id: bet.antebot_bet_id.clone(),
                                received_at: iso(now),
                                date_time: bet.date_time.map(|d| iso(d.timestamp_micros())),
                                nonce: bet.nonce,
                                amount: bet.amount,
                                payout: bet.payout,
                                payout_multiplier: bet.payout_multiplier,
                                difficulty: bet.difficulty.as_str().to_string(),
                                round_target: bet.round_target,
                                round_result: bet.round_result,
                                distance_prev: row.try_get(1)?,
                                verified,
                                expected_multiplier: expected,
                            })));
                            Some(id)
                        }
                        None => None,
                    };
                    if self.insert_round(pk, stream_id, bet.nonce, bet.round_result).await? {
                        delta.rounds += 1;
                    }
                    (bet_id.is_some(), bet_id)
                }
                Message::Heartbeat(hb) => {
                    let added = self.insert_round(pk, stream_id, hb.nonce, hb.round_result).await?;
                    delta.rounds += i64::from(added);
                    (added, None)
                }
            };
            self.deltas.insert(pk, delta);
            outcomes.push(IngestOutcome { stream_id, new_stream, accepted, bet_id });
        }
        Ok(outcomes)
    }

    async fn flush_deltas(&mut self, options: StoreOptions) -> Result<(), StoreError> {
        let deltas = std::mem::take(&mut self.deltas);
        for (pk, delta) in deltas {
            apply_delta(self.tx, pk, &delta, options).await?;
        }
        Ok(())
    }
}

async fn apply_delta(
    tx: &Transaction<'_>,
    pk: i64,
    delta: &StreamDelta,
    options: StoreOptions,
) -> Result<(), StoreError> {
    // GREATEST and LEAST ignore NULLs: a stream's first bet sets the value.
    let update = tx
        .prepare_cached(
            "UPDATE streams SET
                total_bets = total_bets + $2,
                highest_multiplier = GREATEST(highest_multiplier, $3),
                lowest_multiplier = LEAST(lowest_multiplier, $7),
                last_observed_nonce = GREATEST(last_observed_nonce, $4),
                rounds_count = rounds_count + $5,
                last_seen_at = $6,
                sum_multiplier = sum_multiplier + $8,
                total_amount = total_amount + $9,
                total_payout = total_payout + $10,
                verified_checked = verified_checked + $11,
                verified_matched = verified_matched + $12,
                verified_mismatched = verified_mismatched + ($11 - $12)
             WHERE pk = $1 RETURNING rounds_count",
        )
        .await?;
    let row = tx
        .query_one(
            &update,
            &[
                &pk,
                &delta.bets,
                &delta.highest,
                &delta.max_nonce,
                &delta.rounds,
                &delta.seen_at,
                &delta.lowest,
                &delta.sum_multiplier,
                &delta.amount,
                &delta.payout,
                &delta.checked,
                &delta.matched,
            ],
        )
        .await?;
    let rounds_count: i64 = row.try_get(0)?;
    if !delta.difficulties.is_empty() {
        let upsert = tx
            .prepare_cached(
                "INSERT INTO stream_difficulties (stream_pk, difficulty, bets, last_bet) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (stream_pk, difficulty) DO UPDATE SET bets = stream_difficulties.bets + excluded.bets,
                    last_bet = GREATEST(stream_difficulties.last_bet, excluded.last_bet)",
            )
            .await?;
        for (difficulty, bets, last_bet) in &delta.difficulties {
            tx.execute(&upsert, &[&pk, difficulty, bets, last_bet]).await?;
        }
    }
    if !delta.multipliers.is_empty() {
        let upsert = tx
            .prepare_cached(
                "INSERT INTO stream_multipliers (stream_pk, difficulty, mult_cents, bets) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (stream_pk, difficulty, mult_cents) DO UPDATE SET bets = stream_multipliers.bets + excluded.bets",
            )
            .await?;
        for (difficulty, mult_cents, bets) in &delta.multipliers {
            tx.execute(&upsert, &[&pk, difficulty, mult_cents, bets]).await?;
        }
    }
    let retention = i64::try_from(options.rounds_retention).unwrap_or(i64::MAX);
    if rounds_count > retention {
        let excess = rounds_count - retention;
        tx.execute(
            "DELETE FROM rounds WHERE stream_pk = $1 AND nonce IN
                (SELECT nonce FROM rounds WHERE stream_pk = $1 ORDER BY nonce ASC LIMIT $2)",
            &[&pk, &excess],
        )
        .await?;
        tx.execute("UPDATE streams SET rounds_count = $2 WHERE pk = $1", &[&pk, &retention]).await?;
    }
    Ok(())
}
