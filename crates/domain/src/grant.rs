//! Grants: least privilege given explicitly. A grant lets an identity, or every identity
//! of a group (team), take an action (or any action of an action group) on one record or
//! on a whole system, optionally until a deadline. A just-in-time elevation is a grant an
//! identity asks for, with a reason and a duration, that becomes active only when its
//! sponsor (or an approver) approves it, and then expires by itself.
//!
//! Grants add permits, never exceptions: aim's own rules (task scope, scope of thought,
//! an identity that is not active) and every `forbid` still deny.

use serde::{Deserialize, Serialize};

use crate::error::Refusal;
use crate::human::{Human, Role};
use crate::ids::{GrantId, HumanId, IdentityId};
use crate::time::Timestamp;
use crate::validate;

/// The longest a just-in-time elevation may last: 8 hours.
pub const MAX_ELEVATION_SECONDS: i64 = 8 * 3600;

str_enum! {
    pub enum GrantState {
        /// A just-in-time elevation waiting for its approver.
        Requested => "requested",
        Active => "active",
        Denied => "denied",
        Revoked => "revoked",
        /// Past its `expires_at` (or, for a request, never decided in time).
        Expired => "expired",
    }
}

/// Who a grant is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Grantee {
    Identity(IdentityId),
    /// Every identity whose team is this group.
    Group(String),
}

/// What a grant covers: an action (or action group) on one record, or on every record of
/// a system when `resource_type` and `resource_id` are absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Scope {
    pub action: String,
    pub system: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
}

/// [`Scope`]'s fields as they appear flattened into a grant or an elevation request, for
/// the OpenAPI document: `Scope`'s own schema forbids other properties, which would
/// contradict the request's `reason` beside them.
#[cfg(feature = "openapi")]
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ScopeFields {
    action: String,
    system: String,
    resource_type: Option<String>,
    resource_id: Option<String>,
}

impl Scope {
    fn validated(self) -> Result<Self, Refusal> {
        if self.resource_id.is_some() && self.resource_type.is_none() {
            return Err(Refusal::Validation(
                "a grant on one record names its `resource_type` too".into(),
            ));
        }
        Ok(Scope {
            action: validate::token("action", &self.action, 128)?,
            system: validate::token("system", &self.system, 128)?,
            resource_type: self
                .resource_type
                .map(|t| validate::token("resource_type", &t, 128))
                .transpose()?,
            resource_id: self
                .resource_id
                .map(|i| validate::text("resource_id", &i, 512))
                .transpose()?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Grant {
    pub id: GrantId,
    pub grantee: Grantee,
    #[serde(flatten)]
    pub scope: Scope,
    pub reason: String,
    pub state: GrantState,
    /// `human:<id>` or `identity:<id>`.
    pub created_by: String,
    pub created_at: Timestamp,
    /// Absent: until revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// A request's duration once approved, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<HumanId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub decision_reason: String,
}

/// What an admin supplies to grant directly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewGrant {
    pub grantee: Grantee,
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = ScopeFields))]
    pub scope: Scope,
    pub reason: String,
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
    /// Instead of `expires_at`: how long from now, in seconds.
    #[serde(default)]
    pub duration_seconds: Option<i64>,
}

/// What an identity (or its sponsor on its behalf) supplies to ask for an elevation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ElevationRequest {
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = ScopeFields))]
    pub scope: Scope,
    pub reason: String,
    pub duration_seconds: i64,
}

fn reason(r: &str) -> Result<String, Refusal> {
    if r.trim().is_empty() {
        return Err(Refusal::ReasonRequired("a grant takes a reason"));
    }
    validate::text("reason", r.trim(), 1000)
}

impl NewGrant {
    pub fn into_grant(self, by: String, now: Timestamp) -> Result<Grant, Refusal> {
        if let Grantee::Group(g) = &self.grantee {
            validate::token("group", g, 128)?;
        }
        let expires_at = match (self.expires_at, self.duration_seconds) {
            (Some(_), Some(_)) => {
                return Err(Refusal::Validation(
                    "give `expires_at` or `duration_seconds`, not both".into(),
                ));
            }
            (None, Some(d)) if d <= 0 => {
                return Err(Refusal::Validation(
                    "`duration_seconds` must be positive".into(),
                ));
            }
            (None, Some(d)) => Some(now.plus_seconds(d)),
            (e, None) => e,
        };
        if let Some(e) = expires_at
            && e <= now
        {
            return Err(Refusal::ExpiryInPast(e.to_string()));
        }
        Ok(Grant {
            id: GrantId::new(),
            grantee: self.grantee,
            scope: self.scope.validated()?,
            reason: reason(&self.reason)?,
            state: GrantState::Active,
            created_by: by,
            created_at: now,
            expires_at,
            duration_seconds: self.duration_seconds,
            decided_by: None,
            decided_at: None,
            decision_reason: String::new(),
        })
    }
}

impl ElevationRequest {
    /// A requested grant; it must be approved within `pending_seconds`.
    pub fn into_grant(
        self,
        identity: IdentityId,
        by: String,
        now: Timestamp,
        pending_seconds: i64,
    ) -> Result<Grant, Refusal> {
        if !(60..=MAX_ELEVATION_SECONDS).contains(&self.duration_seconds) {
            return Err(Refusal::Validation(format!(
                "`duration_seconds` must be from 60 to {MAX_ELEVATION_SECONDS}"
            )));
        }
        Ok(Grant {
            id: GrantId::new(),
            grantee: Grantee::Identity(identity),
            scope: self.scope.validated()?,
            reason: reason(&self.reason)?,
            state: GrantState::Requested,
            created_by: by,
            created_at: now,
            expires_at: Some(now.plus_seconds(pending_seconds)),
            duration_seconds: Some(self.duration_seconds),
            decided_by: None,
            decided_at: None,
            decision_reason: String::new(),
        })
    }
}

