-- Read side: multiplier key for distance_prev, running aggregates for the stream detail,
-- seed-reveal verification, and engine runs.

-- The 2-decimal multiplier as an integer number of cents; indexed with the nonce so the previous
-- bet of the same multiplier is one index probe (distance_prev), whatever the page or filter.
ALTER TABLE bets ADD COLUMN mult_cents INTEGER GENERATED ALWAYS AS (CAST(round(round_result * 100) AS INTEGER)) VIRTUAL;
CREATE INDEX bets_by_multiplier ON bets (stream_pk, mult_cents, nonce);

-- Seed-reveal verification of each bet: NULL not checked, 1 matched, 0 mismatched.
ALTER TABLE bets ADD COLUMN verified INTEGER;
ALTER TABLE bets ADD COLUMN expected_multiplier REAL;
CREATE INDEX bets_mismatched ON bets (stream_pk, nonce) WHERE verified = 0;

-- Running aggregates kept by the writer, so the detail view never scans a stream's bets.
ALTER TABLE streams ADD COLUMN lowest_multiplier REAL;
ALTER TABLE streams ADD COLUMN sum_multiplier REAL NOT NULL DEFAULT 0;
ALTER TABLE streams ADD COLUMN total_amount REAL NOT NULL DEFAULT 0;
ALTER TABLE streams ADD COLUMN total_payout REAL NOT NULL DEFAULT 0;
ALTER TABLE streams ADD COLUMN verified_checked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE streams ADD COLUMN verified_matched INTEGER NOT NULL DEFAULT 0;
ALTER TABLE streams ADD COLUMN verified_mismatched INTEGER NOT NULL DEFAULT 0;
UPDATE streams SET
    lowest_multiplier = (SELECT min(round_result) FROM bets WHERE bets.stream_pk = streams.pk),
    sum_multiplier = coalesce((SELECT sum(round_result) FROM bets WHERE bets.stream_pk = streams.pk), 0),
    total_amount = coalesce((SELECT sum(amount) FROM bets WHERE bets.stream_pk = streams.pk), 0),
    total_payout = coalesce((SELECT sum(payout) FROM bets WHERE bets.stream_pk = streams.pk), 0);
CREATE INDEX streams_by_seed_hash ON streams (lower(server_seed_hashed));

CREATE TABLE stream_difficulties (
    stream_pk  INTEGER NOT NULL,
    difficulty TEXT    NOT NULL,
    bets       INTEGER NOT NULL,
    last_bet   INTEGER NOT NULL,
    PRIMARY KEY (stream_pk, difficulty)
) WITHOUT ROWID;
INSERT INTO stream_difficulties (stream_pk, difficulty, bets, last_bet)
    SELECT stream_pk, difficulty, count(*), max(id) FROM bets GROUP BY stream_pk, difficulty;

-- Revealed server seeds, keyed by the lowercase hex SHA-256 of the seed string.
CREATE TABLE revealed_seeds (
    server_seed_hashed TEXT    PRIMARY KEY,
    server_seed        TEXT    NOT NULL,
    revealed_at        INTEGER NOT NULL
) WITHOUT ROWID;

-- Engine runs and their hits.
CREATE TABLE runs (
    pk                 INTEGER PRIMARY KEY,
    id                 TEXT    NOT NULL UNIQUE,
    created_at         INTEGER NOT NULL,
    server_seed        TEXT    NOT NULL,
    server_seed_sha256 TEXT    NOT NULL,
    client_seed        TEXT    NOT NULL,
    nonce_start        INTEGER NOT NULL,
    nonce_end          INTEGER NOT NULL,
    difficulty         TEXT    NOT NULL,
    targets            TEXT    NOT NULL,
    duration_ms        INTEGER NOT NULL,
    engine_version     TEXT    NOT NULL,
    summary            TEXT    NOT NULL,
    hit_count          INTEGER NOT NULL
);
CREATE INDEX runs_by_created ON runs (created_at DESC, pk DESC);

CREATE TABLE run_hits (
    run_pk         INTEGER NOT NULL,
    nonce          INTEGER NOT NULL,
    max_pumps      INTEGER NOT NULL,
    max_multiplier REAL    NOT NULL,
    pop_point      INTEGER NOT NULL,
    PRIMARY KEY (run_pk, nonce)
) WITHOUT ROWID;

-- A stream's bets in arrival order: tail, `order=id_desc` and SSE resume.
CREATE INDEX bets_by_stream_id ON bets (stream_pk, id);
