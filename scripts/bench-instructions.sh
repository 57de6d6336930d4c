#!/usr/bin/env bash
# Instructions the server executes per ingest request, by thread, counted by valgrind's callgrind
# while the load generator runs. Unlike requests/s or CPU time, the count hardly moves with
# whatever else the machine is doing, so it is the figure to compare two builds by (the server
# runs ~50x slower under valgrind: the request rate it prints means nothing).
#   scripts/bench-instructions.sh [batch] [seconds] [seed pairs]       BENCH_BINARY=path compares another build
#   (BENCH_LIVE=1 keeps a client on /live/events during the load)
# Needs valgrind (apt-get install valgrind). BENCH_KEEP=dir keeps the callgrind files there
# (`callgrind_annotate --inclusive=yes dir/cg.out.1-NN`, NN the writer thread's file: the one that
# names `sqlite::Writer`).
set -euo pipefail
cd "$(dirname "$0")/.."
BATCH=${1:-1}
SECONDS_RUN=${2:-15}
PAIRS=${3:-16}
cargo build --release -q --bin pump-analyzer --example loadgen
BINARY=${BENCH_BINARY:-$PWD/target/release/pump-analyzer}
WORK=$(mktemp -d)
PORT=${BENCH_PORT:-18190}
trap 'kill $VG 2>/dev/null || true; [ -n "${BENCH_KEEP:-}" ] && cp "$WORK"/cg.out* "$BENCH_KEEP"/; rm -rf "$WORK"' EXIT
( cd "$WORK" && INGEST_RATE_LIMIT=0 API_PORT=$PORT DATABASE_URL=sqlite://bench.db RUST_LOG=warn \
    exec valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$WORK/cg.out" "$BINARY" serve \
    >/dev/null 2>"$WORK/valgrind.log" ) &
VG=$!
for _ in $(seq 1 300); do
  curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
# BENCH_LIVE=1: a client stays on /live/events during the load, as an open dashboard does.
if [ -n "${BENCH_LIVE:-}" ]; then
  curl -sN "http://127.0.0.1:$PORT/live/events" >/dev/null &
  LIVE=$!
  trap 'kill $LIVE $VG 2>/dev/null || true; [ -n "${BENCH_KEEP:-}" ] && cp "$WORK"/cg.out* "$BENCH_KEEP"/; rm -rf "$WORK"' EXIT
  sleep 0.5
fi
# Count only the load: zero the counters now, dump them when it ends (part 1 of each thread).
callgrind_control --zero "$VG" >/dev/null 2>&1
target/release/examples/loadgen --url "http://127.0.0.1:$PORT" --connections 16 --seconds "$SECONDS_RUN" \
  --batch "$BATCH" --seed-pairs "$PAIRS" >"$WORK/load.txt"
callgrind_control --dump "$VG" >/dev/null 2>&1
REQUESTS=$(sed -n 's/^requests=//p' "$WORK/load.txt")
python3 - "$REQUESTS" "$BATCH" "$WORK" <<'PY'
import glob, re, sys
requests, batch, work = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
threads = {}
for path in glob.glob(work + "/cg.out.1-*"):
    text = open(path, errors="replace").read()
    total = re.search(r"^totals:\s*(\d+)", text, re.M)
    thread = int(re.search(r"^thread:\s*(\d+)", text, re.M).group(1))
    role = "sqlite-writer" if "sqlite::Writer" in text else "runtime" if "tokio::runtime" in text else "other"
    threads[(role, thread)] = int(total.group(1)) if total else 0
busy = {f"{role}#{t}": n for (role, t), n in sorted(threads.items()) if n / requests >= 100}
print(f"requests={requests} batch={batch}")
print("instructions per request by thread: " + " ".join(f"{t}={n / requests:.0f}" for t, n in busy.items()))
print(f"instructions per request={sum(threads.values()) / requests:.0f} per bet={sum(threads.values()) / requests / batch:.0f}")
PY
