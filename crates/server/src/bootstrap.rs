//! First start: with no humans in the store, aim creates an `admin` human and one API
//! credential for them, writes the credential to `<data-dir>/bootstrap-admin-token` (mode
//! 0600) and returns it to be printed once. Only its hash is stored.

use std::path::{Path, PathBuf};

use aim_domain::event::{Actor, AuditAction, Event};
use aim_domain::human::{NewHuman, Role};
use aim_domain::ids::HumanId;
use anyhow::Context;

use crate::secrets::{Existing, new_credential, new_secret, write_private};
use crate::state::AppState;

pub const TOKEN_FILE: &str = "bootstrap-admin-token";
/// The label of the first-start credential.
pub const LABEL: &str = "bootstrap";

pub struct Bootstrapped {
    pub secret: String,
    pub file: PathBuf,
}

impl std::fmt::Debug for Bootstrapped {
    // INVARIANT: the secret never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bootstrapped")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

pub async fn ensure_admin(
    state: &AppState,
    data_dir: &Path,
) -> anyhow::Result<Option<Bootstrapped>> {
    if !state
        .store
        .list_humans(&Default::default(), None, 1)
        .await?
        .is_empty()
    {
        return Ok(None);
    }
    let now = state.clock.now();
    let admin = NewHuman {
        user_name: "admin".into(),
        display_name: Some("Bootstrap admin".into()),
        email: None,
        external_id: None,
        roles: vec![Role::Admin],
        groups: Vec::new(),
    }
    .into_human(HumanId::new(), now)
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (secret, hash) = new_secret().map_err(|e| anyhow::anyhow!(e.message))?;
    let credential = new_credential(&admin, LABEL, now);

    // The file first: if it cannot be written, nothing is stored and the next start retries.
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let file = data_dir.join(TOKEN_FILE);
    write_private(&file, format!("{secret}\n"), Existing::Replace)?;
    let event = Event::new(now, Actor::system("bootstrap"), AuditAction::HumanCreated, "human", admin.id)
        .reason("first start: bootstrap admin")
        .detail(serde_json::json!({ "user_name": admin.user_name, "roles": admin.roles, "credential_id": credential.id }));
    match state
        .store
        .bootstrap(&admin, &credential, &hash, &event)
        .await
    {
        Ok(true) => Ok(Some(Bootstrapped { secret, file })),
        Ok(false) => {
            // Another replica bootstrapped first; its credential is the valid one.
            let _ = std::fs::remove_file(&file);
            Ok(None)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&file);
            Err(e).context("storing the bootstrap admin")
        }
    }
}

/// Revokes the first-start credential once another active admin has existed for
/// `ttl_hours`: a shared, file-stored admin secret should not outlive the need for it.
/// Returns whether it revoked.
pub async fn expire_superseded(state: &AppState) -> Result<bool, crate::error::ApiError> {
    let Some((credential, human)) = state.store.bootstrap_credential().await? else {
        return Ok(false);
    };
    let Some(since) = state.store.other_admin_since(human.id).await? else {
        return Ok(false);
    };
    let now = state.clock.now();
    let ttl_ms = i64::from(state.bootstrap.ttl_hours) * 3_600_000;
    if since.plus_millis(ttl_ms) > now {
        return Ok(false);
    }
    let event = Event::new(
        now,
        Actor::system("bootstrap"),
        AuditAction::CredentialRevoked,
        "human",
        human.id,
    )
    .reason(format!(
        "the bootstrap credential expires {} h after a second admin exists (since {since})",
        state.bootstrap.ttl_hours
    ))
    .detail(serde_json::json!({ "credential_id": credential.id, "label": LABEL }));
    Ok(state
        .store
        .revoke_credential(credential.id, now, &event)
        .await?)
}

/// Replaces the first-start credential: the old one stops working, the new secret is
/// returned once and written to `<data-dir>/bootstrap-admin-token` (0600).
pub async fn rotate(
    state: &AppState,
    p: &crate::auth::HumanCaller,
) -> Result<(aim_domain::human::Credential, String), crate::error::ApiError> {
    p.require_any(&[Role::Admin], "rotating the bootstrap credential")?;
    let Some((old, human)) = state.store.bootstrap_credential().await? else {
        return Err(crate::error::ApiError::not_found(
            "unrevoked bootstrap credential",
        ));
    };
    let now = state.clock.now();
    let (secret, hash) = new_secret()?;
    let credential = new_credential(&human, LABEL, now);
    // The old one goes first: if making the new one fails, no extra admin secret exists.
    let revoked = p
        .event(now, AuditAction::CredentialRevoked, "human", human.id)
        .reason("bootstrap credential rotated")
        .detail(serde_json::json!({ "credential_id": old.id, "replaced_by": credential.id }));
    if !state.store.revoke_credential(old.id, now, &revoked).await? {
        return Err(aim_domain::Refusal::ConcurrentUpdate.into());
    }
    let event = p
        .event(now, AuditAction::CredentialCreated, "human", human.id)
        .reason("bootstrap credential rotated")
        .detail(serde_json::json!({ "credential_id": credential.id, "replaces": old.id }));
    state
        .store
        .insert_credential(&credential, &hash, &event)
        .await?;
    let file = state.bootstrap.data_dir.join(TOKEN_FILE);
    if file.exists()
        && let Err(e) = write_private(&file, format!("{secret}\n"), Existing::Replace)
    {
        tracing::warn!(error = %e, file = %file.display(), "could not rewrite the bootstrap credential file; the new secret is only in the answer");
    }
    Ok((credential, secret))
}
