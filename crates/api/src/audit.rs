//! `/v1/audit`: the head of the chain, and the keys checkpoints are signed with.

use serde::{Deserialize, Serialize};

/// The head of the chain.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditHead {
    /// The last sequence number.
    pub seq: i64,
    /// Its hash, hex.
    pub hash: String,
}

/// A key audit checkpoints are signed with, as published (`GET
/// /v1/audit/checkpoint-keys`): what `aim audit verify --public-key` checks a checkpoint
/// against, offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckpointKey {
    /// Ed25519, hex.
    pub public_key: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub created_at: aim_domain::time::Timestamp,
    /// Signs nothing after this; still verifies what it signed.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub retired_at: Option<aim_domain::time::Timestamp>,
}
