//! Storage for what decisions use besides policies: approvals of exact actions, grants and
//! just-in-time elevations, and leases. Written once for both backends, like `backend.rs`;
//! every change is written with its event in one transaction.

use aim_domain::approval::{ActionApproval, ApprovalState, ApprovedAction};
use aim_domain::event::Event;
use aim_domain::grant::{Grant, GrantState};
use aim_domain::ids::{ApprovalId, GrantId, IdentityId, LeaseId};
use aim_domain::lease::{Lease, Record};
use aim_domain::time::Timestamp;
use async_trait::async_trait;

use crate::StoreError;
use crate::appender::Claim;
use crate::rows::AimRow;

pub use aim_domain::approval::Spent;

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

#[async_trait]
pub trait RuntimeStore: Send + Sync {
    /// Stores a new pending approval unless `identity` already has `max_open` open
    /// (pending, unexpired) ones; false then, and nothing is written.
    async fn insert_approval(
        &self,
        a: &ActionApproval,
        max_open: u32,
        now: Timestamp,
        event: &Event,
    ) -> Result<bool, StoreError>;
    /// The pending, unexpired approval for exactly this action, if there is one.
    async fn open_approval_for(
        &self,
        action: &ApprovedAction,
        now: Timestamp,
    ) -> Result<Option<ActionApproval>, StoreError>;
    async fn approval(&self, id: ApprovalId) -> Result<Option<ActionApproval>, StoreError>;
    /// Approvals in id order after `after`, optionally in one stored state (pending ones
    /// only while unexpired) and of one identity.
    async fn list_approvals(
        &self,
        state: Option<ApprovalState>,
        identity: Option<IdentityId>,
        now: Timestamp,
        after: Option<ApprovalId>,
        limit: u32,
    ) -> Result<Vec<ActionApproval>, StoreError>;
    /// Writes `a` if its stored state is still `from`; false if someone changed it first.
    async fn update_approval(
        &self,
        a: &ActionApproval,
        from: ApprovalState,
        event: &Event,
    ) -> Result<bool, StoreError>;
    /// Marks the approved, unexpired approval `a` used and records `event` (the decision
    /// it allowed), and `claims`, in one transaction.
    async fn spend_approval(
        &self,
        a: &ActionApproval,
        now: Timestamp,
        event: &Event,
        claims: Vec<Claim>,
    ) -> Result<Spent, StoreError>;

    async fn insert_grant(&self, g: &Grant, event: &Event) -> Result<(), StoreError>;
    async fn grant(&self, id: GrantId) -> Result<Option<Grant>, StoreError>;
    /// Grants in id order after `after`, optionally in one stored state and of one
    /// grantee (`identity:<id>` or `group:<name>`).
    async fn list_grants(
        &self,
        state: Option<GrantState>,
        grantee: Option<&str>,
        after: Option<GrantId>,
        limit: u32,
    ) -> Result<Vec<Grant>, StoreError>;
    /// Writes `g` if its stored state is still `from`; false if someone changed it first.
    async fn update_grant(
        &self,
        g: &Grant,
        from: GrantState,
        event: &Event,
    ) -> Result<bool, StoreError>;
    /// The newest revision of the grants (0 if none): cheap, for replicas to poll.
    async fn grants_revision(&self) -> Result<i64, StoreError>;
    /// Every active grant not expired at `now`, and the revision they are as of.
    async fn live_grants(&self, now: Timestamp) -> Result<(i64, Vec<Grant>), StoreError>;

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

pub(crate) fn doc_from_row<'r, R, T>(r: &'r R, table: &str) -> Result<T, StoreError>
where
    R: AimRow<'r>,
    &'r str: sqlx::ColumnIndex<R>,
    T: serde::de::DeserializeOwned,
{
    serde_json::from_str(&r.text("doc")?)
        .map_err(|e| StoreError::Corrupt(format!("{table}.doc: {e}")))
}

pub(crate) fn doc<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(format!("encoding a record: {e}")))
}

