//! Engine runs: stored with their hits in one transaction, read back page by page.

use rusqlite::types::Value as Sql;
use rusqlite::{OptionalExtension, Row, params, params_from_iter};
use uuid::Uuid;

use super::super::model::{Page, Run, RunHit, iso};
use super::super::{NewRun, RunQuery};
use super::{SqliteStore, Writer};
use crate::store::StoreError;

const RUN_COLUMNS: &str = "id, created_at, server_seed_sha256, server_seed, client_seed, nonce_start, nonce_end,
    difficulty, targets, duration_ms, engine_version, summary";

fn json_column(row: &Row<'_>, index: usize) -> rusqlite::Result<serde_json::Value> {
    let raw: String = row.get(index)?;
    serde_json::from_str(&raw)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, e.into()))
}

fn run_row(row: &Row<'_>) -> rusqlite::Result<Run> {
    let id: String = row.get(0)?;
    let targets: Vec<f64> = serde_json::from_value(json_column(row, 8)?).unwrap_or_default();
    Ok(Run {
        id: Uuid::parse_str(&id)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into()))?,
        created_at: iso(row.get(1)?),
        server_seed_sha256: row.get(2)?,
        server_seed: row.get(3)?,
        client_seed: row.get(4)?,
        nonce_start: row.get(5)?,
        nonce_end: row.get(6)?,
        difficulty: super::reads::difficulty_column(row, 7)?,
        targets,
        duration_ms: row.get(9)?,
        engine_version: row.get(10)?,
        summary: json_column(row, 11)?,
    })
}

impl SqliteStore {
    /// Stores a run and all its hits atomically.
    pub async fn insert_run(&self, run: NewRun) -> Result<(), StoreError> {
        self.write(move |w: &mut Writer| {
            let r = &run.run;
            let pk: i64 = w.conn.query_row(
                "INSERT INTO runs (id, created_at, server_seed, server_seed_sha256, client_seed, nonce_start,
                                   nonce_end, difficulty, targets, duration_ms, engine_version, summary, hit_count)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) RETURNING pk",
                params![
                    r.id.to_string(),
                    run.created_at,
                    r.server_seed,
                    r.server_seed_sha256,
                    r.client_seed,
                    r.nonce_start,
                    r.nonce_end,
                    r.difficulty.as_str(),
                    serde_json::to_string(&r.targets).unwrap_or_default(),
                    r.duration_ms,
                    r.engine_version,
                    r.summary.to_string(),
                    run.hits.len() as i64,
                ],
                |row| row.get(0),
            )?;
            let mut insert = w.conn.prepare_cached(
                "INSERT INTO run_hits (run_pk, nonce, max_pumps, max_multiplier, pop_point) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for h in &run.hits {
                insert.execute(params![pk, h.nonce, h.max_pumps, h.max_multiplier, h.pop_point])?;
            }
            Ok(())
        })
        .await
    }

    pub async fn list_runs(&self, query: RunQuery) -> Result<Page<Run>, StoreError> {
        self.read(move |conn| {
            let mut filter = String::from("1 = 1");
            let mut args: Vec<Sql> = Vec::new();
            if let Some(search) = &query.search {
                // Substring of the client seed, the run id or the seed hash; LIKE wildcards escaped.
                let escaped = search.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
                filter.push_str(
                    " AND (client_seed LIKE ? ESCAPE '\\' OR id LIKE ? ESCAPE '\\' OR server_seed_sha256 LIKE ? ESCAPE '\\')",
                );
                let pattern = format!("%{escaped}%");
                args.extend(std::iter::repeat_n(Sql::Text(pattern), 3));
            }
            if let Some(d) = &query.difficulty {
                filter.push_str(" AND difficulty = ?");
                args.push(Sql::Text(d.as_str().to_string()));
            }
            let total: i64 = conn
                .prepare_cached(&format!("SELECT count(*) FROM runs WHERE {filter}"))?
                .query_row(params_from_iter(args.iter()), |r| r.get(0))?;
            args.push(Sql::Integer(query.limit));
            args.push(Sql::Integer(query.offset));
            let sql =
                format!("SELECT {RUN_COLUMNS} FROM runs WHERE {filter} ORDER BY created_at DESC, pk DESC LIMIT ? OFFSET ?");
            let runs = conn.prepare_cached(&sql)?.query_map(params_from_iter(args.iter()), run_row)?.collect::<Result<_, _>>()?;
            Ok(Page { items: runs, total })
        })
        .await
    }

    pub async fn run(&self, id: Uuid) -> Result<Option<Run>, StoreError> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"))?
                .query_row([id.to_string()], run_row)
                .optional()?)
        })
        .await
    }

    /// A page of a run's hits in nonce order, and how many match the filter.
    pub async fn run_hits(
        &self,
        id: Uuid,
        min_multiplier: Option<f64>,
        limit: i64,
        after_nonce: Option<i64>,
        offset: i64,
    ) -> Result<Option<Page<RunHit>>, StoreError> {
        self.read(move |conn| {
            let pk: Option<i64> = conn
                .prepare_cached("SELECT pk FROM runs WHERE id = ?1")?
                .query_row([id.to_string()], |r| r.get(0))
                .optional()?;
            let Some(pk) = pk else { return Ok(None) };
            let min = min_multiplier.unwrap_or(0.0) - 0.005;
            let total: i64 = conn
                .prepare_cached("SELECT count(*) FROM run_hits WHERE run_pk = ?1 AND max_multiplier >= ?2")?
                .query_row(params![pk, min], |r| r.get(0))?;
            let hits = conn
                .prepare_cached(
                    "SELECT nonce, max_pumps, max_multiplier, pop_point FROM run_hits
                     WHERE run_pk = ?1 AND max_multiplier >= ?2 AND nonce > ?3 ORDER BY nonce LIMIT ?4 OFFSET ?5",
                )?
                .query_map(params![pk, min, after_nonce.unwrap_or(i64::MIN), limit, offset], |r| {
                    Ok(RunHit {
                        nonce: r.get(0)?,
                        max_pumps: r.get(1)?,
                        max_multiplier: r.get(2)?,
                        pop_point: r.get(3)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(Some(Page { items: hits, total }))
        })
        .await
    }

    /// Deletes a run and its hits; `false` when there was none.
    pub async fn delete_run(&self, id: Uuid) -> Result<bool, StoreError> {
        self.write(move |w: &mut Writer| {
            let pk: Option<i64> = w
                .conn
                .prepare_cached("SELECT pk FROM runs WHERE id = ?1")?
                .query_row([id.to_string()], |r| r.get(0))
                .optional()?;
            let Some(pk) = pk else { return Ok(false) };
            w.conn.execute("DELETE FROM run_hits WHERE run_pk = ?1", [pk])?;
            w.conn.execute("DELETE FROM runs WHERE pk = ?1", [pk])?;
            Ok(true)
        })
        .await
    }
}
