//! Signed checkpoints of the audit chain: an Ed25519 statement that record `seq` had hash
//! `hash`, made every minute (and on demand), to be kept outside aim. A log rewritten or
//! cut short later no longer matches a checkpoint, even if whoever did it also rewrote the
//! chain head.
//!
//! Replicas sharing a database share the signing key: it is stored in the database sealed
//! under the KEK, like the token signing keys, so one public key (`GET
//! /v1/audit/checkpoint-keys`) checks every replica's checkpoints offline. The newest
//! unretired key signs; rotating retires it (it still verifies what it signed). A data dir
//! from before keys were shared brings its `audit-signing-key` file along as the first
//! key, so the checkpoints it signed still check against the same public key.

use std::path::Path;
use std::sync::Arc;

use aim_api::audit::CheckpointKey;
use aim_domain::audit::{Checkpoint, to_hex};
use aim_domain::event::{Actor, AuditAction, Event};
use aim_domain::time::Timestamp;
use aim_store::{CheckpointKeyRow, DynStore, StoreError};
use aim_token::kek::Kek;
use anyhow::Context;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};

/// The file a data dir kept its own checkpoint key in, before replicas shared one.
pub const KEY_FILE: &str = "audit-signing-key";

/// The key that signs checkpoints now.
struct Key {
    pair: Ed25519KeyPair,
    public_key: String,
}

impl Key {
    fn open(kek: &Kek, row: &CheckpointKeyRow) -> anyhow::Result<Key> {
        let pkcs8 = kek
            .open(&row.sealed_private, &row.public_key)
            .map_err(|e| anyhow::anyhow!("checkpoint key {}: {e}", row.public_key))?;
        Key::from_pkcs8(&pkcs8)
    }

    fn from_pkcs8(pkcs8: &[u8]) -> anyhow::Result<Key> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8)
            .or_else(|_| Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8))
            .map_err(|_| anyhow::anyhow!("not an Ed25519 PKCS#8 key"))?;
        let public_key = to_hex(pair.public_key().as_ref());
        Ok(Key { pair, public_key })
    }
}

/// The replica's handle on the shared checkpoint key.
pub struct Signer {
    store: DynStore,
    kek: Kek,
    current: std::sync::RwLock<Arc<Key>>,
}

impl std::fmt::Debug for Signer {
    // INVARIANT: the private key never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// The shared key, made (or brought from `<data_dir>/audit-signing-key`) if the
    /// database has none yet; replicas starting at once end up with one.
    pub async fn load(
        store: DynStore,
        kek: Kek,
        data_dir: &Path,
        now: Timestamp,
    ) -> anyhow::Result<Signer> {
        let legacy = data_dir.join(KEY_FILE);
        for _ in 0..3 {
            if let Some(row) = newest(&store).await? {
                let key = Key::open(&kek, &row).context(
                    "the audit checkpoint key does not open with this key-encryption key; \
                     give every replica the same `tokens.kek`",
                )?;
                return Ok(Signer {
                    store,
                    kek,
                    current: std::sync::RwLock::new(Arc::new(key)),
                });
            }
            let pkcs8 = if legacy.exists() {
                std::fs::read(&legacy).with_context(|| format!("reading {}", legacy.display()))?
            } else {
                generate()?
            };
            let key = Key::from_pkcs8(&pkcs8)
                .with_context(|| format!("{} is not an Ed25519 PKCS#8 key", legacy.display()))?;
            let by = Actor::system("checkpoint");
            put(&store, &kek, &key, &pkcs8, None, now, by, "first start").await?;
        }
        anyhow::bail!("another replica keeps changing the checkpoint key; try again")
    }

    pub fn public_key(&self) -> String {
        self.key().public_key.clone()
    }

