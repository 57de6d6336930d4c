#!/usr/bin/env bash
# Ingest benchmark: builds the release binary and the load generator, starts a server on a scratch
# SQLite database with the rate limit off, and runs the load generator against it. Besides the
# generator's figures it prints the server's CPU time per request (user + system, from /proc),
# which varies far less from run to run than requests/s on a shared machine.
#   scripts/bench-ingest.sh [connections] [seconds] [batch]
set -euo pipefail
cd "$(dirname "$0")/.."
CONNECTIONS=${1:-16}
SECONDS_RUN=${2:-10}
BATCH=${3:-1}
cargo build --release -q --bin pump-analyzer --example loadgen
. scripts/serve-scratch.sh
cpu_ticks() { awk '{ print $14, $15 }' "/proc/$SERVER/stat"; }
read -r USER_BEFORE SYSTEM_BEFORE < <(cpu_ticks)
OUT=$(target/release/examples/loadgen --url "http://127.0.0.1:$PORT" --connections "$CONNECTIONS" --seconds "$SECONDS_RUN" --batch "$BATCH")
read -r USER_AFTER SYSTEM_AFTER < <(cpu_ticks)
echo "$OUT"
REQUESTS=$(sed -n 's/^requests=//p' <<<"$OUT")
awk -v u=$((USER_AFTER - USER_BEFORE)) -v s=$((SYSTEM_AFTER - SYSTEM_BEFORE)) -v hz="$(getconf CLK_TCK)" \
  -v r="$REQUESTS" -v b="$BATCH" 'BEGIN {
    us = (u + s) / hz * 1e6
    printf "server_cpu_us per_request=%.0f per_bet=%.1f (user %.0f, system %.0f per request)\n",
      us / r, us / (r * b), u / hz * 1e6 / r, s / hz * 1e6 / r }'
