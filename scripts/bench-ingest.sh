#!/usr/bin/env bash
# Ingest benchmark: builds the release binary and the load generator, starts a server on a scratch
# SQLite database with the rate limit off, and runs the load generator against it.
#   scripts/bench-ingest.sh [connections] [seconds] [batch]
set -euo pipefail
cd "$(dirname "$0")/.."
CONNECTIONS=${1:-16}
SECONDS_RUN=${2:-10}
BATCH=${3:-1}
cargo build --release -q --bin pump-analyzer --example loadgen
WORK=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
PORT=${BENCH_PORT:-18080}
( cd "$WORK" && INGEST_RATE_LIMIT=0 API_PORT=$PORT DATABASE_URL=${BENCH_DATABASE_URL:-sqlite://bench.db} RUST_LOG=warn \
    exec "$OLDPWD/target/release/pump-analyzer" serve >/dev/null ) &
SERVER=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
target/release/examples/loadgen --url "http://127.0.0.1:$PORT" --connections "$CONNECTIONS" --seconds "$SECONDS_RUN" --batch "$BATCH"
