//! HTTP routes, grouped by resource. Handlers are thin: extract, call the registry, shape
//! the response.
//!
//! # Layout
//! - [`identities`] — `/v1/identities`
//! - [`humans`] — `/v1/humans` and API credentials
//! - [`scim`] — `/scim/v2` for identity providers
//! - [`audit`] — `/v1/audit`, the event log
//! - [`system`] — health, readiness, sweeps
//! - [`policies`], [`authorize`] — the policy set and runtime decisions
//! - [`approvals`], [`grants`], [`leases`] — human approval, grants and elevation, leases
//! - [`openapi`] — `/v1/openapi.json`

pub mod agent_keys;
pub mod approvals;
pub mod audit;
pub mod authorize;
pub mod grants;
pub mod humans;
pub mod identities;
pub mod join;
pub mod leases;
pub mod oauth;
pub mod openapi;
pub mod policies;
pub mod scim;
pub mod signing_keys;
pub mod system;
pub mod tasks;

use serde::{Deserialize, Serialize};

/// A free-text reason for a state change.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    #[serde(default)]
    pub reason: String,
}

impl ReasonBody {
    /// The reason, trimmed; at most 1000 characters and no control characters, so it can
    /// never forge a line in a log, a table or an export.
    pub fn checked(&self) -> Result<String, crate::error::ApiError> {
        Ok(
            aim_domain::validate::optional_text("reason", Some(self.reason.clone()), 1000)?
                .unwrap_or_default(),
        )
    }
}
