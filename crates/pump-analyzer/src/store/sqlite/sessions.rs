//! Browser sessions in SQLite.

use rusqlite::{OptionalExtension, params};

use super::super::model::SessionRecord;
use super::{SqliteStore, Writer};
use crate::store::StoreError;

impl SqliteStore {
    pub async fn create_session(&self, record: SessionRecord) -> Result<(), StoreError> {
        self.write(move |w: &mut Writer| {
            w.conn.execute(
                "INSERT INTO sessions (secret_hash, public_id, csrf_token, created_at, last_activity, authenticated)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    record.secret_hash,
                    record.public_id,
                    record.csrf_token,
                    record.created_at,
                    record.last_activity,
                    record.authenticated
                ],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn session(&self, secret_hash: String) -> Result<Option<SessionRecord>, StoreError> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT secret_hash, public_id, csrf_token, created_at, last_activity, authenticated
                     FROM sessions WHERE secret_hash = ?1",
                )?
                .query_row([secret_hash], |r| {
                    Ok(SessionRecord {
                        secret_hash: r.get(0)?,
                        public_id: r.get(1)?,
                        csrf_token: r.get(2)?,
                        created_at: r.get(3)?,
                        last_activity: r.get(4)?,
                        authenticated: r.get(5)?,
                    })
                })
                .optional()?)
        })
        .await
    }

    /// Records activity; `false` when the session is gone.
    pub async fn touch_session(&self, secret_hash: String, now: i64) -> Result<bool, StoreError> {
        self.write(move |w: &mut Writer| {
            Ok(w.conn.execute(
                "UPDATE sessions SET last_activity = max(last_activity, ?2) WHERE secret_hash = ?1",
                params![secret_hash, now],
            )? == 1)
        })
        .await
    }

    pub async fn delete_session(&self, secret_hash: String) -> Result<bool, StoreError> {
        self.write(move |w: &mut Writer| {
            Ok(w.conn.execute("DELETE FROM sessions WHERE secret_hash = ?1", [&secret_hash])? == 1)
        })
        .await
    }

    /// Deletes sessions idle since before `idle_before` or created before `created_before`.
    pub async fn purge_sessions(&self, idle_before: i64, created_before: i64) -> Result<usize, StoreError> {
        self.write(move |w: &mut Writer| {
            Ok(w.conn.execute(
                "DELETE FROM sessions WHERE last_activity < ?1 OR created_at < ?2",
                params![idle_before, created_before],
            )?)
        })
        .await
    }

    pub async fn count_sessions(&self) -> Result<i64, StoreError> {
        self.read(|conn| Ok(conn.query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))?)).await
    }
}
