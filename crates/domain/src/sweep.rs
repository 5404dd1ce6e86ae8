//! What the periodic sweep does to one identity at one instant. Pure: the server runs it
//! over the identities the store says may be due, and stores what changed.
//!
//! Rules, first match wins:
//! 1. end-of-life passed, in any live state → `expired`;
//! 2. orphaned (sponsor departed) for longer than the grace, while active → `suspended`;
//! 3. attestation overdue past the grace, while active → `suspended`;
//! 4. no activity for the dormancy period, while active and not yet flagged → flagged
//!    `dormant`, and suspended if the config says so.

use crate::event::AuditAction;
use crate::governance::GovernanceConfig;
use crate::identity::Identity;
use crate::lifecycle::{LifecycleState, StateCause, Transition};
use crate::time::Timestamp;

/// What one sweep run did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SweepReport {
    pub examined: u64,
    pub expired: u64,
    pub suspended_orphaned: u64,
    pub suspended_attestation_overdue: u64,
    pub flagged_dormant: u64,
    pub suspended_dormant: u64,
    /// Identities changed by someone else mid-sweep; the next run looks at them again.
    pub skipped_concurrent: u64,
}

/// What the sweep did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepAction {
    Expired,
    SuspendedOrphaned,
    SuspendedAttestationOverdue,
    FlaggedDormant,
    SuspendedDormant,
}

impl SweepAction {
    /// The event action name recorded for this outcome.
    pub fn event_action(self) -> AuditAction {
        match self {
            SweepAction::Expired => AuditAction::IdentityExpired,
            SweepAction::SuspendedOrphaned
            | SweepAction::SuspendedAttestationOverdue
            | SweepAction::SuspendedDormant => AuditAction::IdentitySuspended,
            SweepAction::FlaggedDormant => AuditAction::IdentityFlaggedDormant,
        }
    }
}

/// Applies the first rule that matches and says which it was and why.
pub fn sweep(
    identity: &mut Identity,
    now: Timestamp,
    config: &GovernanceConfig,
) -> Option<(SweepAction, String)> {
    if identity.state.is_live() && identity.expires_at <= now {
        let reason = format!("end-of-life {} passed", identity.expires_at);
        identity
            .transition(
                Transition::Expire,
                StateCause::EndOfLife,
                &reason,
                now,
                config,
            )
            .ok()?;
        return Some((SweepAction::Expired, reason));
    }
    if identity.state != LifecycleState::Active {
        return None;
    }
    if let Some(since) = identity.orphaned_since
        && since.plus_days(config.orphan_grace_days) <= now
    {
        let reason = format!(
            "orphaned since {since}: sponsor departed and no new sponsor within {} days",
            config.orphan_grace_days
        );
        identity
            .transition(
                Transition::Suspend,
                StateCause::Orphaned,
                &reason,
                now,
                config,
            )
            .ok()?;
        return Some((SweepAction::SuspendedOrphaned, reason));
    }
    if identity.attestation_overdue(now, config) {
        let due = identity
            .attestation_due_at
            .map(|d| d.to_string())
            .unwrap_or_default();
        let reason = format!(
            "attestation due {due} is overdue past the {}-day grace",
            config.attestation_grace_days
        );
        identity
            .transition(
                Transition::Suspend,
                StateCause::AttestationOverdue,
                &reason,
                now,
                config,
            )
            .ok()?;
        return Some((SweepAction::SuspendedAttestationOverdue, reason));
    }
    if !identity.dormant && identity.last_activity().plus_days(config.dormancy_days) <= now {
        let reason = format!(
            "no activity since {} ({} days or more)",
            identity.last_activity(),
            config.dormancy_days
        );
        identity.dormant = true;
        if config.suspend_dormant {
            identity
                .transition(
                    Transition::Suspend,
                    StateCause::Dormant,
                    &reason,
                    now,
                    config,
                )
                .ok()?;
            return Some((SweepAction::SuspendedDormant, reason));
        }
        identity.updated_at = now;
        identity.version += 1;
        return Some((SweepAction::FlaggedDormant, reason));
    }
    None
}
