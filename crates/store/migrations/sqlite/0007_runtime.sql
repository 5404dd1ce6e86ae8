-- Runtime decisions beyond policies: humans' groups (named by @approval("group:...")),
-- approvals of exact actions, grants and just-in-time elevations, and leases.

ALTER TABLE humans ADD COLUMN member_of TEXT NOT NULL DEFAULT '';   -- comma-separated groups

-- An approval's whole record is `doc` (JSON); the columns are what queries filter on. A
-- change is a conditional update on `state`, so two deciders never both win.
CREATE TABLE action_approvals (
    id              BLOB PRIMARY KEY,
    identity_id     BLOB NOT NULL REFERENCES identities (id),
    state           TEXT NOT NULL,             -- pending | approved | denied | used
    expires_at      BIGINT NOT NULL,
    doc             TEXT NOT NULL
);
CREATE INDEX action_approvals_identity ON action_approvals (identity_id, state, expires_at);
CREATE INDEX action_approvals_state ON action_approvals (state, id);

-- Grants, like approvals, keep their record in `doc`. `revision` grows with every change,
-- so replicas that cache the live grants see when to reload.
CREATE TABLE grants (
    id              BLOB PRIMARY KEY,
    grantee         TEXT NOT NULL,             -- identity:<uuid> | group:<name>
    state           TEXT NOT NULL,             -- requested | active | denied | revoked
    expires_at      BIGINT,
    revision        BIGINT NOT NULL UNIQUE,
    doc             TEXT NOT NULL
);
CREATE INDEX grants_state ON grants (state, id);
CREATE INDEX grants_grantee ON grants (grantee, id);

-- At most one unreleased lease per record; an expired one is released by the next
-- acquirer before it inserts its own.
CREATE TABLE leases (
    id              BLOB PRIMARY KEY,
    record_key      TEXT NOT NULL,             -- system, type and id, unit-separated
    system          TEXT NOT NULL,
    record_type     TEXT NOT NULL,
    record_id       TEXT NOT NULL,
    identity_id     BLOB NOT NULL REFERENCES identities (id),
    identity_name   TEXT NOT NULL,
    task_id         BLOB NOT NULL REFERENCES tasks (id),
    acquired_at     BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    released_at     BIGINT,
    release_reason  TEXT NOT NULL
);
CREATE UNIQUE INDEX leases_held ON leases (record_key) WHERE released_at IS NULL;
CREATE INDEX leases_task ON leases (task_id) WHERE released_at IS NULL;
CREATE INDEX leases_identity ON leases (identity_id) WHERE released_at IS NULL;
