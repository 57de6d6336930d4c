-- PostgreSQL schema: the same tables, columns and meaning as the SQLite migrations 0001-0004.
-- Times are Unix microseconds (UTC).
CREATE TABLE streams (
    pk                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                  UUID             NOT NULL UNIQUE,
    server_seed_hashed  TEXT             NOT NULL,
    client_seed         TEXT             NOT NULL,
    created_at          BIGINT           NOT NULL,
    last_seen_at        BIGINT           NOT NULL,
    total_bets          BIGINT           NOT NULL DEFAULT 0,
    highest_multiplier  DOUBLE PRECISION,
    lowest_multiplier   DOUBLE PRECISION,
    last_observed_nonce BIGINT,
    rounds_count        BIGINT           NOT NULL DEFAULT 0,
    notes               TEXT,
    sum_multiplier      DOUBLE PRECISION NOT NULL DEFAULT 0,
    total_amount        DOUBLE PRECISION NOT NULL DEFAULT 0,
    total_payout        DOUBLE PRECISION NOT NULL DEFAULT 0,
    verified_checked    BIGINT           NOT NULL DEFAULT 0,
    verified_matched    BIGINT           NOT NULL DEFAULT 0,
    verified_mismatched BIGINT           NOT NULL DEFAULT 0,
    UNIQUE (server_seed_hashed, client_seed)
);
CREATE INDEX streams_by_last_seen ON streams (last_seen_at DESC, pk DESC);
CREATE INDEX streams_by_seed_hash ON streams (lower(server_seed_hashed));

-- Identity ids are monotonic and never reused. They commit out of order across transactions:
-- readers show bets only up to the bet-id horizon (store/postgres/horizon.rs).
CREATE TABLE bets (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_pk           BIGINT           NOT NULL REFERENCES streams (pk) ON DELETE CASCADE,
    antebot_bet_id      TEXT             NOT NULL,
    received_at         BIGINT           NOT NULL,
    date_time           BIGINT,
    nonce               BIGINT           NOT NULL,
    amount              DOUBLE PRECISION NOT NULL,
    payout              DOUBLE PRECISION NOT NULL,
    payout_multiplier   DOUBLE PRECISION NOT NULL,
    difficulty          TEXT             NOT NULL,
    round_target        DOUBLE PRECISION,
    round_result        DOUBLE PRECISION NOT NULL,
    -- The 2-decimal multiplier in cents, computed by the program (`pump_engine::tables::cents`):
    -- PostgreSQL's round() on doubles rounds ties to even, the engine rounds them away from zero.
    mult_cents          BIGINT           NOT NULL,
    verified            BOOLEAN,
    expected_multiplier DOUBLE PRECISION,
    UNIQUE (stream_pk, antebot_bet_id)
);
CREATE INDEX bets_by_stream_nonce ON bets (stream_pk, nonce);
CREATE INDEX bets_by_multiplier ON bets (stream_pk, mult_cents, nonce);
CREATE INDEX bets_by_stream_id ON bets (stream_pk, id);
CREATE INDEX bets_mismatched ON bets (stream_pk, nonce) WHERE verified = false;

CREATE TABLE rounds (
    stream_pk    BIGINT           NOT NULL REFERENCES streams (pk) ON DELETE CASCADE,
    nonce        BIGINT           NOT NULL,
    round_result DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (stream_pk, nonce)
);

CREATE TABLE stream_difficulties (
    stream_pk  BIGINT NOT NULL REFERENCES streams (pk) ON DELETE CASCADE,
    difficulty TEXT   NOT NULL,
    bets       BIGINT NOT NULL,
    last_bet   BIGINT NOT NULL,
    PRIMARY KEY (stream_pk, difficulty)
);

CREATE TABLE stream_multipliers (
    stream_pk  BIGINT NOT NULL REFERENCES streams (pk) ON DELETE CASCADE,
    difficulty TEXT   NOT NULL,
    mult_cents BIGINT NOT NULL,
    bets       BIGINT NOT NULL,
    PRIMARY KEY (stream_pk, difficulty, mult_cents)
);

CREATE TABLE revealed_seeds (
    server_seed_hashed TEXT   PRIMARY KEY,
    server_seed        TEXT   NOT NULL,
    revealed_at        BIGINT NOT NULL
);

CREATE TABLE runs (
    pk                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                 UUID   NOT NULL UNIQUE,
    created_at         BIGINT NOT NULL,
    server_seed        TEXT   NOT NULL,
    server_seed_sha256 TEXT   NOT NULL,
    client_seed        TEXT   NOT NULL,
    nonce_start        BIGINT NOT NULL,
    nonce_end          BIGINT NOT NULL,
    difficulty         TEXT   NOT NULL,
    targets            TEXT   NOT NULL,
    duration_ms        BIGINT NOT NULL,
    engine_version     TEXT   NOT NULL,
    summary            TEXT   NOT NULL,
    hit_count          BIGINT NOT NULL
);
CREATE INDEX runs_by_created ON runs (created_at DESC, pk DESC);

CREATE TABLE run_hits (
    run_pk         BIGINT           NOT NULL REFERENCES runs (pk) ON DELETE CASCADE,
    nonce          BIGINT           NOT NULL,
    max_pumps      BIGINT           NOT NULL,
    max_multiplier DOUBLE PRECISION NOT NULL,
    pop_point      BIGINT           NOT NULL,
    PRIMARY KEY (run_pk, nonce)
);

CREATE TABLE sessions (
    secret_hash   TEXT    PRIMARY KEY,
    public_id     TEXT    NOT NULL UNIQUE,
    csrf_token    TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    last_activity BIGINT  NOT NULL,
    authenticated BOOLEAN NOT NULL DEFAULT false,
    user_data     TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX sessions_by_activity ON sessions (last_activity);

CREATE TABLE app_settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
