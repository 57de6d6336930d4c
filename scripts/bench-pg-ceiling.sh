#!/usr/bin/env bash
# What PostgreSQL alone can write on this machine in the shape of an ingest group, without the
# server: pgbench runs transactions that lock GROUP stream rows, insert one bet and one round per
# stream, update the streams' counters and upsert their multiplier rows (the statements of
# store/postgres/ingest.rs, simplified), with one client and with two clients on disjoint streams.
# A fresh database with the project's migrations (BENCH_PG_ADMIN, default
# postgres://postgres@127.0.0.1:5432/test), dropped afterwards.
#   scripts/bench-pg-ceiling.sh [group] [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
GROUP=${1:-12}
SECONDS_RUN=${2:-6}
ADMIN=${BENCH_PG_ADMIN:-postgres://postgres@127.0.0.1:5432/test}
DB="pump_ceiling_$$"
PGBENCH=$(command -v pgbench || ls /usr/lib/postgresql/*/bin/pgbench | tail -1)
psql "$ADMIN" -qc "CREATE DATABASE $DB"
trap 'psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true; rm -f "$SCRIPT"' EXIT
URL="${ADMIN%/*}/$DB"
for migration in crates/pump-analyzer/migrations/postgres/*.sql; do psql "$URL" -q -1 -f "$migration"; done
psql "$URL" -qc "INSERT INTO streams (id, server_seed_hashed, client_seed, created_at, last_seen_at)
                 SELECT gen_random_uuid(), 'hash-' || g, 'client', 0, 0 FROM generate_series(1, 2 * $GROUP) g"
SCRIPT=$(mktemp)
STREAMS="SELECT pk FROM streams ORDER BY pk OFFSET (:client_id % 2) * :group LIMIT :group"
cat > "$SCRIPT" <<SQL
\set r random(1, 2000000000)
BEGIN;
SELECT pk FROM streams WHERE pk IN ($STREAMS) ORDER BY pk FOR NO KEY UPDATE;
WITH b AS (INSERT INTO bets (stream_pk, antebot_bet_id, received_at, nonce, amount, payout, payout_multiplier, difficulty, round_result, mult_cents) SELECT pk, 'bet-' || :r, 0, :r, 1, 0, 0, 'expert', 1.63, 163 FROM ($STREAMS) s ON CONFLICT DO NOTHING RETURNING id), r AS (INSERT INTO rounds (stream_pk, nonce, round_result) SELECT pk, :r, 1.63 FROM ($STREAMS) s ON CONFLICT DO NOTHING RETURNING 1) SELECT (SELECT count(*) FROM b), (SELECT count(*) FROM r);
UPDATE streams SET total_bets = total_bets + 1, last_seen_at = :r, sum_multiplier = sum_multiplier + 1.63, last_observed_nonce = GREATEST(last_observed_nonce, :r) WHERE pk IN ($STREAMS);
INSERT INTO stream_multipliers (stream_pk, difficulty, mult_cents, bets, last_bet) SELECT pk, 'expert', 163, 1, 1 FROM ($STREAMS) s ON CONFLICT (stream_pk, difficulty, mult_cents) DO UPDATE SET bets = stream_multipliers.bets + 1;
COMMIT;
SQL
for clients in 1 2; do
  out=$("$PGBENCH" -n -M prepared -D group="$GROUP" -f "$SCRIPT" -c "$clients" -T "$SECONDS_RUN" "$URL" 2>&1)
  tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
  latency=$(echo "$out" | sed -n 's/^latency average = \([0-9.]*\) ms/\1/p')
  awk -v c="$clients" -v t="$tps" -v l="$latency" -v g="$GROUP" \
    'BEGIN { printf "clients=%d group=%d transactions/s=%.0f bets/s=%.0f latency_ms=%.2f\n", c, g, t, t * g, l }'
done
