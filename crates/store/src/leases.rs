//! Leases: one identity's exclusive, short right to write one record. Written once for both backends, like `backend.rs`;
//! every change is written with its event in one transaction.

use aim_domain::event::Event;
use aim_domain::ids::{IdentityId, LeaseId};
use aim_domain::lease::{Lease, Record};
use aim_domain::time::Timestamp;
use async_trait::async_trait;

use crate::StoreError;
use crate::rows::AimRow;

/// What asking for a lease came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// Taken (or renewed, when the same identity held it).
    Held(Lease),
    /// Another identity holds it.
    Conflict(Lease),
    /// The identity or the task already holds as many leases as it may.
    TooMany { identity: u32, task: u32 },
    /// Renewing would keep the lease past `max_hold_seconds` from when it was taken.
    HeldTooLong(Lease),
}

pub(crate) fn lease_from_row<'r, R: AimRow<'r>>(r: &'r R) -> Result<Lease, StoreError>
where
    &'r str: sqlx::ColumnIndex<R>,
{
    Ok(Lease {
        id: LeaseId::from_uuid(r.uuid("id")?),
        record: Record {
            system: r.text("system")?,
            kind: r.text("record_type")?,
            id: r.text("record_id")?,
        },
        identity_id: IdentityId::from_uuid(r.uuid("identity_id")?),
        identity_name: r.text("identity_name")?,
        task_id: aim_domain::ids::TaskId::from_uuid(r.uuid("task_id")?),
        acquired_at: Timestamp::from_millis(r.int("acquired_at")?),
        expires_at: Timestamp::from_millis(r.int("expires_at")?),
        released_at: r.opt_int("released_at")?.map(Timestamp::from_millis),
        release_reason: r.text("release_reason")?,
    })
}

#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Gives `lease` to its identity unless another identity holds the record; the same
    /// identity renews its own lease (the stored one gets `lease`'s expiry and task).
    /// Takes `lease`, or renews it if its identity holds the record already, within
    /// `limits`, with `event`, in one transaction.
    async fn acquire_lease(
        &self,
        lease: &Lease,
        limits: &aim_domain::lease::LeaseLimits,
        now: Timestamp,
        event: &Event,
    ) -> Result<Acquired, StoreError>;
    /// The lease held on `record` at `now`, if any.
    async fn held_lease(
        &self,
        record: &Record,
        now: Timestamp,
    ) -> Result<Option<Lease>, StoreError>;
    async fn lease(&self, id: LeaseId) -> Result<Option<Lease>, StoreError>;
    /// Releases a held lease; false if it was not held.
    async fn release_lease(
        &self,
        id: LeaseId,
        now: Timestamp,
        reason: &str,
        event: &Event,
    ) -> Result<bool, StoreError>;
}

