//! Strategy simulations: the request when one starts, the result when it ends.

use rusqlite::{OptionalExtension, Row, params};
use uuid::Uuid;

use super::super::model::{Page, SimulationRecord, iso};
use super::SqliteStore;
use crate::store::StoreError;

const COLUMNS: &str = "id, created_at, finished_at, status, request, result";

fn record(row: &Row<'_>) -> rusqlite::Result<SimulationRecord> {
    let text = |i: usize| -> rusqlite::Result<Option<serde_json::Value>> {
        let raw: Option<String> = row.get(i)?;
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
    };
    let id: String = row.get(0)?;
    Ok(SimulationRecord {
        id: Uuid::parse_str(&id)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into()))?,
        created_at: iso(row.get(1)?),
        finished_at: row.get::<_, Option<i64>>(2)?.map(iso),
        status: row.get(3)?,
        request: text(4)?.unwrap_or_default(),
        result: text(5)?,
    })
}

impl SqliteStore {
    pub async fn insert_simulation(&self, id: Uuid, created_at: i64, request: String) -> Result<(), StoreError> {
        self.write(move |w| {
            w.conn.execute(
                "INSERT INTO simulations (id, created_at, status, request) VALUES (?1, ?2, 'running', ?3)",
                params![id.to_string(), created_at, request],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn finish_simulation(
        &self,
        id: Uuid,
        finished_at: i64,
        status: &'static str,
        result: Option<String>,
    ) -> Result<bool, StoreError> {
        self.write(move |w| {
            Ok(w.conn.execute(
                "UPDATE simulations SET status = ?2, finished_at = ?3, result = ?4 WHERE id = ?1",
                params![id.to_string(), status, finished_at, result],
            )? == 1)
        })
        .await
    }

    /// Simulations started before `before` and still marked running: their process is gone.
    pub async fn fail_unfinished_simulations(&self, before: i64) -> Result<u64, StoreError> {
        self.write(move |w| {
            Ok(w.conn.execute(
                "UPDATE simulations SET status = 'failed', finished_at = ?1 WHERE status = 'running' AND created_at < ?1",
                [before],
            )? as u64)
        })
        .await
    }

    pub async fn simulation(&self, id: Uuid) -> Result<Option<SimulationRecord>, StoreError> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&format!("SELECT {COLUMNS} FROM simulations WHERE id = ?1"))?
                .query_row([id.to_string()], record)
                .optional()?)
        })
        .await
    }

    /// Newest first, without their results.
    pub async fn list_simulations(&self, limit: i64, offset: i64) -> Result<Page<SimulationRecord>, StoreError> {
        self.read(move |conn| {
            let rows = conn
                .prepare_cached(
                    "SELECT id, created_at, finished_at, status, request, NULL FROM simulations
                     ORDER BY created_at DESC, id LIMIT ?1 OFFSET ?2",
                )?
                .query_map(params![limit, offset], record)?
                .collect::<Result<Vec<_>, _>>()?;
            let total = conn.query_row("SELECT count(*) FROM simulations", [], |r| r.get(0))?;
            Ok(Page { items: rows, total })
        })
        .await
    }

    pub async fn delete_simulation(&self, id: Uuid) -> Result<bool, StoreError> {
        self.write(move |w| Ok(w.conn.execute("DELETE FROM simulations WHERE id = ?1", [id.to_string()])? == 1)).await
    }
}
