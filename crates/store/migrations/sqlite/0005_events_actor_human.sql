-- The actor index serves the `human` filter only (`actor_kind = 'human' AND actor_id = …`);
-- records made by identities and system components (most of them, once agents get tokens)
-- no longer pay for an entry in it.
DROP INDEX events_actor;
CREATE INDEX events_actor ON events (actor_id, seq) WHERE actor_kind = 'human';
