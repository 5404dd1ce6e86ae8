//! The append-only record of everything that changed or was refused. Each store write that
//! changes state appends its event in the same transaction.

use serde::{Deserialize, Serialize};

use crate::ids::HumanId;
use crate::time::Timestamp;

str_enum! {
    pub enum ActorKind {
        Human => "human",
        System => "system",
        Anonymous => "anonymous",
    }
}

/// Who did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Actor {
    pub kind: ActorKind,
    /// A human id, a system component (`sweep`, `bootstrap`, `auto-approval`), or empty.
    pub id: String,
}

impl Actor {
    pub fn human(id: HumanId) -> Self {
        Self {
            kind: ActorKind::Human,
            id: id.to_string(),
        }
    }

    pub fn system(component: &str) -> Self {
        Self {
            kind: ActorKind::System,
            id: component.to_owned(),
        }
    }

    pub fn anonymous() -> Self {
        Self {
            kind: ActorKind::Anonymous,
            id: String::new(),
        }
    }
}

str_enum! {
    pub enum Outcome {
        Success => "success",
        Denied => "denied",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    /// Assigned by the store: strictly increasing.
    pub seq: i64,
    pub at: Timestamp,
    pub actor: Actor,
    /// `identity.requested`, `identity.approved`, `human.departed`, `request.refused`, ...
    pub action: String,
    /// `identity`, `human`, `credential`, `request`.
    pub target_type: String,
    pub target_id: String,
    pub outcome: Outcome,
    pub reason: String,
    /// What changed, or why a request was refused. Never a secret.
    pub detail: serde_json::Value,
    /// The id of the HTTP request that caused this (`X-Request-Id`), if any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_id: String,
    /// The network address the request came from, if any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// The previous record's hash, hex (set by the store; see [`crate::audit`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prev_hash: String,
    /// This record's hash, hex (set by the store).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
}

impl Event {
    pub fn new(
        at: Timestamp,
        actor: Actor,
        action: &str,
        target_type: &str,
        target_id: impl ToString,
    ) -> Self {
        Self {
            seq: 0,
            at,
            actor,
            action: action.to_owned(),
            target_type: target_type.to_owned(),
            target_id: target_id.to_string(),
            outcome: Outcome::Success,
            reason: String::new(),
            detail: serde_json::Value::Null,
            request_id: String::new(),
            source: String::new(),
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }

    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }

    /// Records the request behind this event.
    pub fn from_request(mut self, request_id: &str, source: &str) -> Self {
        self.request_id = request_id.to_owned();
        self.source = source.to_owned();
        self
    }

    pub fn denied(mut self) -> Self {
        self.outcome = Outcome::Denied;
        self
    }
}
