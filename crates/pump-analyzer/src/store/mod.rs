//! The storage interface. Every SQL statement of the program lives below this module; callers see
//! typed operations only, so SQLite and PostgreSQL differ only here (SPEC §6, STYLE rule 4).

mod sqlite;

use std::fmt;
use std::sync::Arc;

use uuid::Uuid;

use crate::config::{DatabaseUrl, SecretKeySource};
use crate::live::message::Message;

pub use sqlite::SqliteStore;

/// A storage failure. None of these is the client's fault.
#[derive(Debug, Clone)]
pub enum StoreError {
    /// The database cannot take the request now (closed, locked, disk full, read-only): 503.
    Unavailable(String),
    /// Anything else: 500, details logged and never sent.
    Internal(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Unavailable(m) => write!(f, "database unavailable: {m}"),
            StoreError::Internal(m) => write!(f, "database error: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// What happened to one ingested message.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestOutcome {
    pub stream_id: Uuid,
    /// This message created the stream.
    pub new_stream: bool,
    /// Stored now; `false` means the same bet id (or, for a heartbeat, the same nonce) was
    /// already stored for this stream and nothing changed.
    pub accepted: bool,
    /// The id assigned to a newly stored bet.
    pub bet_id: Option<i64>,
}

/// Storage limits that come from configuration.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    pub rounds_retention: u64,
}

/// The storage backend in use. Cheap to clone.
#[derive(Clone)]
pub enum Store {
    Sqlite(Arc<SqliteStore>),
}

impl Store {
    /// Opens (creating when missing) and migrates the database named by `url`.
    pub async fn open(url: &DatabaseUrl, options: StoreOptions) -> Result<Self, StoreError> {
        match url {
            DatabaseUrl::Sqlite(path) => {
                let path = path.clone();
                let store = tokio::task::spawn_blocking(move || SqliteStore::open(&path, options))
                    .await
                    .map_err(|e| StoreError::Internal(e.to_string()))??;
                Ok(Store::Sqlite(Arc::new(store)))
            }
            DatabaseUrl::Postgres(_) => Err(StoreError::Unavailable(
                "PostgreSQL is not supported by this build yet; use DATABASE_URL=sqlite://PATH".into(),
            )),
        }
    }

    /// Stores validated messages atomically with respect to each other and durably: when this
    /// returns `Ok`, the data has been committed (SPEC §3.1 "Acknowledged means durable").
    pub async fn ingest(&self, messages: Vec<Message>) -> Result<Vec<IngestOutcome>, StoreError> {
        match self {
            Store::Sqlite(s) => s.ingest(messages).await,
        }
    }

    /// The cookie-signing secret: the configured one, else the one generated on first start and
    /// kept in the database.
    pub async fn secret_key(&self, configured: Option<&str>) -> Result<(String, SecretKeySource), StoreError> {
        if let Some(key) = configured {
            return Ok((key.to_string(), SecretKeySource::Environment));
        }
        let fresh = crate::security::random_hex(32);
        let (key, created) = match self {
            Store::Sqlite(s) => s.setting_or_insert("secret_key", fresh).await?,
        };
        let source = if created { SecretKeySource::GeneratedAndStored } else { SecretKeySource::LoadedFromDatabase };
        Ok((key, source))
    }

    /// Cheap liveness check of the database.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.ping().await,
        }
    }
}
