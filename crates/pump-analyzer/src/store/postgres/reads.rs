//! Read queries of the PostgreSQL backend (pooled connections; readers never wait for writers).

use std::collections::BTreeMap;

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::super::model::*;
use super::super::{CadenceData, RoundScan, StreamKey};
use super::PostgresStore;
use super::horizon::Probe;
use crate::store::StoreError;
use pump_engine::tables::cents;

type Client = deadpool_postgres::Object;

const SUMMARY_COLUMNS: &str = "s.pk, s.id, s.server_seed_hashed, s.client_seed, s.created_at, s.last_seen_at,
    s.total_bets, s.highest_multiplier, s.last_observed_nonce, s.notes, s.rounds_count,
    s.verified_checked, s.verified_matched, s.verified_mismatched, r.server_seed IS NOT NULL, s.demo";
const SUMMARY_FROM: &str = "streams s LEFT JOIN revealed_seeds r ON r.server_seed_hashed = lower(s.server_seed_hashed)";
const BET_COLUMNS: &str = "b.id, s.id, b.antebot_bet_id, b.received_at, b.date_time, b.nonce, b.amount, b.payout,
    b.payout_multiplier, b.difficulty, b.round_target, b.round_result, coalesce(b.verified, c.verified),
    coalesce(b.expected_multiplier, c.expected_multiplier),
    b.nonce - (SELECT max(p.nonce) FROM bets p
               WHERE p.stream_pk = b.stream_pk AND p.mult_cents = b.mult_cents AND p.nonce < b.nonce)";
/// A bet's check is on its row (verified on arrival) or in `bet_checks` (verified after a reveal).
const BET_FROM: &str = "bets b JOIN streams s ON s.pk = b.stream_pk LEFT JOIN bet_checks c ON c.bet_id = b.id";

/// Bets with ids in `($1, $2]`, in id order, at most `$3` (what the listener publishes).
pub(super) fn bets_between_sql() -> String {
    format!("SELECT {BET_COLUMNS} FROM {BET_FROM} WHERE b.id > $1 AND b.id <= $2 ORDER BY b.id LIMIT $3")
}

fn bet_row(row: &Row) -> Result<BetRecord, StoreError> {
    Ok(BetRecord {
        id: row.try_get(0)?,
        stream_id: row.try_get(1)?,
        antebot_bet_id: row.try_get(2)?,
        received_at: iso(row.try_get(3)?),
        date_time: row.try_get::<_, Option<i64>>(4)?.map(iso),
        nonce: row.try_get(5)?,
        amount: row.try_get(6)?,
        payout: row.try_get(7)?,
        payout_multiplier: row.try_get(8)?,
        difficulty: crate::store::stored_difficulty(&row.try_get::<_, String>(9)?)?,
        round_target: row.try_get(10)?,
        round_result: row.try_get(11)?,
        verified: row.try_get(12)?,
        expected_multiplier: row.try_get(13)?,
        distance_prev: row.try_get(14)?,
    })
}

pub(super) fn bets(rows: Vec<Row>) -> Result<Vec<BetRecord>, StoreError> {
    rows.iter().map(bet_row).collect()
}

fn summary_row(row: &Row) -> Result<(i64, StreamSummary), StoreError> {
    let revealed: bool = row.try_get(14)?;
    let total_bets: i64 = row.try_get(6)?;
    let checked: i64 = row.try_get(11)?;
    let summary = StreamSummary {
        id: row.try_get(1)?,
        server_seed_hashed: row.try_get(2)?,
        client_seed: row.try_get(3)?,
        created_at: iso(row.try_get(4)?),
        last_seen_at: iso(row.try_get(5)?),
        total_bets,
        highest_multiplier: row.try_get(7)?,
        last_observed_nonce: row.try_get(8)?,
        notes: row.try_get(9)?,
        rounds_count: row.try_get(10)?,
        seed_revealed: revealed,
        demo: row.try_get(15)?,
        verified: if revealed {
            Some(Verified {
                checked,
                matched: row.try_get(12)?,
                mismatched: row.try_get(13)?,
                first_mismatch: None,
                pending: (total_bets - checked).max(0),
            })
        } else {
            None
        },
    };
    Ok((row.try_get(0)?, summary))
}

