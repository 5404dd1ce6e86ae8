use aim_domain::Refusal;
use aim_domain::event::AuditAction;
use aim_domain::human::{Credential, Human, HumanPatch, NewHuman, Role};
use aim_domain::ids::{CredentialId, HumanId};
use aim_domain::time::Timestamp;
use aim_store::StoreError;
use serde_json::json;

use crate::auth::HumanCaller;
use crate::error::ApiError;
use crate::secrets::{new_credential, new_secret};
use crate::state::AppState;

const RETRIES: usize = 3;

pub async fn get(state: &AppState, id: HumanId) -> Result<Human, ApiError> {
    state
        .store
        .human(id)
        .await?
        .ok_or_else(|| ApiError::not_found("human"))
}

pub async fn create(state: &AppState, p: &HumanCaller, new: NewHuman) -> Result<Human, ApiError> {
    p.require_any(&[Role::Admin, Role::Scim], "creating a human")?;
    may_give_roles(p, &new.roles)?;
    let now = state.clock.now();
    let human = new.into_human(HumanId::new(), now)?;
    if state
        .store
        .human_by_user_name(&human.user_name)
        .await?
        .is_some()
    {
        return Err(Refusal::UserNameTaken(human.user_name).into());
    }
    let event = p.event(now, AuditAction::HumanCreated, "human", human.id)
        .detail(json!({ "user_name": human.user_name, "roles": human.roles, "external_id": human.external_id }));
    state.store.insert_human(&human, &event).await?;
    Ok(human)
}

/// Loads, changes and stores a human, retrying on a concurrent update. When the change
/// moves the human between active and departed, the same write orphans (or un-orphans)
/// every live identity they sponsor. Returns the human and how many identities that touched.
async fn mutate<F>(
    state: &AppState,
    p: &HumanCaller,
    id: HumanId,
    action: AuditAction,
    reason: &str,
    mut apply: F,
) -> Result<(Human, usize), ApiError>
where
    F: FnMut(&mut Human, Timestamp) -> Result<Option<serde_json::Value>, ApiError>,
{
    p.require_any(&[Role::Admin, Role::Scim], "changing a human")?;
    for _ in 0..RETRIES {
        let mut human = get(state, id).await?;
        let read = human.version;
        let was = human.state;
        let now = state.clock.now();
        // `None`: nothing to change.
        let Some(detail) = apply(&mut human, now)? else {
            return Ok((human, 0));
        };
        human.updated_at = now;
        human.version = read + 1;
        let event = p
            .event(now, action, "human", id)
            .reason(reason.to_owned())
            .detail(detail);
        let written = if human.state == was {
            state
                .store
                .update_human(&human, read, &event)
                .await
                .map(|()| 0)
        } else {
            state
                .store
                .update_human_sponsorships(&human, read, &event, now)
                .await
                .map(|c| c.len())
        };
        match written {
            Ok(orphaned) => {
                if orphaned > 0 && !human.is_active() {
                    tracing::warn!(human = %human.user_name, identities = orphaned, "sponsor departed; identities orphaned");
                }
                return Ok((human, orphaned));
            }
            Err(StoreError::Conflict(Refusal::ConcurrentUpdate)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Refusal::ConcurrentUpdate.into())
}

fn profile(h: &Human) -> serde_json::Value {
    json!({
        "user_name": h.user_name,
        "display_name": h.display_name,
        "email": h.email,
        "external_id": h.external_id,
        "roles": h.roles,
        "state": h.state,
    })
}

pub async fn change(
    state: &AppState,
    p: &HumanCaller,
    id: HumanId,
    patch: HumanPatch,
) -> Result<Human, ApiError> {
    // An admin cannot take away their own admin role: that is how a deployment loses its
    // last admin. Another admin can.
    if id == p.human.id
        && patch
            .roles
            .as_ref()
            .is_some_and(|r| !r.contains(&Role::Admin))
        && p.is(Role::Admin)
    {
        return Err(demote_self());
    }
    let (h, _) = mutate(state, p, id, AuditAction::HumanChanged, "", |h, now| {
        patch.clone().apply(h, now)?;
        Ok(Some(profile(h)))
    })
    .await?;
    Ok(h)
}

/// A change from the IdP (SCIM PUT or PATCH): profile fields and possibly `active`, in one
/// write. `apply` returns false when it changed nothing.
pub async fn provision(
    state: &AppState,
    p: &HumanCaller,
    id: HumanId,
    apply: impl Fn(&mut Human, Timestamp) -> Result<bool, ApiError>,
) -> Result<Human, ApiError> {
    let (h, _) = mutate(
        state,
        p,
        id,
        AuditAction::HumanProvisioned,
        "changed by the identity provider",
        |h, now| {
            let before = h.clone();
            if !apply(h, now)? {
                return Ok(None);
            }
            if h.state != before.state && !h.is_active() && id == p.human.id {
                return Err(depart_self());
            }
            // INVARIANT: the identity provider cannot take away the admin role its own
            // credential acts with (how a deployment loses its last admin), nor give roles
            // its caller could not.
            if id == p.human.id && before.has_role(Role::Admin) && !h.has_role(Role::Admin) {
                return Err(demote_self());
            }
            let added: Vec<Role> = h
                .roles
                .iter()
                .filter(|r| !before.roles.contains(r))
                .copied()
                .collect();
            may_give_roles(p, &added)?;
            Ok(Some(profile(h)))
        },
    )
    .await?;
    Ok(h)
}

fn demote_self() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::CONFLICT,
        "cannot_demote_self",
        "an admin cannot remove their own admin role; ask another admin",
    )
}

