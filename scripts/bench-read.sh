#!/usr/bin/env bash
# Read-side benchmarks (streams issue): starts a release server on a scratch SQLite database with
# the rate limit off and runs examples/readbench.rs against it.
#   scripts/bench-read.sh sse [seconds]            # 200 → SSE delay under 16-connection ingest
#   scripts/bench-read.sh reads [bets] [streams]   # list/detail/bets/tail p99 on 1M bets, 10k streams
#   scripts/bench-read.sh verify [bets]            # seed verification of one stream of that many bets
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q --bin pump-analyzer --example readbench
. scripts/serve-scratch.sh
BENCH_PID=$SERVER BENCH_URL="http://127.0.0.1:$PORT" target/release/examples/readbench "$@"
echo "server RSS: $(ps -o rss= -p $SERVER) KiB"
