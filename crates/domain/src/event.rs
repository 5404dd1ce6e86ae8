//! The append-only record of everything that changed or was refused. Each store write that
//! changes state appends its event in the same transaction.

use serde::{Deserialize, Serialize};

use crate::ids::HumanId;
use crate::time::Timestamp;

str_enum! {
    pub enum ActorKind {
        Human => "human",
        Identity => "identity",
        System => "system",
        Anonymous => "anonymous",
    }
}

/// Who did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Actor {
    pub kind: ActorKind,
    /// A human id, a system component (`sweep`, `bootstrap`, `auto-approval`), or empty.
    pub id: String,
}

impl Actor {
    pub fn human(id: HumanId) -> Self {
        Self {
            kind: ActorKind::Human,
            id: id.to_string(),
        }
    }

    pub fn identity(id: crate::ids::IdentityId) -> Self {
        Self {
            kind: ActorKind::Identity,
            id: id.to_string(),
        }
    }

    pub fn system(component: &str) -> Self {
        Self {
            kind: ActorKind::System,
            id: component.to_owned(),
        }
    }

    pub fn anonymous() -> Self {
        Self {
            kind: ActorKind::Anonymous,
            id: String::new(),
        }
    }
}

str_enum! {
    pub enum Outcome {
        /// A change that was applied.
        Success => "success",
        /// A request that was refused (bad input, no permission, a rule of the registry).
        Denied => "denied",
        /// A runtime decision that allowed an action.
        Allow => "allow",
        /// A runtime decision that denied an action.
        Deny => "deny",
        /// A runtime decision that held an action for a human's approval.
        ApprovalRequired => "approval_required",
    }
}

/// What an agent said about why it made a call: the model's stated rationale, or the id
/// of the tool call in its transcript. Recorded as given; never trusted for a decision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ModelDecision {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rationale: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tool_call_id: String,
}

impl ModelDecision {
    pub const MAX_RATIONALE: usize = 4096;
    pub const MAX_TOOL_CALL_ID: usize = 256;

    /// Checks the sizes an agent may attach; the text itself is stored as given and shown
    /// escaped.
    pub fn validate(&self) -> Result<(), crate::Refusal> {
        if self.rationale.len() > Self::MAX_RATIONALE {
            return Err(crate::Refusal::Validation(format!(
                "model_decision.rationale: at most {} bytes",
                Self::MAX_RATIONALE
            )));
        }
        if self.tool_call_id.len() > Self::MAX_TOOL_CALL_ID
            || self.tool_call_id.chars().any(char::is_control)
        {
            return Err(crate::Refusal::Validation(format!(
                "model_decision.tool_call_id: at most {} bytes, no control characters",
                Self::MAX_TOOL_CALL_ID
            )));
        }
        Ok(())
    }
}

/// The work an event belongs to: which task, session and token, who delegated, and the
/// human request that started it all. Empty for registry changes made by humans.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Trail {
    /// The delegation chain the actor acted under (RFC 8693 `act`): the identity that
    /// delegated to the actor first, then whoever delegated to that one, and so on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub act: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub task_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub session_id: String,
    /// The id of the token the actor presented, or of the token this event issued.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jti: String,
    /// The human request behind the task (a ticket, chat message or approval reference).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub triggered_by: String,
    /// For decisions: the ids of the policies that decided.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_decision: Option<ModelDecision>,
}

