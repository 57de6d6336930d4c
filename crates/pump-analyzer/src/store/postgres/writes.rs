//! Everything of the PostgreSQL backend other than ingest and the stream reads: stream edits,
//! seed reveal and verification, runs, sessions and settings.

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::super::model::{Deleted, Run, RunHit, SessionRecord, iso};
use super::super::{LinkedStream, NewRun, RunQuery, StreamKey};
use super::{PostgresStore, begin, commit, now_micros};
use crate::live::hub::LiveEvent;
use crate::store::StoreError;

/// Hits inserted per statement when a run is stored.
const HIT_CHUNK: usize = 10_000;

const RUN_COLUMNS: &str = "id, created_at, server_seed_sha256, server_seed, client_seed, nonce_start, nonce_end,
    difficulty, targets, duration_ms, engine_version, summary";

fn json_column(row: &Row, index: usize) -> Result<serde_json::Value, StoreError> {
    let raw: String = row.try_get(index)?;
    serde_json::from_str(&raw).map_err(|e| StoreError::Internal(format!("stored JSON is unreadable: {e}")))
}

fn run_row(row: &Row) -> Result<Run, StoreError> {
    Ok(Run {
        id: row.try_get(0)?,
        created_at: iso(row.try_get(1)?),
        server_seed_sha256: row.try_get(2)?,
        server_seed: row.try_get(3)?,
        client_seed: row.try_get(4)?,
        nonce_start: row.try_get(5)?,
        nonce_end: row.try_get(6)?,
        difficulty: row.try_get(7)?,
        targets: serde_json::from_value(json_column(row, 8)?).unwrap_or_default(),
        duration_ms: row.try_get(9)?,
        engine_version: row.try_get(10)?,
        summary: json_column(row, 11)?,
    })
}

impl PostgresStore {
    pub async fn setting_or_insert(&self, name: &'static str, fresh: String) -> Result<(String, bool), StoreError> {
        let client = self.client().await?;
        let inserted = client
            .execute("INSERT INTO app_settings (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING", &[&name, &fresh])
            .await?
            == 1;
        let value: String =
            client.query_one("SELECT value FROM app_settings WHERE name = $1", &[&name]).await?.try_get(0)?;
        Ok((value, inserted))
    }

    pub async fn set_notes(&self, pk: i64, notes: Option<String>) -> Result<bool, StoreError> {
        let client = self.client().await?;
        Ok(client.execute("UPDATE streams SET notes = $2 WHERE pk = $1", &[&pk, &notes]).await? == 1)
    }

    /// Marks a stream as fed by the built-in demo.
    pub async fn mark_demo(&self, pk: i64) -> Result<bool, StoreError> {
        let client = self.client().await?;
        Ok(client.execute("UPDATE streams SET demo = true WHERE pk = $1", &[&pk]).await? == 1)
    }

