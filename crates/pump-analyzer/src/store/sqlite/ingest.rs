//! The ingest core of the SQLite backend: bets in multi-row INSERTs, rounds, the stream cache,
//! live distances, and the writer thread's loop that groups requests into one transaction.

use std::sync::LazyLock;
use std::time::Instant;

use rusqlite::{CachedStatement, Connection, OptionalExtension, ToSql, params};
use tokio::sync::mpsc;
use uuid::Uuid;

use pump_engine::{Difficulty, RoundDeriver};

use super::*;
use crate::store::hub::LiveEvent;

/// Rows per multi-row INSERT, largest first: a job's bets go in as few statements as these
/// sizes allow (100 bets: 64 + 16 + 16 + 4), each prepared once and kept in the statement cache.
const CHUNKS: [usize; 4] = [64, 16, 4, 1];

/// The statement texts for each size of `CHUNKS`. `OR FAIL`: a failed constraint stops the
/// statement without undoing its earlier rows, which spares SQLite the statement journal (a copy of
/// every page the statement touches) that undoing them needs. Nothing is lost by it: any failed
/// statement fails its job, and the writer then rolls the whole transaction back. (A function
/// call anywhere in the statement, a generated column's included, would bring the journal back:
/// see migration 0008.)
pub(super) static INSERT_BETS: LazyLock<[String; CHUNKS.len()]> = LazyLock::new(|| {
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
    pub(super) fn ingest(&mut self, messages: &[Message]) -> Result<Vec<IngestOutcome>, StoreError> {
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

    pub(super) fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let background = self.options.sqlite_sync == SqliteSync::Background;
        while let Some(first) = rx.blocking_recv() {
            let mut jobs = crate::store::gather(first, &mut rx, MAX_GROUP);
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
    pub(super) fn forget_streams(&mut self) {
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
