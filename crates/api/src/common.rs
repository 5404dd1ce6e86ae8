//! Bodies several routes share, and the health answers.

use serde::{Deserialize, Serialize};

/// A free-text reason for a state change.
#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    #[serde(default)]
    pub reason: String,
}

impl ReasonBody {
    /// The reason, trimmed; at most 1000 characters and no control characters, so it can
    /// never forge a line in a log, a table or an export.
    pub fn checked(&self) -> Result<String, aim_domain::Refusal> {
        Ok(
            aim_domain::validate::optional_text("reason", Some(self.reason.clone()), 1000)?
                .unwrap_or_default(),
        )
    }
}

/// `GET /healthz` (`ok`) and `GET /readyz` (`ready`, once the store answers).
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    pub status: String,
}
