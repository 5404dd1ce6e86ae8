use aim_domain::Refusal;
use aim_domain::event::{Actor, AuditAction, Event};
use aim_domain::human::Role;
use aim_domain::identity::{Identity, IdentityPatch, IdentityRequest};
use aim_domain::ids::{HumanId, IdentityId};
use aim_domain::lifecycle::{StateCause, Transition};
use aim_domain::review::{Decider, Verdict, decide};
use aim_domain::risk::RiskTier;
use aim_domain::time::Timestamp;
use aim_store::StoreError;
use serde_json::json;

use crate::auth::HumanCaller;
use crate::error::ApiError;
use crate::state::AppState;

/// How many times a change is recomputed when another writer got there first.
const RETRIES: usize = 3;

/// What a change records.
#[derive(Debug)]
pub struct Change {
    pub action: AuditAction,
    pub reason: String,
    pub detail: serde_json::Value,
}

async fn active_sponsor(state: &AppState, id: HumanId) -> Result<(), ApiError> {
    match state.store.human(id).await? {
        None => Err(Refusal::SponsorNotFound(id.to_string()).into()),
        Some(h) if !h.is_active() => Err(Refusal::SponsorInactive(h.user_name).into()),
        Some(_) => Ok(()),
    }
}

pub async fn get(state: &AppState, id: IdentityId) -> Result<Identity, ApiError> {
    state
        .store
        .identity(id)
        .await?
        .ok_or_else(|| ApiError::not_found("identity"))
}

/// A new identity in `requested` (or `active`, when low-risk auto-approval is on).
pub async fn request(
    state: &AppState,
    p: &HumanCaller,
    req: IdentityRequest,
) -> Result<Identity, ApiError> {
    p.require_any(&[Role::Admin, Role::Sponsor], "requesting an identity")?;
    if !p.is(Role::Admin) && req.sponsor_id != p.human.id {
        // Accountability is accepted, not assigned: only an admin names someone else.
        return Err(ApiError::forbidden(
            "a sponsor requests identities only for themselves; an admin may name another sponsor",
        ));
    }
    let now = state.clock.now();
    let mut identity = req.into_identity(
        IdentityId::new(),
        p.human.id,
        now,
        &state.naming,
        &state.governance,
    )?;
    active_sponsor(state, identity.sponsor_id).await?;
    if state
        .store
        .identity_by_name(&identity.name)
        .await?
        .is_some()
    {
        return Err(Refusal::NameTaken(identity.name).into());
    }
    identity.possible_duplicate = state
        .store
        .duplicate_exists(&identity.duplicate_key(), identity.id)
        .await?;
    let event = p
        .event(now, AuditAction::IdentityRequested, "identity", identity.id)
        .reason(identity.purpose.clone())
        .detail(json!({
            "name": identity.name,
            "kind": identity.kind,
            "sponsor_id": identity.sponsor_id,
            "risk": identity.risk,
            "expires_at": identity.expires_at,
            "possible_duplicate": identity.possible_duplicate,
        }));
    state.store.insert_identity(&identity, &event).await?;
    if state.governance.auto_approve_low_risk && identity.risk.tier == RiskTier::Low {
        let read = identity.version;
        decide(
            &mut identity,
            Decider::AutoApproval,
            Verdict::Approve,
            "",
            now,
            &state.governance,
        )?;
        let event = Event::new(
            now,
            Actor::system("auto-approval"),
            AuditAction::IdentityApproved,
            "identity",
            identity.id,
        )
        .from_request(&p.request.id, &p.request.source)
        .reason(identity.state_reason.clone())
        .detail(json!({ "from": "requested", "to": identity.state }));
        state.store.update_identity(&identity, read, &event).await?;
    }
    Ok(identity)
}

