//! Policy files as they are uploaded, stored and versioned: Cedar text by file name, and
//! template links. `aim-policy` compiles them; the API and the store carry them.

use serde::{Deserialize, Serialize};

/// One file of Cedar policies and templates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Source {
    pub name: String,
    pub text: String,
}

/// A template filled in: `Aim::Group::"payments"` may read `Aim::System::"crm"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub id: String,
    pub template: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}
