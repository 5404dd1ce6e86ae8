//! The governance rules' numbers: how long an identity may live, how often it is attested,
//! how long a grace lasts. Loaded from the `[governance]` table of the config file.

use serde::{Deserialize, Serialize};

use crate::risk::RiskTier;

/// One number of days per risk tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaysPerTier {
    pub high: u32,
    pub medium: u32,
    pub low: u32,
}

impl DaysPerTier {
    pub fn for_tier(&self, tier: RiskTier) -> u32 {
        match tier {
            RiskTier::High => self.high,
            RiskTier::Medium => self.medium,
            RiskTier::Low => self.low,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GovernanceConfig {
    /// The latest end-of-life an identity may be given, counted from the moment it is set.
    pub max_lifetime_days: DaysPerTier,
    /// How often the sponsor must re-certify an identity.
    pub attestation_interval_days: DaysPerTier,
    /// How long past its due date an attestation may be before the identity is suspended.
    pub attestation_grace_days: u32,
    /// No activity for this long flags an identity `dormant`.
    pub dormancy_days: u32,
    /// Whether a dormant identity is also suspended.
    pub suspend_dormant: bool,
    /// How long an orphaned identity (sponsor departed) stays active before suspension.
    pub orphan_grace_days: u32,
    /// Whether low-risk requests are approved without a human approver.
    pub auto_approve_low_risk: bool,
}

impl Default for GovernanceConfig {
    fn default() -> Self {
        Self {
            max_lifetime_days: DaysPerTier {
                high: 90,
                medium: 180,
                low: 365,
            },
            attestation_interval_days: DaysPerTier {
                high: 30,
                medium: 90,
                low: 90,
            },
            attestation_grace_days: 7,
            dormancy_days: 30,
            suspend_dormant: false,
            orphan_grace_days: 7,
            auto_approve_low_risk: false,
        }
    }
}

impl GovernanceConfig {
    /// Refuses settings that would make a rule meaningless.
    pub fn check(&self) -> Result<(), String> {
        let tiers = [
            ("max_lifetime_days", self.max_lifetime_days),
            ("attestation_interval_days", self.attestation_interval_days),
        ];
        for (name, d) in tiers {
            if d.high == 0 || d.medium == 0 || d.low == 0 {
                return Err(format!(
                    "governance.{name}: every tier needs at least 1 day"
                ));
            }
            if d.high > 3650 || d.medium > 3650 || d.low > 3650 {
                return Err(format!("governance.{name}: at most 3650 days"));
            }
        }
        if self.dormancy_days == 0 {
            return Err("governance.dormancy_days: at least 1 day".to_owned());
        }
        Ok(())
    }
}
