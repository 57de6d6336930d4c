#!/usr/bin/env bash
# Ingest benchmark on PostgreSQL: a fresh database, INSTANCES servers sharing it (rate limit off),
# and one load generator per instance with CONNECTIONS/INSTANCES connections each, run together
# (each generator posts to seed pairs of its own). Prints each generator's figures, the sessions
# seen waiting for a lock during the run, and the bets stored.
#   scripts/bench-postgres.sh [instances] [connections] [seconds] [batch]
# PostgreSQL from BENCH_PG_ADMIN (default postgres://postgres@127.0.0.1:5432/test).
set -euo pipefail
cd "$(dirname "$0")/.."
INSTANCES=${1:-1}
CONNECTIONS=${2:-16}
SECONDS_RUN=${3:-10}
BATCH=${4:-1}
ADMIN=${BENCH_PG_ADMIN:-postgres://postgres@127.0.0.1:5432/test}
DB="pump_bench_$$"
cargo build --release -q --bin pump-analyzer --example loadgen
psql "$ADMIN" -qc "CREATE DATABASE $DB"
URL="${ADMIN%/*}/$DB"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true
}
trap cleanup EXIT
for i in $(seq 1 "$INSTANCES"); do
  port=$((18180 + i))
  INGEST_RATE_LIMIT=0 API_PORT=$port DATABASE_URL=$URL RUST_LOG=warn target/release/pump-analyzer serve >/dev/null &
  PIDS+=($!)
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
done
GEN=()
for i in $(seq 1 "$INSTANCES"); do
  target/release/examples/loadgen --url "http://127.0.0.1:$((18180 + i))" --connections $((CONNECTIONS / INSTANCES)) \
    --seconds "$SECONDS_RUN" --batch "$BATCH" > "/tmp/pump-bench-$$-$i.txt" &
  GEN+=($!)
done
# Lock waits during the run: every 50 ms, the sessions of this database waiting for a lock
# (pg_stat_activity.wait_event_type = 'Lock': row locks, advisory locks, and the like).
( while kill -0 "${GEN[0]}" 2>/dev/null; do
    echo "SELECT count(*), string_agg(DISTINCT wait_event, ',') FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock';"
    sleep 0.05
  done ) | psql "$URL" -At > "/tmp/pump-bench-$$-locks.txt" &
SAMPLER=$!
wait "${GEN[@]}"
wait "$SAMPLER" || true
awk -F'|' '{ n++; if ($1 > 0) { w++; kinds[$2] = 1 } if ($1 > m) m = $1 }
  END { k = ""; for (x in kinds) k = k " " x
        printf "lock_waits: %d of %d samples saw a session waiting for a lock (at most %d at once)%s\n", w, n, m, (k == "" ? "" : "; on:" k) }' \
  "/tmp/pump-bench-$$-locks.txt"
rm -f "/tmp/pump-bench-$$-locks.txt"
for i in $(seq 1 "$INSTANCES"); do echo "-- instance $i"; cat "/tmp/pump-bench-$$-$i.txt"; rm -f "/tmp/pump-bench-$$-$i.txt"; done
echo "-- bets stored: $(psql "$URL" -Atc 'SELECT count(*) FROM bets')"
