-- A stream's bets in arrival order without an index of their own. Bet ids are the table's rowids
-- and grow with every insert, so the table itself is in arrival order: a stream's bets are the
-- rows of its id range [first_bet_id, last_bet_id] that carry its pk. The tail, `order=id_desc`
-- and SSE resume walk that range of the table. The (stream, id) index this replaces was one of
-- the six B-trees every bet went into, ~11% of the writer's work per bet.
ALTER TABLE streams ADD COLUMN first_bet_id INTEGER;
ALTER TABLE streams ADD COLUMN last_bet_id INTEGER;
UPDATE streams SET
    first_bet_id = (SELECT min(id) FROM bets INDEXED BY bets_by_stream_id WHERE stream_pk = streams.pk),
    last_bet_id = (SELECT max(id) FROM bets INDEXED BY bets_by_stream_id WHERE stream_pk = streams.pk);
DROP INDEX bets_by_stream_id;
