//! A risk tier for a discovered account, from what it can reach, with the same rule the
//! registry uses ([`crate::risk::assess`]): criticality from the breadth of its grants,
//! sensitivity from the data its grants touch and its environment, impact from whether it
//! can change things.

use super::account::{Account, AccountKind, Flag, Permission};
use crate::risk::{self, DataSensitivity, Level, RiskAssessment};

/// Services and verbs whose reach is the keys to everything else: identity, keys, secrets.
const RESTRICTED: &[&str] = &[
    "iam:",
    "kms:",
    "secretsmanager:",
    "ssm:getparameter",
    "sts:assumerole",
    "secrets",
];

/// Verbs that only read.
const READS: &[&str] = &["get", "list", "describe", "watch", "read", "view", "head"];

fn verb(p: &Permission) -> &str {
    let a = p.action.as_str();
    a.rsplit_once(':').map_or(a, |(_, v)| v)
}

fn writes(p: &Permission) -> bool {
    let v = verb(p).to_ascii_lowercase();
    v.contains('*') || !READS.iter().any(|r| v.starts_with(r))
}

fn restricted(p: &Permission) -> bool {
    let a = p.action.to_ascii_lowercase();
    p.is_admin() || RESTRICTED.iter().any(|r| a.starts_with(r))
}

fn production(a: &Account) -> bool {
    a.environment.as_deref().is_some_and(|e| {
        matches!(
            e.to_ascii_lowercase().as_str(),
            "prod" | "production" | "prd"
        )
    })
}

/// The tier of `a` and the reasons for it.
pub fn tier(a: &Account) -> RiskAssessment {
    let (criticality, sensitivity, impact) = inputs(a);
    risk::assess(criticality, sensitivity, impact)
}

/// Criticality, data sensitivity and impact, as [`tier`] derives them: what an adopted
/// account is registered with unless its adopter says otherwise.
pub fn inputs(a: &Account) -> (Level, DataSensitivity, Level) {
    let privileged = a.kind == AccountKind::Root
        || a.permissions.iter().any(Permission::is_admin)
        || a.groups.iter().any(|g| g.privileged)
        || a.has(Flag::TrustedForDelegation);
    let criticality = if privileged {
        Level::High
    } else if a.permissions.iter().any(Permission::is_wildcard) {
        Level::Medium
    } else {
        Level::Low
    };
    let sensitivity = if a.kind == AccountKind::Root || a.permissions.iter().any(restricted) {
        DataSensitivity::Restricted
    } else if production(a) {
        DataSensitivity::Confidential
    } else {
        DataSensitivity::Internal
    };
    let impact = if privileged {
        Level::High
    } else if a.permissions.iter().any(writes) {
        Level::Medium
    } else {
        Level::Low
    };
    (criticality, sensitivity, impact)
}
