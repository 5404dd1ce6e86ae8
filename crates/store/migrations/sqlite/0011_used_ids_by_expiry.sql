-- Single-use ids keyed by (expires_at, id) in one b-tree without a rowid: a new id is
-- written near the end of the tree (ids arrive in expiry order), one page for the ids of
-- a request instead of three b-trees (the rows, the id index at a random place, the expiry
-- index), and forgetting the expired ones is a range delete at the start. An id's expiry
-- comes from what was signed (an assertion's `exp`, a proof's `iat`), so a replay carries
-- the same key and is refused as before.
CREATE TABLE used_ids_by_expiry (
    expires_at      BIGINT NOT NULL,
    id              TEXT NOT NULL,             -- <kind>:<issuer>:<jti>
    PRIMARY KEY (expires_at, id)
) WITHOUT ROWID;
INSERT INTO used_ids_by_expiry (expires_at, id) SELECT expires_at, id FROM used_ids;
DROP TABLE used_ids;
ALTER TABLE used_ids_by_expiry RENAME TO used_ids;
