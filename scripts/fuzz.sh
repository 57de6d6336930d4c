#!/usr/bin/env bash
# Runs every fuzz target for a set time (default 60 s each) and prints its execution count.
# Needs cargo-fuzz (`cargo install cargo-fuzz`); runs on stable Rust with `--sanitizer none`.
#   scripts/fuzz.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECONDS_EACH=${1:-60}
for target in ingest_body engine_verify query_params csv_writer; do
  log=$(mktemp)
  cargo fuzz run --sanitizer none "$target" -- -max_total_time="$SECONDS_EACH" -print_final_stats=1 >"$log" 2>&1 \
    || { tail -40 "$log"; echo "FINDING in $target"; exit 1; }
  runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo '?')
  echo "$target: $runs executions in ${SECONDS_EACH}s, no crash"
  rm -f "$log"
done
