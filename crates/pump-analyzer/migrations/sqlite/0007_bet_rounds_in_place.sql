-- A stored bet is the record of its own round: new bets no longer copy their round into `rounds`,
-- which keeps heartbeats (and the rounds of bets stored before this migration). A stream's rounds
-- are the rows of `rounds` together with its bets from `rounds_floor` up (all of them while the
-- floor is NULL); the retention raises the floor past the oldest rounds and deletes the rows of
-- `rounds` below it. The copy was one of the five B-trees every bet went into, ~17% of the
-- writer's work per bet in batches.
ALTER TABLE streams ADD COLUMN rounds_floor INTEGER;
-- Until now every bet's round had a row, dropped only by the retention: a bet below a stream's
-- lowest row shows the retention dropped rounds there, and the rounds begin at that row.
UPDATE streams SET rounds_floor = (SELECT min(nonce) FROM rounds WHERE stream_pk = streams.pk)
WHERE EXISTS (SELECT 1 FROM bets b WHERE b.stream_pk = streams.pk
              AND b.nonce < (SELECT min(nonce) FROM rounds WHERE stream_pk = streams.pk));
