-- The key replicas sign audit checkpoints with, shared through the database like the token
-- signing keys: the private half sealed under the KEK. The newest unretired key signs; a
-- retired one still verifies the checkpoints it signed.
CREATE TABLE checkpoint_keys (
    public_key      TEXT PRIMARY KEY,           -- Ed25519, hex
    sealed_private  BLOB NOT NULL,              -- PKCS#8, AES-256-GCM under the KEK, public key as AAD
    created_at      INTEGER NOT NULL,
    retired_at      INTEGER                     -- signs nothing after this
);

-- When an agent's key last signed an assertion that got a token, to the hour (human
-- credentials have had the column; it is written now too).
ALTER TABLE agent_keys ADD COLUMN last_used_at INTEGER;
