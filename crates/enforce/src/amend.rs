//! What grants, leases and approvals make of the policy set's decision, in this order:
//!
//! 1. A live grant turns a default deny (no policy permitted, none forbade, nothing
//!    failed) into an allow. It never overrides a forbid or one of aim's own rules.
//! 2. A write or delete on a record another identity leases is denied with
//!    `conflict_of_authority`, naming the holder, whatever allowed it.
//! 3. A call out of character for its identity's baseline is stepped up (an allow becomes
//!    `approval_required`, the sponsor named) or, for a lock, denied.
//! 4. An `approval_required` asked by an agent under its task becomes a pending approval
//!    (or the one already waiting for that exact action); retried with an approved
//!    approval's id for that exact action, it becomes one allow (see [`crate::pipeline`]).

use aim_api::authorize::Amended;
use aim_domain::approval::ApprovedAction;
use aim_domain::baseline::respond::Response;
use aim_domain::baseline::watch::Verdict;
use aim_domain::decision::{Decision, Effect, Target};
use aim_domain::grant::Grant;
use aim_domain::identity::Identity;
use aim_domain::ids::IdentityId;
use aim_domain::lease::{Lease, Record};
use aim_domain::task::Task;
use aim_domain::time::Timestamp;

/// The rule id reported when a lease decides.
pub const CONFLICT_OF_AUTHORITY: &str = "aim/conflict-of-authority";

/// The live grants as of a revision.
#[derive(Debug, Default)]
pub struct Grants {
    pub revision: i64,
    pub grants: Vec<Grant>,
}

impl Grants {
    /// The first live grant that lets `identity` (in `groups`) take one of `actions` on
    /// the target at `now`.
    pub fn grant_for(
        &self,
        identity: IdentityId,
        groups: &[String],
        actions: &[&str],
        target: (&str, &str, &str),
        now: Timestamp,
    ) -> Option<&Grant> {
        self.grants
            .iter()
            .find(|g| g.covers(identity, groups, actions, target, now))
    }
}

fn is_write(names: &[String]) -> bool {
    names.iter().any(|n| n == "write" || n == "delete")
}

/// Step 1: a live grant turns a default deny into an allow. `names` are the action and
/// the groups it is in (`Engine::action_names`), read once per decision.
pub fn apply_grants(
    grants: &Grants,
    names: &[String],
    identity: &Identity,
    target: &Target,
    now: Timestamp,
    decision: &mut Decision,
) {
    let default_deny = decision.decision == Effect::Deny
        && decision.policies.is_empty()
        && decision.errors.is_empty();
    if !default_deny {
        return;
    }
    let groups: Vec<String> = identity.owner_team.iter().cloned().collect();
    let actions: Vec<&str> = names.iter().map(String::as_str).collect();
    let on = (
        target.kind.as_str(),
        target.id.as_str(),
        target.system.as_str(),
    );
    if let Some(g) = grants.grant_for(identity.id, &groups, &actions, on, now) {
        *decision = Decision {
            decision: Effect::Allow,
            policies: vec![format!("grant/{}", g.id)],
            reasons: vec![format!("granted: {}", g.reason)],
            approvers: Vec::new(),
            errors: Vec::new(),
        };
    }
}

/// The record a write on `target` would lease-check, if the action (`names`) writes.
pub fn leased_record(names: &[String], target: &Target) -> Option<Record> {
    is_write(names).then(|| Record {
        system: target.system.clone(),
        kind: target.kind.clone(),
        id: target.id.clone(),
    })
}

/// Step 2: a write on a record another identity holds is denied, naming the holder.
pub fn apply_lease(
    held: Option<Lease>,
    identity: &Identity,
    decision: &mut Decision,
    out: &mut Amended,
) {
    let Some(held) = held.filter(|h| h.identity_id != identity.id) else {
        return;
    };
    if decision.decision == Effect::Deny {
        return;
    }
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

/// Turns `decision` into a deny for `why`, keeping what the policies said.
pub fn deny(decision: &mut Decision, why: &str) {
    decision.decision = Effect::Deny;
    if !why.is_empty() {
        decision.reasons.push(why.to_owned());
    }
}

/// A call out of character: a step-up asks the identity's sponsor (besides any approvers
/// the policies name) before an allow; a lock denies. The finding is the reason either way.
pub fn out_of_character(v: &Verdict, decision: &mut Decision, amended: &mut Amended) {
    let Some(cause) = v.cause() else { return };
    let rule = format!("behaviour/{}", cause.detector);
    match v.response {
        Response::Observe => return,
        Response::StepUp if decision.decision != Effect::Deny => {
            decision.decision = Effect::ApprovalRequired;
            if decision.approvers.is_empty() {
                decision.approvers.push("sponsor".into());
            }
            decision.reasons.push(cause.explanation.clone());
            amended.code = Some("behaviour_step_up".into());
        }
        Response::StepUp => return,
        Response::Lock => {
            deny(decision, &cause.explanation);
            amended.code = Some("behaviour_locked".into());
        }
    }
    decision.policies.push(rule);
}
