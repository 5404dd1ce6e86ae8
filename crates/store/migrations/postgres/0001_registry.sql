-- The registry: humans, their API credentials, identities, and the append-only event log.
-- Times are milliseconds since the Unix epoch (UTC); ids are UUIDv7.

CREATE TABLE humans (
    id              UUID PRIMARY KEY,
    user_name       TEXT NOT NULL,
    user_name_key   TEXT NOT NULL UNIQUE,      -- lower-cased: user names are case-insensitive
    display_name    TEXT,
    email           TEXT,
    external_id     TEXT,
    roles           TEXT NOT NULL,             -- comma-separated role names
    state           TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    departed_at     BIGINT,
    deleted_at      BIGINT,
    version         BIGINT NOT NULL
);
CREATE INDEX humans_external_id ON humans (external_id) WHERE external_id IS NOT NULL;

CREATE TABLE credentials (
    id              UUID PRIMARY KEY,
    human_id        UUID NOT NULL REFERENCES humans (id),
    secret_hash     BYTEA NOT NULL UNIQUE,      -- SHA-256 of the secret
    label           TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    last_used_at    BIGINT,
    revoked_at      BIGINT
);
CREATE INDEX credentials_human ON credentials (human_id);

CREATE TABLE identities (
    id                  UUID PRIMARY KEY,
    -- Byte order ("C"), as in SQLite: prefix ranges and name-ordered pages mean the same
    -- on both backends whatever the database's default collation.
    name                TEXT COLLATE "C" NOT NULL UNIQUE,  -- never reused, decommissioned rows stay
    kind                TEXT NOT NULL,
    autonomy            TEXT NOT NULL,
    sponsor_id          UUID NOT NULL REFERENCES humans (id),
    owner_team          TEXT,
    purpose             TEXT NOT NULL,
    systems             TEXT NOT NULL,         -- JSON array
    data_sensitivity    TEXT NOT NULL,
    criticality         TEXT NOT NULL,
    impact              TEXT NOT NULL,
    labels              TEXT NOT NULL,         -- JSON object
    risk_tier           TEXT NOT NULL,
    risk_reasons        TEXT NOT NULL,         -- JSON array
    state               TEXT NOT NULL,
    state_cause         TEXT NOT NULL,
    state_reason        TEXT NOT NULL,
    state_changed_at    BIGINT NOT NULL,
    created_at          BIGINT NOT NULL,
    created_by          UUID NOT NULL,
    decided_by          UUID,
    decided_at          BIGINT,
    expires_at          BIGINT NOT NULL,
    last_seen_at        BIGINT,
    last_attested_at    BIGINT,
    attestation_due_at  BIGINT,
    last_activity_at    BIGINT NOT NULL,       -- derived: last_seen_at, else decided_at, else created_at
    dormant             BOOLEAN NOT NULL,
    orphaned_since      BIGINT,
    possible_duplicate  BOOLEAN NOT NULL,
    duplicate_key       TEXT NOT NULL,
    updated_at          BIGINT NOT NULL,
    version             BIGINT NOT NULL
);
CREATE INDEX identities_state ON identities (state, id);
CREATE INDEX identities_kind ON identities (kind, id);
CREATE INDEX identities_sponsor ON identities (sponsor_id, id);
CREATE INDEX identities_risk ON identities (risk_tier, id);
CREATE INDEX identities_duplicate ON identities (duplicate_key);
-- One index per sweep rule, led by the state, so each rule is a range scan over due rows.
CREATE INDEX identities_expires ON identities (state, expires_at);
CREATE INDEX identities_attestation ON identities (state, attestation_due_at);
CREATE INDEX identities_activity ON identities (state, dormant, last_activity_at);
CREATE INDEX identities_orphaned ON identities (state, orphaned_since);
-- The rare flags a dashboard lists: pages of them in id order without scanning the table.
CREATE INDEX identities_orphaned_page ON identities (id) WHERE orphaned_since IS NOT NULL;
CREATE INDEX identities_dormant_page ON identities (id) WHERE dormant = TRUE;
CREATE INDEX identities_duplicate_page ON identities (id) WHERE possible_duplicate = TRUE;

CREATE TABLE events (
    seq             BIGINT PRIMARY KEY,        -- 1, 2, 3, ... assigned from chain_head
    at              BIGINT NOT NULL,
    actor_kind      TEXT NOT NULL,
    actor_id        TEXT NOT NULL,
    action          TEXT NOT NULL,
    target_type     TEXT NOT NULL,
    target_id       TEXT NOT NULL,
    outcome         TEXT NOT NULL,
    reason          TEXT NOT NULL,
    detail          TEXT NOT NULL,         -- JSON
    request_id      TEXT NOT NULL,         -- X-Request-Id of the request behind it, or ''
    source          TEXT NOT NULL,         -- the client's address, or ''
    prev_hash       BYTEA NOT NULL,          -- the previous record's hash (zeros for the first)
    hash            BYTEA NOT NULL           -- SHA-256(prev_hash || RFC 8785 form of the record)
);
CREATE INDEX events_target ON events (target_type, target_id, seq);
CREATE INDEX events_actor ON events (actor_kind, actor_id, seq);
CREATE INDEX events_action ON events (action, seq);

-- Signed statements of the chain head at an instant (hex text; see aim_domain::audit).
CREATE TABLE checkpoints (
    seq             BIGINT PRIMARY KEY,
    hash            TEXT NOT NULL,
    at              BIGINT NOT NULL,
    public_key      TEXT NOT NULL,
    signature       TEXT NOT NULL
);

-- How far each configured audit sink has acknowledged the log.
CREATE TABLE sink_positions (
    name            TEXT PRIMARY KEY,
    seq             BIGINT NOT NULL
);

-- The head of the hash chain: the last sequence number and hash. Every append updates this
-- one row in its transaction, which orders all appends (no two records share a previous
-- hash, even with several replicas on one PostgreSQL).
CREATE TABLE chain_head (
    id              INTEGER PRIMARY KEY,
    seq             BIGINT NOT NULL,
    hash            BYTEA NOT NULL
);
INSERT INTO chain_head (id, seq, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));

CREATE FUNCTION aim_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only';
END;
$$;
CREATE TRIGGER events_no_update BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION aim_events_append_only();
