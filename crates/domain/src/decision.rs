//! A decision and the question it answers, as plain data: what the action is on
//! ([`Target`]), what the caller said about the call ([`Call`]), and the answer
//! ([`Decision`]). `aim-policy` computes decisions; the API, the store and every
//! enforcement point carry them.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

/// What the action is on: a `Resource`, `Tool` or `System`, or a type a deployment added.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The entity type without its namespace (`Resource`, `Tool`, `System`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    /// The system it belongs to (for a `System`, its own id).
    pub system: String,
    /// The entity's attributes besides `system` (a `Resource`'s `type`, `sensitivity`,
    /// `owner`, `subject`; a `Tool`'s `name`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub attrs: Map<String, Value>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl Target {
    /// Whose data this is (`customer:42`), if anyone's.
    pub fn subject(&self) -> Option<&str> {
        self.attrs.get("subject").and_then(Value::as_str)
    }
}

/// What the caller said about the call itself.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Call {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_hash: Option<String>,
}

str_enum! {
    /// What a decision comes to.
    pub enum Effect {
        Allow => "allow",
        Deny => "deny",
        ApprovalRequired => "approval_required",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Decision {
    pub decision: Effect,
    /// The policies (or aim rules) that decided: the permits behind an allow, the forbids
    /// behind a deny; empty for a default deny.
    pub policies: Vec<String>,
    pub reasons: Vec<String>,
    /// Who may approve, from the deciding policies' `@approval` annotations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// Evaluation errors; any error denies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl Decision {
    /// A deny by one rule, for one reason.
    pub fn deny(rule: &str, reason: String) -> Self {
        Decision {
            decision: Effect::Deny,
            policies: vec![rule.to_owned()],
            reasons: vec![reason],
            approvers: Vec::new(),
            errors: Vec::new(),
        }
    }
}
