//! Records for tests.

use std::collections::BTreeMap;

use aim_domain::identity::{Autonomy, IdentityKind, IdentityRequest};
use aim_domain::ids::HumanId;
use aim_domain::risk::{DataSensitivity, Level};
use aim_domain::time::Timestamp;

/// A low-risk request for an AI agent `name` on the `crm` system, sponsored by `sponsor`.
pub fn low_risk_request(name: &str, sponsor: HumanId, expires_at: Timestamp) -> IdentityRequest {
    IdentityRequest {
        name: name.into(),
        kind: IdentityKind::AiAgent,
        autonomy: Autonomy::Autonomous,
        sponsor_id: sponsor,
        owner_team: Some("claims".into()),
        purpose: format!("{name} does its job"),
        systems: vec!["crm".into()],
        data_sensitivity: DataSensitivity::Internal,
        criticality: Level::Low,
        impact: Level::Low,
        labels: BTreeMap::new(),
        expires_at,
    }
}
