#!/usr/bin/env bash
# Ingest benchmark: builds the release binary and the load generator, starts a server on a scratch
# SQLite database with the rate limit off, and runs the load generator against it. Besides the
# generator's figures it prints the server's CPU time per request (user + system, from /proc),
# which varies far less from run to run than requests/s on a shared machine.
#   scripts/bench-ingest.sh [connections] [seconds] [batch] [seed pairs]     BENCH_LIVE=1 adds a live client
# (seed pairs: how many streams the connections post to; by default one per connection)
set -euo pipefail
cd "$(dirname "$0")/.."
CONNECTIONS=${1:-16}
SECONDS_RUN=${2:-10}
BATCH=${3:-1}
PAIRS=${4:-$CONNECTIONS}
cargo build --release -q --bin pump-analyzer --example loadgen
. scripts/serve-scratch.sh
cpu_ticks() { awk '{ print $14, $15 }' "/proc/$SERVER/stat"; }
# The writer's commit counters from /metrics: commits, writes they carried, seconds in COMMIT,
# commits whose sync ran on the syncer thread, that thread's syncs and seconds in them.
commit_stats() {
  curl -fs "http://127.0.0.1:$PORT/metrics" | awk '/^pump_store_commits_total/ { c = $2 }
    /^pump_store_committed_writes_total/ { w = $2 } /^pump_store_commit_seconds_total/ { s = $2 }
    /^pump_store_deferred_syncs_total/ { d = $2 } /^pump_store_log_syncs_total/ { n = $2 }
    /^pump_store_log_sync_seconds_total/ { t = $2 } END { print c + 0, w + 0, s + 0, d + 0, n + 0, t + 0 }'
}
# BENCH_LIVE=1: a client stays on /live/events during the load, as an open dashboard does.
if [ -n "${BENCH_LIVE:-}" ]; then
  curl -sN "http://127.0.0.1:$PORT/live/events" >"$WORK/events.txt" &
  LIVE=$!
  trap 'kill $LIVE $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
  sleep 0.2
fi
read -r COMMITS_BEFORE WRITES_BEFORE COMMIT_S_BEFORE DEFERRED_BEFORE SYNCS_BEFORE SYNC_S_BEFORE < <(commit_stats)
read -r USER_BEFORE SYSTEM_BEFORE < <(cpu_ticks)
OUT=$(target/release/examples/loadgen --url "http://127.0.0.1:$PORT" --connections "$CONNECTIONS" --seconds "$SECONDS_RUN" --batch "$BATCH" --seed-pairs "$PAIRS")
read -r USER_AFTER SYSTEM_AFTER < <(cpu_ticks)
read -r COMMITS_AFTER WRITES_AFTER COMMIT_S_AFTER DEFERRED_AFTER SYNCS_AFTER SYNC_S_AFTER < <(commit_stats)
echo "$OUT"
REQUESTS=$(sed -n 's/^requests=//p' <<<"$OUT")
awk -v u=$((USER_AFTER - USER_BEFORE)) -v s=$((SYSTEM_AFTER - SYSTEM_BEFORE)) -v hz="$(getconf CLK_TCK)" \
  -v r="$REQUESTS" -v b="$BATCH" 'BEGIN {
    us = (u + s) / hz * 1e6
    printf "server_cpu_us per_request=%.0f per_bet=%.1f (user %.0f, system %.0f per request)\n",
      us / r, us / (r * b), u / hz * 1e6 / r, s / hz * 1e6 / r }'
awk -v c=$((COMMITS_AFTER - COMMITS_BEFORE)) -v w=$((WRITES_AFTER - WRITES_BEFORE)) \
  -v s="$COMMIT_S_AFTER" -v s0="$COMMIT_S_BEFORE" -v d=$((DEFERRED_AFTER - DEFERRED_BEFORE)) 'BEGIN {
    if (c > 0) printf "sqlite_commits=%d writes_per_commit=%.1f commit_ms=%.3f synced_apart=%d\n", c, w / c, (s - s0) * 1000 / c, d }'
awk -v n=$((SYNCS_AFTER - SYNCS_BEFORE)) -v t="$SYNC_S_AFTER" -v t0="$SYNC_S_BEFORE" 'BEGIN {
    if (n > 0) printf "syncer_syncs=%d sync_ms=%.3f\n", n, (t - t0) * 1000 / n }'
if [ -n "${LIVE:-}" ]; then
  echo "live_client bet_events=$(grep -c '^event: bet' "$WORK/events.txt" || true)"
fi
