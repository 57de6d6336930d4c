#!/usr/bin/env bash
# The whole test suite: every test on the embedded SQLite default, then the HTTP suite of ingest,
# streams, runs, sessions, seeds, events, the bad-input catalogue, security and OpenAPI again on
# PostgreSQL (one parameterised suite: PUMP_TEST_BACKEND=postgres gives every test server a fresh
# PostgreSQL database instead of a SQLite file).
#
# PostgreSQL and Redis are found on 127.0.0.1 (or through TEST_DATABASE_URL / TEST_REDIS_URL);
# without them the tests that need them say SKIPPED and the PostgreSQL pass is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${TEST_DATABASE_URL:-}" ] && (echo > /dev/tcp/127.0.0.1/5432) >/dev/null 2>&1; then
  export TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test
fi
if [ -z "${TEST_REDIS_URL:-}" ] && (echo > /dev/tcp/127.0.0.1/6379) >/dev/null 2>&1; then
  export TEST_REDIS_URL=redis://127.0.0.1:6379
fi

cargo test --workspace "$@"
if [ -n "${TEST_DATABASE_URL:-}" ]; then
  echo "== the HTTP suite again on PostgreSQL ($TEST_DATABASE_URL) =="
  PUMP_TEST_BACKEND=postgres cargo test --workspace --test api -- \
    ingest:: streams:: runs:: sessions:: seeds:: events:: catalogue:: security:: openapi:: hostile:: demo:: simulations::
else
  echo "SKIPPED: the PostgreSQL pass of the HTTP suite (no TEST_DATABASE_URL, nothing on 127.0.0.1:5432)"
fi
