//! Edits of the PostgreSQL backend other than ingest: stream notes, demo marks and deletes,
//! seed reveal and verification results, settings.

use deadpool_postgres::{Client, Transaction};
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::super::model::{BetCheck, Deleted, Reveal};
use super::super::{LinkedStream, StreamKey};
use super::{PostgresStore, commit, now_micros};
use crate::store::StoreError;
use crate::store::hub::LiveEvent;

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
        let tx = client.transaction().await?;
        // The row lock waits for an ingest transaction adding to the stream, so its bets are
        // counted, and keeps new ones out until the stream is gone.
        if tx.query_opt("SELECT 1 FROM streams WHERE pk = $1 FOR UPDATE", &[&key.pk]).await?.is_none() {
            return Ok(None);
        }
        let bets = tx.execute("DELETE FROM bets WHERE stream_pk = $1", &[&key.pk]).await? as i64;
        tx.execute("DELETE FROM rounds WHERE stream_pk = $1", &[&key.pk]).await?;
        tx.execute("DELETE FROM stream_multipliers WHERE stream_pk = $1", &[&key.pk]).await?;
        tx.execute("DELETE FROM bet_checks WHERE stream_pk = $1", &[&key.pk]).await?;
        tx.execute("DELETE FROM streams WHERE pk = $1", &[&key.pk]).await?;
        commit(tx, &[LiveEvent::StreamDeleted { stream_id: key.id }]).await?;
        Ok(Some(Deleted { bets }))
    }

    pub async fn reveal_seed(&self, server_seed: String, hashed: String) -> Result<Reveal, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
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
        // Locking the linked streams waits for the ingest transactions adding to them: each either
        // read the seed (it locks, then reads the seeds) and verified on arrival, or commits
        // before this and its bets are there for the verifier, which starts after this commit.
        let linked = tx
            .query(
                "SELECT pk, id, client_seed FROM streams WHERE lower(server_seed_hashed) = $1 ORDER BY pk FOR NO KEY UPDATE",
                &[&hashed],
            )
            .await?
            .iter()
            .map(|r| Ok(LinkedStream { pk: r.try_get(0)?, id: r.try_get(1)?, client_seed: r.try_get(2)? }))
            .collect::<Result<Vec<_>, StoreError>>()?;
        commit(tx, &[]).await?;
        Ok(Reveal { created: inserted, revealed_at, streams: linked })
    }

    /// Records checks of existing bets (read unchecked by `unverified_bets`) as rows of
    /// `bet_checks`. They are copied in (`COPY … BINARY` costs PostgreSQL about half of what an
    /// `INSERT … ON CONFLICT` of the same rows does); a bet already checked (two verifications of
    /// one stream at once) fails the copy, and the chunk is then inserted skipping the rows that
    /// exist, so that each bet counts once.
    pub async fn record_verification(
        &self,
        pk: i64,
        stream_id: Uuid,
        results: Vec<BetCheck>,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        match copy_checks(&tx, pk, &results).await {
            Ok(checked) => {
                let matched = results.iter().filter(|r| r.matched).count() as i64;
                count_and_commit(tx, pk, stream_id, checked, matched).await
            }
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
                drop(tx);
                insert_checks(&mut client, pk, stream_id, &results).await
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Copies a chunk's checks into `bet_checks`; answers how many rows it added.
async fn copy_checks(tx: &Transaction<'_>, pk: i64, results: &[BetCheck]) -> Result<i64, tokio_postgres::Error> {
    use tokio_postgres::types::Type;
    let sink = tx
        .copy_in("COPY bet_checks (bet_id, stream_pk, nonce, verified, expected_multiplier) FROM STDIN BINARY")
        .await?;
    let types = [Type::INT8, Type::INT8, Type::INT8, Type::BOOL, Type::FLOAT8];
    let mut writer = std::pin::pin!(tokio_postgres::binary_copy::BinaryCopyInWriter::new(sink, &types));
    for check in results {
        let row: [&(dyn ToSql + Sync); 5] =
            [&check.bet_id, &pk, &check.nonce, &check.matched, &check.expected_multiplier];
        writer.as_mut().write(&row).await?;
    }
    Ok(i64::try_from(writer.finish().await?).unwrap_or(i64::MAX))
}

/// Inserts a chunk's checks, skipping the bets already checked, and counts the new ones.
async fn insert_checks(client: &mut Client, pk: i64, stream_id: Uuid, results: &[BetCheck]) -> Result<(), StoreError> {
    let ids: Vec<i64> = results.iter().map(|r| r.bet_id).collect();
    let nonces: Vec<i64> = results.iter().map(|r| r.nonce).collect();
    let expected: Vec<f64> = results.iter().map(|r| r.expected_multiplier).collect();
    let ok: Vec<bool> = results.iter().map(|r| r.matched).collect();
    let tx = client.transaction().await?;
    let row = tx
        .query_one(
            "WITH added AS (
                INSERT INTO bet_checks (bet_id, stream_pk, nonce, verified, expected_multiplier)
                SELECT id, $1, nonce, ok, expected FROM unnest($2::bigint[], $3::bigint[], $4::float8[], $5::bool[])
                     AS t(id, nonce, expected, ok)
                ON CONFLICT DO NOTHING RETURNING verified)
             SELECT count(*), count(*) FILTER (WHERE verified) FROM added",
            &[&pk, &ids, &nonces, &expected, &ok],
        )
        .await?;
    let (checked, matched): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
    count_and_commit(tx, pk, stream_id, checked, matched).await
}

/// Adds a chunk's checks to the stream's verification counters and commits, telling live
/// clients when any were new.
async fn count_and_commit(
    tx: Transaction<'_>,
    pk: i64,
    stream_id: Uuid,
    checked: i64,
    matched: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE streams SET verified_checked = verified_checked + $2, verified_matched = verified_matched + $3,
            verified_mismatched = verified_mismatched + ($2 - $3) WHERE pk = $1",
        &[&pk, &checked, &matched],
    )
    .await?;
    let events = if checked > 0 { vec![LiveEvent::Verified { stream_id }] } else { Vec::new() };
    commit(tx, &events).await
}