/// Loads, changes and stores an identity, recomputing the change if another writer
/// updated it in between. `apply` checks permissions and applies the domain rule.
pub async fn mutate<F>(
    state: &AppState,
    p: &HumanCaller,
    id: IdentityId,
    mut apply: F,
) -> Result<Identity, ApiError>
where
    F: FnMut(&mut Identity, Timestamp) -> Result<Change, ApiError>,
{
    let mut last = None;
    for _ in 0..RETRIES {
        let mut identity = get(state, id).await?;
        let read = identity.version;
        let key_before = identity.duplicate_key();
        let now = state.clock.now();
        let change = apply(&mut identity, now)?;
        if identity.duplicate_key() != key_before {
            identity.possible_duplicate = state
                .store
                .duplicate_exists(&identity.duplicate_key(), identity.id)
                .await?;
        }
        let event = p
            .event(now, change.action, "identity", id)
            .reason(change.reason)
            .detail(change.detail);
        match state.store.update_identity(&identity, read, &event).await {
            Ok(()) => return Ok(identity),
            Err(StoreError::Conflict(Refusal::ConcurrentUpdate)) => {
                last = Some(Refusal::ConcurrentUpdate)
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(last.unwrap_or(Refusal::ConcurrentUpdate).into())
}

pub async fn decide_request(
    state: &AppState,
    p: &HumanCaller,
    id: IdentityId,
    verdict: Verdict,
    reason: &str,
) -> Result<Identity, ApiError> {
    p.require_any(&[Role::Admin, Role::Approver], "deciding on a request")?;
    let gov = state.governance.clone();
    mutate(state, p, id, |i, now| {
        let from = i.state;
        decide(i, Decider::Human(p.human.id), verdict, reason, now, &gov)?;
        let action = match verdict {
            Verdict::Approve => AuditAction::IdentityApproved,
            Verdict::Reject => AuditAction::IdentityRejected,
        };
        Ok(Change {
            action,
            reason: i.state_reason.clone(),
            detail: json!({ "from": from, "to": i.state }),
        })
    })
    .await
}

/// suspend, resume, lock, unlock, decommission.
pub async fn move_state(
    state: &AppState,
    p: &HumanCaller,
    id: IdentityId,
    t: Transition,
    reason: &str,
) -> Result<Identity, ApiError> {
    let gov = state.governance.clone();
    mutate(state, p, id, |i, now| {
        match t {
            Transition::Unlock => p.require_any(&[Role::Admin], "unlocking")?,
            _ => p.require_admin_or_sponsor_of(i, t.as_str())?,
        }
        let from = i.state;
        let reason = if reason.trim().is_empty() && t != Transition::Unlock {
            format!("{} by {}", past_tense(t), p.human.user_name)
        } else {
            reason.to_owned()
        };
        let cause = if t == Transition::Decommission {
            StateCause::Decommissioned
        } else {
            StateCause::Manual
        };
        i.transition(t, cause, &reason, now, &gov)?;
        Ok(Change {
            action: event_action(t),
            reason: i.state_reason.clone(),
            detail: json!({ "from": from, "to": i.state }),
        })
    })
    .await
}

fn past_tense(t: Transition) -> &'static str {
    match t {
        Transition::Approve => "approved",
        Transition::Reject => "rejected",
        Transition::Suspend => "suspended",
        Transition::Resume => "resumed",
        Transition::Lock => "locked",
        Transition::Unlock => "unlocked",
        Transition::Expire => "expired",
        Transition::Decommission => "decommissioned",
    }
}

fn event_action(t: Transition) -> AuditAction {
    match t {
        Transition::Approve => AuditAction::IdentityApproved,
        Transition::Reject => AuditAction::IdentityRejected,
        Transition::Suspend => AuditAction::IdentitySuspended,
        Transition::Resume => AuditAction::IdentityResumed,
        Transition::Lock => AuditAction::IdentityLocked,
        Transition::Unlock => AuditAction::IdentityUnlocked,
        Transition::Expire => AuditAction::IdentityExpired,
        Transition::Decommission => AuditAction::IdentityDecommissioned,
    }
}

pub async fn attest(
    state: &AppState,
    p: &HumanCaller,
    id: IdentityId,
    note: &str,
) -> Result<Identity, ApiError> {
    let gov = state.governance.clone();
    mutate(state, p, id, |i, now| {
        p.require_admin_or_sponsor_of(i, "attesting")?;
        let from = i.state;
        i.attest(now, &gov)?;
        let reason = if note.trim().is_empty() { "purpose and entitlements re-certified".to_owned() } else { note.trim().to_owned() };
        Ok(Change {
            action: AuditAction::IdentityAttested,
            reason,
            detail: json!({ "from": from, "to": i.state, "attestation_due_at": i.attestation_due_at }),
        })
    })
    .await
}

pub async fn change(
    state: &AppState,
    p: &HumanCaller,
    id: IdentityId,
    patch: IdentityPatch,
) -> Result<Identity, ApiError> {
    if let Some(s) = patch.sponsor_id {
        p.require_any(&[Role::Admin], "assigning a sponsor")?;
        active_sponsor(state, s).await?;
    }
    if let Some(team) = patch.owner_team.as_deref().map(str::trim)
        && !team.is_empty()
        && !state.store.group_known(team).await?
    {
        return Err(ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_group",
            format!(
                "no human, identity or grant is in group `{}`: check the name, or add the group to a human first",
                team.chars().take(128).collect::<String>()
            ),
        ));
    }
    let gov = state.governance.clone();
    let changed = mutate(state, p, id, |i, now| {
        p.require_admin_or_sponsor_of(i, "changing an identity")?;
        let before_tier = i.risk.tier;
        // INVARIANT: what widens the identity's reach waits for a second person; it keeps
        // its approved entitlements until then.
        let (applied, waiting) = i.request_change(patch.clone(), p.human.id, now, &gov)?;
        let mut reason = format!("changed {}", applied.join(", "));
        if !waiting.is_empty() {
            reason = format!("{reason}; waiting for approval: {}", waiting.join(", "));
        }
        Ok(Change {
            action: AuditAction::IdentityChanged,
            reason,
            detail: json!({
                "fields": applied,
                "pending": waiting,
                "risk_tier_before": before_tier,
                "risk": i.risk,
            }),
        })
    })
    .await?;
    // As with a request, a low-risk result is approved by the rule when that is enabled.
    let after_tier = changed.pending_change.as_ref().and_then(|c| {
        let mut trial = changed.clone();
        trial
            .apply_patch(c.patch.clone(), state.clock.now(), &gov)
            .ok()?;
        Some(trial.risk.tier)
    });
    if gov.auto_approve_low_risk && after_tier == Some(RiskTier::Low) {
        return decide_change(state, p, id, Decider::AutoApproval, Verdict::Approve, "").await;
    }
    Ok(changed)
}

/// Approves or rejects an identity's pending change (`POST .../change/approve|reject`).
pub async fn decide_change(
    state: &AppState,
    p: &HumanCaller,
    id: IdentityId,
    decider: Decider,
    verdict: Verdict,
    reason: &str,
) -> Result<Identity, ApiError> {
    if decider != Decider::AutoApproval {
        p.require_any(&[Role::Admin, Role::Approver], "deciding on a change")?;
    }
    let gov = state.governance.clone();
    mutate(state, p, id, |i, now| {
        let fields = i
            .pending_change
            .as_ref()
            .map(|c| c.fields.clone())
            .unwrap_or_default();
        let applied = i.decide_change(decider, verdict, now, &gov)?;
        let action = match verdict {
            Verdict::Approve => AuditAction::IdentityChangeApproved,
            Verdict::Reject => AuditAction::IdentityChangeRejected,
        };
        let reason = match (reason.trim(), decider) {
            ("", Decider::AutoApproval) => "auto-approved: low risk".to_owned(),
            ("", _) => format!("{} {}", verdict_word(verdict), fields.join(", ")),
            (r, _) => r.to_owned(),
        };
        Ok(Change {
            action,
            reason,
            detail: json!({ "fields": fields, "applied": applied, "risk": i.risk }),
        })
    })
    .await
}

/// Lets the identity have bearer tokens (not bound to its key), or withdraws that: admins
/// only, with a reason when allowing.
pub async fn set_bearer(
    state: &AppState,
    p: &HumanCaller,
    id: IdentityId,
    allowed: bool,
    reason: &str,
) -> Result<Identity, ApiError> {
    p.require_any(&[Role::Admin], "letting an identity have bearer tokens")?;
    let reason = reason.trim().to_owned();
    if allowed && reason.is_empty() {
        return Err(Refusal::Validation(
            "say why this identity may have tokens that are not bound to its key (`reason`)".into(),
        )
        .into());
    }
    mutate(state, p, id, |i, now| {
        i.bearer_reason = allowed.then(|| reason.clone());
        i.updated_at = now;
        i.version += 1;
        Ok(Change {
            action: if allowed {
                AuditAction::IdentityBearerAllowed
            } else {
                AuditAction::IdentityBearerWithdrawn
            },
            reason: reason.clone(),
            detail: json!({ "bearer_tokens": allowed }),
        })
    })
    .await
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Approve => "approved",
        Verdict::Reject => "rejected",
    }
}
