//! aim's signing keys as operators see them, and the revocation list gateways follow.

use aim_domain::agent_key::Revocation;
use aim_domain::time::Timestamp;
use serde::{Deserialize, Serialize};

/// A signing key, without its private half.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SigningKeyInfo {
    pub kid: String,
    pub alg: String,
    pub created_at: Timestamp,
    /// Signs nothing after this.
    pub retire_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
    /// The key signing new tokens on this replica.
    pub current: bool,
    /// Published in JWKS (its tokens may still be alive).
    pub published: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevocationPage {
    pub items: Vec<Revocation>,
    /// The epoch to ask from next time.
    pub epoch: i64,
}
