-- Single-use ids keyed by (expires_at, id), as on SQLite: one index instead of two, new
-- ids near its end, expired ones a range at its start. An id's expiry comes from what was
-- signed (an assertion's `exp`, a proof's `iat`), so a replay carries the same key.
ALTER TABLE used_ids DROP CONSTRAINT used_ids_pkey;
DROP INDEX used_ids_expiry;
ALTER TABLE used_ids ADD PRIMARY KEY (expires_at, id);
