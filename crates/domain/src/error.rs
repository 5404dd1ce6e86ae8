//! Every reason the domain refuses something. Each refusal has a stable machine-readable
//! `code` that the HTTP edge returns as-is and the CLI maps to an exit status.

use crate::lifecycle::{LifecycleState, Transition};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {kind}; expected one of: {}", allowed.join(", "))]
pub struct InvalidEnum {
    pub kind: &'static str,
    pub value: String,
    pub allowed: &'static [&'static str],
}

/// What kind of "no" a refusal is; the HTTP edge maps it to a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// The input itself is wrong (400/422).
    Invalid,
    /// The input is fine but conflicts with the current state (409).
    Conflict,
    /// The caller may not do this (403).
    Forbidden,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    Validation(String),
    #[error("name `{name}` does not match the naming policy for {kind}: `{pattern}`")]
    NamingPolicy {
        name: String,
        kind: &'static str,
        pattern: String,
    },
    #[error("an identity named `{0}` already exists (names are never reused)")]
    NameTaken(String),
    #[error("a human with user name `{0}` already exists")]
    UserNameTaken(String),
    #[error("cannot {transition} an identity that is {from}")]
    IllegalTransition {
        from: LifecycleState,
        transition: Transition,
    },
    #[error("the requester cannot approve or reject their own request")]
    SelfApproval,
    #[error("the sponsor of a high-risk identity cannot approve or reject it")]
    SponsorApproval,
    #[error("sponsor `{0}` is not an active human")]
    SponsorInactive(String),
    #[error("sponsor `{0}` does not exist")]
    SponsorNotFound(String),
    #[error(
        "end-of-life {expires_at} is beyond the maximum lifetime of a {tier}-risk identity ({max_days} days, until {limit})"
    )]
    LifetimeTooLong {
        expires_at: String,
        tier: &'static str,
        max_days: u32,
        limit: String,
    },
    #[error("end-of-life {0} is not in the future")]
    ExpiryInPast(String),
    #[error("the identity is suspended because its attestation is overdue; attest it to resume")]
    AttestationOverdue,
    #[error("the identity is orphaned (its sponsor departed); assign an active sponsor first")]
    Orphaned,
    #[error("{0}")]
    ReasonRequired(&'static str),
    #[error("the record changed while this request was applied; retry")]
    ConcurrentUpdate,
    #[error("cannot {action} an identity that is {state}")]
    StateForbids {
        state: LifecycleState,
        action: &'static str,
    },
    #[error("human `{0}` has departed")]
    HumanDeparted(String),
    #[error("this would leave aim without an active admin; make another admin first")]
    LastAdmin,
    #[error("key `{0}` is already registered on this identity")]
    KeyAlreadyRegistered(String),
    #[error("the task has ended")]
    TaskEnded,
    #[error(
        "the policy set is at version {latest}, not {expected}: another change came first; review it and apply again"
    )]
    PolicyChanged { expected: i64, latest: i64 },
    #[error("an identity can never approve its own action; a human named by the policy must")]
    IdentityApproval,
    #[error("{0}")]
    NotAnApprover(String),
    #[error("the {what} is {state}, no longer pending")]
    NotPending { what: &'static str, state: String },
    #[error("the {0} has expired")]
    Expired(&'static str),
    #[error("identity {holder_name} ({holder}) holds the lease on this record until {until}")]
    ConflictOfAuthority {
        holder: String,
        holder_name: String,
        until: String,
    },
}

impl Refusal {
    /// The stable machine-readable code of this refusal.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Validation(_) => "validation_failed",
            Refusal::NamingPolicy { .. } => "naming_policy_violation",
            Refusal::NameTaken(_) => "name_taken",
            Refusal::UserNameTaken(_) => "user_name_taken",
            Refusal::IllegalTransition { .. } => "illegal_transition",
            Refusal::SelfApproval => "self_approval_forbidden",
            Refusal::SponsorApproval => "sponsor_approval_forbidden",
            Refusal::SponsorInactive(_) => "sponsor_inactive",
            Refusal::SponsorNotFound(_) => "sponsor_not_found",
            Refusal::LifetimeTooLong { .. } => "lifetime_too_long",
            Refusal::ExpiryInPast(_) => "expiry_in_past",
            Refusal::AttestationOverdue => "attestation_overdue",
            Refusal::Orphaned => "identity_orphaned",
            Refusal::ReasonRequired(_) => "reason_required",
            Refusal::ConcurrentUpdate => "concurrent_update",
            Refusal::StateForbids { .. } => "state_forbids_action",
            Refusal::HumanDeparted(_) => "human_departed",
            Refusal::LastAdmin => "last_admin",
            Refusal::KeyAlreadyRegistered(_) => "key_already_registered",
            Refusal::TaskEnded => "task_ended",
            Refusal::PolicyChanged { .. } => "policy_changed",
            Refusal::IdentityApproval => "self_approval_forbidden",
            Refusal::NotAnApprover(_) => "not_an_approver",
            Refusal::NotPending { .. } => "not_pending",
            Refusal::Expired(_) => "expired",
            Refusal::ConflictOfAuthority { .. } => "conflict_of_authority",
        }
    }

    pub fn kind(&self) -> RefusalKind {
        match self {
            Refusal::Validation(_)
            | Refusal::NamingPolicy { .. }
            | Refusal::SponsorNotFound(_)
            | Refusal::SponsorInactive(_)
            | Refusal::LifetimeTooLong { .. }
            | Refusal::ExpiryInPast(_)
            | Refusal::ReasonRequired(_) => RefusalKind::Invalid,
            Refusal::NameTaken(_)
            | Refusal::UserNameTaken(_)
            | Refusal::IllegalTransition { .. }
            | Refusal::AttestationOverdue
            | Refusal::Orphaned
            | Refusal::ConcurrentUpdate
            | Refusal::StateForbids { .. }
            | Refusal::HumanDeparted(_)
            | Refusal::LastAdmin
            | Refusal::KeyAlreadyRegistered(_)
            | Refusal::TaskEnded
            | Refusal::PolicyChanged { .. }
            | Refusal::NotPending { .. }
            | Refusal::Expired(_)
            | Refusal::ConflictOfAuthority { .. } => RefusalKind::Conflict,
            Refusal::SelfApproval
            | Refusal::SponsorApproval
            | Refusal::IdentityApproval
            | Refusal::NotAnApprover(_) => RefusalKind::Forbidden,
        }
    }
}

impl From<InvalidEnum> for Refusal {
    fn from(e: InvalidEnum) -> Self {
        Refusal::Validation(e.to_string())
    }
}
