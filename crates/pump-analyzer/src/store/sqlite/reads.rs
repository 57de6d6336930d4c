//! Read queries of the SQLite backend. They run on the pooled read connections (WAL readers never
//! wait for the writer).

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use super::super::model::*;
use super::super::{CadenceData, RoundScan, StreamKey};
use super::{SqliteStore, cents};
use crate::store::StoreError;
use crate::store::unverified;

const SUMMARY_COLUMNS: &str = "s.pk, s.id, s.server_seed_hashed, s.client_seed, s.created_at, s.last_seen_at,
    s.total_bets, s.highest_multiplier, s.last_observed_nonce, s.notes, s.rounds_count,
    s.verified_checked, s.verified_matched, s.verified_mismatched, r.server_seed IS NOT NULL, s.demo";
const SUMMARY_FROM: &str = "streams s LEFT JOIN revealed_seeds r ON r.server_seed_hashed = lower(s.server_seed_hashed)";

/// The bet record columns, `distance_prev` computed against the whole stream with one probe of
/// the (stream, multiplier, nonce) index per row.
const BET_COLUMNS: &str = "b.id, s.id, b.antebot_bet_id, b.received_at, b.date_time, b.nonce, b.amount, b.payout,
    b.payout_multiplier, b.difficulty, b.round_target, b.round_result, b.verified, b.expected_multiplier,
    b.nonce - (SELECT max(p.nonce) FROM bets p
               WHERE p.stream_pk = b.stream_pk AND p.mult_cents = b.mult_cents AND p.nonce < b.nonce)";
/// Largest number of matching bets read through the multiplier index and sorted.
const RANGE_SCAN_MAX: i64 = 20_000;
const BET_FROM: &str = "bets b JOIN streams s ON s.pk = b.stream_pk";

fn uuid(raw: String) -> rusqlite::Result<Uuid> {
    Uuid::parse_str(&raw)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into()))
}

/// A difficulty column, as the engine's type.
pub(super) fn difficulty_column(row: &Row<'_>, index: usize) -> rusqlite::Result<pump_engine::Difficulty> {
    let raw: String = row.get(index)?;
    raw.parse().map_err(|e| rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e)))
}

fn bet_row(row: &Row<'_>) -> rusqlite::Result<BetRecord> {
    Ok(BetRecord {
        id: row.get(0)?,
        stream_id: uuid(row.get(1)?)?,
        antebot_bet_id: row.get(2)?,
        received_at: iso(row.get(3)?),
        date_time: row.get::<_, Option<i64>>(4)?.map(iso),
        nonce: row.get(5)?,
        amount: row.get(6)?,
        payout: row.get(7)?,
        payout_multiplier: row.get(8)?,
        difficulty: difficulty_column(row, 9)?,
        round_target: row.get(10)?,
        round_result: row.get(11)?,
        verified: row.get::<_, Option<i64>>(12)?.map(|v| v == 1),
        expected_multiplier: row.get(13)?,
        distance_prev: row.get(14)?,
    })
}

/// A summary row plus the stream's pk.
fn summary_row(row: &Row<'_>) -> rusqlite::Result<(i64, StreamSummary)> {
    let revealed: bool = row.get(14)?;
    let total_bets: i64 = row.get(6)?;
    let checked: i64 = row.get(11)?;
    let summary = StreamSummary {
        id: uuid(row.get(1)?)?,
        server_seed_hashed: row.get(2)?,
        client_seed: row.get(3)?,
        created_at: iso(row.get(4)?),
        last_seen_at: iso(row.get(5)?),
        total_bets,
        highest_multiplier: row.get(7)?,
        last_observed_nonce: row.get(8)?,
        notes: row.get(9)?,
        rounds_count: row.get(10)?,
        seed_revealed: revealed,
        demo: row.get(15)?,
        verified: revealed.then(|| Verified {
            checked,
            matched: row.get(12).unwrap_or(0),
            mismatched: row.get(13).unwrap_or(0),
            first_mismatch: None,
            pending: (total_bets - checked).max(0),
        }),
    };
    Ok((row.get(0)?, summary))
}

