//! aim's signing keys at run time: the key that signs now, every key whose tokens may still
//! be alive (published in JWKS), and their rotation. Private halves are stored sealed under
//! the KEK and opened only here.

use std::path::Path;
use std::sync::Arc;

use aim_domain::event::{Actor, AuditAction, Event};
use aim_domain::time::Timestamp;
use aim_enforce::Snapshot;
use aim_store::{DynStore, SigningKeyRow};
use aim_token::PublicJwk;
use aim_token::access::{MAX_ACCESS_LIFETIME, TrustedKeys};
use aim_token::kek::{KEK_LEN, Kek};
use aim_token::signing::SigningKey;
use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::config::TokenConfig;

/// Reads the KEK from the config, or from its file (made, mode 0600, if missing).
pub fn load_kek(config: &TokenConfig, data_dir: &Path) -> anyhow::Result<Kek> {
    if let Some(text) = &config.kek {
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim())
            .context("tokens.kek is not base64url")?;
        return Kek::from_bytes(&bytes).map_err(anyhow::Error::msg);
    }
    let path = config
        .kek_file
        .clone()
        .unwrap_or_else(|| data_dir.join("kek"));
    if !path.exists() {
        std::fs::create_dir_all(path.parent().unwrap_or(data_dir))?;
        let bytes = Kek::generate_bytes().map_err(anyhow::Error::msg)?;
        crate::secrets::write_private(&path, bytes, crate::secrets::Existing::Keep)
            .with_context(|| format!("writing the key-encryption key {}", path.display()))?;
    }
    let bytes = std::fs::read(&path)
        .with_context(|| format!("reading the key-encryption key {}", path.display()))?;
    if bytes.len() != KEK_LEN {
        anyhow::bail!("{} must hold exactly {KEK_LEN} bytes", path.display());
    }
    Kek::from_bytes(&bytes).map_err(anyhow::Error::msg)
}

/// The keys in use at one moment.
#[derive(Debug)]
pub struct KeyRing {
    /// Signs new tokens.
    pub signer: Arc<SigningKey>,
    /// Verifies tokens: every unrevoked key whose tokens may still be alive.
    pub trusted: TrustedKeys,
    /// `/.well-known/jwks.json`.
    pub jwks: serde_json::Value,
    /// The same keys, with the tokens they verified: an agent calling aim with one token
    /// has its signature checked once (its DPoP proof every time). A new ring (a key made,
    /// retired or revoked) starts with none.
    pub verifier: aim_token::access::Verifier,
}

#[derive(Debug)]
pub struct SigningKeys {
    store: DynStore,
    kek: Kek,
    rotation_days: u32,
    ring: Snapshot<KeyRing>,
}

impl SigningKeys {
    /// Loads the keys, making a new signing key if none can sign now.
    pub async fn load(
        store: DynStore,
        kek: Kek,
        rotation_days: u32,
        now: Timestamp,
    ) -> anyhow::Result<Self> {
        let ring = build(&store, &kek, rotation_days, now).await?;
        Ok(Self {
            store,
            kek,
            rotation_days,
            ring: Snapshot::new(ring),
        })
    }

    /// The key-encryption key (what else aim keeps sealed, upstream credentials, uses it).
    pub fn kek(&self) -> &Kek {
        &self.kek
    }

    pub fn current(&self) -> Arc<KeyRing> {
        self.ring.current()
    }

    /// Retires the signing key now and makes a new one; the old one keeps verifying the
    /// tokens it signed until they expire.
    pub async fn rotate(&self, now: Timestamp, event: &Event) -> anyhow::Result<Arc<KeyRing>> {
        let current = self.current();
        self.store
            .retire_signing_key(current.signer.kid(), now, event)
            .await?;
        self.refresh(now).await?;
        Ok(self.current())
    }

    /// Re-reads the keys (another replica may have rotated or revoked one).
    pub async fn refresh(&self, now: Timestamp) -> anyhow::Result<()> {
        let ring = build(&self.store, &self.kek, self.rotation_days, now).await?;
        self.ring.replace(ring);
        Ok(())
    }
}

/// The newest key that can still sign and opens with this KEK, and every stored key. With
/// none, it makes one; when another replica made one at the same moment, that one is read
/// back instead, so replicas that start together sign with one key.
async fn signer(
    store: &DynStore,
    kek: &Kek,
    rotation_days: u32,
    now: Timestamp,
) -> anyhow::Result<(SigningKey, Vec<SigningKeyRow>)> {
    for _ in 0..3 {
        let mut rows = store.signing_keys().await?;
        let mut unusable = Vec::new();
        for row in rows
            .iter()
            .filter(|r| r.revoked_at.is_none() && r.retire_at > now)
        {
            match kek
                .open(&row.sealed_private, &row.kid)
                .and_then(|p| SigningKey::from_pkcs8(&p))
            {
                Ok(key) => return Ok((key, rows)),
                Err(e) => {
                    tracing::warn!(
                        kid = %row.kid,
                        error = %e,
                        "a signing key does not open with this key-encryption key; give every replica the same `tokens.kek`"
                    );
                    unusable.push(row.kid.clone());
                }
            }
        }
        let (key, pkcs8) = SigningKey::generate().map_err(anyhow::Error::msg)?;
        let row = SigningKeyRow {
            kid: key.kid().to_owned(),
            alg: "EdDSA".to_owned(),
            public_jwk: key.public().to_json().to_string(),
            sealed_private: kek.seal(&pkcs8, key.kid()).map_err(anyhow::Error::msg)?,
            created_at: now,
            retire_at: now.plus_days(rotation_days.max(1)),
            revoked_at: None,
        };
        let event = Event::new(
            now,
            Actor::system("issuer"),
            AuditAction::SigningKeyCreated,
            "signing_key",
            key.kid(),
        )
        .detail(serde_json::json!({ "alg": "EdDSA", "retire_at": row.retire_at }));
        if store.insert_signing_key(&row, &unusable, &event).await? {
            rows.insert(0, row);
            return Ok((key, rows));
        }
    }
    anyhow::bail!("another replica keeps changing the signing keys; try again")
}

/// Picks the newest key that can still sign and opens with this KEK, making one if there is
/// none, and trusts every unrevoked key that signed tokens which may still be alive.
async fn build(
    store: &DynStore,
    kek: &Kek,
    rotation_days: u32,
    now: Timestamp,
) -> anyhow::Result<KeyRing> {
    let (signer, rows) = signer(store, kek, rotation_days, now).await?;
    let mut trusted = TrustedKeys::default();
    let mut cached = TrustedKeys::default();
    let mut published = Vec::new();
    // A retired key's tokens live at most MAX_ACCESS_LIFETIME past its retirement.
    let horizon = now.plus_millis(-MAX_ACCESS_LIFETIME * 1000);
    for row in rows
        .iter()
        .filter(|r| r.revoked_at.is_none() && r.retire_at > horizon)
    {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&row.public_jwk) else {
            tracing::error!(kid = %row.kid, "a stored signing key's public JWK is unreadable");
            continue;
        };
        let jwk = PublicJwk::from_json(&value).map_err(anyhow::Error::msg)?;
        trusted.insert(&row.kid, &jwk).map_err(anyhow::Error::msg)?;
        cached.insert(&row.kid, &jwk).map_err(anyhow::Error::msg)?;
        published.push(jwk.to_json());
    }
    Ok(KeyRing {
        signer: Arc::new(signer),
        trusted,
        jwks: serde_json::json!({ "keys": published }),
        verifier: aim_token::access::Verifier::new(cached, 100_000),
    })
}