    fn key(&self) -> Arc<Key> {
        match self.current.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the newest key: another replica may have rotated it.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        let Some(row) = newest(&self.store).await? else {
            return Ok(());
        };
        if row.public_key == self.key().public_key {
            return Ok(());
        }
        let key = Arc::new(Key::open(&self.kek, &row)?);
        match self.current.write() {
            Ok(mut k) => *k = key,
            Err(poisoned) => *poisoned.into_inner() = key,
        }
        Ok(())
    }

    /// Starts signing with a new key; the old one is retired and still verifies what it
    /// signed. Returns the new public key (another replica's, if it rotated at the same
    /// moment).
    pub async fn rotate(&self, now: Timestamp, by: Actor) -> anyhow::Result<String> {
        let pkcs8 = generate()?;
        let key = Key::from_pkcs8(&pkcs8)?;
        let old = self.key().public_key.clone();
        put(
            &self.store,
            &self.kek,
            &key,
            &pkcs8,
            Some(&old),
            now,
            by,
            "rotated",
        )
        .await?;
        self.refresh().await?;
        Ok(self.public_key())
    }

    /// Every key, newest first, without its private half.
    pub async fn published(&self) -> Result<Vec<CheckpointKey>, StoreError> {
        Ok(self
            .store
            .checkpoint_keys()
            .await?
            .into_iter()
            .map(|r| CheckpointKey {
                public_key: r.public_key,
                created_at: r.created_at,
                retired_at: r.retired_at,
            })
            .collect())
    }

    /// Signs the current head if it moved since the last checkpoint; returns the latest.
    pub async fn checkpoint(
        &self,
        store: &DynStore,
        now: Timestamp,
    ) -> Result<Option<Checkpoint>, StoreError> {
        if let Err(e) = self.refresh().await {
            // Signing with the key this replica has is still a true statement.
            tracing::warn!(error = %e, "could not re-read the checkpoint key");
        }
        let (seq, hash) = store.chain_head().await?;
        let latest = store.latest_checkpoint().await?;
        if seq == 0 || latest.as_ref().is_some_and(|c| c.seq >= seq) {
            return Ok(latest);
        }
        let cp = self.sign(seq, &hash, now);
        store.insert_checkpoint(&cp).await?;
        Ok(Some(cp))
    }

    pub fn sign(&self, seq: i64, hash: &[u8; 32], at: Timestamp) -> Checkpoint {
        let key = self.key();
        let signature = key.pair.sign(&Checkpoint::message(seq, hash, at));
        Checkpoint {
            seq,
            hash: to_hex(hash),
            at,
            public_key: key.public_key.clone(),
            signature: to_hex(signature.as_ref()),
        }
    }
}

async fn newest(store: &DynStore) -> Result<Option<CheckpointKeyRow>, StoreError> {
    Ok(store
        .checkpoint_keys()
        .await?
        .into_iter()
        .find(|r| r.retired_at.is_none()))
}

fn generate() -> anyhow::Result<Vec<u8>> {
    Ok(Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|_| anyhow::anyhow!("generating a checkpoint key"))?
        .as_ref()
        .to_vec())
}

fn seal(kek: &Kek, key: &Key, pkcs8: &[u8], now: Timestamp) -> anyhow::Result<CheckpointKeyRow> {
    Ok(CheckpointKeyRow {
        public_key: key.public_key.clone(),
        sealed_private: kek
            .seal(pkcs8, &key.public_key)
            .map_err(|e| anyhow::anyhow!("sealing the checkpoint key: {e}"))?,
        created_at: now,
        retired_at: None,
    })
}

fn event(key: &Key, replaces: Option<&str>, now: Timestamp, by: Actor, why: &str) -> Event {
    Event::new(
        now,
        by,
        AuditAction::CheckpointKeyCreated,
        "checkpoint_key",
        &key.public_key,
    )
    .reason(why)
    .detail(serde_json::json!({ "public_key": key.public_key, "replaces": replaces }))
}

