//! The registry of identities: writes with optimistic versions, lookups, filtered pages, and
//! what the sweep looks at. Written once for both backends, like `backend.rs`.

use aim_domain::event::Event;
use aim_domain::identity::Identity;
use aim_domain::ids::IdentityId;
use async_trait::async_trait;

use crate::{IdentityCursor, IdentityFilter, StoreError, SweepThresholds};

#[async_trait]
pub trait IdentityStore: Send + Sync {
    async fn insert_identity(&self, identity: &Identity, event: &Event) -> Result<(), StoreError>;

    /// Inserts many identities in one transaction per call (bulk import).
    async fn import_identities(&self, batch: &[(Identity, Event)]) -> Result<(), StoreError>;

    async fn identity(&self, id: IdentityId) -> Result<Option<Identity>, StoreError>;

    async fn identity_by_name(&self, name: &str) -> Result<Option<Identity>, StoreError>;

    /// A page of identities: in id order, or in name order when the filter has a name
    /// prefix (see [`IdentityFilter::orders_by_name`]).
    async fn list_identities(
        &self,
        filter: &IdentityFilter,
        after: Option<&IdentityCursor>,
        limit: u32,
    ) -> Result<Vec<Identity>, StoreError>;

    /// Whether an identity other than `except`, not decommissioned or rejected, has this
    /// duplicate key.
    async fn duplicate_exists(&self, key: &str, except: IdentityId) -> Result<bool, StoreError>;

    /// Whether aim knows group `name`: some human is in it, some identity's team is it, or
    /// some grant is for it.
    async fn group_known(&self, name: &str) -> Result<bool, StoreError>;

    /// Writes `identity` if the stored version is still `expected_version` (the version the
    /// change was computed from); otherwise `Conflict(ConcurrentUpdate)`.
    async fn update_identity(
        &self,
        identity: &Identity,
        expected_version: i64,
        event: &Event,
    ) -> Result<(), StoreError>;

    /// Identities some sweep rule may apply to, at most `limit`.
    async fn sweep_candidates(
        &self,
        thresholds: &SweepThresholds,
        limit: u32,
    ) -> Result<Vec<Identity>, StoreError>;
}

