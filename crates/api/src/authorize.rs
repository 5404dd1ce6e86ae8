//! `POST /v1/authorize`: may this principal take this action on this resource now?

use aim_domain::decision::{Call, Decision, Target};
use aim_domain::ids::{ApprovalId, HumanId, IdentityId, TaskId};
use aim_domain::lease::Lease;
use aim_domain::time::Timestamp;
use serde::{Deserialize, Serialize};

use crate::policies::Content;

/// Who the question is about, for an admin or a gateway asking on someone's behalf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PrincipalRef {
    Identity(IdentityId),
    Human(HumanId),
}

/// The question: `action` on `resource` (`{"type", "id", "system", "attrs", "tags"}`),
/// with what the caller says about the `call` (`method`, `path`, `ip`, `args_hash`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AuthorizeBody {
    pub action: String,
    pub resource: Target,
    #[serde(default)]
    pub call: Call,
    /// Admins only, and only without an agent token: `{"identity": id}` or
    /// `{"human": id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<PrincipalRef>,
    /// With an explicit identity: the task to decide under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub task_id: Option<TaskId>,
    /// Retrying an action that needed approval: the approval's id. It allows that exact
    /// action once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub approval_id: Option<ApprovalId>,
    /// `explain` only: decide against these files instead of the set in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<Content>,
}

/// `decision` (`allow`, `deny`, `approval_required`), `policies`, `reasons`, `approvers`,
/// `errors`, and the `policy_version` that decided.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthorizeResponse {
    #[serde(flatten)]
    pub decision: Decision,
    /// The policy version that decided; absent for a proposed set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<i64>,
    /// `code`, `holder`, `approval_id`, `approval_expires_at`, when grants, leases or
    /// approvals had a say.
    #[serde(flatten)]
    pub amended: Amended,
}

/// What the answer carries besides the policy decision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    pub approval_id: Option<ApprovalId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_expires_at: Option<Timestamp>,
}
