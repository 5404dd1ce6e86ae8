//! What grants, leases and approvals make of the policy set's decision, in this order:
//!
//! 1. A live grant turns a default deny (no policy permitted, none forbade, nothing
//!    failed) into an allow. It never overrides a forbid or one of aim's own rules.
//! 2. A write or delete on a record another identity leases is denied with
//!    `conflict_of_authority`, naming the holder, whatever allowed it.
//! 3. An `approval_required` asked by an agent under its task becomes a pending approval
//!    (or the one already waiting for that exact action); retried with an approved
//!    approval's id for that exact action, it becomes one allow.

use aim_domain::identity::Identity;
use aim_domain::lease::{Lease, Record};
use aim_domain::step_up::{ActionApproval, ApprovalState, ApprovedAction};
use aim_domain::task::Task;
use aim_domain::time::Timestamp;
use aim_policy::{Decision, Effect, Engine, Target};
use serde::Serialize;

use crate::error::ApiError;
use crate::state::AppState;

/// The rule id reported when a lease decides.
pub const CONFLICT_OF_AUTHORITY: &str = "aim/conflict-of-authority";

/// What the answer carries besides the policy decision.
#[derive(Debug, Default, Serialize, serde::Deserialize)]
pub struct Amended {
    /// Why, machine-readably, when something other than a policy decided:
    /// `conflict_of_authority`, `approval_pending`, `approval_used`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The lease another identity holds on the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<Lease>,
    /// The approval to wait for (and retry with), or the one that allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<aim_domain::ids::ApprovalId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_expires_at: Option<Timestamp>,
}

fn is_write(names: &[String]) -> bool {
    names.iter().any(|n| n == "write" || n == "delete")
}

/// Steps 1 and 2; what they add to the answer.
pub async fn grants_and_leases(
    s: &AppState,
    engine: &Engine,
    identity: &Identity,
    action: &str,
    target: &Target,
    now: Timestamp,
    decision: &mut Decision,
) -> Result<Amended, ApiError> {
    let mut out = Amended::default();
    let Some(names) = engine.action_names(action) else {
        return Ok(out);
    };
    let default_deny = decision.decision == Effect::Deny
        && decision.policies.is_empty()
        && decision.errors.is_empty();
    if default_deny {
        let groups: Vec<String> = identity.owner_team.iter().cloned().collect();
        let actions: Vec<&str> = names.iter().map(String::as_str).collect();
        let on = (
            target.kind.as_str(),
            target.id.as_str(),
            target.system.as_str(),
        );
        if let Some(g) = s.runtime.grant_for(identity.id, &groups, &actions, on, now) {
            *decision = Decision {
                decision: Effect::Allow,
                policies: vec![format!("grant/{}", g.id)],
                reasons: vec![format!("granted: {}", g.reason)],
                approvers: Vec::new(),
                errors: Vec::new(),
            };
        }
    }
    if decision.decision != Effect::Deny && is_write(&names) {
        let record = Record {
            system: target.system.clone(),
            kind: target.kind.clone(),
            id: target.id.clone(),
        };
        if let Some(held) = s.store.held_lease(&record, now).await?
            && held.identity_id != identity.id
        {
            *decision = Decision {
                decision: Effect::Deny,
                policies: vec![CONFLICT_OF_AUTHORITY.to_owned()],
                reasons: vec![held.conflict().to_string()],
                approvers: Vec::new(),
                errors: Vec::new(),
            };
            out.code = Some("conflict_of_authority".into());
            out.holder = Some(held);
        }
    }
    Ok(out)
}

/// The exact action an agent's `approval_required` is about.
pub fn approved_action(
    identity: &Identity,
    task: &Task,
    action: &str,
    target: &Target,
    args_hash: Option<&str>,
) -> ApprovedAction {
    ApprovedAction {
        identity_id: identity.id,
        task_id: task.id,
        action: action.to_owned(),
        resource_type: target.kind.clone(),
        resource_id: target.id.clone(),
        system: target.system.clone(),
        args_hash: args_hash.map(str::to_owned),
        target_digest: target_digest(target),
    }
}

/// SHA-256 (hex) of the target's attributes and tags in their RFC 8785 form, so the order
/// a caller sends them in does not matter.
fn target_digest(target: &Target) -> String {
    use sha2::Digest;
    let value = serde_json::json!({ "attrs": target.attrs, "tags": target.tags });
    let digest = sha2::Sha256::digest(aim_domain::audit::canonical_value(&value));
    aim_domain::audit::to_hex(&digest)
}

/// A new pending approval for `action`.
pub fn pending(
    s: &AppState,
    action: ApprovedAction,
    identity: &Identity,
    task: &Task,
    decision: &Decision,
    policy_version: i64,
    now: Timestamp,
) -> ActionApproval {
    ActionApproval {
        id: aim_domain::ids::ApprovalId::new(),
        action,
        approvers: decision.approvers.clone(),
        policies: decision.policies.clone(),
        policy_version,
        triggered_by: task.triggered_by.clone(),
        sponsor_id: identity.sponsor_id,
        state: ApprovalState::Pending,
        requested_at: now,
        expires_at: now.plus_seconds(s.runtime.approvals.ttl_seconds),
        decided_by: None,
        decided_at: None,
        reason: String::new(),
        used_at: None,
    }
}
