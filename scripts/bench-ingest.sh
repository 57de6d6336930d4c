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
. scripts/serve-scratch.sh
target/release/examples/loadgen --url "http://127.0.0.1:$PORT" --connections "$CONNECTIONS" --seconds "$SECONDS_RUN" --batch "$BATCH"
