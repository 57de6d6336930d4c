#!/usr/bin/env bash
# Reads of a stream's rounds (the rounds view, cadence, metrics) on a stream of bets only, the
# case where they are read from the bets table: fills one stream with batches of bets for a few
# seconds (every bet at 1.63x), then times each read (best of 5, curl's total time).
#   scripts/bench-rounds.sh [seconds of ingest]       BENCH_BINARY=path runs another build
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_RUN=${1:-4}
cargo build --release -q --bin pump-analyzer --example loadgen
. scripts/serve-scratch.sh
target/release/examples/loadgen --url "http://127.0.0.1:$PORT" --connections 8 --seconds "$SECONDS_RUN" \
  --batch 100 --seed-pairs 1 | grep '^bets/s'
ID=$(curl -fs "http://127.0.0.1:$PORT/live/streams" | python3 -c 'import json, sys; print(json.load(sys.stdin)["streams"][0]["id"])')
curl -fs "http://127.0.0.1:$PORT/live/streams/$ID" |
  python3 -c 'import json, sys; d = json.load(sys.stdin); print("bets", d["total_bets"], "rounds_count", d["rounds_count"])'
for path in "rounds?limit=10000" "rounds?since_nonce=1000&limit=10000" "cadence" "metrics?multipliers=1.63"; do
  best=""
  for _ in 1 2 3 4 5; do
    t=$(curl -fs -o /dev/null -w '%{time_total}' "http://127.0.0.1:$PORT/live/streams/$ID/$path")
    best=$(python3 -c "print(min(float('$t'), float('${best:-inf}')))")
  done
  echo "$path best_of_5_ms=$(python3 -c "print(round($best * 1000, 1))")"
done
