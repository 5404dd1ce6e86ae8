//! Changes to what an approved identity may reach. An approver signed off on its systems,
//! team, labels and risk inputs; a change that widens any of them (a system added, another
//! team, changed labels, a lower data sensitivity, criticality or impact, each of which can
//! bring it under more policies and grants) waits for an approver, with the same
//! separation of duties as the request itself. The identity keeps its old entitlements
//! until then. A change that only narrows, or touches nothing it reaches, applies at once.
//!
//! ```text
//!   PATCH ──► split ──► narrowing part ──► applied now
//!                  └──► widening part ──► pending_change ──approve──► applied
//!                                                        └─reject───► dropped
//! ```

use serde::{Deserialize, Serialize};

use crate::error::Refusal;
use crate::governance::GovernanceConfig;
use crate::identity::{Identity, IdentityPatch};
use crate::ids::HumanId;
use crate::lifecycle::LifecycleState;
use crate::review::{Decider, Verdict};
use crate::risk::RiskTier;
use crate::time::Timestamp;

/// A widening change waiting for an approver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PendingChange {
    /// What will be applied on approval.
    pub patch: IdentityPatch,
    /// The fields it widens.
    pub fields: Vec<String>,
    pub requested_by: HumanId,
    pub requested_at: Timestamp,
}

/// `patch` split into what applies now and what widens (and the names of those fields).
/// A `requested` identity has no entitlements yet: all of it applies now, and its approval
/// covers it.
pub fn split(
    identity: &Identity,
    patch: IdentityPatch,
) -> (IdentityPatch, IdentityPatch, Vec<&'static str>) {
    if identity.state == LifecycleState::Requested {
        return (patch, IdentityPatch::default(), Vec::new());
    }
    let mut now = IdentityPatch {
        sponsor_id: patch.sponsor_id,
        purpose: patch.purpose,
        expires_at: patch.expires_at,
        ..IdentityPatch::default()
    };
    let mut later = IdentityPatch::default();
    let mut widened = Vec::new();
    if let Some(systems) = patch.systems {
        if systems.iter().all(|s| identity.systems.contains(s)) {
            now.systems = Some(systems);
        } else {
            // What it loses goes at once; what it gains waits.
            let kept: Vec<String> = identity
                .systems
                .iter()
                .filter(|s| systems.contains(s))
                .cloned()
                .collect();
            if kept.len() != identity.systems.len() {
                now.systems = Some(kept);
            }
            later.systems = Some(systems);
            widened.push("systems");
        }
    }
    if let Some(team) = patch.owner_team {
        // Leaving every team takes the identity out of group policies and grants; any
        // other team brings it into theirs.
        if team.trim().is_empty() {
            now.owner_team = Some(team);
        } else if identity.owner_team.as_deref() != Some(team.trim()) {
            later.owner_team = Some(team);
            widened.push("owner_team");
        }
    }
    if let Some(labels) = patch.labels
        && labels != identity.labels
    {
        later.labels = Some(labels);
        widened.push("labels");
    }
    if let Some(d) = patch.data_sensitivity {
        (now.data_sensitivity, later.data_sensitivity) = lower(d, identity.data_sensitivity);
        if later.data_sensitivity.is_some() {
            widened.push("data_sensitivity");
        }
    }
    if let Some(c) = patch.criticality {
        (now.criticality, later.criticality) = lower(c, identity.criticality);
        if later.criticality.is_some() {
            widened.push("criticality");
        }
    }
    if let Some(i) = patch.impact {
        (now.impact, later.impact) = lower(i, identity.impact);
        if later.impact.is_some() {
            widened.push("impact");
        }
    }
    (now, later, widened)
}

/// A lower risk input widens (it waits); the same or a higher one applies now.
fn lower<T: PartialOrd>(new: T, old: T) -> (Option<T>, Option<T>) {
    if new < old {
        (None, Some(new))
    } else {
        (Some(new), None)
    }
}

impl Identity {
    /// Applies what `patch` narrows now and keeps what it widens as the pending change
    /// (replacing one that was waiting). Returns the fields applied and the fields waiting.
    pub fn request_change(
        &mut self,
        patch: IdentityPatch,
        by: HumanId,
        now: Timestamp,
        config: &GovernanceConfig,
    ) -> Result<(Vec<&'static str>, Vec<&'static str>), Refusal> {
        let (at_once, later, widened) = split(self, patch);
        // The whole change must be valid before any of it is kept.
        let mut trial = self.clone();
        trial.apply_patch(at_once.clone(), now, config)?;
        if !widened.is_empty() {
            trial.clone().apply_patch(later.clone(), now, config)?;
        }
        let applied = self.apply_patch(at_once, now, config)?;
        if !widened.is_empty() {
            self.pending_change = Some(PendingChange {
                patch: later,
                fields: widened.iter().map(|f| (*f).to_owned()).collect(),
                requested_by: by,
                requested_at: now,
            });
        }
        Ok((applied, widened))
    }

