//! Browser sessions, kept server-side.

use super::super::model::SessionRecord;
use super::PostgresStore;
use crate::store::StoreError;

impl PostgresStore {
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
