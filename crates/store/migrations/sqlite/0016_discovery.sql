-- Discovery: imports of outside sources (directories, cloud IAM, Kubernetes, inventories)
-- and the machine accounts they hold, kept per source across imports.

-- One import of one source in one format. summary: its batches' counts while open, all its
-- counts once finished (JSON). touched_at: its last batch (an import idle for long no longer
-- holds its source). abandoned: ended without marking anything gone (its reading failed).
CREATE TABLE discovery_imports (
    id BLOB PRIMARY KEY NOT NULL,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    thresholds TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    started_by TEXT NOT NULL,
    touched_at BIGINT NOT NULL,
    finished_at BIGINT,
    summary TEXT,
    abandoned BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX discovery_imports_by_source ON discovery_imports (source, started_at);

-- A discovered account: its views merged (account, JSON; empty while it has one view, whose
-- record it then is), its findings (JSON) and their
-- kinds and severities as ",kind:severity," for filtering and tallies. gone_at: when the
-- last format that showed it stopped showing it.
CREATE TABLE discovered_accounts (
    id BLOB PRIMARY KEY NOT NULL,
    source TEXT NOT NULL,
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    owner TEXT,
    identity_id BLOB,
    tier TEXT NOT NULL,
    risk TEXT NOT NULL,
    findings TEXT NOT NULL,
    finding_kinds TEXT NOT NULL,
    account TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    gone_at BIGINT,
    dup_key TEXT,
    vendor_key TEXT,
    disposition TEXT,
    disposition_reason TEXT,
    disposition_by TEXT,
    disposition_at BIGINT,
    UNIQUE (source, key)
);
CREATE INDEX discovered_accounts_by_name ON discovered_accounts (name);
-- disposition: what the security team decided, `adopted` (into the registry, identity_id
-- then names the identity) or `decommission` (on the list operators retire accounts from),
-- with why, by whom and when. Imports never change it.
CREATE INDEX discovered_accounts_by_disposition ON discovered_accounts (disposition, source)
    WHERE disposition IS NOT NULL;
-- dup_key: owner, purpose and permissions hashed; vendor_key: a bot's vendor. Accounts of a
-- source sharing one are duplicates (see aim_domain::discovery::across).
CREATE INDEX discovered_accounts_by_dup_key ON discovered_accounts (source, dup_key)
    WHERE dup_key IS NOT NULL;
CREATE INDEX discovered_accounts_by_vendor_key ON discovered_accounts (source, vendor_key)
    WHERE vendor_key IS NOT NULL;

-- What one format of a source says about one account (record, JSON), and the import that
-- last said it: an account an import of that format no longer shows loses that view.
CREATE TABLE discovered_views (
    account_id BLOB NOT NULL,
    kind TEXT NOT NULL,
    source TEXT NOT NULL,
    import_id BLOB NOT NULL,
    digest TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (account_id, kind)
);
CREATE INDEX discovered_views_by_import ON discovered_views (source, kind, import_id);

-- A hash of an active credential's secret, when its source gives one, with the environment
-- of its account: the same hash in two environments is one secret shared across them.
CREATE TABLE discovered_fingerprints (
    account_id BLOB NOT NULL,
    credential TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    environment TEXT,
    PRIMARY KEY (account_id, credential)
);
CREATE INDEX discovered_fingerprints_by_fingerprint ON discovered_fingerprints (fingerprint);

-- A finding acknowledged until a date: it stays on the account, marked, and counts again
-- once `until` passes. finding: its kind, and `:credential` when it is about one.
CREATE TABLE discovery_acknowledgements (
    account_id BLOB NOT NULL,
    finding TEXT NOT NULL,
    reason TEXT NOT NULL,
    until BIGINT NOT NULL,
    acknowledged_by TEXT NOT NULL,
    acknowledged_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, finding)
);
