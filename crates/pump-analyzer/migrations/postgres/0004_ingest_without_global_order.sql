-- Ingest transactions now run side by side, each holding the row locks of its streams (see
-- docs/ARCHITECTURE.md, "PostgreSQL write path"). This migration takes out what every ingest
-- transaction paid for without needing it.

-- A stream row is updated by every ingest transaction that touches it. Indexing `last_seen_at`
-- made each of those updates write a new entry in every index of the table; without it, and
-- with room left on each page, the update stays on its page (a HOT update). The list sorts the
-- streams instead, a small table.
DROP INDEX IF EXISTS streams_by_last_seen;
ALTER TABLE streams SET (fillfactor = 50);

-- The foreign keys ran a lookup of the stream row for every bet, round and counter row. Rows
-- of a stream are only written while its row is locked, and a stream is deleted with its rows
-- under that lock (`delete_stream`), so no row can lose its stream.
ALTER TABLE bets DROP CONSTRAINT IF EXISTS bets_stream_pk_fkey;
ALTER TABLE rounds DROP CONSTRAINT IF EXISTS rounds_stream_pk_fkey;
ALTER TABLE stream_multipliers DROP CONSTRAINT IF EXISTS stream_multipliers_stream_pk_fkey;

-- As SQLite's migration 0006: the per-difficulty counts are sums of the per-multiplier rows,
-- which now keep the last bet id as well; one upsert per transaction fewer.
ALTER TABLE stream_multipliers ADD COLUMN last_bet BIGINT NOT NULL DEFAULT 0;
UPDATE stream_multipliers m SET last_bet = d.last_bet
FROM stream_difficulties d WHERE d.stream_pk = m.stream_pk AND d.difficulty = m.difficulty;
DROP TABLE stream_difficulties;

-- Seed-reveal verification of bets stored before the reveal writes its results here rather than
-- into `bets`: updating a bet wrote a new version of the row and new entries in all its indexes
-- (PostgreSQL cannot update in place), inserting a check writes one row and one key. A bet's
-- `verified` and `expected_multiplier` are those of `bets` (set on arrival) or of its check.
CREATE TABLE bet_checks (
    bet_id              BIGINT           PRIMARY KEY,
    stream_pk           BIGINT           NOT NULL,
    nonce               BIGINT           NOT NULL,
    verified            BOOLEAN          NOT NULL,
    expected_multiplier DOUBLE PRECISION NOT NULL
);
CREATE INDEX bet_checks_mismatched ON bet_checks (stream_pk, nonce) WHERE NOT verified;
