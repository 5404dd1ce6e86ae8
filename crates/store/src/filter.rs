//! What list queries and sweeps select on.

use aim_domain::human::HumanState;
use aim_domain::identity::IdentityKind;
use aim_domain::ids::{HumanId, IdentityId};
use aim_domain::lifecycle::LifecycleState;
use aim_domain::risk::RiskTier;
use aim_domain::time::Timestamp;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityFilter {
    pub state: Option<LifecycleState>,
    pub kind: Option<IdentityKind>,
    pub sponsor_id: Option<HumanId>,
    pub risk_tier: Option<RiskTier>,
    /// End-of-life strictly before this instant.
    pub expiring_before: Option<Timestamp>,
    pub dormant: Option<bool>,
    pub orphaned: Option<bool>,
    pub possible_duplicate: Option<bool>,
    pub name_prefix: Option<String>,
    /// Exact name.
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HumanFilter {
    /// Case-insensitive exact match.
    pub user_name: Option<String>,
    pub external_id: Option<String>,
    pub state: Option<HumanState>,
    /// Include humans deleted over SCIM (the API shows them; SCIM does not).
    pub include_deleted: bool,
    /// Only members of this group.
    pub member_of: Option<String>,
}

/// The instants before which each sweep rule may apply. The domain's `sweep` decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepThresholds {
    /// End-of-life at or before this.
    pub expires_at: Timestamp,
    /// Orphaned at or before this.
    pub orphaned_since: Timestamp,
    /// Attestation due at or before this.
    pub attestation_due_at: Timestamp,
    /// Last activity at or before this.
    pub last_activity_at: Timestamp,
}

/// Where a page of identities resumes. Pages come in id order (creation order), or in name
/// order when the filter has a name prefix (a search by name reads the name index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityCursor {
    Id(IdentityId),
    Name(String),
}

impl IdentityFilter {
    /// Whether pages of this filter come in name order.
    pub fn orders_by_name(&self) -> bool {
        self.name_prefix.is_some()
    }
}

/// What an audit query selects on. Events come in sequence order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Events about this identity.
    pub identity: Option<IdentityId>,
    /// Events by this human, or about them.
    pub human: Option<HumanId>,
    /// Events of this task.
    pub task: Option<aim_domain::ids::TaskId>,
    /// Events of this token (issued, presented, revoked).
    pub jti: Option<String>,
    pub action: Option<aim_domain::event::AuditAction>,
    pub outcome: Option<aim_domain::event::Outcome>,
    /// At or after this instant.
    pub since: Option<Timestamp>,
    /// Before this instant.
    pub until: Option<Timestamp>,
}
