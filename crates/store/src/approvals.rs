//! Approvals of exact actions: waiting, decided, spent once with the decision they allow. Written once for both backends, like `backend.rs`;
//! every change is written with its event in one transaction.

use aim_domain::approval::{ActionApproval, ApprovalState, ApprovedAction};
use aim_domain::event::Event;
use aim_domain::ids::{ApprovalId, IdentityId};
use aim_domain::time::Timestamp;
use async_trait::async_trait;

use crate::StoreError;
use crate::appender::Claim;

pub use aim_domain::approval::Spent;

#[async_trait]
pub trait ApprovalStore: Send + Sync {
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
}

/// Implements [`ApprovalStore`] for `$store` (see `backend::impl_store`).
macro_rules! impl_approval_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl crate::approvals::ApprovalStore for $store {
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
                    .bind(crate::rows::doc(a)?)
                    .execute(&mut *tx)
                    .await?;
                Self::commit_with(tx, &[event]).await?;
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
                    let a: aim_domain::approval::ActionApproval = crate::rows::doc_from_row(row, "action_approvals")?;
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
                row.as_ref().map(|r| crate::rows::doc_from_row(r, "action_approvals")).transpose()
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
                rows.iter().map(|r| crate::rows::doc_from_row(r, "action_approvals")).collect()
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
                    .bind(crate::rows::doc(a)?)
                    .bind(a.id.as_uuid())
                    .bind(from.as_str())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n != 1 {
                    return Ok(false);
                }
                Self::commit_with(tx, &[event]).await?;
                Ok(true)
            }
            async fn spend_approval(
                &self,
                a: &aim_domain::approval::ActionApproval,
                now: aim_domain::time::Timestamp,
                event: &aim_domain::event::Event,
                claims: Vec<crate::appender::Claim>,
            ) -> Result<crate::approvals::Spent, crate::StoreError> {
                let mut tx = self.write_tx().await?;
                let n = sqlx::query("UPDATE action_approvals SET state = 'used', doc = $1 WHERE id = $2 AND state = 'approved' AND expires_at > $3")
                    .bind(crate::rows::doc(a)?)
                    .bind(a.id.as_uuid())
                    .bind(now.as_millis())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n != 1 {
                    return Ok(crate::approvals::Spent::Gone);
                }
                for c in &claims {
                    let n = sqlx::query(crate::sql::USE_ONCE)
                        .bind(c.id.clone())
                        .bind(c.expires_at.as_millis())
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if n != 1 {
                        // Dropping the transaction rolls the approval back too.
                        return Ok(crate::approvals::Spent::Replayed);
                    }
                }
                let seqs = Self::commit_with(tx, &[event]).await?;
                let seq = seqs.first().copied().ok_or_else(|| crate::StoreError::Corrupt("no sequence number for an append".into()))?;
                Ok(crate::approvals::Spent::Yes(seq))
            }
        }
    };
}

pub(crate) use impl_approval_store;
