-- Versions of the policy set. Append only: applying makes a new version, and so does
-- rolling back (a new version with an earlier one's content), so the history is whole.
-- The newest version is the one in force.
CREATE TABLE policy_versions (
    version         BIGINT PRIMARY KEY,      -- 1, 2, 3, ...
    sources         TEXT NOT NULL,           -- JSON [{name, text}]: the Cedar files
    links           TEXT NOT NULL,           -- JSON [{id, template, principal?, resource?}]
    digest          TEXT NOT NULL,           -- hex SHA-256 of sources and links
    created_at      BIGINT NOT NULL,
    created_by      TEXT NOT NULL,
    comment         TEXT NOT NULL,
    rollback_of     BIGINT                   -- the version whose content this one restored
);