fn first_mismatch(conn: &Connection, pk: i64) -> Result<Option<Mismatch>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, antebot_bet_id, nonce, difficulty, round_result, expected_multiplier FROM bets
             WHERE stream_pk = ?1 AND verified = 0 ORDER BY nonce, id LIMIT 1",
        )?
        .query_row([pk], |r| {
            Ok(Mismatch {
                bet_id: r.get(0)?,
                antebot_bet_id: r.get(1)?,
                nonce: r.get(2)?,
                difficulty: difficulty_column(r, 3)?,
                round_result: r.get(4)?,
                expected_multiplier: r.get(5)?,
            })
        })
        .optional()?)
}

fn complete(conn: &Connection, pk: i64, mut summary: StreamSummary) -> Result<StreamSummary, StoreError> {
    if let Some(v) = summary.verified.as_mut()
        && v.mismatched > 0
    {
        v.first_mismatch = first_mismatch(conn, pk)?;
    }
    Ok(summary)
}

pub(super) fn stream_key(conn: &Connection, id: Uuid) -> Result<Option<StreamKey>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT pk, last_observed_nonce FROM streams WHERE id = ?1")?
        .query_row([id.to_string()], |r| Ok(StreamKey { pk: r.get(0)?, id, last_observed_nonce: r.get(1)? }))
        .optional()?)
}

/// The ids of a stream's first and last bet; `None` while it has none.
fn bet_range(conn: &Connection, pk: i64) -> Result<Option<(i64, i64)>, StoreError> {
    let range: Option<(Option<i64>, Option<i64>)> = conn
        .prepare_cached("SELECT first_bet_id, last_bet_id FROM streams WHERE pk = ?1")?
        .query_row([pk], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match range {
        Some((Some(first), Some(last))) => Some((first, last)),
        _ => None,
    })
}

pub(super) fn difficulty_of(conn: &Connection, pk: i64) -> Result<Option<pump_engine::Difficulty>, StoreError> {
    let raw: Option<String> = conn
        .prepare_cached(
            "SELECT difficulty FROM stream_multipliers WHERE stream_pk = ?1 ORDER BY last_bet DESC LIMIT 1",
        )?
        .query_row([pk], |r| r.get(0))
        .optional()?;
    raw.as_deref().map(crate::store::stored_difficulty).transpose()
}

/// Where a stream's rounds begin: its bets below are rounds the retention dropped.
fn rounds_floor(conn: &Connection, pk: i64) -> Result<i64, StoreError> {
    let floor: Option<Option<i64>> = conn
        .prepare_cached("SELECT rounds_floor FROM streams WHERE pk = ?1")?
        .query_row([pk], |r| r.get(0))
        .optional()?;
    Ok(floor.flatten().unwrap_or(i64::MIN))
}

/// A stream's most recent `limit` rounds, in nonce order.
fn latest_rounds(conn: &Connection, pk: i64, floor: i64, limit: usize) -> Result<Vec<Round>, StoreError> {
    let mut rows =
        conn.prepare_cached("SELECT nonce, round_result FROM rounds WHERE stream_pk = ?1 ORDER BY nonce DESC")?;
    let mut bets = conn.prepare_cached(
        "SELECT nonce, round_result FROM bets WHERE stream_pk = ?1 AND nonce >= ?2 ORDER BY nonce DESC",
    )?;
    let rows = rows.query([pk])?;
    let bets = bets.query(params![pk, floor])?;
    let mut rounds = merge_rounds(rows, bets, Order::Descending, limit)?;
    rounds.reverse();
    Ok(rounds)
}

#[derive(Clone, Copy, PartialEq)]
enum Order {
    Ascending,
    Descending,
}

/// The first `limit` rounds of a stream, in `order`, from its rows of `rounds` and its bets (each
/// query yielding (nonce, round_result) in that order). A stream's rounds are the rows of
/// `rounds` (heartbeats, and the rounds of bets stored before migration 0007) together with its
/// bets from the floor up. A row stands over the bets of its nonce; a nonce with several bets
/// always has a row (see `record_rounds`).
fn merge_rounds(
    mut rows: rusqlite::Rows<'_>,
    mut bets: rusqlite::Rows<'_>,
    order: Order,
    limit: usize,
) -> Result<Vec<Round>, StoreError> {
    fn step(rows: &mut rusqlite::Rows<'_>) -> Result<Option<Round>, StoreError> {
        let round = |r: &Row<'_>| Ok::<_, rusqlite::Error>(Round { nonce: r.get(0)?, round_result: r.get(1)? });
        Ok(rows.next()?.map(round).transpose()?)
    }
    let before = |a: i64, b: i64| if order == Order::Ascending { a < b } else { a > b };
    let (mut row, mut bet) = (step(&mut rows)?, step(&mut bets)?);
    let mut rounds = Vec::new();
    while rounds.len() < limit {
        let next = match (row, bet) {
            (None, None) => break,
            (Some(r), Some(b)) if before(b.nonce, r.nonce) => b,
            (Some(r), _) => {
                row = step(&mut rows)?;
                r
            }
            (None, Some(b)) => b,
        };
        while bet.is_some_and(|b| b.nonce == next.nonce) {
            bet = step(&mut bets)?;
        }
        rounds.push(next);
    }
    Ok(rounds)
}

