//! Credentials for upstreams kept in aim: an admin stores one
//! (`PUT /v1/upstream-secrets/{name}`), a gateway reads it to inject it
//! (`GET /v1/gateway/upstream-secrets/{name}`).

use serde::{Deserialize, Serialize};

/// `PUT /v1/upstream-secrets/{name}`: the value (visible ASCII, at most 8192 bytes), sealed
/// by aim under its key-encryption key; never shown again except to a gateway.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PutUpstreamSecret {
    pub value: String,
    #[serde(default)]
    pub description: String,
    /// The gateway accounts (user names) that may read it; any gateway account if empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<String>,
}

/// What a gateway reads.
#[derive(Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpstreamSecretValue {
    pub name: String,
    pub version: i64,
    pub value: String,
}

impl std::fmt::Debug for UpstreamSecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // INVARIANT: a secret's value is never printed.
        f.debug_struct("UpstreamSecretValue")
            .field("name", &self.name)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}
