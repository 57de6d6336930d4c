//! Write operations other than ingest; each runs as one job of the writer thread.

use rusqlite::params;
use uuid::Uuid;

use super::super::model::{BetCheck, Deleted, Reveal};
use super::super::{LinkedStream, StreamKey};
use super::{SqliteStore, Writer, now_micros};
use crate::store::StoreError;
use crate::store::hub::LiveEvent;

impl SqliteStore {
    /// Sets (or with `None` clears) a stream's notes; `false` when the stream is gone.
    pub async fn set_notes(&self, pk: i64, notes: Option<String>) -> Result<bool, StoreError> {
        self.write(move |w| Ok(w.conn.execute("UPDATE streams SET notes = ?2 WHERE pk = ?1", params![pk, notes])? == 1))
            .await
    }

    /// Marks a stream as fed by the built-in demo.
    pub async fn mark_demo(&self, pk: i64) -> Result<bool, StoreError> {
        self.write(move |w| Ok(w.conn.execute("UPDATE streams SET demo = 1 WHERE pk = ?1", [pk])? == 1)).await
    }

    /// Deletes a stream with its bets, rounds and counters; `None` when it was already gone.
    pub async fn delete_stream(&self, key: StreamKey) -> Result<Option<Deleted>, StoreError> {
        self.write(move |w: &mut Writer| {
            let bets = w.conn.execute("DELETE FROM bets WHERE stream_pk = ?1", [key.pk])? as i64;
            w.conn.execute("DELETE FROM rounds WHERE stream_pk = ?1", [key.pk])?;
            w.conn.execute("DELETE FROM stream_multipliers WHERE stream_pk = ?1", [key.pk])?;
            let removed = w.conn.execute("DELETE FROM streams WHERE pk = ?1", [key.pk])?;
            // Cached pks must not outlive their row: the next message of this pair makes a new stream.
            w.forget_streams();
            w.deltas.remove(&key.pk);
            if removed == 0 {
                return Ok(None);
            }
            w.events.push(LiveEvent::StreamDeleted { stream_id: key.id });
            Ok(Some(Deleted { bets }))
        })
        .await
    }

    /// Stores a revealed seed (idempotent) and returns whether it is new, when it was revealed,
    /// and the streams it links to.
    pub async fn reveal_seed(&self, server_seed: String, hashed: String) -> Result<Reveal, StoreError> {
        self.write(move |w: &mut Writer| {
            let now = now_micros();
            let inserted = w.conn.execute(
                "INSERT INTO revealed_seeds (server_seed_hashed, server_seed, revealed_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
                params![hashed, server_seed, now],
            )? == 1;
            let revealed_at: i64 = w.conn.query_row(
                "SELECT revealed_at FROM revealed_seeds WHERE server_seed_hashed = ?1",
                [&hashed],
                |r| r.get(0),
            )?;
            let rows: Vec<(i64, String, String)> = w
                .conn
                .prepare_cached("SELECT pk, id, client_seed FROM streams WHERE lower(server_seed_hashed) = ?1")?
                .query_map([&hashed], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            let mut linked = Vec::with_capacity(rows.len());
            for (pk, id, client_seed) in rows {
                let id = Uuid::parse_str(&id).map_err(|e| StoreError::Internal(e.to_string()))?;
                linked.push(LinkedStream { pk, id, client_seed });
            }
            // Cached streams learn about the seed: bets arriving from now on are verified on arrival.
            w.forget_streams();
            Ok(Reveal { created: inserted, revealed_at, streams: linked })
        })
        .await
    }

    /// Records seed-reveal checks of existing bets: `(bet id, expected multiplier, matched)`.
    /// Bets checked meanwhile (on arrival) are left alone, so counters never double count.
    pub async fn record_verification(
        &self,
        pk: i64,
        stream_id: Uuid,
        results: Vec<BetCheck>,
    ) -> Result<(), StoreError> {
        self.write(move |w: &mut Writer| {
            let (mut checked, mut matched) = (0i64, 0i64);
            for &BetCheck { bet_id: id, expected_multiplier: expected, matched: ok, .. } in &results {
                let changed = w
                    .conn
                    .prepare_cached(
                        "UPDATE bets SET verified = ?2, expected_multiplier = ?3 WHERE id = ?1 AND verified IS NULL",
                    )?
                    .execute(params![id, ok, expected])?;
                if changed == 1 {
                    checked += 1;
                    matched += i64::from(ok);
                }
            }
            w.conn
                .prepare_cached(
                    "UPDATE streams SET verified_checked = verified_checked + ?2,
                        verified_matched = verified_matched + ?3,
                        verified_mismatched = verified_mismatched + (?2 - ?3)
                     WHERE pk = ?1",
                )?
                .execute(params![pk, checked, matched])?;
            if checked > 0 {
                w.events.push(LiveEvent::Verified { stream_id });
            }
            Ok(())
        })
        .await
    }
}