fn round_rows(rows: Vec<Row>) -> Result<Vec<Round>, StoreError> {
    rows.iter().map(|r| Ok(Round { nonce: r.try_get(0)?, round_result: r.try_get(1)? })).collect()
}

async fn complete(client: &Client, pk: i64, mut summary: StreamSummary) -> Result<StreamSummary, StoreError> {
    if let Some(v) = summary.verified.as_mut()
        && v.mismatched > 0
    {
        let statement = client
            .prepare_cached(
                "SELECT * FROM (
                    (SELECT id, antebot_bet_id, nonce, difficulty, round_result, expected_multiplier FROM bets
                     WHERE stream_pk = $1 AND verified = false ORDER BY nonce, id LIMIT 1)
                    UNION ALL
                    (SELECT b.id, b.antebot_bet_id, b.nonce, b.difficulty, b.round_result, c.expected_multiplier
                     FROM bet_checks c JOIN bets b ON b.id = c.bet_id
                     WHERE c.stream_pk = $1 AND NOT c.verified ORDER BY c.nonce, c.bet_id LIMIT 1)) first
                 ORDER BY nonce, id LIMIT 1",
            )
            .await?;
        v.first_mismatch = match client.query_opt(&statement, &[&pk]).await? {
            Some(r) => Some(Mismatch {
                bet_id: r.try_get(0)?,
                antebot_bet_id: r.try_get(1)?,
                nonce: r.try_get(2)?,
                difficulty: crate::store::stored_difficulty(&r.try_get::<_, String>(3)?)?,
                round_result: r.try_get(4)?,
                expected_multiplier: r.try_get(5)?,
            }),
            None => None,
        };
    }
    Ok(summary)
}

async fn difficulty_of(client: &Client, pk: i64) -> Result<Option<pump_engine::Difficulty>, StoreError> {
    let statement = client
        .prepare_cached("SELECT difficulty FROM stream_multipliers WHERE stream_pk = $1 ORDER BY last_bet DESC LIMIT 1")
        .await?;
    let raw: Option<String> = client.query_opt(&statement, &[&pk]).await?.map(|r| r.try_get(0)).transpose()?;
    raw.as_deref().map(crate::store::stored_difficulty).transpose()
}

