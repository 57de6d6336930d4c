//! Engine runs: stored with their hits, read back page by page.

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::super::model::{Page, Run, RunHit, iso};
use super::super::{NewRun, RunQuery};
use super::PostgresStore;
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
        difficulty: crate::store::stored_difficulty(&row.try_get::<_, String>(7)?)?,
        targets: serde_json::from_value(json_column(row, 8)?).unwrap_or_default(),
        duration_ms: row.try_get(9)?,
        engine_version: row.try_get(10)?,
        summary: json_column(row, 11)?,
    })
}
impl PostgresStore {
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
                    &r.difficulty.as_str(),
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

    pub async fn list_runs(&self, query: RunQuery) -> Result<Page<Run>, StoreError> {
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
        let difficulty = query.difficulty.map(|d| d.as_str());
        if let Some(d) = &difficulty {
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
        Ok(Page { items: runs, total })
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
    ) -> Result<Option<Page<RunHit>>, StoreError> {
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
        Ok(Some(Page { items: hits, total }))
    }

    pub async fn delete_run(&self, id: Uuid) -> Result<bool, StoreError> {
        let client = self.client().await?;
        // The hits go with the run (ON DELETE CASCADE).
        Ok(client.execute("DELETE FROM runs WHERE id = $1", &[&id]).await? == 1)
    }
}
