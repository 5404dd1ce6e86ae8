//! Public keys an agent holds the private half of: it signs client assertions and DPoP
//! proofs with them. Registered by its sponsor or an admin, or by the agent itself with a
//! one-time join token. The private half never reaches aim.

use serde::{Deserialize, Serialize};

use crate::ids::IdentityId;
use crate::time::Timestamp;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentKey {
    pub identity_id: IdentityId,
    /// The key's RFC 7638 thumbprint; the `kid` its assertions carry.
    pub kid: String,
    /// The public JWK.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub jwk: serde_json::Value,
    /// `EdDSA` or `ES256`, fixed by the key.
    pub alg: String,
    pub label: String,
    pub created_at: Timestamp,
    /// `human:<id>` or `join-token:<id>`.
    pub created_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
    /// When an assertion signed with it last got a token (to the hour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<Timestamp>,
}

str_enum! {
    /// What a revocation names. Every kind but `identity` kills the matching tokens
    /// whenever they were issued: a revoked token, task, agent key or signing key never
    /// comes back, so no clock (of this replica or another) decides. An identity can be
    /// resumed, so its revocation kills only the tokens issued at or before it.
    pub enum RevocationKind {
        Token => "token",
        Task => "task",
        Identity => "identity",
        AgentKey => "agent_key",
        SigningKey => "signing_key",
    }
}

impl RevocationKind {
    /// Whether the revocation kills only tokens issued at or before it (see the type).
    pub fn only_earlier_tokens(self) -> bool {
        self == RevocationKind::Identity
    }
}

/// One entry of the revocation list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Revocation {
    /// Strictly increasing; ask for entries after the last epoch seen.
    pub epoch: i64,
    pub kind: RevocationKind,
    /// The jti, task id, identity id, `<identity>:<kid>`, or signing-key kid.
    pub value: String,
    pub at: Timestamp,
    pub reason: String,
    /// After this instant no token the entry could match is still alive.
    pub expires_at: Timestamp,
}