pub(crate) fn grantee_key(g: &aim_domain::grant::Grantee) -> String {
    match g {
        aim_domain::grant::Grantee::Identity(i) => format!("identity:{i}"),
        aim_domain::grant::Grantee::Group(g) => format!("group:{g}"),
    }
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

/// Implements [`RuntimeStore`] for `$store` (see `backend::impl_store`).
macro_rules! impl_runtime_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl crate::runtime::RuntimeStore for $store {
            async fn insert_approval(
                &self,
                a: &aim_domain::approval::ActionApproval,
                max_open: u32,
                now: aim_domain::time::Timestamp,
                event: &aim_domain::event::Event,
            ) -> Result<bool, crate::StoreError> {
                let mut tx = self.write_tx().await?;
                let open: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM action_approvals WHERE identity_id = $1 AND state = 'pending' AND expires_at > $2")
                    .bind(a.action.identity_id.as_uuid())
                    .bind(now.as_millis())
                    .fetch_one(&mut *tx)
                    .await?;
                if open >= i64::from(max_open) {
                    return Ok(false);
                }
                sqlx::query("INSERT INTO action_approvals (id, identity_id, state, expires_at, doc) VALUES ($1, $2, $3, $4, $5)")
                    .bind(a.id.as_uuid())
                    .bind(a.action.identity_id.as_uuid())
                    .bind(a.state.as_str())
                    .bind(a.expires_at.as_millis())
                    .bind(crate::runtime::doc(a)?)
                    .execute(&mut *tx)
                    .await?;
                Self::append_tx(&mut *tx, event).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn open_approval_for(
                &self,
                action: &aim_domain::approval::ApprovedAction,
                now: aim_domain::time::Timestamp,
            ) -> Result<Option<aim_domain::approval::ActionApproval>, crate::StoreError> {
                let rows = sqlx::query("SELECT doc FROM action_approvals WHERE identity_id = $1 AND state = 'pending' AND expires_at > $2 ORDER BY id LIMIT 100")
                    .bind(action.identity_id.as_uuid())
                    .bind(now.as_millis())
                    .fetch_all(self.read())
                    .await?;
                for row in &rows {
                    let a: aim_domain::approval::ActionApproval = crate::runtime::doc_from_row(row, "action_approvals")?;
                    if &a.action == action {
                        return Ok(Some(a));
                    }
                }
                Ok(None)
            }

            async fn approval(
                &self,
                id: aim_domain::ids::ApprovalId,
            ) -> Result<Option<aim_domain::approval::ActionApproval>, crate::StoreError> {
                let row = sqlx::query("SELECT doc FROM action_approvals WHERE id = $1")
                    .bind(id.as_uuid())
                    .fetch_optional(self.read())
                    .await?;
                row.as_ref().map(|r| crate::runtime::doc_from_row(r, "action_approvals")).transpose()
            }

            async fn list_approvals(
                &self,
                state: Option<aim_domain::approval::ApprovalState>,
                identity: Option<aim_domain::ids::IdentityId>,
                now: aim_domain::time::Timestamp,
                after: Option<aim_domain::ids::ApprovalId>,
                limit: u32,
            ) -> Result<Vec<aim_domain::approval::ActionApproval>, crate::StoreError> {
                let mut w = crate::sql::Where::default();
                if let Some(s) = state {
                    w.bound("state = ?", crate::sql::Bind::Text(s.as_str().to_owned()));
                    if s == aim_domain::approval::ApprovalState::Pending {
                        w.bound("expires_at > ?", crate::sql::Bind::Int(now.as_millis()));
                    }
                }
                if let Some(i) = identity {
                    w.bound("identity_id = ?", crate::sql::Bind::Uuid(i.as_uuid()));
                }
                if let Some(a) = after {
                    w.bound("id > ?", crate::sql::Bind::Uuid(a.as_uuid()));
                }
                let sql = format!("SELECT doc FROM action_approvals{} ORDER BY id LIMIT {limit}", w.sql());
                let rows = crate::backend::bind_all!(sqlx::query(sqlx::AssertSqlSafe(sql)), w.binds).fetch_all(self.read()).await?;
                rows.iter().map(|r| crate::runtime::doc_from_row(r, "action_approvals")).collect()
            }

            async fn update_approval(
                &self,
                a: &aim_domain::approval::ActionApproval,
                from: aim_domain::approval::ApprovalState,
                event: &aim_domain::event::Event,
            ) -> Result<bool, crate::StoreError> {
                let mut tx = self.write_tx().await?;
                let n = sqlx::query("UPDATE action_approvals SET state = $1, expires_at = $2, doc = $3 WHERE id = $4 AND state = $5")
                    .bind(a.state.as_str())
                    .bind(a.expires_at.as_millis())
                    .bind(crate::runtime::doc(a)?)
                    .bind(a.id.as_uuid())
                    .bind(from.as_str())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n != 1 {
                    return Ok(false);
                }
                Self::append_tx(&mut *tx, event).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn spend_approval(
                &self,
                a: &aim_domain::approval::ActionApproval,
                now: aim_domain::time::Timestamp,
                event: &aim_domain::event::Event,
                claims: Vec<crate::appender::Claim>,
            ) -> Result<crate::runtime::Spent, crate::StoreError> {
                let mut tx = self.write_tx().await?;
                let n = sqlx::query("UPDATE action_approvals SET state = 'used', doc = $1 WHERE id = $2 AND state = 'approved' AND expires_at > $3")
                    .bind(crate::runtime::doc(a)?)
                    .bind(a.id.as_uuid())
                    .bind(now.as_millis())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n != 1 {
                    return Ok(crate::runtime::Spent::Gone);
                }
                for c in &claims {
                    let n = sqlx::query("INSERT INTO used_ids (id, expires_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING")
                        .bind(c.id.clone())
                        .bind(c.expires_at.as_millis())
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if n != 1 {
                        // Dropping the transaction rolls the approval back too.
                        return Ok(crate::runtime::Spent::Replayed);
                    }
                }
                let seq = Self::append_tx(&mut *tx, event).await?;
                tx.commit().await?;
                Ok(crate::runtime::Spent::Yes(seq))
            }

            async fn insert_grant(
                &self,
                g: &aim_domain::grant::Grant,
                event: &aim_domain::event::Event,
            ) -> Result<(), crate::StoreError> {
                let mut tx = self.write_tx().await?;
                sqlx::query("INSERT INTO grants (id, grantee, state, expires_at, revision, doc) VALUES ($1, $2, $3, $4, (SELECT COALESCE(MAX(revision), 0) + 1 FROM grants), $5)")
                    .bind(g.id.as_uuid())
                    .bind(crate::runtime::grantee_key(&g.grantee))
                    .bind(g.state.as_str())
                    .bind(g.expires_at.map(|t| t.as_millis()))
                    .bind(crate::runtime::doc(g)?)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| crate::error::unique_or(e, || aim_domain::Refusal::ConcurrentUpdate))?;
                Self::append_tx(&mut *tx, event).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn grant(
                &self,
                id: aim_domain::ids::GrantId,
            ) -> Result<Option<aim_domain::grant::Grant>, crate::StoreError> {
                let row = sqlx::query("SELECT doc FROM grants WHERE id = $1")
                    .bind(id.as_uuid())
                    .fetch_optional(self.read())
                    .await?;
                row.as_ref().map(|r| crate::runtime::doc_from_row(r, "grants")).transpose()
            }

            async fn list_grants(
                &self,
                state: Option<aim_domain::grant::GrantState>,
                grantee: Option<&str>,
                after: Option<aim_domain::ids::GrantId>,
                limit: u32,
            ) -> Result<Vec<aim_domain::grant::Grant>, crate::StoreError> {
                let mut w = crate::sql::Where::default();
                if let Some(s) = state {
                    w.bound("state = ?", crate::sql::Bind::Text(s.as_str().to_owned()));
                }
                if let Some(g) = grantee {
                    w.bound("grantee = ?", crate::sql::Bind::Text(g.to_owned()));
                }
                if let Some(a) = after {
                    w.bound("id > ?", crate::sql::Bind::Uuid(a.as_uuid()));
                }
                let sql = format!("SELECT doc FROM grants{} ORDER BY id LIMIT {limit}", w.sql());
                let rows = crate::backend::bind_all!(sqlx::query(sqlx::AssertSqlSafe(sql)), w.binds).fetch_all(self.read()).await?;
                rows.iter().map(|r| crate::runtime::doc_from_row(r, "grants")).collect()
            }

            async fn update_grant(
                &self,
                g: &aim_domain::grant::Grant,
                from: aim_domain::grant::GrantState,
                event: &aim_domain::event::Event,
            ) -> Result<bool, crate::StoreError> {
                let mut tx = self.write_tx().await?;
                let n = sqlx::query("UPDATE grants SET state = $1, expires_at = $2, doc = $3, revision = (SELECT COALESCE(MAX(revision), 0) + 1 FROM grants) WHERE id = $4 AND state = $5")
                    .bind(g.state.as_str())
                    .bind(g.expires_at.map(|t| t.as_millis()))
                    .bind(crate::runtime::doc(g)?)
                    .bind(g.id.as_uuid())
                    .bind(from.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| crate::error::unique_or(e, || aim_domain::Refusal::ConcurrentUpdate))?
                    .rows_affected();
                if n != 1 {
                    return Ok(false);
                }
                Self::append_tx(&mut *tx, event).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn grants_revision(&self) -> Result<i64, crate::StoreError> {
                Ok(sqlx::query_scalar("SELECT COALESCE(MAX(revision), 0) FROM grants")
                    .fetch_one(self.read())
                    .await?)
            }

            async fn live_grants(
                &self,
                now: aim_domain::time::Timestamp,
            ) -> Result<(i64, Vec<aim_domain::grant::Grant>), crate::StoreError> {
                let mut tx = self.read().begin().await?;
                let revision: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(revision), 0) FROM grants")
                    .fetch_one(&mut *tx)
                    .await?;
                let rows = sqlx::query("SELECT doc FROM grants WHERE state = 'active' AND (expires_at IS NULL OR expires_at > $1)")
                    .bind(now.as_millis())
                    .fetch_all(&mut *tx)
                    .await?;
                let grants = rows.iter().map(|r| crate::runtime::doc_from_row(r, "grants")).collect::<Result<Vec<_>, _>>()?;
                tx.commit().await?;
                Ok((revision, grants))
            }

            async fn acquire_lease(
                &self,
                lease: &aim_domain::lease::Lease,
                limits: &aim_domain::lease::LeaseLimits,
                now: aim_domain::time::Timestamp,
                event: &aim_domain::event::Event,
            ) -> Result<crate::runtime::Acquired, crate::StoreError> {
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
                    let held = crate::runtime::lease_from_row(&row)?;
                    if held.identity_id != lease.identity_id {
                        return Ok(crate::runtime::Acquired::Conflict(held));
                    }
                    let until = lease
                        .expires_at
                        .min(held.acquired_at.plus_seconds(limits.max_hold_seconds));
                    if until <= now {
                        return Ok(crate::runtime::Acquired::HeldTooLong(held));
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
                    Self::append_tx(&mut *tx, event).await?;
                    tx.commit().await?;
                    return Ok(crate::runtime::Acquired::Held(aim_domain::lease::Lease {
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
                    return Ok(crate::runtime::Acquired::TooMany {
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
                            Some(h) if h.identity_id != lease.identity_id => Ok(crate::runtime::Acquired::Conflict(h)),
                            _ => Err(crate::StoreError::Conflict(aim_domain::Refusal::ConcurrentUpdate)),
                        };
                    }
                    Err(e) => return Err(e.into()),
                }
                Self::append_tx(&mut *tx, event).await?;
                tx.commit().await?;
                Ok(crate::runtime::Acquired::Held(lease.clone()))
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
                row.as_ref().map(crate::runtime::lease_from_row).transpose()
            }

            async fn lease(
                &self,
                id: aim_domain::ids::LeaseId,
            ) -> Result<Option<aim_domain::lease::Lease>, crate::StoreError> {
                let row = sqlx::query("SELECT * FROM leases WHERE id = $1")
                    .bind(id.as_uuid())
                    .fetch_optional(self.read())
                    .await?;
                row.as_ref().map(crate::runtime::lease_from_row).transpose()
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
                Self::append_tx(&mut *tx, event).await?;
                tx.commit().await?;
                Ok(true)
            }
        }
    };
}

pub(crate) use impl_runtime_store;
