//! The revocation list: what kills tokens (a token, a task, an identity, an agent key, a
//! signing key), the feed gateways follow, and the one read of the live state behind a
//! presented token. Written once for both backends, like `backend.rs`.

use aim_domain::agent_key::{Revocation, RevocationKind};
use aim_domain::event::Event;
use aim_domain::ids::{IdentityId, TaskId};
use aim_domain::live::{Hangs, LiveContext};
use aim_domain::time::Timestamp;
use async_trait::async_trait;

use crate::StoreError;
use crate::credentials::NewRevocation;

#[async_trait]
pub trait RevocationStore: Send + Sync {
    /// Records a revocation on its own (a token revoked by RFC 7009, say).
    async fn revoke(
        &self,
        revocation: &NewRevocation,
        at: Timestamp,
        event: &Event,
    ) -> Result<(), StoreError>;
    /// Revocation entries after `epoch`, oldest first.
    async fn revocations(
        &self,
        after_epoch: i64,
        limit: u32,
    ) -> Result<Vec<Revocation>, StoreError>;
    /// The epoch of the newest entry (0 when the list is empty).
    async fn latest_epoch(&self) -> Result<i64, StoreError>;
    /// Records that `gateway` applied the list up to `epoch`, at `at`. Moves no generation:
    /// an acknowledgement changes nothing a token hangs on.
    async fn gateway_ack(&self, gateway: &str, epoch: i64, at: Timestamp)
    -> Result<(), StoreError>;
    /// Every gateway's last acknowledgement: `(gateway, epoch, at)`.
    async fn gateway_acks(&self) -> Result<Vec<(String, i64, Timestamp)>, StoreError>;
    /// When `value` (of `kind`) was last revoked.
    async fn revoked_at(
        &self,
        kind: RevocationKind,
        value: &str,
    ) -> Result<Option<Timestamp>, StoreError>;
    /// Everything the live-state check of a presented token needs, in one read: the
    /// identity, its sponsor's state, the task (by id alone), and the latest revocation of
    /// the task and of what the token `hangs` on, and how many of its delegators are
    /// active with an active sponsor. `None` if the identity is unknown.
    async fn live_context(
        &self,
        identity: IdentityId,
        task: TaskId,
        hangs: &Hangs<'_>,
    ) -> Result<Option<LiveContext>, StoreError>;
}

