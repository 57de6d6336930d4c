//! The ingest writers of the PostgreSQL backend: a task per lane groups the requests that arrive
//! together into one transaction of two round trips, with multi-row statements and the
//! group's stream rows locked in key order (the only locks it takes; see `mod.rs`).

use std::collections::HashMap;

use deadpool_postgres::Pool;
use tokio::sync::mpsc;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use pump_engine::RoundDeriver;
use pump_engine::tables::cents;

use super::horizon::INGEST_MARK;
use super::*;

/// Rounds packed into one notification (well under PostgreSQL's 8000-byte payload limit).
const ROUNDS_PER_NOTE: usize = 250;

/// The ingest writer of one lane: it takes the requests waiting when it is free and commits them
/// as one transaction, while the other lane's writer commits its own.
pub(super) async fn run_writer(pool: Pool, options: StoreOptions, mut rx: mpsc::Receiver<IngestJob>) {
    loop {
        let jobs = {
            let Some(first) = rx.recv().await else { return };
            // Let the request handlers that are running queue their jobs too: larger groups,
            // fewer transactions, less PostgreSQL time per request.
            for _ in 0..4 {
                tokio::task::yield_now().await;
            }
            crate::store::gather(first, &mut rx, MAX_GROUP)
        };
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

/// Runs one group's transaction; a deadlock (PostgreSQL breaks it by failing one of the
/// transactions) or a serialization failure is retried a few times before it is reported.
async fn ingest_group(
    pool: &Pool,
    options: StoreOptions,
    jobs: &[IngestJob],
) -> Result<Vec<Vec<IngestOutcome>>, StoreError> {
    let mut attempt = 0;
    loop {
        match ingest_attempt(pool, options, jobs).await {
            Err(e) if attempt < 3 && is_transient(&e) => attempt += 1,
            result => return result,
        }
    }
}

async fn ingest_attempt(
    pool: &Pool,
    options: StoreOptions,
    jobs: &[IngestJob],
) -> Result<Vec<Vec<IngestOutcome>>, StoreError> {
    let work = async {
        let open = Open { client: Some(pool.get().await?) };
        let messages: Vec<&Message> = jobs.iter().flat_map(|job| job.messages.iter()).collect();
        let outcomes = ingest_batch(open.client(), &messages, options).await?;
        open.finish();
        let mut outcomes = outcomes.into_iter();
        Ok(jobs.iter().map(|job| outcomes.by_ref().take(job.messages.len()).collect()).collect())
    };
    tokio::time::timeout(WRITE_TIMEOUT, work).await.unwrap_or_else(|_| Err(timed_out()))
}

/// A pooled connection inside `BEGIN … COMMIT` driven by hand, so that statements can be
/// pipelined (several in flight per round trip, COMMIT included). Dropped before [`finish`]
/// (an error, a timeout), its connection is discarded rather than returned to the pool, and the
/// server rolls the transaction back when the connection closes.
///
/// [`finish`]: Open::finish
struct Open {
    client: Option<deadpool_postgres::Object>,
}

impl Open {
    fn client(&self) -> &deadpool_postgres::Object {
        self.client.as_ref().expect("an open transaction has its connection")
    }

    /// The transaction committed: the connection goes back to the pool.
    fn finish(mut self) {
        self.client.take();
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

/// A stream as an ingest transaction sees it. Valid only inside the transaction, which holds the
/// stream's row lock: no other transaction can add bets to it, delete it or reveal its seed
/// meanwhile.
struct StreamState {
    pk: i64,
    id: Uuid,
    deriver: Option<Box<RoundDeriver>>,
}

type Streams = HashMap<(String, String), (StreamState, bool)>;

/// Locks the stream rows of `pairs` (in primary key order, so that transactions never wait on
/// each other in a cycle) and reads what the lock guards.
struct Lookup {
    lock: tokio_postgres::Statement,
    seeds: tokio_postgres::Statement,
}

impl Lookup {
    async fn prepare(tx: &deadpool_postgres::Object) -> Result<Self, StoreError> {
        let (lock, seeds) = tokio::try_join!(
            tx.prepare_cached(
                "SELECT pk, id, server_seed_hashed, client_seed FROM streams
                 WHERE (server_seed_hashed, client_seed) IN (SELECT * FROM unnest($1::text[], $2::text[]))
                 ORDER BY pk FOR NO KEY UPDATE",
            ),
            tx.prepare_cached(
                "SELECT server_seed_hashed, server_seed FROM revealed_seeds WHERE server_seed_hashed = ANY($1)"
            ),
        )?;
        Ok(Self { lock, seeds })
    }

    /// Locks and reads the streams of `pairs` that exist. The seeds are read by a statement of
    /// their own, after the locks: its snapshot then includes a reveal that committed while this
    /// transaction waited for a lock.
    async fn run(
        &self,
        tx: &deadpool_postgres::Object,
        pairs: &[(&str, &str)],
        found: &mut Streams,
        created: &std::collections::HashSet<(String, String)>,
    ) -> Result<(), StoreError> {
        let servers: Vec<&str> = pairs.iter().map(|p| p.0).collect();
        let clients: Vec<&str> = pairs.iter().map(|p| p.1).collect();
        let hashes: Vec<String> = pairs.iter().map(|p| p.0.to_ascii_lowercase()).collect();
        let lock_args: [&(dyn ToSql + Sync); 2] = [&servers, &clients];
        let seed_args: [&(dyn ToSql + Sync); 1] = [&hashes];
        let (rows, seeds) =
            tokio::try_join!(biased; tx.query(&self.lock, &lock_args), tx.query(&self.seeds, &seed_args))?;
        let seeds: HashMap<String, String> =
            seeds.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect::<Result<_, StoreError>>()?;
        for row in rows {
            let (server, client): (String, String) = (row.try_get(2)?, row.try_get(3)?);
            let deriver =
                seeds.get(&server.to_ascii_lowercase()).map(|seed| Box::new(RoundDeriver::new(seed, &client)));
            let state = StreamState { pk: row.try_get(0)?, id: row.try_get(1)?, deriver };
            let new = created.contains(&(server.clone(), client.clone()));
            found.insert((server, client), (state, new));
        }
        Ok(())
    }
}

/// Opens the transaction, marks it and takes its transaction id before any bet id is drawn (the
/// horizon relies on that order, see `horizon.rs`), locks the streams of `pairs` that exist and
/// creates the missing ones; the `bool` says created now by this transaction.
async fn begin_with_streams(
    tx: &deadpool_postgres::Object,
    pairs: &[(&str, &str)],
    now: i64,
) -> Result<(Streams, String), StoreError> {
    let lookup = Lookup::prepare(tx).await?;
    // Generic plans: the statements take arrays, whose sizes change nothing about the best plan,
    // and planning them afresh on each execution cost more than running them.
    let mark = format!(
        "BEGIN; SET LOCAL application_name = '{INGEST_MARK}'; SET LOCAL plan_cache_mode = force_generic_plan;
         SELECT pg_current_xact_id()"
    );
    let mut found = Streams::with_capacity(pairs.len());
    let begin = async { tx.simple_query(&mark).await.map_err(StoreError::from) };
    let none = std::collections::HashSet::new();
    let (began, _) = tokio::try_join!(biased; begin, lookup.run(tx, pairs, &mut found, &none))?;
    let xid = began
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        })
        .ok_or_else(|| StoreError::Internal("no transaction id".into()))?;
    // A stream missing now may be created by another transaction at the same time: the unique
    // pair decides, and the loser locks the winner's row once it has committed. A second round
    // covers a stream deleted between the two statements.
    for _ in 0..2 {
        let missing: Vec<(&str, &str)> =
            pairs.iter().copied().filter(|(s, c)| !found.contains_key(&(s.to_string(), c.to_string()))).collect();
        if missing.is_empty() {
            return Ok((found, xid));
        }
        let ids: Vec<Uuid> = missing.iter().map(|_| Uuid::new_v4()).collect();
        let servers: Vec<&str> = missing.iter().map(|p| p.0).collect();
        let clients: Vec<&str> = missing.iter().map(|p| p.1).collect();
        let insert = tx
            .prepare_cached(
                "INSERT INTO streams (id, server_seed_hashed, client_seed, created_at, last_seen_at)
                 SELECT id, server, client, $4, $4 FROM unnest($1::uuid[], $2::text[], $3::text[]) AS t(id, server, client)
                 ON CONFLICT (server_seed_hashed, client_seed) DO NOTHING
                 RETURNING server_seed_hashed, client_seed",
            )
            .await?;
        let insert_args: [&(dyn ToSql + Sync); 4] = [&ids, &servers, &clients, &now];
        let created = tx
            .query(&insert, &insert_args)
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<std::collections::HashSet<(String, String)>, StoreError>>()?;
        lookup.run(tx, &missing, &mut found, &created).await?;
    }
    Ok((found, xid))
}

/// Stores the messages of one group with a fixed number of statements whatever its size (each
/// kind of row is inserted from arrays with `unnest`), commits, and answers one outcome per
/// message, in order.
async fn ingest_batch(
    tx: &deadpool_postgres::Object,
    messages: &[&Message],
    options: StoreOptions,
) -> Result<Vec<IngestOutcome>, StoreError> {
    let now = now_micros();
    let mut pairs: Vec<(&str, &str)> = messages.iter().map(|m| m.seed_pair()).collect();
    pairs.sort_unstable();
    pairs.dedup();
    let (mut streams, xid) = begin_with_streams(tx, &pairs, now).await?;
    let mut events = Vec::new();
    for ((server, client), (state, created)) in &streams {
        if *created {
            events.push(LiveEvent::Stream(Box::new(StreamSummary::created(
                state.id,
                server,
                client,
                now,
                state.deriver.is_some(),
            ))));
        }
    }

    // Per message: its stream, and whether it is the first of its bet id / round in the group
    // (later copies are answered `accepted: false` without being sent).
    let mut pks = Vec::with_capacity(messages.len());
    let mut bet_rows: Vec<usize> = Vec::new();
    let mut round_rows: Vec<usize> = Vec::new();
    let mut expected: Vec<Option<f64>> = vec![None; messages.len()];
    let mut seen_bets = std::collections::HashSet::new();
    let mut seen_rounds = std::collections::HashSet::new();
    let mut announced = std::collections::HashSet::new();
    let mut new_stream = vec![false; messages.len()];
    for (i, message) in messages.iter().enumerate() {
        let (server, client) = message.seed_pair();
        let (state, created) = streams
            .get_mut(&(server.to_string(), client.to_string()))
            .ok_or_else(|| StoreError::Internal("stream not resolved".into()))?;
        pks.push(state.pk);
        new_stream[i] = *created && announced.insert(state.pk);
        if let Message::Bet(bet) = message {
            if seen_bets.insert((state.pk, bet.antebot_bet_id.as_str())) {
                bet_rows.push(i);
            }
            expected[i] = state
                .deriver
                .as_mut()
                .zip(u64::try_from(bet.nonce).ok())
                .map(|(deriver, nonce)| deriver.result(nonce, bet.difficulty).max_multiplier);
        }
        if seen_rounds.insert((state.pk, message.nonce())) {
            round_rows.push(i);
        }
    }

    // Bets and rounds: RETURNING says which rows are new; bet ids follow message order. The bets
    // themselves reach SSE clients from the database, once the horizon passes them (`listen.rs`).
    let bets: Vec<&crate::ingest::message::NewBet> = bet_rows
        .iter()
        .map(|&i| match messages[i] {
            Message::Bet(bet) => bet,
            Message::Heartbeat(_) => unreachable!("only bets are listed"),
        })
        .collect();
    let bet_pks: Vec<i64> = bet_rows.iter().map(|&i| pks[i]).collect();
    let verified: Vec<Option<bool>> =
        bet_rows.iter().zip(&bets).map(|(&i, b)| expected[i].map(|e| cents(e) == cents(b.round_result))).collect();
    let bet_ids_text: Vec<&str> = bets.iter().map(|b| b.antebot_bet_id.as_str()).collect();
    let date_times: Vec<Option<i64>> = bets.iter().map(|b| b.date_time.map(|d| d.timestamp_micros())).collect();
    let bet_nonces: Vec<i64> = bets.iter().map(|b| b.nonce).collect();
    let amounts: Vec<f64> = bets.iter().map(|b| b.amount).collect();
    let payouts: Vec<f64> = bets.iter().map(|b| b.payout).collect();
    let payout_multipliers: Vec<f64> = bets.iter().map(|b| b.payout_multiplier).collect();
    let difficulties: Vec<&str> = bets.iter().map(|b| b.difficulty.as_str()).collect();
    let targets: Vec<Option<f64>> = bets.iter().map(|b| b.round_target).collect();
    let bet_results: Vec<f64> = bets.iter().map(|b| b.round_result).collect();
    let bet_cents: Vec<i64> = bets.iter().map(|b| cents(b.round_result)).collect();
    let bet_expected: Vec<Option<f64>> = bet_rows.iter().map(|&i| expected[i]).collect();
    let round_pks: Vec<i64> = round_rows.iter().map(|&i| pks[i]).collect();
    let round_nonces: Vec<i64> = round_rows.iter().map(|&i| messages[i].nonce()).collect();
    let round_results: Vec<f64> = round_rows.iter().map(|&i| messages[i].round_result()).collect();
    // One statement for both kinds of row; its rows say what is new: bets (`false`: id, stream,
    // bet id, previous nonce) and rounds (`true`: stream and nonce in the last column).
    let insert = tx
        .prepare_cached(
            "WITH b AS (
                INSERT INTO bets (stream_pk, antebot_bet_id, received_at, date_time, nonce, amount, payout,
                                  payout_multiplier, difficulty, round_target, round_result, mult_cents,
                                  verified, expected_multiplier)
                SELECT pk, bet_id, $13, date_time, nonce, amount, payout, payout_multiplier, difficulty,
                       round_target, round_result, mult_cents, verified, expected
                FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::float8[], $6::float8[],
                            $7::float8[], $8::text[], $9::float8[], $10::float8[], $11::bigint[], $12::float8[],
                            $14::bool[])
                     WITH ORDINALITY AS t(pk, bet_id, date_time, nonce, amount, payout, payout_multiplier,
                                          difficulty, round_target, round_result, mult_cents, expected, verified, n)
                ORDER BY n
                ON CONFLICT (stream_pk, antebot_bet_id) DO NOTHING
                RETURNING id, stream_pk, antebot_bet_id),
             r AS (
                INSERT INTO rounds (stream_pk, nonce, round_result)
                SELECT * FROM unnest($15::bigint[], $16::bigint[], $17::float8[])
                ON CONFLICT DO NOTHING RETURNING stream_pk, nonce)
             SELECT false, id, stream_pk, antebot_bet_id, NULL::bigint FROM b
             UNION ALL SELECT true, NULL, stream_pk, NULL, nonce FROM r",
        )
        .await?;
    let insert_args: [&(dyn ToSql + Sync); 17] = [
        &bet_pks,
        &bet_ids_text,
        &date_times,
        &bet_nonces,
        &amounts,
        &payouts,
        &payout_multipliers,
        &difficulties,
        &targets,
        &bet_results,
        &bet_cents,
        &bet_expected,
        &now,
        &verified,
        &round_pks,
        &round_nonces,
        &round_results,
    ];
    let mut bet_rows_back = Vec::new();
    let mut added: std::collections::HashSet<(i64, i64)> = std::collections::HashSet::new();
    for row in tx.query(&insert, &insert_args).await? {
        if row.try_get::<_, bool>(0)? {
            added.insert((row.try_get(2)?, row.try_get(4)?));
        } else {
            bet_rows_back.push(row);
        }
    }
    let mut inserted: HashMap<(i64, String), i64> = HashMap::with_capacity(bet_rows_back.len());
    for row in bet_rows_back {
        inserted.insert((row.try_get(2)?, row.try_get(3)?), row.try_get(1)?);
    }
    let mut bet_ids: Vec<Option<i64>> = vec![None; messages.len()];
    for (k, &i) in bet_rows.iter().enumerate() {
        bet_ids[i] = inserted.get(&(pks[i], bets[k].antebot_bet_id.clone())).copied();
    }
    let round_added: Vec<bool> = (0..messages.len())
        .map(|i| round_rows.binary_search(&i).is_ok() && added.contains(&(pks[i], messages[i].nonce())))
        .collect();

    let ids: HashMap<i64, Uuid> = streams.values().map(|(s, _)| (s.pk, s.id)).collect();
    let ids_of = |pk: i64| ids.get(&pk).copied().unwrap_or_default();
    let mut deltas: HashMap<i64, StreamDelta> = HashMap::new();
    let mut outcomes = Vec::with_capacity(messages.len());
    for (i, message) in messages.iter().enumerate() {
        let pk = pks[i];
        let stream_id = ids_of(pk);
        let delta = deltas.entry(pk).or_default();
        delta.seen_at = now;
        delta.max_nonce = delta.max_nonce.max(message.nonce());
        if let (Message::Bet(bet), Some(id)) = (message, bet_ids[i]) {
            let verified = expected[i].map(|e| cents(e) == cents(bet.round_result));
            delta.add_bet(bet, id, verified);
        }
        if round_added[i] {
            delta.rounds += 1;
            events.push(LiveEvent::Round { stream_id, nonce: message.nonce(), round_result: message.round_result() });
        }
        let accepted = match message {
            Message::Bet(_) => bet_ids[i].is_some(),
            Message::Heartbeat(_) => round_added[i],
        };
        outcomes.push(IngestOutcome { stream_id, new_stream: new_stream[i], accepted, bet_id: bet_ids[i] });
    }
    apply_deltas_and_commit(tx, &xid, &deltas, &events, bet_ids.iter().any(Option::is_some), options).await?;
    Ok(outcomes)
}

