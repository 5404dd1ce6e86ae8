//! The registry entry of one non-human identity, what a requester supplies to create one,
//! and what a later change may touch. Every change recomputes the risk tier.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::Refusal;
use crate::governance::GovernanceConfig;
use crate::ids::{HumanId, IdentityId};
use crate::lifecycle::{LifecycleState, StateCause, Transition, next_state};
use crate::naming::NamingPolicy;
use crate::risk::{DataSensitivity, Level, RiskAssessment, RiskTier, assess};
use crate::time::Timestamp;
use crate::validate;

str_enum! {
    pub enum IdentityKind {
        AiAgent => "ai_agent",
        Bot => "bot",
        ServiceAccount => "service_account",
        ApiKey => "api_key",
        Automation => "automation",
    }
}

str_enum! {
    pub enum Autonomy {
        /// A fixed script.
        Automation => "automation",
        /// Drafts and recommends; a human acts.
        Assistant => "assistant",
        /// Chooses its actions at runtime.
        Autonomous => "autonomous",
    }
}

pub const MAX_SYSTEMS: usize = 64;
pub const MAX_LABELS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Identity {
    pub id: IdentityId,
    pub name: String,
    pub kind: IdentityKind,
    pub autonomy: Autonomy,
    /// The one human accountable for this identity.
    pub sponsor_id: HumanId,
    pub owner_team: Option<String>,
    pub purpose: String,
    /// Systems this identity may touch, sorted and unique.
    pub systems: Vec<String>,
    pub data_sensitivity: DataSensitivity,
    pub criticality: Level,
    pub impact: Level,
    pub labels: BTreeMap<String, String>,
    pub risk: RiskAssessment,
    pub state: LifecycleState,
    pub state_cause: StateCause,
    pub state_reason: String,
    pub state_changed_at: Timestamp,
    pub created_at: Timestamp,
    /// The requester.
    pub created_by: HumanId,
    /// Who approved or rejected the request, if anyone yet.
    pub decided_by: Option<HumanId>,
    pub decided_at: Option<Timestamp>,
    /// Mandatory end-of-life.
    pub expires_at: Timestamp,
    pub last_seen_at: Option<Timestamp>,
    pub last_attested_at: Option<Timestamp>,
    pub attestation_due_at: Option<Timestamp>,
    pub dormant: bool,
    /// When the sponsor departed, while no new sponsor has been assigned.
    pub orphaned_since: Option<Timestamp>,
    /// Same sponsor, purpose and systems as another identity.
    pub possible_duplicate: bool,
    /// A change that widens what the identity may reach, waiting for an approver
    /// ([`crate::entitlement`]); until then the identity keeps what it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_change: Option<crate::entitlement::PendingChange>,
    /// Why an admin let this identity have bearer tokens (not bound to its key); `None`,
    /// the default, means every token it gets is DPoP-bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_reason: Option<String>,
    pub updated_at: Timestamp,
    /// Bumped on every change; stores refuse a write based on an older version.
    pub version: i64,
}

/// What a requester supplies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IdentityRequest {
    pub name: String,
    pub kind: IdentityKind,
    pub autonomy: Autonomy,
    pub sponsor_id: HumanId,
    #[serde(default)]
    pub owner_team: Option<String>,
    pub purpose: String,
    #[serde(default)]
    pub systems: Vec<String>,
    pub data_sensitivity: DataSensitivity,
    pub criticality: Level,
    pub impact: Level,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub expires_at: Timestamp,
}

/// A change to an identity's description. Absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IdentityPatch {
    #[serde(default)]
    pub sponsor_id: Option<HumanId>,
    #[serde(default)]
    pub owner_team: Option<String>,
    #[serde(default)]
    pub purpose: Option<String>,
    #[serde(default)]
    pub systems: Option<Vec<String>>,
    #[serde(default)]
    pub data_sensitivity: Option<DataSensitivity>,
    #[serde(default)]
    pub criticality: Option<Level>,
    #[serde(default)]
    pub impact: Option<Level>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
}

fn normalise_systems(systems: Vec<String>) -> Result<Vec<String>, Refusal> {
    if systems.len() > MAX_SYSTEMS {
        return Err(Refusal::Validation(format!(
            "at most {MAX_SYSTEMS} systems"
        )));
    }
    let mut out = systems
        .iter()
        .map(|s| validate::token("systems", s, 128))
        .collect::<Result<Vec<_>, _>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}

fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), Refusal> {
    if labels.len() > MAX_LABELS {
        return Err(Refusal::Validation(format!("at most {MAX_LABELS} labels")));
    }
    for (k, v) in labels {
        validate::token("labels", k, 63)?;
        if v.chars().count() > 256 || v.chars().any(char::is_control) {
            return Err(Refusal::Validation(format!(
                "label `{k}`: values are at most 256 characters without control characters"
            )));
        }
    }
    Ok(())
}

fn check_expiry(
    expires_at: Timestamp,
    tier: RiskTier,
    now: Timestamp,
    config: &GovernanceConfig,
) -> Result<(), Refusal> {
    if expires_at <= now {
        return Err(Refusal::ExpiryInPast(expires_at.to_string()));
    }
    let max_days = config.max_lifetime_days.for_tier(tier);
    let limit = now.plus_days(max_days);
    if expires_at > limit {
        return Err(Refusal::LifetimeTooLong {
            expires_at: expires_at.to_string(),
            tier: tier.as_str(),
            max_days,
            limit: limit.to_string(),
        });
    }
    Ok(())
}

impl IdentityRequest {
    /// Validates the request and builds the identity in `requested`. The caller checks that
    /// the sponsor is an active human and whether the name is taken.
    pub fn into_identity(
        self,
        id: IdentityId,
        requester: HumanId,
        now: Timestamp,
        naming: &NamingPolicy,
        config: &GovernanceConfig,
    ) -> Result<Identity, Refusal> {
        naming.check(self.kind, &self.name)?;
        let purpose = validate::text("purpose", &self.purpose, 1000)?;
        let owner_team = validate::optional_text("owner_team", self.owner_team, 128)?;
        let systems = normalise_systems(self.systems)?;
        check_labels(&self.labels)?;
        let risk = assess(self.criticality, self.data_sensitivity, self.impact);
        check_expiry(self.expires_at, risk.tier, now, config)?;
        Ok(Identity {
            id,
            name: self.name,
            kind: self.kind,
            autonomy: self.autonomy,
            sponsor_id: self.sponsor_id,
            owner_team,
            purpose,
            systems,
            data_sensitivity: self.data_sensitivity,
            criticality: self.criticality,
            impact: self.impact,
            labels: self.labels,
            risk,
            state: LifecycleState::Requested,
            state_cause: StateCause::Requested,
            state_reason: "awaiting approval".to_owned(),
            state_changed_at: now,
            created_at: now,
            created_by: requester,
            decided_by: None,
            decided_at: None,
            expires_at: self.expires_at,
            last_seen_at: None,
            last_attested_at: None,
            attestation_due_at: None,
            dormant: false,
            orphaned_since: None,
            possible_duplicate: false,
            pending_change: None,
            bearer_reason: None,
            updated_at: now,
            version: 1,
        })
    }
}

