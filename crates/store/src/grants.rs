//! Grants and just-in-time elevation requests, and the revision replicas reload them by. Written once for both backends, like `backend.rs`;
//! every change is written with its event in one transaction.

use aim_domain::event::Event;
use aim_domain::grant::{Grant, GrantState};
use aim_domain::ids::GrantId;
use aim_domain::time::Timestamp;
use async_trait::async_trait;

use crate::StoreError;

pub(crate) fn grantee_key(g: &aim_domain::grant::Grantee) -> String {
    match g {
        aim_domain::grant::Grantee::Identity(i) => format!("identity:{i}"),
        aim_domain::grant::Grantee::Group(g) => format!("group:{g}"),
    }
}

#[async_trait]
pub trait GrantStore: Send + Sync {
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
}

/// Implements [`GrantStore`] for `$store` (see `backend::impl_store`).
macro_rules! impl_grant_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl crate::grants::GrantStore for $store {
            async fn insert_grant(
                &self,
                g: &aim_domain::grant::Grant,
                event: &aim_domain::event::Event,
            ) -> Result<(), crate::StoreError> {
                let mut tx = self.write_tx().await?;
                sqlx::query("INSERT INTO grants (id, grantee, state, expires_at, revision, doc) VALUES ($1, $2, $3, $4, (SELECT COALESCE(MAX(revision), 0) + 1 FROM grants), $5)")
                    .bind(g.id.as_uuid())
                    .bind(crate::grants::grantee_key(&g.grantee))
                    .bind(g.state.as_str())
                    .bind(g.expires_at.map(|t| t.as_millis()))
                    .bind(crate::rows::doc(g)?)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| crate::error::unique_or(e, || aim_domain::Refusal::ConcurrentUpdate))?;
                Self::commit_with(tx, &[event]).await?;
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
                row.as_ref().map(|r| crate::rows::doc_from_row(r, "grants")).transpose()
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
                rows.iter().map(|r| crate::rows::doc_from_row(r, "grants")).collect()
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
                    .bind(crate::rows::doc(g)?)
                    .bind(g.id.as_uuid())
                    .bind(from.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| crate::error::unique_or(e, || aim_domain::Refusal::ConcurrentUpdate))?
                    .rows_affected();
                if n != 1 {
                    return Ok(false);
                }
                Self::commit_with(tx, &[event]).await?;
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
                let grants = rows.iter().map(|r| crate::rows::doc_from_row(r, "grants")).collect::<Result<Vec<_>, _>>()?;
                tx.commit().await?;
                Ok((revision, grants))
            }
        }
    };
}

pub(crate) use impl_grant_store;