impl PostgresStore {
    pub async fn stream_key(&self, id: Uuid) -> Result<Option<StreamKey>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached("SELECT pk, last_observed_nonce FROM streams WHERE id = $1").await?;
        match client.query_opt(&statement, &[&id]).await? {
            Some(r) => Ok(Some(StreamKey { pk: r.try_get(0)?, id, last_observed_nonce: r.try_get(1)? })),
            None => Ok(None),
        }
    }

    pub async fn list_streams(&self, limit: i64, offset: i64) -> Result<Page<StreamSummary>, StoreError> {
        let client = self.client().await?;
        let total: i64 = client.query_one("SELECT count(*) FROM streams", &[]).await?.try_get(0)?;
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM {SUMMARY_FROM} ORDER BY s.last_seen_at DESC, s.pk DESC LIMIT $1 OFFSET $2"
        );
        let statement = client.prepare_cached(&sql).await?;
        let rows = client.query(&statement, &[&limit, &offset]).await?;
        let mut streams = Vec::with_capacity(rows.len());
        for row in &rows {
            let (pk, summary) = summary_row(row)?;
            streams.push(complete(&client, pk, summary).await?);
        }
        Ok(Page { items: streams, total })
    }

    pub async fn stream_detail(&self, id: Uuid) -> Result<Option<StreamDetail>, StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS}, s.lowest_multiplier, s.sum_multiplier, s.total_amount, s.total_payout,
                    r.server_seed
             FROM {SUMMARY_FROM} WHERE s.id = $1"
        );
        let statement = client.prepare_cached(&sql).await?;
        let Some(row) = client.query_opt(&statement, &[&id]).await? else { return Ok(None) };
        let (pk, summary) = summary_row(&row)?;
        let lowest: Option<f64> = row.try_get(16)?;
        let sum: f64 = row.try_get(17)?;
        let summary = complete(&client, pk, summary).await?;
        let breakdown_statement = client
            .prepare_cached(
                "SELECT difficulty, sum(bets)::bigint FROM stream_multipliers WHERE stream_pk = $1 GROUP BY difficulty",
            )
            .await?;
        let breakdown = client
            .query(&breakdown_statement, &[&pk])
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<BTreeMap<String, i64>, StoreError>>()?;
        let sql = format!(
            "SELECT {BET_COLUMNS} FROM {BET_FROM} WHERE b.stream_pk = $1 ORDER BY b.nonce DESC, b.id DESC LIMIT 10"
        );
        let recent_bets = bets(client.query(&client.prepare_cached(&sql).await?, &[&pk]).await?)?;
        let average = (summary.total_bets > 0).then(|| sum / summary.total_bets as f64);
        Ok(Some(StreamDetail {
            difficulty: difficulty_of(&client, pk).await?,
            summary,
            lowest_multiplier: lowest,
            average_multiplier: average,
            total_amount: row.try_get(18)?,
            total_payout: row.try_get(19)?,
            difficulty_breakdown: breakdown,
            server_seed: row.try_get(20)?,
            recent_bets,
        }))
    }

    pub async fn bets(&self, key: StreamKey, query: BetQuery) -> Result<BetPage, StoreError> {
        let client = self.client().await?;
        let min_cents = query.min_multiplier.map(cents);
        let mut args: Vec<&(dyn ToSql + Sync)> = vec![&key.pk];
        let mut filter = String::from("b.stream_pk = $1");
        let mut count_filter = String::from("stream_pk = $1");
        if let Some(min) = &min_cents {
            args.push(min);
            filter.push_str(&format!(" AND b.mult_cents >= ${}", args.len()));
            count_filter.push_str(&format!(" AND mult_cents >= ${}", args.len()));
        }
        let difficulty = query.difficulty.map(|d| d.as_str());
        if let Some(d) = &difficulty {
            args.push(d);
            filter.push_str(&format!(" AND b.difficulty = ${}", args.len()));
            count_filter.push_str(&format!(" AND difficulty = ${}", args.len()));
        }
        // Exact totals from the per-multiplier counters: a sum over a few dozen rows.
        let count_sql = format!("SELECT coalesce(sum(bets), 0)::bigint FROM stream_multipliers WHERE {count_filter}");
        let total: i64 = client.query_one(&client.prepare_cached(&count_sql).await?, &args).await?.try_get(0)?;
        if total == 0 || query.offset >= total {
            return Ok(BetPage {
                bets: Vec::new(),
                total,
                limit: query.limit,
                offset: query.offset,
                stream_id: key.id,
            });
        }
        let order = match query.order {
            BetOrder::NonceAsc => "b.nonce ASC, b.id ASC",
            BetOrder::IdDesc => "b.id DESC",
        };
        let sql = format!(
            "SELECT {BET_COLUMNS} FROM {BET_FROM} WHERE {filter} ORDER BY {order} LIMIT ${} OFFSET ${}",
            args.len() + 1,
            args.len() + 2
        );
        args.push(&query.limit);
        args.push(&query.offset);
        let page = bets(client.query(&client.prepare_cached(&sql).await?, &args).await?)?;
        Ok(BetPage { bets: page, total, limit: query.limit, offset: query.offset, stream_id: key.id })
    }

    /// Bets after `since_id`, up to the horizon (see `horizon.rs`): ids above it may still be
    /// joined by lower ones, so a reader that went past it could skip those for good.
    pub async fn bets_since(&self, stream: Option<i64>, since_id: i64, limit: i64) -> Result<Tail, StoreError> {
        let client = self.client().await?;
        let horizon = Probe::cached(&client).await?.settled(&client).await?;
        let fetch = limit + 1;
        let rows = match stream {
            Some(pk) => {
                let sql = format!(
                    "SELECT {BET_COLUMNS} FROM {BET_FROM}
                     WHERE b.stream_pk = $1 AND b.id > $2 AND b.id <= $4 ORDER BY b.id LIMIT $3"
                );
                client.query(&client.prepare_cached(&sql).await?, &[&pk, &since_id, &fetch, &horizon]).await?
            }
            None => {
                let sql = format!(
                    "SELECT {BET_COLUMNS} FROM {BET_FROM} WHERE b.id > $1 AND b.id <= $3 ORDER BY b.id LIMIT $2"
                );
                client.query(&client.prepare_cached(&sql).await?, &[&since_id, &fetch, &horizon]).await?
            }
        };
        let mut bets = bets(rows)?;
        let has_more = bets.len() as i64 > limit;
        bets.truncate(limit as usize);
        let last_id = bets.last().map_or(since_id, |b| b.id);
        Ok(Tail { bets, last_id, has_more })
    }

    /// The horizon: every bet after it is yet to be shown.
    pub async fn last_bet_id(&self) -> Result<i64, StoreError> {
        let client = self.client().await?;
        Probe::cached(&client).await?.settled(&client).await
    }

    pub async fn rounds(&self, pk: i64, since_nonce: Option<i64>, limit: i64) -> Result<Vec<Round>, StoreError> {
        let client = self.client().await?;
        match since_nonce {
            Some(since) => {
                let statement = client
                    .prepare_cached(
                        "SELECT nonce, round_result FROM rounds WHERE stream_pk = $1 AND nonce > $2 ORDER BY nonce LIMIT $3",
                    )
                    .await?;
                round_rows(client.query(&statement, &[&pk, &since, &limit]).await?)
            }
            None => {
                let mut rounds = recent_rounds(&client, pk, limit).await?;
                rounds.reverse();
                Ok(rounds)
            }
        }
    }

    pub async fn round_scan(&self, key: StreamKey, min_result: f64, recent: i64) -> Result<CadenceData, StoreError> {
        let client = self.client().await?;
        // cents(r) >= m exactly when r * 100 >= m - 0.5 (the engine rounds ties away from zero);
        // both sides are the same IEEE doubles the engine computes.
        let threshold = cents(min_result) as f64 - 0.5;
        let statement = client
            .prepare_cached(
                "SELECT nonce, round_result FROM rounds WHERE stream_pk = $1 AND round_result * 100 >= $2 ORDER BY nonce",
            )
            .await?;
        let hits = round_rows(client.query(&statement, &[&key.pk, &threshold]).await?)?;
        let mut last = recent_rounds(&client, key.pk, recent).await?;
        last.reverse();
        let first_nonce: Option<i64> =
            client.query_one("SELECT min(nonce) FROM rounds WHERE stream_pk = $1", &[&key.pk]).await?.try_get(0)?;
        let row =
            client.query_one("SELECT rounds_count, last_observed_nonce FROM streams WHERE pk = $1", &[&key.pk]).await?;
        Ok(CadenceData {
            scan: RoundScan { hits, recent: last, first_nonce, rounds_count: row.try_get(0)? },
            last_observed_nonce: row.try_get(1)?,
            difficulty: difficulty_of(&client, key.pk).await?,
        })
    }

    pub async fn export_chunk(&self, pk: i64, after: (i64, i64), limit: i64) -> Result<Vec<BetRecord>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT b.id, s.id, b.antebot_bet_id, b.received_at, b.date_time, b.nonce, b.amount, b.payout,
                        b.payout_multiplier, b.difficulty, b.round_target, b.round_result,
                        coalesce(b.verified, c.verified), coalesce(b.expected_multiplier, c.expected_multiplier),
                        NULL::bigint
                 FROM bets b JOIN streams s ON s.pk = b.stream_pk LEFT JOIN bet_checks c ON c.bet_id = b.id
                 WHERE b.stream_pk = $1 AND (b.nonce, b.id) > ($2, $3) ORDER BY b.nonce, b.id LIMIT $4",
            )
            .await?;
        bets(client.query(&statement, &[&pk, &after.0, &after.1, &limit]).await?)
    }

    pub async fn revealed_seeds(&self) -> Result<Vec<RevealedSeed>, StoreError> {
        let client = self.client().await?;
        let seeds = client
            .query(
                "SELECT server_seed, server_seed_hashed, revealed_at FROM revealed_seeds ORDER BY revealed_at DESC",
                &[],
            )
            .await?;
        let statement = client
            .prepare_cached(
                "SELECT id, created_at, last_seen_at FROM streams WHERE lower(server_seed_hashed) = $1 ORDER BY created_at",
            )
            .await?;
        let mut out = Vec::with_capacity(seeds.len());
        for seed in seeds {
            let hashed: String = seed.try_get(1)?;
            let streams = client.query(&statement, &[&hashed]).await?;
            let mut ids = Vec::with_capacity(streams.len());
            let (mut first, mut last): (Option<i64>, Option<i64>) = (None, None);
            for s in &streams {
                ids.push(s.try_get::<_, Uuid>(0)?);
                let (created, seen): (i64, i64) = (s.try_get(1)?, s.try_get(2)?);
                first = Some(first.map_or(created, |f| f.min(created)));
                last = Some(last.map_or(seen, |l| l.max(seen)));
            }
            out.push(RevealedSeed {
                server_seed: seed.try_get(0)?,
                server_seed_hashed: hashed,
                revealed_at: iso(seed.try_get(2)?),
                streams: ids,
                first_seen: first.map(iso),
                last_seen: last.map(iso),
            });
        }
        Ok(out)
    }

    pub async fn unverified_bets(
        &self,
        pk: i64,
        after: (i64, i64),
        limit: i64,
    ) -> Result<Vec<UnverifiedBet>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT id, nonce, difficulty, round_result FROM bets
                 WHERE stream_pk = $1 AND (nonce, id) > ($2, $3) AND verified IS NULL ORDER BY nonce, id LIMIT $4",
            )
            .await?;
        // A verification often starts right after many bets arrived. Until autovacuum has
        // analyzed them, the planner takes the table for small and would sort every bet of the
        // stream for each chunk: in this transaction it may only read the chunk off the
        // (stream, nonce) index.
        let plan = "BEGIN; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_seqscan = off";
        let begin = async { client.batch_execute(plan).await.map_err(StoreError::from) };
        let read =
            async { client.query(&statement, &[&pk, &after.0, &after.1, &limit]).await.map_err(StoreError::from) };
        let end = async { client.batch_execute("COMMIT").await.map_err(StoreError::from) };
        let (_, rows, _) = tokio::try_join!(biased; begin, read, end)?;
        let rows = rows
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
            .collect::<Result<Vec<(i64, i64, String, f64)>, StoreError>>()?;
        Ok(crate::store::unverified(rows))
    }

    pub async fn streams_to_verify(&self) -> Result<Vec<StreamToVerify>, StoreError> {
        let client = self.client().await?;
        client
            .query(
                "SELECT s.pk, s.id, r.server_seed, s.client_seed FROM streams s
                 JOIN revealed_seeds r ON r.server_seed_hashed = lower(s.server_seed_hashed)
                 WHERE s.verified_checked < s.total_bets",
                &[],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(StreamToVerify {
                    pk: r.try_get(0)?,
                    id: r.try_get(1)?,
                    server_seed: r.try_get(2)?,
                    client_seed: r.try_get(3)?,
                })
            })
            .collect()
    }
}

/// The last `limit` rounds of a stream, newest first.
async fn recent_rounds(client: &Client, pk: i64, limit: i64) -> Result<Vec<Round>, StoreError> {
    let statement = client
        .prepare_cached("SELECT nonce, round_result FROM rounds WHERE stream_pk = $1 ORDER BY nonce DESC LIMIT $2")
        .await?;
    round_rows(client.query(&statement, &[&pk, &limit]).await?)
}