/// Implements [`IdentityStore`] for `$store` (see `backend::impl_store`).
macro_rules! impl_identity_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl crate::identities::IdentityStore for $store {
            async fn insert_identity(
                &self,
                identity: &aim_domain::identity::Identity,
                event: &aim_domain::event::Event,
            ) -> Result<(), crate::StoreError> {
                let mut tx = self.write_tx().await?;
                crate::backend::bind_identity!(sqlx::query(crate::sql::INSERT_IDENTITY), identity)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| crate::error::unique_or(e, || aim_domain::Refusal::NameTaken(identity.name.clone())))?;
                Self::commit_with(tx, &[event]).await?;
                Ok(())
            }

            async fn import_identities(
                &self,
                batch: &[(aim_domain::identity::Identity, aim_domain::event::Event)],
            ) -> Result<(), crate::StoreError> {
                let mut tx = self.write_tx().await?;
                for (identity, _) in batch {
                    crate::backend::bind_identity!(sqlx::query(crate::sql::INSERT_IDENTITY), identity)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| crate::error::unique_or(e, || aim_domain::Refusal::NameTaken(identity.name.clone())))?;
                }
                let events: Vec<&aim_domain::event::Event> = batch.iter().map(|(_, e)| e).collect();
                Self::commit_with(tx, &events).await?;
                Ok(())
            }

            async fn identity(
                &self,
                id: aim_domain::ids::IdentityId,
            ) -> Result<Option<aim_domain::identity::Identity>, crate::StoreError> {
                let sql = format!("SELECT {} FROM identities WHERE id = $1", crate::sql::IDENTITY_COLUMNS);
                let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.as_uuid()).fetch_optional(self.read()).await?;
                row.as_ref().map(crate::rows::identity_from_row).transpose()
            }

            async fn identity_by_name(
                &self,
                name: &str,
            ) -> Result<Option<aim_domain::identity::Identity>, crate::StoreError> {
                let sql = format!("SELECT {} FROM identities WHERE name = $1", crate::sql::IDENTITY_COLUMNS);
                let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(name.to_owned()).fetch_optional(self.read()).await?;
                row.as_ref().map(crate::rows::identity_from_row).transpose()
            }

            async fn list_identities(
                &self,
                filter: &crate::IdentityFilter,
                after: Option<&crate::IdentityCursor>,
                limit: u32,
            ) -> Result<Vec<aim_domain::identity::Identity>, crate::StoreError> {
                let w = crate::sql::identity_where(filter, after);
                let order = if filter.orders_by_name() { "name" } else { "id" };
                let sql = format!(
                    "SELECT {} FROM identities{} ORDER BY {order} LIMIT {}",
                    crate::sql::IDENTITY_COLUMNS,
                    w.sql(),
                    limit
                );
                let rows = crate::backend::bind_all!(sqlx::query(sqlx::AssertSqlSafe(sql)), w.binds).fetch_all(self.read()).await?;
                rows.iter().map(crate::rows::identity_from_row).collect()
            }

            async fn duplicate_exists(
                &self,
                key: &str,
                except: aim_domain::ids::IdentityId,
            ) -> Result<bool, crate::StoreError> {
                let row: Option<(i64,)> = sqlx::query_as(
                    "SELECT CAST(1 AS BIGINT) FROM identities WHERE duplicate_key = $1 AND id <> $2 \
                     AND state NOT IN ('decommissioned', 'rejected') LIMIT 1",
                )
                .bind(key.to_owned())
                .bind(except.as_uuid())
                .fetch_optional(self.read())
                .await?;
                Ok(row.is_some())
            }

            async fn group_known(&self, name: &str) -> Result<bool, crate::StoreError> {
                let escaped: String = name
                    .chars()
                    .flat_map(|c| match c {
                        '\\' | '%' | '_' => vec!['\\', c],
                        c => vec![c],
                    })
                    .collect();
                let row: Option<(i64,)> = sqlx::query_as(
                    "SELECT CAST(1 AS BIGINT) FROM identities WHERE owner_team = $1 \
                     UNION ALL SELECT CAST(1 AS BIGINT) FROM grants WHERE grantee = $2 \
                     UNION ALL SELECT CAST(1 AS BIGINT) FROM humans WHERE state = 'active' \
                       AND (',' || member_of || ',') LIKE $3 ESCAPE '\\' \
                     LIMIT 1",
                )
                .bind(name.to_owned())
                .bind(format!("group:{name}"))
                .bind(format!("%,{escaped},%"))
                .fetch_optional(self.read())
                .await?;
                Ok(row.is_some())
            }

            async fn update_identity(
                &self,
                identity: &aim_domain::identity::Identity,
                expected_version: i64,
                event: &aim_domain::event::Event,
            ) -> Result<(), crate::StoreError> {
                let mut tx = self.write_tx().await?;
                let before: Option<(String,)> = sqlx::query_as("SELECT state FROM identities WHERE id = $1")
                    .bind(identity.id.as_uuid())
                    .fetch_optional(&mut *tx)
                    .await?;
                let n = crate::backend::bind_identity!(sqlx::query(crate::sql::UPDATE_IDENTITY), identity)
                    .bind(expected_version)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n != 1 {
                    return Err(crate::StoreError::Conflict(aim_domain::Refusal::ConcurrentUpdate));
                }
                // Leaving `active` (suspended, locked, expired, decommissioned) revokes every
                // token the identity holds, in the same transaction.
                let active = aim_domain::lifecycle::LifecycleState::Active.as_str();
                if before.is_some_and(|(s,)| s == active) && identity.state.as_str() != active {
                    let at = identity.state_changed_at;
                    let revocation = crate::credentials::NewRevocation {
                        kind: aim_domain::agent_key::RevocationKind::Identity,
                        value: identity.id.to_string(),
                        reason: format!("identity {}", identity.state),
                        expires_at: at.plus_millis(crate::credentials::MAX_TOKEN_LIFETIME_MS),
                    };
                    Self::add_revocation_tx(&mut *tx, &revocation, at).await?;
                    // ... and releases every lease it holds.
                    sqlx::query("UPDATE leases SET released_at = $1, release_reason = $2 WHERE identity_id = $3 AND released_at IS NULL")
                        .bind(at.as_millis())
                        .bind(format!("identity {}", identity.state))
                        .bind(identity.id.as_uuid())
                        .execute(&mut *tx)
                        .await?;
                }
                // Its open tasks end with it, or keep only the systems it still has.
                let followed = Self::follow_identity_tx(&mut *tx, identity, identity.updated_at).await?;
                let events: Vec<&aim_domain::event::Event> = std::iter::once(event).chain(&followed).collect();
                Self::commit_with(tx, &events).await?;
                Ok(())
            }

            async fn sweep_candidates(
                &self,
                t: &crate::SweepThresholds,
                limit: u32,
            ) -> Result<Vec<aim_domain::identity::Identity>, crate::StoreError> {
                // One indexed query per rule rather than one OR the planner may not split.
                // Each rule is a range scan on its own (state, column) index, so a sweep over a
                // large registry touches only the rows that are due.
                let rules = [
                    (format!("state IN {} AND expires_at <= $1", crate::sql::LIVE_STATES), t.expires_at),
                    ("state = 'active' AND orphaned_since IS NOT NULL AND orphaned_since <= $1".to_owned(), t.orphaned_since),
                    ("state = 'active' AND attestation_due_at <= $1".to_owned(), t.attestation_due_at),
                    ("state = 'active' AND dormant = FALSE AND last_activity_at <= $1".to_owned(), t.last_activity_at),
                ];
                let mut out: Vec<aim_domain::identity::Identity> = Vec::new();
                for (clause, at) in rules {
                    let room = (limit as usize).saturating_sub(out.len());
                    if room == 0 {
                        break;
                    }
                    let sql = format!(
                        "SELECT {} FROM identities WHERE {clause} LIMIT {room}",
                        crate::sql::IDENTITY_COLUMNS
                    );
                    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(at.as_millis()).fetch_all(self.read()).await?;
                    for r in &rows {
                        let i = crate::rows::identity_from_row(r)?;
                        if !out.iter().any(|o| o.id == i.id) {
                            out.push(i);
                        }
                    }
                }
                Ok(out)
            }
        }
    };
}

pub(crate) use impl_identity_store;