/// Only an admin gives the admin role or a machine role: a SCIM client provisions people,
/// it does not make admins or gateways.
fn may_give_roles(p: &HumanCaller, roles: &[Role]) -> Result<(), ApiError> {
    if p.is(Role::Admin) {
        return Ok(());
    }
    if let Some(r) = roles.iter().find(|r| **r == Role::Admin || r.is_machine()) {
        return Err(ApiError::forbidden(format!(
            "only an admin gives the role `{r}`"
        )));
    }
    Ok(())
}

fn depart_self() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::CONFLICT,
        "cannot_depart_self",
        "an admin cannot deactivate their own account; ask another admin",
    )
}

/// Marks a human departed (or active again) and, in the same write, orphans (or un-orphans)
/// every live identity they sponsor. `scim_deleted` also hides them from SCIM.
pub async fn set_active(
    state: &AppState,
    p: &HumanCaller,
    id: HumanId,
    active: bool,
    reason: &str,
    scim_deleted: bool,
) -> Result<(Human, usize), ApiError> {
    if !active && id == p.human.id {
        return Err(depart_self());
    }
    let action = if active {
        AuditAction::HumanReactivated
    } else {
        AuditAction::HumanDeparted
    };
    mutate(state, p, id, action, reason, |h, now| {
        let mut changed = if active {
            h.reactivate(now)
        } else {
            h.depart(now)
        };
        if scim_deleted && h.deleted_at.is_none() {
            h.deleted_at = Some(now);
            changed = true;
        }
        Ok(changed.then(|| json!({ "user_name": h.user_name, "scim_deleted": scim_deleted })))
    })
    .await
}

/// A new API credential for `id`. The secret is returned once and never stored.
pub async fn create_credential(
    state: &AppState,
    p: &HumanCaller,
    id: HumanId,
    label: &str,
) -> Result<(Credential, String), ApiError> {
    p.require_any(&[Role::Admin], "creating a credential")?;
    let human = get(state, id).await?;
    if !human.is_active() {
        return Err(Refusal::HumanDeparted(human.user_name).into());
    }
    let label = aim_domain::validate::optional_text("label", Some(label.to_owned()), 128)?
        .unwrap_or_else(|| "api".to_owned());
    let now = state.clock.now();
    let (secret, hash) = new_secret()?;
    let credential = new_credential(&human, &label, now);
    let event = p
        .event(
            now,
            AuditAction::CredentialCreated,
            "credential",
            credential.id,
        )
        .detail(json!({ "human_id": human.id, "label": credential.label }));
    state
        .store
        .insert_credential(&credential, &hash, &event)
        .await?;
    Ok((credential, secret))
}

pub async fn credentials(
    state: &AppState,
    p: &HumanCaller,
    id: HumanId,
) -> Result<Vec<Credential>, ApiError> {
    if p.human.id != id {
        p.require_any(
            &[Role::Admin, Role::Auditor],
            "listing another human's credentials",
        )?;
    }
    get(state, id).await?;
    Ok(state.store.credentials_of(id).await?)
}

pub async fn revoke_credential(
    state: &AppState,
    p: &HumanCaller,
    human: HumanId,
    id: CredentialId,
) -> Result<(), ApiError> {
    if p.human.id != human {
        p.require_any(&[Role::Admin], "revoking another human's credential")?;
    }
    let owned = state
        .store
        .credentials_of(human)
        .await?
        .into_iter()
        .any(|c| c.id == id);
    if !owned {
        return Err(ApiError::not_found("credential"));
    }
    let event = p
        .event(
            state.clock.now(),
            AuditAction::CredentialRevoked,
            "credential",
            id,
        )
        .detail(json!({ "human_id": human }));
    if !state
        .store
        .revoke_credential(id, state.clock.now(), &event)
        .await?
    {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "already_revoked",
            "the credential is already revoked",
        ));
    }
    Ok(())
}
