#!/usr/bin/env bash
# Seed verification on both backends back to back: loads BETS bets (default 300,000) into one
# stream, reveals its seed and times until every bet is verified; first on a scratch SQLite
# database, then on a fresh PostgreSQL database (BENCH_PG_ADMIN, default
# postgres://postgres@127.0.0.1:5432/test), dropped afterwards.
#   scripts/bench-verify.sh [bets]
set -euo pipefail
cd "$(dirname "$0")/.."
BETS=${1:-300000}
ADMIN=${BENCH_PG_ADMIN:-postgres://postgres@127.0.0.1:5432/test}
DB="pump_bench_verify_$$"
echo "== SQLite"
scripts/bench-read.sh verify "$BETS"
psql "$ADMIN" -qc "CREATE DATABASE $DB"
trap 'psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true' EXIT
echo "== PostgreSQL"
BENCH_DATABASE_URL="${ADMIN%/*}/$DB" scripts/bench-read.sh verify "$BETS"