impl SqliteStore {
    pub async fn stream_key(&self, id: Uuid) -> Result<Option<StreamKey>, StoreError> {
        self.read(move |conn| stream_key(conn, id)).await
    }

    pub async fn list_streams(&self, limit: i64, offset: i64) -> Result<Page<StreamSummary>, StoreError> {
        self.read(move |conn| {
            let total: i64 = conn.query_row("SELECT count(*) FROM streams", [], |r| r.get(0))?;
            let sql = format!(
                "SELECT {SUMMARY_COLUMNS} FROM {SUMMARY_FROM} ORDER BY s.last_seen_at DESC, s.pk DESC LIMIT ?1 OFFSET ?2"
            );
            let rows: Vec<(i64, StreamSummary)> =
                conn.prepare_cached(&sql)?.query_map(params![limit, offset], summary_row)?.collect::<Result<_, _>>()?;
            let streams = rows.into_iter().map(|(pk, s)| complete(conn, pk, s)).collect::<Result<_, _>>()?;
            Ok(Page { items: streams, total })
        })
        .await
    }

    pub async fn stream_detail(&self, id: Uuid) -> Result<Option<StreamDetail>, StoreError> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {SUMMARY_COLUMNS}, s.lowest_multiplier, s.sum_multiplier, s.total_amount, s.total_payout,
                        r.server_seed
                 FROM {SUMMARY_FROM} WHERE s.id = ?1"
            );
            let row = conn
                .prepare_cached(&sql)?
                .query_row([id.to_string()], |r| {
                    let (pk, summary) = summary_row(r)?;
                    let lowest: Option<f64> = r.get(16)?;
                    let sum: f64 = r.get(17)?;
                    let amount: f64 = r.get(18)?;
                    let payout: f64 = r.get(19)?;
                    let seed: Option<String> = r.get(20)?;
                    Ok((pk, summary, lowest, sum, amount, payout, seed))
                })
                .optional()?;
            let Some((pk, summary, lowest, sum, amount, payout, seed)) = row else { return Ok(None) };
            let summary = complete(conn, pk, summary)?;
            let breakdown: BTreeMap<String, i64> = conn
                .prepare_cached(
                    "SELECT difficulty, sum(bets) FROM stream_multipliers WHERE stream_pk = ?1 GROUP BY difficulty",
                )?
                .query_map([pk], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let sql = format!(
                "SELECT {BET_COLUMNS} FROM {BET_FROM} WHERE b.stream_pk = ?1 ORDER BY b.nonce DESC, b.id DESC LIMIT 10"
            );
            let recent_bets = conn.prepare_cached(&sql)?.query_map([pk], bet_row)?.collect::<Result<_, _>>()?;
            let average = (summary.total_bets > 0).then(|| sum / summary.total_bets as f64);
            Ok(Some(StreamDetail {
                difficulty: difficulty_of(conn, pk)?,
                summary,
                lowest_multiplier: lowest,
                average_multiplier: average,
                total_amount: amount,
                total_payout: payout,
                difficulty_breakdown: breakdown,
                server_seed: seed,
                recent_bets,
            }))
        })
        .await
    }

    pub async fn bets(&self, key: StreamKey, query: BetQuery) -> Result<BetPage, StoreError> {
        self.read(move |conn| {
            use rusqlite::types::Value as Sql;
            let min_cents = query.min_multiplier.map(cents);
            let mut filter = String::from("b.stream_pk = ?");
            let mut args: Vec<Sql> = vec![Sql::Integer(key.pk)];
            let mut count_filter = String::from("stream_pk = ?");
            if let Some(min) = min_cents {
                filter.push_str(" AND b.mult_cents >= ?");
                count_filter.push_str(" AND mult_cents >= ?");
                args.push(Sql::Integer(min));
            }
            if let Some(d) = &query.difficulty {
                filter.push_str(" AND b.difficulty = ?");
                count_filter.push_str(" AND difficulty = ?");
                args.push(Sql::Text(d.as_str().to_string()));
            }
            // Exact totals from the per-multiplier counters: a sum over a few dozen rows.
            let total: i64 = conn
                .prepare_cached(&format!("SELECT coalesce(sum(bets), 0) FROM stream_multipliers WHERE {count_filter}"))?
                .query_row(rusqlite::params_from_iter(args.iter()), |r| r.get(0))?;
            let page = |bets| BetPage { bets, total, limit: query.limit, offset: query.offset, stream_id: key.id };
            if total == 0 || query.offset >= total {
                return Ok(page(Vec::new()));
            }
            // Few bets in the multiplier range: take them from the multiplier index and sort
            // them. Many: walk the stream in page order and skip the rest.
            let in_range: i64 = match min_cents {
                Some(min) => conn
                    .prepare_cached(
                        "SELECT coalesce(sum(bets), 0) FROM stream_multipliers WHERE stream_pk = ?1 AND mult_cents >= ?2",
                    )?
                    .query_row(params![key.pk, min], |r| r.get(0))?,
                None => i64::MAX,
            };
            let index = match query.order {
                _ if in_range <= RANGE_SCAN_MAX => "INDEXED BY bets_by_multiplier",
                BetOrder::NonceAsc => "INDEXED BY bets_by_stream_nonce",
                BetOrder::IdDesc => {
                    // Arrival order: the stream's id range of the table, walked backwards.
                    let Some((first, last)) = bet_range(conn, key.pk)? else {
                        return Ok(page(Vec::new()));
                    };
                    filter.push_str(" AND b.id BETWEEN ? AND ?");
                    args.extend([Sql::Integer(first), Sql::Integer(last)]);
                    "NOT INDEXED"
                }
            };
            let order = match query.order {
                BetOrder::NonceAsc => "b.nonce ASC, b.id ASC",
                BetOrder::IdDesc => "b.id DESC",
            };
            let sql = format!(
                "SELECT {BET_COLUMNS} FROM bets b {index} JOIN streams s ON s.pk = b.stream_pk
                 WHERE {filter} ORDER BY {order} LIMIT ? OFFSET ?"
            );
            args.push(Sql::Integer(query.limit));
            args.push(Sql::Integer(query.offset));
            let bets = conn
                .prepare_cached(&sql)?
                .query_map(rusqlite::params_from_iter(args.iter()), bet_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(page(bets))
        })
        .await
    }

    /// Bets with id > `since_id` in id order (`limit` of them), and whether more wait. With no
    /// stream, bets of every stream.
    pub async fn bets_since(&self, stream: Option<i64>, since_id: i64, limit: i64) -> Result<Tail, StoreError> {
        self.read(move |conn| {
            let mut bets: Vec<BetRecord> = match stream {
                // The stream's bets after `since_id` lie in its id range of the table.
                Some(pk) => {
                    let Some((first, last)) = bet_range(conn, pk)? else {
                        return Ok(Tail { bets: Vec::new(), last_id: since_id, has_more: false });
                    };
                    let sql = format!(
                        "SELECT {BET_COLUMNS} FROM bets b NOT INDEXED JOIN streams s ON s.pk = b.stream_pk
                         WHERE b.stream_pk = ?1 AND b.id > ?2 AND b.id <= ?3 ORDER BY b.id LIMIT ?4"
                    );
                    conn.prepare_cached(&sql)?
                        .query_map(params![pk, since_id.max(first - 1), last, limit + 1], bet_row)?
                        .collect::<Result<_, _>>()?
                }
                None => {
                    let sql = format!("SELECT {BET_COLUMNS} FROM {BET_FROM} WHERE b.id > ?1 ORDER BY b.id LIMIT ?2");
                    conn.prepare_cached(&sql)?
                        .query_map(params![since_id, limit + 1], bet_row)?
                        .collect::<Result<_, _>>()?
                }
            };
            let has_more = bets.len() as i64 > limit;
            bets.truncate(limit as usize);
            let last_id = bets.last().map_or(since_id, |b| b.id);
            Ok(Tail { bets, last_id, has_more })
        })
        .await
    }

    /// The highest bet id stored (0 when there is none).
    pub async fn last_bet_id(&self) -> Result<i64, StoreError> {
        self.read(|conn| Ok(conn.query_row("SELECT coalesce(max(id), 0) FROM bets", [], |r| r.get(0))?)).await
    }

    /// Rounds after `since_nonce` (ascending), or the most recent `limit` rounds.
    pub async fn rounds(&self, pk: i64, since_nonce: Option<i64>, limit: i64) -> Result<Vec<Round>, StoreError> {
        self.read(move |conn| {
            let floor = rounds_floor(conn, pk)?;
            let limit = usize::try_from(limit).unwrap_or(0);
            match since_nonce {
                Some(since) => {
                    let mut rows = conn.prepare_cached(
                        "SELECT nonce, round_result FROM rounds WHERE stream_pk = ?1 AND nonce > ?2 ORDER BY nonce",
                    )?;
                    let mut bets = conn.prepare_cached(
                        "SELECT nonce, round_result FROM bets WHERE stream_pk = ?1 AND nonce > ?2 AND nonce >= ?3
                         ORDER BY nonce",
                    )?;
                    let rows = rows.query(params![pk, since])?;
                    let bets = bets.query(params![pk, since, floor])?;
                    merge_rounds(rows, bets, Order::Ascending, limit)
                }
                None => latest_rounds(conn, pk, floor, limit),
            }
        })
        .await
    }

    /// Every round of a stream at or above `min_result` (nonce order), the last `recent` rounds,
    /// and the stream's difficulty: the input of cadence and multiplier metrics.
    pub async fn round_scan(&self, key: StreamKey, min_result: f64, recent: i64) -> Result<CadenceData, StoreError> {
        self.read(move |conn| {
            let pk = key.pk;
            let (rounds_count, last_observed, floor): (i64, Option<i64>, Option<i64>) = conn
                .prepare_cached("SELECT rounds_count, last_observed_nonce, rounds_floor FROM streams WHERE pk = ?1")?
                .query_row([pk], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            let floor = floor.unwrap_or(i64::MIN);
            let min_cents = cents(min_result);
            let round = |r: &Row<'_>| Ok(Round { nonce: r.get(0)?, round_result: r.get(1)? });
            let mut hits: Vec<Round> = conn
                .prepare_cached(
                    "SELECT nonce, round_result FROM rounds
                     WHERE stream_pk = ?1 AND CAST(round(round_result * 100) AS INTEGER) >= ?2",
                )?
                .query_map(params![pk, min_cents], round)?
                .collect::<Result<_, _>>()?;
            let row_nonce = |sql: &str| -> Result<Option<i64>, StoreError> {
                Ok(conn.prepare_cached(sql)?.query_row([pk], |r| r.get(0))?)
            };
            let first_row = row_nonce("SELECT min(nonce) FROM rounds WHERE stream_pk = ?1")?;
            let last_row = row_nonce("SELECT max(nonce) FROM rounds WHERE stream_pk = ?1")?;
            // A bet's round counts where no row of `rounds` holds its nonce (a nonce with two
            // bets always has one); only bets within the rows' span need looking.
            let bet_hits = conn
                .prepare_cached(
                    "SELECT b.nonce, b.round_result FROM bets b INDEXED BY bets_by_multiplier
                     WHERE b.stream_pk = ?1 AND b.mult_cents >= ?2 AND b.nonce >= ?3
                       AND (b.nonce NOT BETWEEN ?4 AND ?5
                            OR NOT EXISTS (SELECT 1 FROM rounds r WHERE r.stream_pk = ?1 AND r.nonce = b.nonce))",
                )?
                .query_map(params![pk, min_cents, floor, first_row.unwrap_or(1), last_row.unwrap_or(0)], round)?
                .collect::<Result<Vec<_>, _>>()?;
            hits.extend(bet_hits);
            hits.sort_unstable_by_key(|r| r.nonce);
            let recent = latest_rounds(conn, pk, floor, usize::try_from(recent).unwrap_or(0))?;
            let first_bet: Option<i64> = conn
                .prepare_cached("SELECT min(nonce) FROM bets WHERE stream_pk = ?1 AND nonce >= ?2")?
                .query_row(params![pk, floor], |r| r.get(0))?;
            let first_nonce = first_row.into_iter().chain(first_bet).min();
            Ok(CadenceData {
                scan: RoundScan { hits, recent, first_nonce, rounds_count },
                last_observed_nonce: last_observed,
                difficulty: difficulty_of(conn, pk)?,
            })
        })
        .await
    }

    /// One chunk of a stream's bets in nonce order after `(nonce, id)`, for streamed exports.
    pub async fn export_chunk(&self, pk: i64, after: (i64, i64), limit: i64) -> Result<Vec<BetRecord>, StoreError> {
        self.read(move |conn| {
            // distance_prev is computed by the exporter as it walks in nonce order: no subquery.
            let sql = "SELECT b.id, s.id, b.antebot_bet_id, b.received_at, b.date_time, b.nonce, b.amount, b.payout,
                    b.payout_multiplier, b.difficulty, b.round_target, b.round_result, b.verified,
                    b.expected_multiplier, NULL
                 FROM bets b JOIN streams s ON s.pk = b.stream_pk
                 WHERE b.stream_pk = ?1 AND (b.nonce, b.id) > (?2, ?3) ORDER BY b.nonce, b.id LIMIT ?4";
            let rows = conn
                .prepare_cached(sql)?
                .query_map(params![pk, after.0, after.1, limit], bet_row)?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    pub async fn revealed_seeds(&self) -> Result<Vec<RevealedSeed>, StoreError> {
        self.read(|conn| {
            let seeds: Vec<(String, String, i64)> = conn
                .prepare_cached(
                    "SELECT server_seed, server_seed_hashed, revealed_at FROM revealed_seeds ORDER BY revealed_at DESC",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            let mut out = Vec::with_capacity(seeds.len());
            for (server_seed, hashed, revealed_at) in seeds {
                let streams: Vec<(String, i64, i64)> = conn
                    .prepare_cached(
                        "SELECT id, created_at, last_seen_at FROM streams WHERE lower(server_seed_hashed) = ?1
                         ORDER BY created_at",
                    )?
                    .query_map([&hashed], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<Result<_, _>>()?;
                out.push(RevealedSeed {
                    first_seen: streams.iter().map(|s| s.1).min().map(iso),
                    last_seen: streams.iter().map(|s| s.2).max().map(iso),
                    streams: streams.into_iter().map(|s| uuid(s.0)).collect::<Result<_, _>>()?,
                    server_seed,
                    server_seed_hashed: hashed,
                    revealed_at: iso(revealed_at),
                });
            }
            Ok(out)
        })
        .await
    }

    /// Bets of a stream not yet checked against its revealed seed, from `from_nonce` on.
    pub async fn unverified_bets(
        &self,
        pk: i64,
        after: (i64, i64),
        limit: i64,
    ) -> Result<Vec<UnverifiedBet>, StoreError> {
        self.read(move |conn| {
            let rows: Vec<(i64, i64, String, f64)> = conn
                .prepare_cached(
                    "SELECT id, nonce, difficulty, round_result FROM bets
                     WHERE stream_pk = ?1 AND (nonce, id) > (?2, ?3) AND verified IS NULL ORDER BY nonce, id LIMIT ?4",
                )?
                .query_map(params![pk, after.0, after.1, limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<Result<_, _>>()?;
            Ok(unverified(rows))
        })
        .await
    }

    /// Streams whose seed is revealed and which still hold unchecked bets.
    pub async fn streams_to_verify(&self) -> Result<Vec<StreamToVerify>, StoreError> {
        self.read(|conn| {
            let rows: Vec<(i64, String, String, String)> = conn
                .prepare_cached(
                    "SELECT s.pk, s.id, r.server_seed, s.client_seed FROM streams s
                     JOIN revealed_seeds r ON r.server_seed_hashed = lower(s.server_seed_hashed)
                     WHERE s.verified_checked < s.total_bets",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<Result<_, _>>()?;
            rows.into_iter()
                .map(|(pk, id, server_seed, client_seed)| {
                    Ok(StreamToVerify { pk, id: uuid(id)?, server_seed, client_seed })
                })
                .collect()
        })
        .await
    }
}