/// Writes the group's per-stream counters and multiplier rows and trims rounds beyond the
/// retention in one statement, commits, and sends the notes, all in one round trip. Any failure
/// fails the statement and the transaction is not committed (PostgreSQL answers COMMIT of an
/// aborted transaction with a rollback).
async fn apply_deltas_and_commit(
    tx: &deadpool_postgres::Object,
    xid: &str,
    deltas: &HashMap<i64, StreamDelta>,
    events: &[LiveEvent],
    bets_added: bool,
    options: StoreOptions,
) -> Result<(), StoreError> {
    let d: Vec<(&i64, &StreamDelta)> = deltas.iter().collect();
    let pks: Vec<i64> = d.iter().map(|(pk, _)| **pk).collect();
    let column = |f: fn(&StreamDelta) -> i64| d.iter().map(|(_, x)| f(x)).collect::<Vec<i64>>();
    let real = |f: fn(&StreamDelta) -> f64| d.iter().map(|(_, x)| f(x)).collect::<Vec<f64>>();
    let (bets, max_nonce, rounds, seen_at, checked, matched) = (
        column(|x| x.bets),
        column(|x| x.max_nonce),
        column(|x| x.rounds),
        column(|x| x.seen_at),
        column(|x| x.checked),
        column(|x| x.matched),
    );
    let (sum, amount, payout) = (real(|x| x.sum_multiplier), real(|x| x.amount), real(|x| x.payout));
    let highest: Vec<Option<f64>> = d.iter().map(|(_, x)| x.highest).collect();
    let lowest: Vec<Option<f64>> = d.iter().map(|(_, x)| x.lowest).collect();
    let multipliers: Vec<(i64, &str, i64, i64, i64)> = d
        .iter()
        .flat_map(|(pk, x)| x.multipliers.iter().map(|(name, c, bets, last)| (**pk, *name, *c, *bets, *last)))
        .collect();
    let m_pks: Vec<i64> = multipliers.iter().map(|x| x.0).collect();
    let m_names: Vec<&str> = multipliers.iter().map(|x| x.1).collect();
    let m_cents: Vec<i64> = multipliers.iter().map(|x| x.2).collect();
    let m_bets: Vec<i64> = multipliers.iter().map(|x| x.3).collect();
    let m_last: Vec<i64> = multipliers.iter().map(|x| x.4).collect();
    let retention = i64::try_from(options.rounds_retention).unwrap_or(i64::MAX);
    let payloads = ingest_payloads(events, bets_added);
    // GREATEST and LEAST ignore NULLs: a stream's first bet sets the value. The statement sees
    // the rows as they were before it, so the rounds beyond the retention are counted from the
    // old count plus this group's, and found among the rounds this transaction inserted too.
    let statement = tx
        .prepare_cached(
            "WITH d AS (
                SELECT d.*, s.rounds_count AS old_rounds
                FROM unnest($1::bigint[], $2::bigint[], $3::float8[], $4::float8[], $5::bigint[], $6::bigint[],
                            $7::bigint[], $8::float8[], $9::float8[], $10::float8[], $11::bigint[], $12::bigint[])
                     AS d(pk, bets, highest, lowest, max_nonce, rounds, seen_at, sum_multiplier, amount, payout,
                          checked, matched)
                JOIN streams s ON s.pk = d.pk),
             u AS (
                UPDATE streams s SET
                    total_bets = s.total_bets + d.bets,
                    highest_multiplier = GREATEST(s.highest_multiplier, d.highest),
                    lowest_multiplier = LEAST(s.lowest_multiplier, d.lowest),
                    last_observed_nonce = GREATEST(s.last_observed_nonce, d.max_nonce),
                    rounds_count = LEAST(s.rounds_count + d.rounds, $18),
                    last_seen_at = d.seen_at,
                    sum_multiplier = s.sum_multiplier + d.sum_multiplier,
                    total_amount = s.total_amount + d.amount,
                    total_payout = s.total_payout + d.payout,
                    verified_checked = s.verified_checked + d.checked,
                    verified_matched = s.verified_matched + d.matched,
                    verified_mismatched = s.verified_mismatched + (d.checked - d.matched)
                FROM d WHERE s.pk = d.pk
                RETURNING s.pk, d.old_rounds + d.rounds - $18 AS excess),
             m AS (
                INSERT INTO stream_multipliers (stream_pk, difficulty, mult_cents, bets, last_bet)
                SELECT * FROM unnest($13::bigint[], $14::text[], $15::bigint[], $16::bigint[], $17::bigint[])
                ON CONFLICT (stream_pk, difficulty, mult_cents) DO UPDATE
                SET bets = stream_multipliers.bets + excluded.bets,
                    last_bet = GREATEST(stream_multipliers.last_bet, excluded.last_bet)),
             t AS (
                DELETE FROM rounds r USING u
                WHERE u.excess > 0 AND r.stream_pk = u.pk
                  AND r.nonce <= (SELECT nonce FROM rounds WHERE stream_pk = u.pk ORDER BY nonce OFFSET u.excess - 1 LIMIT 1))
             SELECT count(*) FROM u",
        )
        .await?;
    let notify = tx
        .prepare_cached(
            "SELECT count(pg_notify($1, p)) FROM unnest($2::text[]) AS p WHERE pg_xact_status($3::text::xid8) = 'committed'",
        )
        .await?;
    let args: [&(dyn ToSql + Sync); 18] = [
        &pks, &bets, &highest, &lowest, &max_nonce, &rounds, &seen_at, &sum, &amount, &payout, &checked, &matched,
        &m_pks, &m_names, &m_cents, &m_bets, &m_last, &retention,
    ];
    let notify_args: [&(dyn ToSql + Sync); 3] = [&CHANNEL, &payloads, &xid];
    let apply = async { tx.execute(&statement, &args).await.map_err(StoreError::from) };
    let commit = async { tx.batch_execute("COMMIT").await.map_err(StoreError::from) };
    // The notifications go out in a transaction of their own, right after the COMMIT in the same
    // round trip. Sent inside the ingest transaction, NOTIFY would take PostgreSQL's one lock on
    // the notification queue from before its commit until after the commit's WAL flush: every
    // notifying transaction of every instance would then commit one at a time. Alone, the
    // notifying transaction writes nothing to the WAL and holds that lock for microseconds. If
    // the instance dies in between, the bets still reach clients with the next note (they are
    // read from the database); only that group's round events are lost to live clients. The
    // statement checks that the ingest transaction did commit: it is sent before that is known.
    let notify = async {
        if !payloads.is_empty()
            && let Err(e) = tx.execute(&notify, &notify_args).await
        {
            tracing::warn!(error = %e, "live events of an ingest group could not be sent");
        }
        Ok::<(), StoreError>(())
    };
    tokio::try_join!(biased; apply, commit, notify)?;
    Ok(())
}