impl Identity {
    /// The key under which identities with the same sponsor, purpose and systems collide:
    /// a hash of the sponsor, the purpose with case and spacing normalised, and the sorted
    /// systems.
    pub fn duplicate_key(&self) -> String {
        let purpose = self
            .purpose
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        let mut h = Sha256::new();
        h.update(self.sponsor_id.as_uuid().as_bytes());
        h.update([0]);
        h.update(purpose.as_bytes());
        for s in &self.systems {
            h.update([0]);
            h.update(s.as_bytes());
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Moves the identity through the lifecycle, with the guards each move has.
    pub fn transition(
        &mut self,
        t: Transition,
        cause: StateCause,
        reason: &str,
        now: Timestamp,
        config: &GovernanceConfig,
    ) -> Result<(), Refusal> {
        let to = next_state(self.state, t)?;
        match t {
            Transition::Resume if self.orphaned_since.is_some() => return Err(Refusal::Orphaned),
            Transition::Resume if self.attestation_overdue(now, config) => {
                return Err(Refusal::AttestationOverdue);
            }
            Transition::Unlock if reason.trim().is_empty() => {
                return Err(Refusal::ReasonRequired("unlocking requires a reason"));
            }
            Transition::Reject if reason.trim().is_empty() => {
                return Err(Refusal::ReasonRequired("rejecting requires a reason"));
            }
            _ => {}
        }
        if t == Transition::Approve {
            self.attestation_due_at =
                Some(now.plus_days(config.attestation_interval_days.for_tier(self.risk.tier)));
        }
        if matches!(
            t,
            Transition::Resume | Transition::Unlock | Transition::Approve
        ) {
            // A fresh start: inactivity is counted from here.
            self.dormant = false;
        }
        self.state = to;
        self.state_cause = cause;
        self.state_reason = reason.trim().to_owned();
        self.state_changed_at = now;
        self.touch_version(now);
        Ok(())
    }

    /// Whether the attestation is past its due date plus grace.
    pub fn attestation_overdue(&self, now: Timestamp, config: &GovernanceConfig) -> bool {
        self.attestation_due_at
            .is_some_and(|due| due.plus_days(config.attestation_grace_days) <= now)
    }

    /// The sponsor re-certifies purpose and entitlements. An identity suspended only because
    /// its attestation was overdue becomes active again.
    pub fn attest(&mut self, now: Timestamp, config: &GovernanceConfig) -> Result<(), Refusal> {
        match self.state {
            LifecycleState::Active | LifecycleState::Suspended => {}
            state => {
                return Err(Refusal::StateForbids {
                    state,
                    action: "attest",
                });
            }
        }
        self.last_attested_at = Some(now);
        self.attestation_due_at =
            Some(now.plus_days(config.attestation_interval_days.for_tier(self.risk.tier)));
        if self.state == LifecycleState::Suspended
            && self.state_cause == StateCause::AttestationOverdue
            && self.orphaned_since.is_none()
        {
            self.state = LifecycleState::Active;
            self.state_cause = StateCause::Attested;
            self.state_reason = "attested by sponsor".to_owned();
            self.state_changed_at = now;
        }
        self.touch_version(now);
        Ok(())
    }

    /// Applies a change to the description, recomputes the risk tier, and tightens the
    /// end-of-life and attestation dates if the new tier allows less. Returns the names of
    /// the fields that changed. The caller checks a new sponsor is an active human.
    pub fn apply_patch(
        &mut self,
        patch: IdentityPatch,
        now: Timestamp,
        config: &GovernanceConfig,
    ) -> Result<Vec<&'static str>, Refusal> {
        if !matches!(
            self.state,
            LifecycleState::Requested
                | LifecycleState::Active
                | LifecycleState::Suspended
                | LifecycleState::Locked
        ) {
            return Err(Refusal::StateForbids {
                state: self.state,
                action: "change",
            });
        }
        let mut next = self.clone();
        let mut changed = Vec::new();
        if let Some(s) = patch.sponsor_id
            && (s != next.sponsor_id || next.orphaned_since.is_some())
        {
            next.sponsor_id = s;
            next.orphaned_since = None;
            changed.push("sponsor_id");
        }
        if let Some(t) = patch.owner_team {
            next.owner_team = validate::optional_text("owner_team", Some(t), 128)?;
            changed.push("owner_team");
        }
        if let Some(p) = patch.purpose {
            next.purpose = validate::text("purpose", &p, 1000)?;
            changed.push("purpose");
        }
        if let Some(s) = patch.systems {
            next.systems = normalise_systems(s)?;
            changed.push("systems");
        }
        if let Some(d) = patch.data_sensitivity {
            next.data_sensitivity = d;
            changed.push("data_sensitivity");
        }
        if let Some(c) = patch.criticality {
            next.criticality = c;
            changed.push("criticality");
        }
        if let Some(i) = patch.impact {
            next.impact = i;
            changed.push("impact");
        }
        if let Some(l) = patch.labels {
            check_labels(&l)?;
            next.labels = l;
            changed.push("labels");
        }
        next.risk = assess(next.criticality, next.data_sensitivity, next.impact);
        if let Some(e) = patch.expires_at {
            check_expiry(e, next.risk.tier, now, config)?;
            next.expires_at = e;
            changed.push("expires_at");
        } else if next.risk.tier > self.risk.tier {
            // A riskier identity may not keep the longer life it was given as a safer one.
            let limit = now.plus_days(config.max_lifetime_days.for_tier(next.risk.tier));
            if next.expires_at > limit {
                next.expires_at = limit;
                changed.push("expires_at");
            }
        }
        if next.risk.tier > self.risk.tier {
            let interval = config.attestation_interval_days.for_tier(next.risk.tier);
            if let Some(due) = next.attestation_due_at {
                next.attestation_due_at = Some(due.min(now.plus_days(interval)));
            }
        }
        if next.risk != self.risk {
            changed.push("risk");
        }
        next.touch_version(now);
        *self = next;
        Ok(changed)
    }

    /// Records activity: clears the dormant flag.
    pub fn seen(&mut self, now: Timestamp) {
        self.last_seen_at = Some(now);
        self.dormant = false;
    }

    /// The instant inactivity is counted from.
    pub fn last_activity(&self) -> Timestamp {
        self.last_seen_at
            .or(self.decided_at)
            .unwrap_or(self.created_at)
    }

    fn touch_version(&mut self, now: Timestamp) {
        self.updated_at = now;
        self.version += 1;
    }
}

#[cfg(test)]
mod tests;
