//! Signed checkpoints of the audit chain: an Ed25519 statement that record `seq` had hash
//! `hash`, made every minute (and on demand) by the server with a key in its data dir, to
//! be kept outside aim. A log rewritten or cut short later no longer matches a checkpoint,
//! even if whoever did it also rewrote the chain head.

use std::path::Path;

use aim_domain::audit::{Checkpoint, to_hex};
use anyhow::Context;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};

use aim_domain::time::Timestamp;
use aim_store::{DynStore, StoreError};

pub const KEY_FILE: &str = "audit-signing-key";

/// The server's checkpoint signing key.
pub struct Signer {
    key: Ed25519KeyPair,
    public_key: String,
}

impl std::fmt::Debug for Signer {
    // INVARIANT: the private key never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Loads `<data_dir>/audit-signing-key` (PKCS#8), creating it (mode 0600) if missing.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Signer> {
        let path = data_dir.join(KEY_FILE);
        if !path.exists() {
            std::fs::create_dir_all(data_dir)
                .with_context(|| format!("creating {}", data_dir.display()))?;
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|_| anyhow::anyhow!("generating a key"))?;
            crate::secrets::write_private(&path, pkcs8.as_ref(), crate::secrets::Existing::Keep)?;
        }
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let key = Ed25519KeyPair::from_pkcs8(&bytes)
            .or_else(|_| Ed25519KeyPair::from_pkcs8_maybe_unchecked(&bytes))
            .map_err(|_| anyhow::anyhow!("{} is not an Ed25519 PKCS#8 key", path.display()))?;
        let public_key = to_hex(key.public_key().as_ref());
        Ok(Signer { key, public_key })
    }

    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// Signs the current head if it moved since the last checkpoint; returns the latest.
    pub async fn checkpoint(
        &self,
        store: &DynStore,
        now: Timestamp,
    ) -> Result<Option<Checkpoint>, StoreError> {
        let (seq, hash) = store.chain_head().await?;
        let latest = store.latest_checkpoint().await?;
        if seq == 0 || latest.as_ref().is_some_and(|c| c.seq >= seq) {
            return Ok(latest);
        }
        let cp = self.sign(seq, &hash, now);
        store.insert_checkpoint(&cp).await?;
        Ok(Some(cp))
    }

    pub fn sign(&self, seq: i64, hash: &[u8; 32], at: aim_domain::Timestamp) -> Checkpoint {
        let signature = self.key.sign(&Checkpoint::message(seq, hash, at));
        Checkpoint {
            seq,
            hash: to_hex(hash),
            at,
            public_key: self.public_key.clone(),
            signature: to_hex(signature.as_ref()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aim_token::checkpoint::verify;

    #[test]
    fn signatures_verify_and_forgeries_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let signer = Signer::load_or_create(dir.path()).unwrap();
        let again = Signer::load_or_create(dir.path()).unwrap();
        assert_eq!(signer.public_key(), again.public_key(), "the key is kept");
        let cp = signer.sign(42, &[7; 32], aim_domain::Timestamp::from_millis(1000));
        assert_eq!(verify(&cp, None), Ok(()));
        assert_eq!(verify(&cp, Some(signer.public_key())), Ok(()));
        let other = Signer::load_or_create(tempfile::tempdir().unwrap().path()).unwrap();
        assert!(verify(&cp, Some(other.public_key())).is_err());
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
                at: aim_domain::Timestamp::from_millis(1001),
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
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