/// Stores `key` in place of `current` (false if another replica changed it first).
#[allow(clippy::too_many_arguments)]
async fn put(
    store: &DynStore,
    kek: &Kek,
    key: &Key,
    pkcs8: &[u8],
    current: Option<&str>,
    now: Timestamp,
    by: Actor,
    why: &str,
) -> anyhow::Result<bool> {
    let row = seal(kek, key, pkcs8, now)?;
    let event = event(key, current, now, by, why);
    Ok(store.replace_checkpoint_key(&row, current, &event).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aim_token::checkpoint::verify;

    async fn store(dir: &Path) -> DynStore {
        Arc::new(
            aim_store::sqlite::SqliteStore::open(&dir.join("aim.db"))
                .await
                .unwrap(),
        )
    }

    fn kek() -> Kek {
        Kek::from_bytes(&[7; aim_token::kek::KEK_LEN]).unwrap()
    }

    #[tokio::test]
    async fn one_key_signs_for_every_replica_and_rotation_keeps_the_old_verifying() {
        let dir = tempfile::tempdir().unwrap();
        let db = store(dir.path()).await;
        let now = Timestamp::from_millis(1_000);
        let a = Signer::load(db.clone(), kek(), dir.path(), now)
            .await
            .unwrap();
        let other_dir = tempfile::tempdir().unwrap();
        let b = Signer::load(db.clone(), kek(), other_dir.path(), now)
            .await
            .unwrap();
        assert_eq!(a.public_key(), b.public_key(), "replicas share the key");
        assert!(
            !dir.path().join(KEY_FILE).exists(),
            "no key file in the data dir"
        );
        let cp = b.sign(42, &[7; 32], now);
        assert_eq!(verify(&cp, Some(&a.public_key())), Ok(()));
        // A replica without the KEK cannot use it.
        let wrong = Kek::from_bytes(&[8; aim_token::kek::KEK_LEN]).unwrap();
        assert!(
            Signer::load(db.clone(), wrong, dir.path(), now)
                .await
                .is_err()
        );

        let old = a.public_key();
        let new = a
            .rotate(Timestamp::from_millis(2_000), Actor::system("test"))
            .await
            .unwrap();
        assert_ne!(new, old);
        b.refresh().await.unwrap();
        assert_eq!(
            b.public_key(),
            new,
            "the other replica follows the rotation"
        );
        let published = a.published().await.unwrap();
        assert_eq!(published.len(), 2);
        assert_eq!(
            (published[0].public_key.as_str(), published[0].retired_at),
            (new.as_str(), None)
        );
        assert_eq!(published[1].retired_at, Some(Timestamp::from_millis(2_000)));
        // What the old key signed still verifies with it.
        assert_eq!(verify(&cp, Some(&old)), Ok(()));
        for forged in [
            Checkpoint {
                seq: 41,
                ..cp.clone()
            },
            Checkpoint {
                hash: to_hex(&[8; 32]),
                ..cp.clone()
            },
            Checkpoint {
                at: Timestamp::from_millis(1001),
                ..cp.clone()
            },
            Checkpoint {
                signature: "00".repeat(64),
                ..cp.clone()
            },
            Checkpoint {
                signature: "zz".into(),
                ..cp.clone()
            },
        ] {
            assert!(verify(&forged, None).is_err(), "{forged:?}");
        }
    }

    /// A data dir's own key from before keys were shared becomes the shared key, so what it
    /// signed still checks against the same public key.
    #[tokio::test]
    async fn an_old_data_dir_key_is_brought_along() {
        let dir = tempfile::tempdir().unwrap();
        let pkcs8 = generate().unwrap();
        std::fs::write(dir.path().join(KEY_FILE), &pkcs8).unwrap();
        let public = Key::from_pkcs8(&pkcs8).unwrap().public_key;
        let db = store(dir.path()).await;
        let s = Signer::load(db, kek(), dir.path(), Timestamp::from_millis(1))
            .await
            .unwrap();
        assert_eq!(s.public_key(), public);
    }
}