/// The notifications of an ingest transaction, in this order: new streams whole, one note that
/// bets were added (listeners read those from the database, `listen.rs`), rounds packed per
/// stream (published after the bets, as SQLite sends a bet before its round).
fn ingest_payloads(events: &[LiveEvent], bets_added: bool) -> Vec<String> {
    let mut payloads =
        notify_payloads(&events.iter().filter(|e| matches!(e, LiveEvent::Stream(_))).cloned().collect::<Vec<_>>());
    if bets_added && let Ok(json) = serde_json::to_string(&super::listen::Note::Bets) {
        payloads.push(json);
    }
    let mut rounds: Vec<(Uuid, Vec<(i64, f64)>)> = Vec::new();
    for event in events {
        if let LiveEvent::Round { stream_id, nonce, round_result } = event {
            match rounds.last_mut() {
                Some((id, list)) if id == stream_id && list.len() < ROUNDS_PER_NOTE => {
                    list.push((*nonce, *round_result))
                }
                _ => rounds.push((*stream_id, vec![(*nonce, *round_result)])),
            }
        }
    }
    for (stream_id, rounds) in rounds {
        if let Ok(json) = serde_json::to_string(&super::listen::Note::Rounds { stream_id, rounds }) {
            payloads.push(json);
        }
    }
    payloads
}
