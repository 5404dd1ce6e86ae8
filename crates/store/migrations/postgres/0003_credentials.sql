-- Just-in-time credentials: aim's signing keys, the public keys agents hold, tasks, the
-- single-use ids of client assertions and proofs, and revocations.

CREATE TABLE signing_keys (
    kid             TEXT PRIMARY KEY,          -- RFC 7638 thumbprint of the public key
    alg             TEXT NOT NULL,
    public_jwk      TEXT NOT NULL,             -- JSON
    sealed_private  BYTEA NOT NULL,              -- PKCS#8, AES-256-GCM under the KEK, kid as AAD
    created_at      BIGINT NOT NULL,
    retire_at       BIGINT NOT NULL,           -- signs nothing after this
    revoked_at      BIGINT                     -- every token it signed is invalid
);

CREATE TABLE agent_keys (
    identity_id     UUID NOT NULL REFERENCES identities (id),
    kid             TEXT NOT NULL,             -- RFC 7638 thumbprint
    jwk             TEXT NOT NULL,             -- the public JWK, JSON
    alg             TEXT NOT NULL,             -- EdDSA | ES256, fixed by the key
    label           TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    created_by      TEXT NOT NULL,             -- human:<id> or join-token:<id>
    revoked_at      BIGINT,
    PRIMARY KEY (identity_id, kid)
);

CREATE TABLE tasks (
    id              UUID PRIMARY KEY,
    identity_id     UUID NOT NULL REFERENCES identities (id),
    purpose         TEXT NOT NULL,
    systems         TEXT NOT NULL,             -- JSON list
    subject         TEXT,
    triggered_by    TEXT NOT NULL,
    state           TEXT NOT NULL,             -- open | ended
    opened_at       BIGINT NOT NULL,
    deadline        BIGINT NOT NULL,
    ended_at        BIGINT,
    end_reason      TEXT NOT NULL
);
CREATE INDEX tasks_identity ON tasks (identity_id, id);
CREATE INDEX tasks_open_deadline ON tasks (deadline) WHERE state = 'open';

-- Single-use ids (client assertion jti, DPoP proof jti), kept until they expire.
CREATE TABLE used_ids (
    id              TEXT PRIMARY KEY,          -- <kind>:<issuer>:<jti>
    expires_at      BIGINT NOT NULL
);
CREATE INDEX used_ids_expiry ON used_ids (expires_at);

-- The revocation list: every entry has the next epoch, so a verifier that saw epoch N asks
-- for what came after it. `kind` is token | task | identity | agent_key | signing_key.
CREATE TABLE revocations (
    epoch           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            TEXT NOT NULL,
    value           TEXT NOT NULL,
    at              BIGINT NOT NULL,
    reason          TEXT NOT NULL,
    expires_at      BIGINT NOT NULL            -- after this no token it could match is alive
);
CREATE INDEX revocations_value ON revocations (kind, value);
