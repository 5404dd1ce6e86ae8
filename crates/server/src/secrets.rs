//! Secrets aim makes and keeps: humans' credentials (random, shown once, stored as a
//! SHA-256 hash) and the private files in the data dir (the first admin's credential, the
//! key-encryption key, the audit signing key), written readable by their owner alone.

use std::io::Write;
use std::path::Path;

use aim_domain::human::{Credential, Human};
use aim_domain::ids::CredentialId;
use aim_domain::time::Timestamp;
use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// Every credential starts with this, so secret scanners can recognise a leaked one.
pub const CREDENTIAL_PREFIX: &str = "aim_";

/// A new random credential secret and the hash that is stored.
pub fn new_secret() -> Result<(String, [u8; 32]), ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| {
        tracing::error!(error = %e, "no randomness");
        ApiError::internal()
    })?;
    let secret = format!("{CREDENTIAL_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash_secret(&secret);
    Ok((secret, hash))
}

/// What is stored of a secret, and what a presented one is looked up by.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// A credential record for `human`, labelled, made `now`.
pub fn new_credential(human: &Human, label: &str, now: Timestamp) -> Credential {
    Credential {
        id: CredentialId::new(),
        human_id: human.id,
        label: label.to_owned(),
        created_at: now,
        last_used_at: None,
        revoked_at: None,
    }
}

/// What [`write_private`] does when the file exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Replace its contents (a rotated credential).
    Replace,
    /// Fail, leaving it alone (a key another replica may have just made).
    Keep,
}

/// Writes `contents` to a file only its owner can read, synced to disk.
pub fn write_private(
    path: &Path,
    contents: impl AsRef<[u8]>,
    existing: Existing,
) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    match existing {
        Existing::Replace => options.create(true).truncate(true),
        Existing::Keep => options.create_new(true),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // An existing file keeps its mode on open; make sure it is private.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(contents.as_ref())?;
    f.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_are_owner_only_and_keep_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        write_private(&path, "one", Existing::Keep).unwrap();
        assert!(write_private(&path, "two", Existing::Keep).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one");
        write_private(&path, "three", Existing::Replace).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
