//! `/v1/identities`: bearer opt-in, agents' keys, join tokens and joining.

use aim_domain::ids::IdentityId;
use serde::{Deserialize, Serialize};

/// `{"allowed": true, "reason": "..."}`: lets the identity have bearer tokens.
#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BearerBody {
    pub allowed: bool,
    #[serde(default)]
    pub reason: String,
}

/// A public key to register.
#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewAgentKey {
    /// A public JWK: Ed25519 (`{"kty":"OKP","crv":"Ed25519","x":…}`) or P-256
    /// (`{"kty":"EC","crv":"P-256","x":…,"y":…}`). Never the private key.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub jwk: serde_json::Value,
    #[serde(default)]
    pub label: String,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewJoinToken {
    /// How long it may wait to be used: 60 s to 24 h, default 15 min.
    #[serde(default)]
    pub ttl_seconds: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssuedJoinToken {
    pub id: uuid::Uuid,
    pub identity_id: IdentityId,
    /// Shown once; give it to the new agent.
    pub token: String,
    pub expires_at: aim_domain::time::Timestamp,
}

#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// The join token (`aimjoin_...`).
    pub token: String,
    /// The agent's public JWK; the request's `DPoP` header must be a proof signed by it.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub jwk: serde_json::Value,
    #[serde(default)]
    pub label: String,
}