    pub async fn delete_stream(&self, key: StreamKey) -> Result<Option<Deleted>, StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let bets = tx.execute("DELETE FROM bets WHERE stream_pk = $1", &[&key.pk]).await? as i64;
        // Rounds and counters go with the stream (ON DELETE CASCADE).
        if tx.execute("DELETE FROM streams WHERE pk = $1", &[&key.pk]).await? == 0 {
            return Ok(None);
        }
        commit(tx, &[LiveEvent::StreamDeleted { stream_id: key.id }]).await?;
        Ok(Some(Deleted { bets }))
    }

    pub async fn reveal_seed(
        &self,
        server_seed: String,
        hashed: String,
    ) -> Result<(bool, i64, Vec<LinkedStream>), StoreError> {
        let mut client = self.client().await?;
        // Under the write lock: an ingest transaction either sees the seed (and verifies on
        // arrival) or committed before it (and its bets are there for the verifier).
        let tx = begin(&mut client).await?;
        let inserted = tx
            .execute(
                "INSERT INTO revealed_seeds (server_seed_hashed, server_seed, revealed_at) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&hashed, &server_seed, &now_micros()],
            )
            .await?
            == 1;
        let revealed_at: i64 = tx
            .query_one("SELECT revealed_at FROM revealed_seeds WHERE server_seed_hashed = $1", &[&hashed])
            .await?
            .try_get(0)?;
        let linked = tx
            .query("SELECT pk, id, client_seed FROM streams WHERE lower(server_seed_hashed) = $1", &[&hashed])
            .await?
            .iter()
            .map(|r| Ok(LinkedStream { pk: r.try_get(0)?, id: r.try_get(1)?, client_seed: r.try_get(2)? }))
            .collect::<Result<Vec<_>, StoreError>>()?;
        commit(tx, &[]).await?;
        Ok((inserted, revealed_at, linked))
    }

    /// Records checks of existing bets in one statement; bets checked meanwhile (on arrival) are
    /// left alone, so counters never double count.
    pub async fn record_verification(
        &self,
        pk: i64,
        stream_id: Uuid,
        results: Vec<(i64, f64, bool)>,
    ) -> Result<(), StoreError> {
        let ids: Vec<i64> = results.iter().map(|r| r.0).collect();
        let expected: Vec<f64> = results.iter().map(|r| r.1).collect();
        let ok: Vec<bool> = results.iter().map(|r| r.2).collect();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_one(
                "WITH input AS (SELECT * FROM unnest($2::bigint[], $3::float8[], $4::bool[]) AS t(id, expected, ok)),
                      changed AS (UPDATE bets b SET verified = i.ok, expected_multiplier = i.expected FROM input i
                                  WHERE b.id = i.id AND b.stream_pk = $1 AND b.verified IS NULL RETURNING i.ok)
                 SELECT count(*), count(*) FILTER (WHERE ok) FROM changed",
                &[&pk, &ids, &expected, &ok],
            )
            .await?;
        let (checked, matched): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        tx.execute(
            "UPDATE streams SET verified_checked = verified_checked + $2, verified_matched = verified_matched + $3,
                verified_mismatched = verified_mismatched + ($2 - $3) WHERE pk = $1",
            &[&pk, &checked, &matched],
        )
        .await?;
        let events = if checked > 0 { vec![LiveEvent::Verified { stream_id }] } else { Vec::new() };
        commit(tx, &events).await
    }

    pub async fn insert_run(&self, run: NewRun) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let r = &run.run;
        let pk: i64 = tx
            .query_one(
                "INSERT INTO runs (id, created_at, server_seed, server_seed_sha256, client_seed, nonce_start,
                                   nonce_end, difficulty, targets, duration_ms, engine_version, summary, hit_count)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING pk",
                &[
                    &r.id,
                    &run.created_at,
                    &r.server_seed,
                    &r.server_seed_sha256,
                    &r.client_seed,
                    &r.nonce_start,
                    &r.nonce_end,
                    &r.difficulty,
                    &serde_json::to_string(&r.targets).unwrap_or_default(),
                    &r.duration_ms,
                    &r.engine_version,
                    &r.summary.to_string(),
                    &(run.hits.len() as i64),
                ],
            )
            .await?
            .try_get(0)?;
        for chunk in run.hits.chunks(HIT_CHUNK) {
            let nonces: Vec<i64> = chunk.iter().map(|h| h.nonce).collect();
            let pumps: Vec<i64> = chunk.iter().map(|h| h.max_pumps).collect();
            let multipliers: Vec<f64> = chunk.iter().map(|h| h.max_multiplier).collect();
            let pops: Vec<i64> = chunk.iter().map(|h| h.pop_point).collect();
            tx.execute(
                "INSERT INTO run_hits (run_pk, nonce, max_pumps, max_multiplier, pop_point)
                 SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::float8[], $5::bigint[])",
                &[&pk, &nonces, &pumps, &multipliers, &pops],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_runs(&self, query: RunQuery) -> Result<(Vec<Run>, i64), StoreError> {
        let client = self.client().await?;
        let mut filter = String::from("true");
        let pattern = query.search.as_ref().map(|search| {
            // Substring of the client seed, the run id or the seed hash; LIKE wildcards escaped.
            let escaped = search.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            format!("%{escaped}%")
        });
        let mut args: Vec<&(dyn ToSql + Sync)> = Vec::new();
        if let Some(pattern) = &pattern {
            args.push(pattern);
            // ILIKE: SQLite's LIKE ignores ASCII case, so both backends match the same runs.
            filter.push_str(
                " AND (client_seed ILIKE $1 ESCAPE '\\' OR id::text ILIKE $1 ESCAPE '\\' OR server_seed_sha256 ILIKE $1 ESCAPE '\\')",
            );
        }
        if let Some(d) = &query.difficulty {
            args.push(d);
            filter.push_str(&format!(" AND difficulty = ${}", args.len()));
        }
        let total: i64 =
            client.query_one(&format!("SELECT count(*) FROM runs WHERE {filter}"), &args).await?.try_get(0)?;
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE {filter} ORDER BY created_at DESC, pk DESC LIMIT ${} OFFSET ${}",
            args.len() + 1,
            args.len() + 2
        );
        args.push(&query.limit);
        args.push(&query.offset);
        let runs = client.query(&sql, &args).await?.iter().map(run_row).collect::<Result<_, _>>()?;
        Ok((runs, total))
    }

    pub async fn run(&self, id: Uuid) -> Result<Option<Run>, StoreError> {
        let client = self.client().await?;
        let row = client.query_opt(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"), &[&id]).await?;
        row.as_ref().map(run_row).transpose()
    }

    pub async fn run_hits(
        &self,
        id: Uuid,
        min_multiplier: Option<f64>,
        limit: i64,
        after_nonce: Option<i64>,
        offset: i64,
    ) -> Result<Option<(Vec<RunHit>, i64)>, StoreError> {
        let client = self.client().await?;
        let Some(row) = client.query_opt("SELECT pk FROM runs WHERE id = $1", &[&id]).await? else { return Ok(None) };
        let pk: i64 = row.try_get(0)?;
        let min = min_multiplier.unwrap_or(0.0) - 0.005;
        let total: i64 = client
            .query_one("SELECT count(*) FROM run_hits WHERE run_pk = $1 AND max_multiplier >= $2", &[&pk, &min])
            .await?
            .try_get(0)?;
        let statement = client
            .prepare_cached(
                "SELECT nonce, max_pumps, max_multiplier, pop_point FROM run_hits
                 WHERE run_pk = $1 AND max_multiplier >= $2 AND nonce > $3 ORDER BY nonce LIMIT $4 OFFSET $5",
            )
            .await?;
        let hits = client
            .query(&statement, &[&pk, &min, &after_nonce.unwrap_or(i64::MIN), &limit, &offset])
            .await?
            .iter()
            .map(|r| {
                Ok(RunHit {
                    nonce: r.try_get(0)?,
                    max_pumps: r.try_get(1)?,
                    max_multiplier: r.try_get(2)?,
                    pop_point: r.try_get(3)?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Some((hits, total)))
    }

    pub async fn delete_run(&self, id: Uuid) -> Result<bool, StoreError> {
        let client = self.client().await?;
        // The hits go with the run (ON DELETE CASCADE).
        Ok(client.execute("DELETE FROM runs WHERE id = $1", &[&id]).await? == 1)
    }

    pub async fn create_session(&self, record: SessionRecord) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO sessions (secret_hash, public_id, csrf_token, created_at, last_activity, authenticated)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &record.secret_hash,
                    &record.public_id,
                    &record.csrf_token,
                    &record.created_at,
                    &record.last_activity,
                    &record.authenticated,
                ],
            )
            .await?;
        Ok(())
    }

    pub async fn session(&self, secret_hash: String) -> Result<Option<SessionRecord>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT secret_hash, public_id, csrf_token, created_at, last_activity, authenticated
                 FROM sessions WHERE secret_hash = $1",
            )
            .await?;
        match client.query_opt(&statement, &[&secret_hash]).await? {
            Some(r) => Ok(Some(SessionRecord {
                secret_hash: r.try_get(0)?,
                public_id: r.try_get(1)?,
                csrf_token: r.try_get(2)?,
                created_at: r.try_get(3)?,
                last_activity: r.try_get(4)?,
                authenticated: r.try_get(5)?,
            })),
            None => Ok(None),
        }
    }

    pub async fn touch_session(&self, secret_hash: String, now: i64) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached("UPDATE sessions SET last_activity = GREATEST(last_activity, $2) WHERE secret_hash = $1")
            .await?;
        Ok(client.execute(&statement, &[&secret_hash, &now]).await? == 1)
    }

    pub async fn delete_session(&self, secret_hash: String) -> Result<bool, StoreError> {
        let client = self.client().await?;
        Ok(client.execute("DELETE FROM sessions WHERE secret_hash = $1", &[&secret_hash]).await? == 1)
    }

    pub async fn purge_sessions(&self, idle_before: i64, created_before: i64) -> Result<usize, StoreError> {
        let client = self.client().await?;
        let removed = client
            .execute(
                "DELETE FROM sessions WHERE last_activity < $1 OR created_at < $2",
                &[&idle_before, &created_before],
            )
            .await?;
        Ok(removed as usize)
    }

    pub async fn count_sessions(&self) -> Result<i64, StoreError> {
        let client = self.client().await?;
        Ok(client.query_one("SELECT count(*) FROM sessions", &[]).await?.try_get(0)?)
    }
}
