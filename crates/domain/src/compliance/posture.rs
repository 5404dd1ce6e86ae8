//! What the compliance report reads: aim's state at one instant, as counts and the names
//! behind them. The server fills it from the store and the running config.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::discovery::FindingKind;
use crate::time::Timestamp;

/// How many names a count keeps: enough to act on, bounded for a million identities.
pub const NAMED: usize = 25;

/// A count, and the first [`NAMED`] names behind it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Named {
    pub count: u64,
    pub names: Vec<String>,
    /// Of `count`, those with the finding acknowledged (a risk accepted until a date): they
    /// still count. Only discovery's findings are acknowledged. (Absent in reports kept
    /// before it was.)
    #[serde(default, skip_serializing_if = "is_zero")]
    pub acknowledged: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Named {
    pub fn add(&mut self, name: &str) {
        self.count += 1;
        if self.names.len() < NAMED {
            self.names.push(name.to_owned());
        }
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// The registry's live identities (requested, active, suspended, locked), and those of them
/// that break a rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Registry {
    pub live: u64,
    /// Live identities of kind `agent`.
    pub agents: u64,
    /// Whose sponsor departed, with no new sponsor yet.
    pub orphaned: Named,
    /// Past their end-of-life and still live (the sweep has not expired them yet).
    pub past_end_of_life: Named,
    /// Active, with an attestation due before now.
    pub attestation_overdue: Named,
    pub dormant: Named,
    pub possible_duplicates: Named,
    /// Allowed bearer tokens (not bound to a key the identity holds).
    pub bearer: Named,
    /// Past their request with no human's approval: auto-approved as low risk, or loaded in
    /// bulk. (aim refuses anyone approving their own request.)
    pub unreviewed: Named,
    /// Locked by their behavioural baseline.
    pub behaviour_locked: Named,
}

/// Humans who may act (active), by role.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Humans {
    pub active: u64,
    pub admins: u64,
    pub approvers: u64,
}

/// How tokens are issued.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tokens {
    /// The longest access token aim issues, in seconds.
    pub max_token_seconds: i64,
    /// How many hops of delegation (token exchange) a chain may have.
    pub max_delegation_depth: u64,
}

/// What decisions run on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Decisions {
    /// The policy version in force; 0 before any is applied (everything is denied).
    pub policy_version: i64,
    /// Grants in force now (standing and just-in-time).
    pub live_grants: u64,
}

/// The behavioural baselines.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Behaviour {
    /// `off`, `observe` or `enforce`.
    pub mode: String,
    /// Identities whose baseline this replica holds.
    pub profiles: u64,
}

/// The audit record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Audit {
    /// Records in the hash chain.
    pub events: i64,
    /// When the newest signed checkpoint was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub latest_checkpoint: Option<Timestamp>,
    /// How often checkpoints are made, if they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_every_seconds: Option<u64>,
    /// Where every record is also delivered (`[[audit_sinks]]`).
    pub sinks: Vec<String>,
}

/// Gateways and the MCP tools seen through them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tools {
    /// Gateways that acknowledged the revocation feed in the last few seconds.
    pub gateways_connected: u64,
    /// Of them, those not yet at the newest revocation.
    pub gateways_behind: u64,
    /// Tools seen through a gateway.
    pub seen: u64,
    /// Never approved (`server/tool`): callers cannot use them until an admin pins them.
    pub unapproved: Named,
    /// Whose definition changed after it was pinned: blocked until approved again.
    pub changed: Named,
}

/// What discovery found outside aim.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Discovery {
    /// Sources imported at least once, and their formats (`aws-prod: aws_credential_report`).
    pub sources: Vec<String>,
    /// Whether some source is a cloud or cluster (AWS, Kubernetes).
    pub cloud_sources: bool,
    /// Accounts present in their sources.
    pub accounts: u64,
    /// Present accounts not linked to a registry identity.
    pub unlinked: u64,
    /// Present accounts with each finding (`source/name`).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub findings: BTreeMap<FindingKind, Named>,
    /// Machine identities (discovered and registered) per active human.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_human: Option<f64>,
}

impl Discovery {
    /// The accounts with any of `kinds`, by kind.
    pub fn with(&self, kinds: &[FindingKind]) -> Vec<(FindingKind, &Named)> {
        kinds
            .iter()
            .filter_map(|k| self.findings.get(k).map(|n| (*k, n)))
            .filter(|(_, n)| !n.is_empty())
            .collect()
    }
}

/// aim's state at one instant, as the compliance report reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Posture {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub at: Timestamp,
    pub registry: Registry,
    pub humans: Humans,
    pub tokens: Tokens,
    pub decisions: Decisions,
    pub behaviour: Behaviour,
    pub audit: Audit,
    pub tools: Tools,
    pub discovery: Discovery,
}
