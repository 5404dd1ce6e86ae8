//! Single-use ids: a client assertion's or a DPoP proof's `jti`, spent once across every
//! replica, in the same durable write as the record of what it was spent on.

/// A single-use id to record with an event: the event is appended only if the id was not
/// used before (a client assertion's `jti`, say).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Claim {
    pub id: String,
    pub expires_at: crate::time::Timestamp,
}
