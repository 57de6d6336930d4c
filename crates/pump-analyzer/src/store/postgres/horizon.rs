//! The bet-id horizon: the highest bet id at or below which every bet is final (committed, or
//! rolled back and never to appear).
//!
//! Ingest transactions run concurrently, within one instance and across instances, so bet ids
//! do not commit in id order: a transaction that drew ids 100–110 may commit after one that drew
//! 111–120. SSE resumes by bet id (`Last-Event-ID`), and a client that saw 120 before 100 existed
//! would never be sent 100. So bets are shown only up to the horizon, and the horizon is found
//! without any lock that writers take:
//!
//! 1. Every ingest transaction marks itself (`SET LOCAL application_name`) and takes its
//!    transaction id *before* it draws a bet id (see `ingest.rs`).
//! 2. [`settled`] reads the bet id sequence (`L`), then, in a later statement, lists the marked
//!    transactions that hold a transaction id. Any transaction holding an id ≤ `L` drew it before
//!    `L` was read, so it had its transaction id by then: it has finished or it is in that list.
//! 3. Once none of the listed transactions is still running, every bet id ≤ `L` is final.
//!
//! Step 3 waits for at most the ingest transactions already running (a few milliseconds);
//! transactions that start later draw ids above `L` and are not waited for. Transactions of
//! anything else (a `psql` session left open, another database) are never waited for. The list
//! comes from `pg_stat_activity`, which shows every session's transaction id to sessions of the
//! same role: instances sharing a database connect as one role (or one with `pg_read_all_stats`).

use std::time::Duration;

use tokio_postgres::{Client, Statement};

use crate::store::StoreError;

/// The `application_name` an ingest transaction carries while it runs.
pub(super) const INGEST_MARK: &str = "pump-analyzer ingest";
/// Pause between two looks at the running transactions.
const POLL: Duration = Duration::from_millis(1);
/// Longest wait for running ingest transactions (they time out after `WRITE_TIMEOUT`).
const MAX_WAIT: Duration = Duration::from_secs(15);

const LAST_ID: &str = "SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence('bets', 'id')::regclass), 0)";
const RUNNING: &str = "SELECT coalesce(array_agg(backend_xid::text), '{}') FROM pg_stat_activity
    WHERE datname = current_database() AND application_name = $1 AND backend_xid IS NOT NULL";
const STILL_RUNNING: &str = "SELECT count(*) FROM pg_stat_activity WHERE backend_xid::text = ANY($1::text[])";

/// The three statements of [`Probe::settled`], prepared on one connection.
pub(super) struct Probe {
    last: Statement,
    running: Statement,
    still: Statement,
}

impl Probe {
    /// For a connection of its own (the LISTEN connection).
    pub(super) async fn prepare(client: &Client) -> Result<Self, StoreError> {
        let (last, running, still) =
            tokio::try_join!(client.prepare(LAST_ID), client.prepare(RUNNING), client.prepare(STILL_RUNNING))?;
        Ok(Self { last, running, still })
    }

    /// For a pooled connection, whose statement cache keeps them.
    pub(super) async fn cached(client: &deadpool_postgres::Object) -> Result<Self, StoreError> {
        let (last, running, still) = tokio::try_join!(
            client.prepare_cached(LAST_ID),
            client.prepare_cached(RUNNING),
            client.prepare_cached(STILL_RUNNING)
        )?;
        Ok(Self { last, running, still })
    }

    /// The last bet id drawn so far, and the running ingest transactions that may hold ids up
    /// to it.
    async fn sample(&self, client: &Client) -> Result<(i64, Vec<String>), StoreError> {
        // Two statements, in this order: each takes its own snapshot, so the list is read after
        // the sequence.
        let (last, running) = tokio::try_join!(
            biased;
            client.query_one(&self.last, &[]),
            client.query_one(&self.running, &[&INGEST_MARK])
        )?;
        Ok((last.try_get(0)?, running.try_get(0)?))
    }

    /// Waits until none of `xids` is running.
    async fn wait_finished(&self, client: &Client, xids: &[String]) -> Result<(), StoreError> {
        let started = tokio::time::Instant::now();
        while !xids.is_empty() {
            let running: i64 = client.query_one(&self.still, &[&xids]).await?.try_get(0)?;
            if running == 0 {
                break;
            }
            if started.elapsed() > MAX_WAIT {
                return Err(StoreError::Unavailable("an ingest transaction did not finish in time".into()));
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(())
    }

    /// A bet id at or below which every bet is final, and at or above every id committed before
    /// the call: a reader that reads up to it after it returns sees every bet up to it, and never
    /// a lower one later.
    pub(super) async fn settled(&self, client: &Client) -> Result<i64, StoreError> {
        let (last, running) = self.sample(client).await?;
        self.wait_finished(client, &running).await?;
        Ok(last)
    }
}
