# Sourced by the benchmark scripts: starts the release server on a scratch SQLite database with
# the rate limit off, waits until it answers, and stops it (and removes the database) on exit.
# Sets PORT (BENCH_PORT, default 18080) and SERVER (the server's pid). BENCH_BINARY runs another
# build of the server (an A/B comparison against a copy of an older binary).
WORK=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
PORT=${BENCH_PORT:-18080}
( cd "$WORK" && INGEST_RATE_LIMIT=0 API_PORT=$PORT DATABASE_URL=${BENCH_DATABASE_URL:-sqlite://bench.db} RUST_LOG=warn \
    exec "${BENCH_BINARY:-$OLDPWD/target/release/pump-analyzer}" serve >/dev/null 2>${BENCH_STDERR:-/dev/null} ) &
SERVER=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