impl Trail {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

str_enum! {
    /// Everything the audit log records, from this one list, so the writers, the filters and
    /// the exports cannot drift apart. `tool.called` and `anomaly.detected` are written by
    /// the enforcement gateway and behavioural detection.
    pub enum AuditAction {
        IdentityRequested => "identity.requested",
        IdentityApproved => "identity.approved",
        IdentityRejected => "identity.rejected",
        IdentitySuspended => "identity.suspended",
        IdentityResumed => "identity.resumed",
        IdentityLocked => "identity.locked",
        IdentityUnlocked => "identity.unlocked",
        IdentityExpired => "identity.expired",
        IdentityDecommissioned => "identity.decommissioned",
        IdentityAttested => "identity.attested",
        IdentityChanged => "identity.changed",
        IdentityChangeApproved => "identity.change_approved",
        IdentityChangeRejected => "identity.change_rejected",
        IdentityBearerAllowed => "identity.bearer_allowed",
        IdentityBearerWithdrawn => "identity.bearer_withdrawn",
        IdentityImported => "identity.imported",
        IdentityOrphaned => "identity.orphaned",
        IdentitySponsorReturned => "identity.sponsor_returned",
        IdentityFlaggedDormant => "identity.flagged_dormant",
        /// An identity flagged dormant was seen again (it got a token): no longer dormant.
        IdentityActiveAgain => "identity.active_again",
        HumanCreated => "human.created",
        HumanChanged => "human.changed",
        HumanProvisioned => "human.provisioned",
        HumanReactivated => "human.reactivated",
        HumanDeparted => "human.departed",
        /// A group an identity provider pushed over SCIM, changed, or deleted.
        GroupProvisioned => "group.provisioned",
        GroupChanged => "group.changed",
        GroupDeleted => "group.deleted",
        CredentialCreated => "credential.created",
        CredentialRevoked => "credential.revoked",
        AgentKeyAdded => "agent_key.added",
        AgentKeyRevoked => "agent_key.revoked",
        JoinTokenCreated => "join_token.created",
        JoinRefused => "join.refused",
        SigningKeyCreated => "signing_key.created",
        SigningKeyRetired => "signing_key.retired",
        SigningKeyRevoked => "signing_key.revoked",
        /// A new key signs audit checkpoints (the first, or a rotation; the old one still
        /// verifies what it signed).
        CheckpointKeyCreated => "checkpoint_key.created",
        TokenIssued => "token.issued",
        TokenRefused => "token.refused",
        TokenRevoked => "token.revoked",
        TaskOpened => "task.opened",
        TaskEnded => "task.ended",
        TaskNarrowed => "task.narrowed",
        PolicyApplied => "policy.applied",
        PolicyRolledBack => "policy.rolled_back",
        Decision => "decision",
        ApprovalRequested => "approval.requested",
        ApprovalApproved => "approval.approved",
        ApprovalDenied => "approval.denied",
        ApprovalWebhookFailed => "approval.webhook_failed",
        GrantAdded => "grant.added",
        GrantRequested => "grant.requested",
        GrantApproved => "grant.approved",
        GrantDenied => "grant.denied",
        GrantRevoked => "grant.revoked",
        LeaseAcquired => "lease.acquired",
        LeaseReleased => "lease.released",
        RequestRefused => "request.refused",
        ToolCalled => "tool.called",
        /// A gateway saw a tool it had not seen, or a tool's definition change.
        ToolDiscovered => "tool.discovered",
        /// An admin pinned a tool's definition: it may be listed and called.
        ToolApproved => "tool.approved",
        /// A credential for an upstream stored in aim (sealed), or replaced.
        UpstreamSecretStored => "upstream_secret.stored",
        UpstreamSecretDeleted => "upstream_secret.deleted",
        /// A gateway read an upstream credential to inject it.
        UpstreamSecretRead => "upstream_secret.read",
        AnomalyDetected => "anomaly.detected",
        /// An admin marked an anomaly as expected: its call is now part of the baseline.
        AnomalyExpected => "anomaly.expected",
        /// An import of a discovery source began.
        DiscoveryImportStarted => "discovery.import_started",
        /// One batch of an import's accounts was read: how many were new, changed, the same.
        DiscoveryAccountsImported => "discovery.accounts_imported",
        /// An import ended: the accounts it did not see are marked gone, its counts kept.
        DiscoveryImportFinished => "discovery.import_finished",
        /// An import ended without marking anything gone (reading its source failed).
        DiscoveryImportAbandoned => "discovery.import_abandoned",
        /// A discovered account was adopted: an identity requested for it, linked to it.
        DiscoveryAccountAdopted => "discovery.account_adopted",
        /// A discovered account was put on its source's decommission list.
        DiscoveryAccountMarked => "discovery.account_marked",
        /// A finding was acknowledged, with a reason, until a date.
        DiscoveryFindingAcknowledged => "discovery.finding_acknowledged",
        /// A source's findings were brought up to date without an import (the clock moved
        /// on, an owner left): how many accounts changed, and which kinds came and went.
        DiscoveryFindingsReassessed => "discovery.findings_reassessed",
        /// A compliance report was generated (its score kept for the trend).
        ComplianceReported => "report.compliance_generated",
    }
}

impl AuditAction {
    /// What the action is about: the part before the dot (`identity`, `token`, `decision`).
    pub fn family(self) -> &'static str {
        let s = self.as_str();
        s.split_once('.').map_or(s, |(family, _)| family)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    /// Assigned by the store: strictly increasing.
    pub seq: i64,
    pub at: Timestamp,
    pub actor: Actor,
    pub action: AuditAction,
    /// `identity`, `human`, `credential`, `request`.
    pub target_type: String,
    pub target_id: String,
    pub outcome: Outcome,
    pub reason: String,
    /// What changed, or why a request was refused. Never a secret.
    pub detail: serde_json::Value,
    /// The id of the HTTP request that caused this (`X-Request-Id`), if any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_id: String,
    /// The network address the request came from, if any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(flatten)]
    pub trail: Trail,
    /// The previous record's hash, hex (set by the store; see [`crate::audit`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prev_hash: String,
    /// This record's hash, hex (set by the store).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
}

impl Event {
    pub fn new(
        at: Timestamp,
        actor: Actor,
        action: AuditAction,
        target_type: &str,
        target_id: impl ToString,
    ) -> Self {
        Self {
            seq: 0,
            at,
            actor,
            action,
            target_type: target_type.to_owned(),
            target_id: target_id.to_string(),
            outcome: Outcome::Success,
            reason: String::new(),
            detail: serde_json::Value::Null,
            request_id: String::new(),
            source: String::new(),
            trail: Trail::default(),
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }

    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }

    /// Records the request behind this event.
    pub fn from_request(mut self, request_id: &str, source: &str) -> Self {
        self.request_id = request_id.to_owned();
        self.source = source.to_owned();
        self
    }

    /// Records the task, token and delegation behind this event.
    pub fn trail(mut self, trail: Trail) -> Self {
        self.trail = trail;
        self
    }

    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    pub fn denied(mut self) -> Self {
        self.outcome = Outcome::Denied;
        self
    }
}
