-- Bets per (stream, difficulty, 2-decimal multiplier), kept by the writer: the `total` of a
-- filtered bets page is a sum over a few dozen rows instead of a count over the stream, and tells
-- the page query which index finds its rows fastest.
CREATE TABLE stream_multipliers (
    stream_pk  INTEGER NOT NULL,
    difficulty TEXT    NOT NULL,
    mult_cents INTEGER NOT NULL,
    bets       INTEGER NOT NULL,
    PRIMARY KEY (stream_pk, difficulty, mult_cents)
) WITHOUT ROWID;
INSERT INTO stream_multipliers (stream_pk, difficulty, mult_cents, bets)
    SELECT stream_pk, difficulty, mult_cents, count(*) FROM bets GROUP BY stream_pk, difficulty, mult_cents;
