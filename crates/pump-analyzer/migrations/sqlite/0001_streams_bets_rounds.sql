-- Live Streams: one stream per (server_seed_hashed, client_seed), its bets and its rounds.
-- Times are Unix microseconds (UTC).
CREATE TABLE streams (
    pk                  INTEGER PRIMARY KEY,
    id                  TEXT    NOT NULL UNIQUE,
    server_seed_hashed  TEXT    NOT NULL,
    client_seed         TEXT    NOT NULL,
    created_at          INTEGER NOT NULL,
    last_seen_at        INTEGER NOT NULL,
    total_bets          INTEGER NOT NULL DEFAULT 0,
    highest_multiplier  REAL,
    last_observed_nonce INTEGER,
    rounds_count        INTEGER NOT NULL DEFAULT 0,
    notes               TEXT,
    UNIQUE (server_seed_hashed, client_seed)
);
CREATE INDEX streams_by_last_seen ON streams (last_seen_at DESC, pk DESC);

-- AUTOINCREMENT: bet ids are monotonic and never reused, so SSE resume by id is safe.
CREATE TABLE bets (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_pk         INTEGER NOT NULL,
    antebot_bet_id    TEXT    NOT NULL,
    received_at       INTEGER NOT NULL,
    date_time         INTEGER,
    nonce             INTEGER NOT NULL,
    amount            REAL    NOT NULL,
    payout            REAL    NOT NULL,
    payout_multiplier REAL    NOT NULL,
    difficulty        TEXT    NOT NULL,
    round_target      REAL,
    round_result      REAL    NOT NULL,
    UNIQUE (stream_pk, antebot_bet_id)
);
CREATE INDEX bets_by_stream_nonce ON bets (stream_pk, nonce);

-- Compact per-round record fed by heartbeats and bets; bounded per stream by ROUNDS_RETENTION.
CREATE TABLE rounds (
    stream_pk    INTEGER NOT NULL,
    nonce        INTEGER NOT NULL,
    round_result REAL    NOT NULL,
    PRIMARY KEY (stream_pk, nonce)
) WITHOUT ROWID;

-- Process-wide settings kept across restarts (the generated SECRET_KEY).
CREATE TABLE app_settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