/// Implements [`RevocationStore`] for `$store` (see `backend::impl_store`).
macro_rules! impl_revocation_store {
    ($store:ty) => {
        impl $store {
            async fn add_revocation_tx(
                conn: &mut <<$store as crate::backend::Backend>::Db as sqlx::Database>::Connection,
                r: &crate::credentials::NewRevocation,
                at: aim_domain::time::Timestamp,
            ) -> Result<(), crate::StoreError> {
                sqlx::query("INSERT INTO revocations (kind, value, at, reason, expires_at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(r.kind.as_str())
                    .bind(r.value.clone())
                    .bind(at.as_millis())
                    .bind(r.reason.clone())
                    .bind(r.expires_at.as_millis())
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            }
            /// Finishes a revocation: if `revoked` (the row it revokes changed), records
            /// the revocation and commits it with its event; else writes nothing. Returns
            /// `revoked`.
            async fn commit_revocation(
                mut tx: crate::write::WriteTx<<$store as crate::backend::Backend>::Tx>,
                revoked: bool,
                revocation: &crate::credentials::NewRevocation,
                at: aim_domain::time::Timestamp,
                event: &aim_domain::event::Event,
            ) -> Result<bool, crate::StoreError> {
                if !revoked {
                    return Ok(false);
                }
                Self::add_revocation_tx(&mut *tx, revocation, at).await?;
                Self::commit_with(tx, &[event]).await?;
                Ok(true)
            }
        }

        #[async_trait::async_trait]
        impl crate::revocations::RevocationStore for $store {
            async fn revoke(
                &self,
                revocation: &crate::credentials::NewRevocation,
                at: aim_domain::time::Timestamp,
                event: &aim_domain::event::Event,
            ) -> Result<(), crate::StoreError> {
                let tx = self.write_tx().await?;
                Self::commit_revocation(tx, true, revocation, at, event).await?;
                Ok(())
            }
            async fn revocations(
                &self,
                after_epoch: i64,
                limit: u32,
            ) -> Result<Vec<aim_domain::agent_key::Revocation>, crate::StoreError> {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT epoch, kind, value, at, reason, expires_at FROM revocations WHERE epoch > $1 ORDER BY epoch LIMIT {limit}")))
                    .bind(after_epoch)
                    .fetch_all(self.read())
                    .await?;
                rows.iter().map(crate::credentials::revocation_from_row).collect()
            }
            async fn latest_epoch(&self) -> Result<i64, crate::StoreError> {
                let (epoch,): (Option<i64>,) = sqlx::query_as("SELECT MAX(epoch) FROM revocations")
                    .fetch_one(self.read())
                    .await?;
                Ok(epoch.unwrap_or(0))
            }
            async fn gateway_ack(
                &self,
                gateway: &str,
                epoch: i64,
                at: aim_domain::time::Timestamp,
            ) -> Result<(), crate::StoreError> {
                let mut tx = self.untracked_tx().await?;
                let sql = format!("INSERT INTO gateway_acks (gateway, epoch, acked_at) VALUES ($1, $2, $3) ON CONFLICT (gateway) DO UPDATE SET epoch = {}(gateway_acks.epoch, excluded.epoch), acked_at = excluded.acked_at", <$store as crate::backend::Backend>::GREATEST);
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(gateway.to_owned())
                    .bind(epoch)
                    .bind(at.as_millis())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }
            async fn gateway_acks(
                &self,
            ) -> Result<Vec<(String, i64, aim_domain::time::Timestamp)>, crate::StoreError> {
                let rows: Vec<(String, i64, i64)> =
                    sqlx::query_as("SELECT gateway, epoch, acked_at FROM gateway_acks ORDER BY gateway")
                        .fetch_all(self.read())
                        .await?;
                Ok(rows
                    .into_iter()
                    .map(|(g, e, at)| (g, e, aim_domain::time::Timestamp::from_millis(at)))
                    .collect())
            }
            async fn revoked_at(
                &self,
                kind: aim_domain::agent_key::RevocationKind,
                value: &str,
            ) -> Result<Option<aim_domain::time::Timestamp>, crate::StoreError> {
                let row: Option<(i64,)> = sqlx::query_as("SELECT at FROM revocations WHERE kind = $1 AND value = $2 ORDER BY at DESC LIMIT 1")
                    .bind(kind.as_str())
                    .bind(value.to_owned())
                    .fetch_optional(self.read())
                    .await?;
                Ok(row.map(|(at,)| aim_domain::time::Timestamp::from_millis(at)))
            }
            async fn live_context(
                &self,
                identity: aim_domain::ids::IdentityId,
                task: aim_domain::ids::TaskId,
                hangs: &crate::credentials::Hangs<'_>,
            ) -> Result<Option<crate::credentials::LiveContext>, crate::StoreError> {
                let sql = crate::credentials::live_context_sql(
                    hangs.always.len(),
                    hangs.earlier.len(),
                    hangs.delegators.len(),
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(identity.as_uuid())
                    .bind(String::new())
                    .bind(task.as_uuid())
                    .bind(task.to_string());
                for (kind, value) in hangs.always.iter().chain(&hangs.earlier) {
                    q = q.bind(kind.as_str()).bind((*value).to_owned());
                }
                for d in &hangs.delegators {
                    q = q.bind(d.as_uuid());
                }
                let Some(row) = q.fetch_optional(self.read()).await? else {
                    return Ok(None);
                };
                let at = |col: &str| -> Result<Option<aim_domain::time::Timestamp>, crate::StoreError> {
                    let v: Option<i64> = sqlx::Row::try_get(&row, col)?;
                    Ok(v.map(aim_domain::time::Timestamp::from_millis))
                };
                Ok(Some(crate::credentials::LiveContext {
                    context: crate::credentials::token_context_from_row(&row)?,
                    task_revoked_at: at("task_revoked_at")?,
                    always_revoked_at: at("always_revoked_at")?,
                    earlier_revoked_at: at("earlier_revoked_at")?,
                    delegators_active: {
                        let n: i64 = sqlx::Row::try_get(&row, "delegators_active")?;
                        usize::try_from(n).unwrap_or(0)
                    },
                }))
            }
        }
    };
}

pub(crate) use impl_revocation_store;
