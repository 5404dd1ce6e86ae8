//! Leases against conflicts of authority: one identity holds exclusive write on one record
//! for a short time, so two agents never write the same record at once. A write decision
//! on a record another identity holds is denied with `conflict_of_authority`, naming the
//! holder. A lease expires by itself and is released when its task ends or its identity
//! is locked.

use serde::{Deserialize, Serialize};

use crate::error::Refusal;
use crate::ids::{IdentityId, LeaseId, TaskId};
use crate::time::Timestamp;
use crate::validate;

/// A lease lasts this long when the request says nothing: 60 seconds.
pub const DEFAULT_SECONDS: i64 = 60;
/// And at most this long: 15 minutes. An agent that needs longer renews it.
pub const MAX_SECONDS: i64 = 15 * 60;

/// One record: `system`, entity type and id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub system: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

impl Record {
    pub fn validated(self) -> Result<Self, Refusal> {
        Ok(Record {
            system: validate::token("system", &self.system, 128)?,
            kind: validate::token("type", &self.kind, 128)?,
            id: validate::text("id", &self.id, 512)?,
        })
    }

    /// The key one lease at a time may hold: system, type and id, unambiguous.
    pub fn key(&self) -> String {
        format!("{}\u{1f}{}\u{1f}{}", self.system, self.kind, self.id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Lease {
    pub id: LeaseId,
    pub record: Record,
    pub identity_id: IdentityId,
    /// The holder's name, to name it to the one refused.
    pub identity_name: String,
    pub task_id: TaskId,
    pub acquired_at: Timestamp,
    pub expires_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub release_reason: String,
}

impl Lease {
    pub fn is_held_at(&self, now: Timestamp) -> bool {
        self.released_at.is_none() && now < self.expires_at
    }

    /// The refusal a different identity gets while this lease is held.
    pub fn conflict(&self) -> Refusal {
        Refusal::ConflictOfAuthority {
            holder: self.identity_id.to_string(),
            holder_name: self.identity_name.clone(),
            until: self.expires_at.to_string(),
        }
    }
}

/// How many leases one identity and one task may hold at once, and how long one lease may
/// be kept by renewing it (`[leases]`): an agent cannot lease a whole system, or hold a
/// record forever, to keep every other writer out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LeaseLimits {
    pub max_per_identity: u32,
    pub max_per_task: u32,
    /// From when it was first taken; renewals never take it past this.
    pub max_hold_seconds: i64,
}

impl Default for LeaseLimits {
    fn default() -> Self {
        Self {
            max_per_identity: 32,
            max_per_task: 16,
            max_hold_seconds: 3600,
        }
    }
}

impl LeaseLimits {
    pub fn check(&self) -> Result<(), Refusal> {
        if self.max_per_identity == 0 || self.max_per_task == 0 {
            return Err(Refusal::Validation(
                "[leases] max_per_identity and max_per_task must be at least 1".into(),
            ));
        }
        if !(MAX_SECONDS..=24 * 3600).contains(&self.max_hold_seconds) {
            return Err(Refusal::Validation(format!(
                "[leases] max_hold_seconds must be from {MAX_SECONDS} to 86400"
            )));
        }
        Ok(())
    }
}

/// The lease duration asked for, checked.
pub fn seconds(asked: Option<i64>) -> Result<i64, Refusal> {
    let s = asked.unwrap_or(DEFAULT_SECONDS);
    if !(1..=MAX_SECONDS).contains(&s) {
        return Err(Refusal::Validation(format!(
            "`ttl_seconds` must be from 1 to {MAX_SECONDS}"
        )));
    }
    Ok(s)
}
