-- Credentials for upstreams, sealed under aim's key-encryption key (AES-256-GCM, bound to
-- the secret's name); doc is the metadata, never the value.
CREATE TABLE upstream_secrets (
    name TEXT PRIMARY KEY,
    sealed BYTEA NOT NULL,
    version BIGINT NOT NULL,
    doc TEXT NOT NULL
);
