//! Approving or rejecting an identity request, with separation of duties: the requester
//! never decides their own request, and for a high-risk identity the sponsor cannot either.

use crate::error::Refusal;
use crate::governance::GovernanceConfig;
use crate::identity::Identity;
use crate::ids::HumanId;
use crate::lifecycle::{StateCause, Transition};
use crate::risk::RiskTier;
use crate::time::Timestamp;

/// Who is deciding: a human approver, or the auto-approval rule for low-risk requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decider {
    Human(HumanId),
    AutoApproval,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Reject,
}

/// Whether `approver` may decide on `identity` at all.
pub fn check_separation_of_duties(identity: &Identity, approver: HumanId) -> Result<(), Refusal> {
    if approver == identity.created_by {
        return Err(Refusal::SelfApproval);
    }
    if identity.risk.tier == RiskTier::High && approver == identity.sponsor_id {
        return Err(Refusal::SponsorApproval);
    }
    Ok(())
}

/// Applies the decision. Auto-approval applies only to low-risk identities and only when
/// the config enables it; otherwise it is refused like any illegal move.
pub fn decide(
    identity: &mut Identity,
    decider: Decider,
    verdict: Verdict,
    reason: &str,
    now: Timestamp,
    config: &GovernanceConfig,
) -> Result<(), Refusal> {
    let (transition, cause) = match (verdict, decider) {
        (Verdict::Approve, Decider::AutoApproval) => {
            if !(config.auto_approve_low_risk && identity.risk.tier == RiskTier::Low) {
                return Err(Refusal::Validation(
                    "auto-approval applies only to low-risk identities when enabled".to_owned(),
                ));
            }
            (Transition::Approve, StateCause::AutoApproved)
        }
        (Verdict::Approve, Decider::Human(_)) => (Transition::Approve, StateCause::Approved),
        (Verdict::Reject, _) => (Transition::Reject, StateCause::Rejected),
    };
    if let Decider::Human(h) = decider {
        check_separation_of_duties(identity, h)?;
    }
    // No one may be made accountable by default: a request whose sponsor has departed is
    // approved only after an admin assigns a new one.
    if verdict == Verdict::Approve && identity.orphaned_since.is_some() {
        return Err(Refusal::Orphaned);
    }
    let reason = match (reason.trim(), decider) {
        ("", Decider::AutoApproval) => "auto-approved: low risk",
        ("", Decider::Human(_)) if verdict == Verdict::Approve => "approved",
        (r, _) => r,
    };
    identity.transition(transition, cause, reason, now, config)?;
    identity.decided_by = match decider {
        Decider::Human(h) => Some(h),
        Decider::AutoApproval => None,
    };
    identity.decided_at = Some(now);
    Ok(())
}