impl Grant {
    pub fn state_at(&self, now: Timestamp) -> GrantState {
        match self.state {
            GrantState::Requested | GrantState::Active
                if self.expires_at.is_some_and(|e| now >= e) =>
            {
                GrantState::Expired
            }
            s => s,
        }
    }

    /// Whether this grant lets `identity` (in `groups`) take an action named in
    /// `actions` (the action and the groups it is in) on the target, at `now`.
    pub fn covers(
        &self,
        identity: IdentityId,
        groups: &[String],
        actions: &[&str],
        target: (&str, &str, &str),
        now: Timestamp,
    ) -> bool {
        let (kind, id, system) = target;
        self.state_at(now) == GrantState::Active
            && match &self.grantee {
                Grantee::Identity(i) => *i == identity,
                Grantee::Group(g) => groups.contains(g),
            }
            && actions.contains(&self.scope.action.as_str())
            && self.scope.system == system
            && self
                .scope
                .resource_type
                .as_deref()
                .is_none_or(|t| t == kind)
            && self.scope.resource_id.as_deref().is_none_or(|i| i == id)
    }

    /// Approves or denies an elevation request. The identity's sponsor or a human with the
    /// approver role decides; the identity never does (it has no human credential).
    pub fn decide(
        &mut self,
        human: &Human,
        sponsor: HumanId,
        approve: bool,
        why: &str,
        now: Timestamp,
    ) -> Result<(), Refusal> {
        match self.state_at(now) {
            GrantState::Requested => {}
            GrantState::Expired => return Err(Refusal::Expired("elevation request")),
            s => {
                return Err(Refusal::NotPending {
                    what: "grant",
                    state: s.to_string(),
                });
            }
        }
        if !human.is_active() {
            return Err(Refusal::HumanDeparted(human.user_name.clone()));
        }
        if human.id != sponsor && !human.has_role(Role::Approver) {
            return Err(Refusal::NotAnApprover(
                "an elevation is decided by the identity's sponsor or an approver".into(),
            ));
        }
        let why = reason(why)?;
        self.decided_by = Some(human.id);
        self.decided_at = Some(now);
        self.decision_reason = why;
        if approve {
            self.state = GrantState::Active;
            self.expires_at = Some(now.plus_seconds(self.duration_seconds.unwrap_or(3600)));
        } else {
            self.state = GrantState::Denied;
        }
        Ok(())
    }

    pub fn revoke(&mut self, human: HumanId, why: &str, now: Timestamp) -> Result<(), Refusal> {
        match self.state_at(now) {
            GrantState::Active | GrantState::Requested => {}
            s => {
                return Err(Refusal::NotPending {
                    what: "grant",
                    state: s.to_string(),
                });
            }
        }
        self.decision_reason = reason(why)?;
        self.state = GrantState::Revoked;
        self.decided_by = Some(human);
        self.decided_at = Some(now);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn scope(id: Option<&str>) -> Scope {
        Scope {
            action: "read".into(),
            system: "crm".into(),
            resource_type: id.map(|_| "Resource".into()),
            resource_id: id.map(str::to_owned),
        }
    }

    #[test]
    fn a_grant_covers_its_scope_until_it_expires() {
        let me = IdentityId::new();
        let t0 = Timestamp::from_millis(1_000_000);
        let g = NewGrant {
            grantee: Grantee::Group("claims".into()),
            scope: scope(None),
            reason: "claims team reads the crm".into(),
            expires_at: Some(t0.plus_seconds(60)),
            duration_seconds: None,
        }
        .into_grant("human:x".into(), t0)
        .unwrap();
        let groups = ["claims".to_owned()];
        let on = ("Resource", "crm/1", "crm");
        assert!(g.covers(me, &groups, &["read"], on, t0));
        assert!(!g.covers(me, &[], &["read"], on, t0));
        assert!(!g.covers(me, &groups, &["write"], on, t0));
        assert!(!g.covers(me, &groups, &["read"], ("Resource", "b/1", "billing"), t0));
        assert!(!g.covers(me, &groups, &["read"], on, t0.plus_seconds(60)));

        let one = NewGrant {
            grantee: Grantee::Identity(me),
            scope: scope(Some("crm/1")),
            reason: "r".into(),
            expires_at: None,
            duration_seconds: None,
        }
        .into_grant("human:x".into(), t0)
        .unwrap();
        assert!(one.covers(me, &[], &["read"], on, t0));
        assert!(!one.covers(me, &[], &["read"], ("Resource", "crm/2", "crm"), t0));
    }

    #[test]
    fn bad_grants_are_refused() {
        let t0 = Timestamp::from_millis(1_000_000);
        let mut s = scope(None);
        s.resource_id = Some("x".into());
        let no_type = NewGrant {
            grantee: Grantee::Identity(IdentityId::new()),
            scope: s,
            reason: "r".into(),
            expires_at: None,
            duration_seconds: None,
        };
        assert!(no_type.into_grant("h".into(), t0).is_err());
        let past = NewGrant {
            grantee: Grantee::Identity(IdentityId::new()),
            scope: scope(None),
            reason: "r".into(),
            expires_at: Some(t0),
            duration_seconds: None,
        };
        assert_eq!(
            past.into_grant("h".into(), t0).unwrap_err().code(),
            "expiry_in_past"
        );
        let long = ElevationRequest {
            scope: scope(None),
            reason: "r".into(),
            duration_seconds: MAX_ELEVATION_SECONDS + 1,
        };
        assert!(
            long.into_grant(IdentityId::new(), "i".into(), t0, 900)
                .is_err()
        );
    }
}
