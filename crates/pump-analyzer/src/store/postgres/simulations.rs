//! Strategy simulations: the request when one starts, the result when it ends.

use tokio_postgres::Row;
use uuid::Uuid;

use super::super::model::{Page, SimulationRecord, iso};
use super::PostgresStore;
use crate::store::StoreError;

const COLUMNS: &str = "id, created_at, finished_at, status, request, result";

fn record(row: &Row) -> Result<SimulationRecord, StoreError> {
    let json = |raw: Option<String>| raw.and_then(|r| serde_json::from_str(&r).ok());
    Ok(SimulationRecord {
        id: row.try_get(0)?,
        created_at: iso(row.try_get(1)?),
        finished_at: row.try_get::<_, Option<i64>>(2)?.map(iso),
        status: row.try_get(3)?,
        request: json(row.try_get(4)?).unwrap_or_default(),
        result: json(row.try_get(5)?),
    })
}

impl PostgresStore {
    pub async fn insert_simulation(&self, id: Uuid, created_at: i64, request: String) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO simulations (id, created_at, status, request) VALUES ($1, $2, 'running', $3)",
                &[&id, &created_at, &request],
            )
            .await?;
        Ok(())
    }

    pub async fn finish_simulation(
        &self,
        id: Uuid,
        finished_at: i64,
        status: &'static str,
        result: Option<String>,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let changed = client
            .execute(
                "UPDATE simulations SET status = $2, finished_at = $3, result = $4 WHERE id = $1",
                &[&id, &status, &finished_at, &result],
            )
            .await?;
        Ok(changed == 1)
    }

    /// Simulations started before `before` and still marked running: their process is gone.
    pub async fn fail_unfinished_simulations(&self, before: i64) -> Result<u64, StoreError> {
        let client = self.client().await?;
        Ok(client
            .execute(
                "UPDATE simulations SET status = 'failed', finished_at = $1 WHERE status = 'running' AND created_at < $1",
                &[&before],
            )
            .await?)
    }

    pub async fn simulation(&self, id: Uuid) -> Result<Option<SimulationRecord>, StoreError> {
        let client = self.client().await?;
        let row = client.query_opt(&format!("SELECT {COLUMNS} FROM simulations WHERE id = $1"), &[&id]).await?;
        row.as_ref().map(record).transpose()
    }

    /// Newest first, without their results.
    pub async fn list_simulations(&self, limit: i64, offset: i64) -> Result<Page<SimulationRecord>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, created_at, finished_at, status, request, NULL::TEXT FROM simulations
                 ORDER BY created_at DESC, id LIMIT $1 OFFSET $2",
                &[&limit, &offset],
            )
            .await?;
        let total: i64 = client.query_one("SELECT count(*) FROM simulations", &[]).await?.try_get(0)?;
        Ok(Page { items: rows.iter().map(record).collect::<Result<_, _>>()?, total })
    }

    pub async fn delete_simulation(&self, id: Uuid) -> Result<bool, StoreError> {
        let client = self.client().await?;
        Ok(client.execute("DELETE FROM simulations WHERE id = $1", &[&id]).await? == 1)
    }
}
