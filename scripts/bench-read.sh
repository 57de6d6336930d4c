#!/usr/bin/env bash
# Read-side benchmarks (streams issue): starts a release server on a scratch SQLite database with
# the rate limit off and runs examples/readbench.rs against it.
#   scripts/bench-read.sh sse [seconds]            # 200 → SSE delay under 16-connection ingest
#   scripts/bench-read.sh reads [bets] [streams]   # list/detail/bets/tail p99 on 1M bets, 10k streams
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q --bin pump-analyzer --example readbench
WORK=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
PORT=${BENCH_PORT:-18080}
( cd "$WORK" && INGEST_RATE_LIMIT=0 API_PORT=$PORT DATABASE_URL=sqlite://bench.db RUST_LOG=warn \
    exec "$OLDPWD/target/release/pump-analyzer" serve >/dev/null ) &
SERVER=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
BENCH_PID=$SERVER BENCH_URL="http://127.0.0.1:$PORT" target/release/examples/readbench "$@"
echo "server RSS: $(ps -o rss= -p $SERVER) KiB"
