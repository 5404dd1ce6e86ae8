//! `/v1/audit`: the head of the chain.

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