/// Implements [`LeaseStore`] for `$store` (see `backend::impl_store`).
macro_rules! impl_lease_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl crate::leases::LeaseStore for $store {
            async fn acquire_lease(
                &self,
                lease: &aim_domain::lease::Lease,
                limits: &aim_domain::lease::LeaseLimits,
                now: aim_domain::time::Timestamp,
                event: &aim_domain::event::Event,
            ) -> Result<crate::leases::Acquired, crate::StoreError> {
                let key = lease.record.key();
                let mut tx = self.write_tx().await?;
                sqlx::query("UPDATE leases SET released_at = expires_at, release_reason = 'expired' WHERE record_key = $1 AND released_at IS NULL AND expires_at <= $2")
                    .bind(key.clone())
                    .bind(now.as_millis())
                    .execute(&mut *tx)
                    .await?;
                let held = sqlx::query("SELECT * FROM leases WHERE record_key = $1 AND released_at IS NULL")
                    .bind(key.clone())
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(row) = held {
                    let held = crate::leases::lease_from_row(&row)?;
                    if held.identity_id != lease.identity_id {
                        return Ok(crate::leases::Acquired::Conflict(held));
                    }
                    let until = lease
                        .expires_at
                        .min(held.acquired_at.plus_seconds(limits.max_hold_seconds));
                    if until <= now {
                        return Ok(crate::leases::Acquired::HeldTooLong(held));
                    }
                    let lease = aim_domain::lease::Lease {
                        expires_at: until,
                        ..lease.clone()
                    };
                    sqlx::query("UPDATE leases SET expires_at = $1, task_id = $2 WHERE id = $3")
                        .bind(lease.expires_at.as_millis())
                        .bind(lease.task_id.as_uuid())
                        .bind(held.id.as_uuid())
                        .execute(&mut *tx)
                        .await?;
                    Self::commit_with(tx, &[event]).await?;
                    return Ok(crate::leases::Acquired::Held(aim_domain::lease::Lease {
                        expires_at: lease.expires_at,
                        task_id: lease.task_id,
                        ..held
                    }));
                }
                // A new lease counts against its identity's and its task's.
                let (by_identity, by_task): (i64, i64) = sqlx::query_as(
                    "SELECT COALESCE(SUM(CASE WHEN identity_id = $1 THEN 1 ELSE 0 END), 0), \
                            COALESCE(SUM(CASE WHEN task_id = $2 THEN 1 ELSE 0 END), 0) \
                     FROM leases WHERE released_at IS NULL AND expires_at > $3 AND (identity_id = $1 OR task_id = $2)",
                )
                .bind(lease.identity_id.as_uuid())
                .bind(lease.task_id.as_uuid())
                .bind(now.as_millis())
                .fetch_one(&mut *tx)
                .await?;
                if by_identity >= i64::from(limits.max_per_identity) || by_task >= i64::from(limits.max_per_task) {
                    return Ok(crate::leases::Acquired::TooMany {
                        identity: u32::try_from(by_identity).unwrap_or(u32::MAX),
                        task: u32::try_from(by_task).unwrap_or(u32::MAX),
                    });
                }
                let inserted = sqlx::query("INSERT INTO leases (id, record_key, system, record_type, record_id, identity_id, identity_name, task_id, acquired_at, expires_at, released_at, release_reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, '')")
                    .bind(lease.id.as_uuid())
                    .bind(key.clone())
                    .bind(lease.record.system.clone())
                    .bind(lease.record.kind.clone())
                    .bind(lease.record.id.clone())
                    .bind(lease.identity_id.as_uuid())
                    .bind(lease.identity_name.clone())
                    .bind(lease.task_id.as_uuid())
                    .bind(lease.acquired_at.as_millis())
                    .bind(lease.expires_at.as_millis())
                    .execute(&mut *tx)
                    .await;
                match inserted {
                    Ok(_) => {}
                    Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                        // Another replica took it between our read and our insert.
                        drop(tx);
                        return match self.held_lease(&lease.record, now).await? {
                            Some(h) if h.identity_id != lease.identity_id => Ok(crate::leases::Acquired::Conflict(h)),
                            _ => Err(crate::StoreError::Conflict(aim_domain::Refusal::ConcurrentUpdate)),
                        };
                    }
                    Err(e) => return Err(e.into()),
                }
                Self::commit_with(tx, &[event]).await?;
                Ok(crate::leases::Acquired::Held(lease.clone()))
            }
            async fn held_lease(
                &self,
                record: &aim_domain::lease::Record,
                now: aim_domain::time::Timestamp,
            ) -> Result<Option<aim_domain::lease::Lease>, crate::StoreError> {
                let row = sqlx::query("SELECT * FROM leases WHERE record_key = $1 AND released_at IS NULL AND expires_at > $2")
                    .bind(record.key())
                    .bind(now.as_millis())
                    .fetch_optional(self.read())
                    .await?;
                row.as_ref().map(crate::leases::lease_from_row).transpose()
            }
            async fn lease(
                &self,
                id: aim_domain::ids::LeaseId,
            ) -> Result<Option<aim_domain::lease::Lease>, crate::StoreError> {
                let row = sqlx::query("SELECT * FROM leases WHERE id = $1")
                    .bind(id.as_uuid())
                    .fetch_optional(self.read())
                    .await?;
                row.as_ref().map(crate::leases::lease_from_row).transpose()
            }
            async fn release_lease(
                &self,
                id: aim_domain::ids::LeaseId,
                now: aim_domain::time::Timestamp,
                reason: &str,
                event: &aim_domain::event::Event,
            ) -> Result<bool, crate::StoreError> {
                let mut tx = self.write_tx().await?;
                let n = sqlx::query("UPDATE leases SET released_at = $1, release_reason = $2 WHERE id = $3 AND released_at IS NULL AND expires_at > $1")
                    .bind(now.as_millis())
                    .bind(reason.to_owned())
                    .bind(id.as_uuid())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n != 1 {
                    return Ok(false);
                }
                Self::commit_with(tx, &[event]).await?;
                Ok(true)
            }
        }
    };
}

pub(crate) use impl_lease_store;