    /// Approves or rejects the pending change. The requester of the change never decides
    /// it, and when it would make the identity high-risk its sponsor cannot either;
    /// auto-approval applies only when enabled and the result is low-risk. Returns the
    /// fields applied.
    pub fn decide_change(
        &mut self,
        decider: Decider,
        verdict: Verdict,
        now: Timestamp,
        config: &GovernanceConfig,
    ) -> Result<Vec<&'static str>, Refusal> {
        let Some(pending) = self.pending_change.clone() else {
            return Err(Refusal::NotPending {
                what: "change",
                state: "no change is waiting".into(),
            });
        };
        let mut after = self.clone();
        after.pending_change = None;
        let applied = after.apply_patch(pending.patch, now, config)?;
        match decider {
            Decider::Human(h) if h == pending.requested_by => return Err(Refusal::SelfApproval),
            Decider::Human(h) if after.risk.tier == RiskTier::High && h == self.sponsor_id => {
                return Err(Refusal::SponsorApproval);
            }
            Decider::AutoApproval
                if !(config.auto_approve_low_risk && after.risk.tier == RiskTier::Low) =>
            {
                return Err(Refusal::Validation(
                    "auto-approval applies only to low-risk identities when enabled".to_owned(),
                ));
            }
            _ => {}
        }
        match verdict {
            Verdict::Approve => {
                *self = after;
                Ok(applied)
            }
            Verdict::Reject => {
                self.pending_change = None;
                self.updated_at = now;
                self.version += 1;
                Ok(Vec::new())
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::risk::{DataSensitivity, Level};

    fn active() -> Identity {
        let mut i = crate::identity::IdentityRequest {
            name: "agt-claims-triage".into(),
            kind: crate::identity::IdentityKind::AiAgent,
            autonomy: crate::identity::Autonomy::Autonomous,
            sponsor_id: HumanId::new(),
            owner_team: Some("claims".into()),
            purpose: "Triage incoming claims".into(),
            systems: vec!["crm".into(), "mail".into()],
            data_sensitivity: DataSensitivity::Confidential,
            criticality: Level::Medium,
            impact: Level::Medium,
            labels: Default::default(),
            expires_at: Timestamp::from_millis(30 * 86_400_000),
        }
        .into_identity(
            crate::ids::IdentityId::new(),
            HumanId::new(),
            Timestamp::from_millis(0),
            &crate::naming::NamingPolicy::default(),
            &GovernanceConfig::default(),
        )
        .unwrap();
        i.state = LifecycleState::Active;
        i
    }

    #[test]
    fn what_narrows_applies_and_what_widens_waits() {
        let i = active();
        let patch = IdentityPatch {
            systems: Some(vec!["crm".into(), "billing".into()]),
            owner_team: Some("finance".into()),
            data_sensitivity: Some(DataSensitivity::Restricted),
            criticality: Some(Level::Low),
            purpose: Some("reconcile".into()),
            ..IdentityPatch::default()
        };
        let (now, later, widened) = split(&i, patch);
        assert_eq!(now.systems, Some(vec!["crm".into()]), "mail goes at once");
        assert_eq!(later.systems, Some(vec!["crm".into(), "billing".into()]));
        assert_eq!(later.owner_team.as_deref(), Some("finance"));
        assert_eq!(now.data_sensitivity, Some(DataSensitivity::Restricted));
        assert_eq!(later.criticality, Some(Level::Low));
        assert_eq!(now.purpose.as_deref(), Some("reconcile"));
        assert_eq!(widened, ["systems", "owner_team", "criticality"]);

        let narrowing = IdentityPatch {
            systems: Some(vec!["crm".into()]),
            owner_team: Some(String::new()),
            impact: Some(Level::High),
            ..IdentityPatch::default()
        };
        let (_, later, widened) = split(&i, narrowing);
        assert!(widened.is_empty());
        assert_eq!(later, IdentityPatch::default());
    }

    #[test]
    fn the_requester_never_approves_the_widening() {
        let config = GovernanceConfig::default();
        let sponsor = HumanId::new();
        let approver = HumanId::new();
        let mut i = active();
        i.sponsor_id = sponsor;
        let t = Timestamp::from_millis(1_000);
        let (applied, waiting) = i
            .request_change(
                IdentityPatch {
                    systems: Some(vec!["crm".into(), "mail".into(), "hr".into()]),
                    ..IdentityPatch::default()
                },
                sponsor,
                t,
                &config,
            )
            .unwrap();
        assert!(applied.is_empty());
        assert_eq!(waiting, ["systems"]);
        assert_eq!(i.systems, ["crm", "mail"], "nothing gained yet");
        assert_eq!(
            i.clone()
                .decide_change(Decider::Human(sponsor), Verdict::Approve, t, &config)
                .unwrap_err(),
            Refusal::SelfApproval
        );
        i.decide_change(Decider::Human(approver), Verdict::Approve, t, &config)
            .unwrap();
        assert_eq!(i.systems, ["crm", "hr", "mail"]);
        assert!(i.pending_change.is_none());
        assert!(matches!(
            i.decide_change(Decider::Human(approver), Verdict::Approve, t, &config),
            Err(Refusal::NotPending { .. })
        ));
    }
}
