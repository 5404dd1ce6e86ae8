-- One-time join tokens: a new agent presents one, once, with its public key (and a proof
-- that it holds the private half) to register that key on its identity.
CREATE TABLE join_tokens (
    id              UUID PRIMARY KEY,
    identity_id     UUID NOT NULL REFERENCES identities (id),
    secret_hash     BYTEA NOT NULL UNIQUE,        -- SHA-256 of the secret; the secret is shown once
    created_at      BIGINT NOT NULL,
    created_by      TEXT NOT NULL,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT,
    used_kid        TEXT
);
CREATE INDEX join_tokens_identity ON join_tokens (identity_id);
