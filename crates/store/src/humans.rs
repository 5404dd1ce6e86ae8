//! Humans and their API credentials. Written once for both backends, like `backend.rs`.

use aim_domain::event::Event;
use aim_domain::human::{Credential, Human};
use aim_domain::ids::{CredentialId, HumanId};
use aim_domain::time::Timestamp;
use async_trait::async_trait;

use crate::{HumanFilter, OrphanChange, StoreError};

#[async_trait]
pub trait HumanStore: Send + Sync {
    async fn insert_human(&self, human: &Human, event: &Event) -> Result<(), StoreError>;

    async fn human(&self, id: HumanId) -> Result<Option<Human>, StoreError>;

    async fn human_by_user_name(&self, user_name: &str) -> Result<Option<Human>, StoreError>;

    /// Humans in id order after `after`, at most `limit`.
    async fn list_humans(
        &self,
        filter: &HumanFilter,
        after: Option<HumanId>,
        limit: u32,
    ) -> Result<Vec<Human>, StoreError>;

    /// Humans in id order from `offset` (SCIM's index-based paging), and the total count.
    async fn list_humans_offset(
        &self,
        filter: &HumanFilter,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<Human>, u64), StoreError>;

    /// Writes `human` if the stored version is still `expected_version`; otherwise
    /// `Conflict(ConcurrentUpdate)`.
    async fn update_human(
        &self,
        human: &Human,
        expected_version: i64,
        event: &Event,
    ) -> Result<(), StoreError>;

    /// Writes a human who departed or returned, and in the same transaction marks every
    /// live identity they sponsor orphaned (departed) or no longer orphaned (returned).
    /// Returns one event per identity changed, already written.
    async fn update_human_sponsorships(
        &self,
        human: &Human,
        expected_version: i64,
        event: &Event,
        now: Timestamp,
    ) -> Result<Vec<OrphanChange>, StoreError>;

    async fn insert_credential(
        &self,
        credential: &Credential,
        secret_hash: &[u8],
        event: &Event,
    ) -> Result<(), StoreError>;

    /// The unrevoked credential with this secret hash and its human.
    async fn credential_by_hash(
        &self,
        secret_hash: &[u8],
    ) -> Result<Option<(Credential, Human)>, StoreError>;

    async fn credentials_of(&self, human: HumanId) -> Result<Vec<Credential>, StoreError>;

    /// The unrevoked first-start credential (label `bootstrap`) and its human, if any.
    async fn bootstrap_credential(&self) -> Result<Option<(Credential, Human)>, StoreError>;

    /// Since when an active admin other than `except` has existed (the earliest such
    /// admin's last change), if one does.
    async fn other_admin_since(&self, except: HumanId) -> Result<Option<Timestamp>, StoreError>;

    async fn revoke_credential(
        &self,
        id: CredentialId,
        now: Timestamp,
        event: &Event,
    ) -> Result<bool, StoreError>;
}

/// Implements [`HumanStore`] for `$store` (see `backend::impl_store`).
macro_rules! impl_human_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl crate::humans::HumanStore for $store {
            async fn insert_human(
                &self,
                human: &aim_domain::human::Human,
                event: &aim_domain::event::Event,
            ) -> Result<(), crate::StoreError> {
                let mut tx = self.write_tx().await?;
                crate::backend::bind_human!(sqlx::query(crate::sql::INSERT_HUMAN), human)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| crate::error::unique_or(e, || aim_domain::Refusal::UserNameTaken(human.user_name.clone())))?;
                Self::commit_with(tx, &[event]).await?;
                Ok(())
            }

            async fn human(
                &self,
                id: aim_domain::ids::HumanId,
            ) -> Result<Option<aim_domain::human::Human>, crate::StoreError> {
                let sql = format!("SELECT {} FROM humans WHERE id = $1", crate::sql::HUMAN_COLUMNS);
                let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.as_uuid()).fetch_optional(self.read()).await?;
                row.as_ref().map(crate::rows::human_from_row).transpose()
            }

            async fn human_by_user_name(
                &self,
                user_name: &str,
            ) -> Result<Option<aim_domain::human::Human>, crate::StoreError> {
                let sql = format!("SELECT {} FROM humans WHERE user_name_key = $1", crate::sql::HUMAN_COLUMNS);
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(user_name.to_lowercase())
                    .fetch_optional(self.read())
                    .await?;
                row.as_ref().map(crate::rows::human_from_row).transpose()
            }

            async fn list_humans(
                &self,
                filter: &crate::HumanFilter,
                after: Option<aim_domain::ids::HumanId>,
                limit: u32,
            ) -> Result<Vec<aim_domain::human::Human>, crate::StoreError> {
                let w = crate::sql::human_where(filter, after);
                let sql = format!(
                    "SELECT {} FROM humans{} ORDER BY id LIMIT {}",
                    crate::sql::HUMAN_COLUMNS,
                    w.sql(),
                    limit
                );
                let rows = crate::backend::bind_all!(sqlx::query(sqlx::AssertSqlSafe(sql)), w.binds).fetch_all(self.read()).await?;
                rows.iter().map(crate::rows::human_from_row).collect()
            }

            async fn list_humans_offset(
                &self,
                filter: &crate::HumanFilter,
                offset: u64,
                limit: u32,
            ) -> Result<(Vec<aim_domain::human::Human>, u64), crate::StoreError> {
                let w = crate::sql::human_where(filter, None);
                let count_sql = format!("SELECT COUNT(*) FROM humans{}", w.sql());
                let (total,): (i64,) = crate::backend::bind_all!(sqlx::query_as(sqlx::AssertSqlSafe(count_sql)), w.binds)
                    .fetch_one(self.read())
                    .await?;
                let w = crate::sql::human_where(filter, None);
                let sql = format!(
                    "SELECT {} FROM humans{} ORDER BY id LIMIT {} OFFSET {}",
                    crate::sql::HUMAN_COLUMNS,
                    w.sql(),
                    limit,
                    offset
                );
                let rows = crate::backend::bind_all!(sqlx::query(sqlx::AssertSqlSafe(sql)), w.binds).fetch_all(self.read()).await?;
                let humans = rows.iter().map(crate::rows::human_from_row).collect::<Result<Vec<_>, _>>()?;
                Ok((humans, u64::try_from(total).unwrap_or(0)))
            }

            async fn update_human(
                &self,
                human: &aim_domain::human::Human,
                expected_version: i64,
                event: &aim_domain::event::Event,
            ) -> Result<(), crate::StoreError> {
                let mut tx = self.write_tx().await?;
                Self::update_human_tx(&mut *tx, human, expected_version).await?;
                Self::commit_with(tx, &[event]).await?;
                Ok(())
            }

            async fn update_human_sponsorships(
                &self,
                human: &aim_domain::human::Human,
                expected_version: i64,
                event: &aim_domain::event::Event,
                now: aim_domain::time::Timestamp,
            ) -> Result<Vec<crate::OrphanChange>, crate::StoreError> {
                use aim_domain::event::{Actor, Event};
                let mut tx = self.write_tx().await?;
                // Every row write first, then the appends: the chain head is locked last, so
                // no two transactions wait on each other's rows.
                Self::update_human_tx(&mut *tx, human, expected_version).await?;
                let departed = !human.is_active();
                let sql = if departed {
                    format!(
                        "UPDATE identities SET orphaned_since = $1, updated_at = $1, version = version + 1 \
                         WHERE sponsor_id = $2 AND orphaned_since IS NULL AND state IN {} RETURNING id",
                        crate::sql::LIVE_STATES
                    )
                } else {
                    "UPDATE identities SET orphaned_since = NULL, updated_at = $1, version = version + 1 \
                     WHERE sponsor_id = $2 AND orphaned_since IS NOT NULL RETURNING id"
                        .to_owned()
                };
                let ids: Vec<(uuid::Uuid,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(now.as_millis())
                    .bind(human.id.as_uuid())
                    .fetch_all(&mut *tx)
                    .await?;
                let mut changes = Vec::with_capacity(ids.len());
                for (id,) in ids {
                    let (action, reason) = if departed {
                        (aim_domain::event::AuditAction::IdentityOrphaned, format!("sponsor {} departed", human.user_name))
                    } else {
                        (aim_domain::event::AuditAction::IdentitySponsorReturned, format!("sponsor {} is active again", human.user_name))
                    };
                    let ev = Event::new(now, Actor::system("sponsorship"), action, "identity", id)
                        .reason(reason)
                        .detail(serde_json::json!({ "sponsor_id": human.id }));
                    changes.push((aim_domain::ids::IdentityId::from_uuid(id), ev));
                }
                let events: Vec<&Event> = std::iter::once(event).chain(changes.iter().map(|(_, e)| e)).collect();
                let seqs = Self::commit_with(tx, &events).await?;
                for ((_, ev), seq) in changes.iter_mut().zip(seqs.into_iter().skip(1)) {
                    ev.seq = seq;
                }
                Ok(changes)
            }

            async fn insert_credential(
                &self,
                credential: &aim_domain::human::Credential,
                secret_hash: &[u8],
                event: &aim_domain::event::Event,
            ) -> Result<(), crate::StoreError> {
                let mut tx = self.write_tx().await?;
                Self::insert_credential_tx(&mut *tx, credential, secret_hash).await?;
                Self::commit_with(tx, &[event]).await?;
                Ok(())
            }

            async fn credential_by_hash(
                &self,
                secret_hash: &[u8],
            ) -> Result<Option<(aim_domain::human::Credential, aim_domain::human::Human)>, crate::StoreError> {
                let sql = format!("{} WHERE c.secret_hash = $1 AND c.revoked_at IS NULL", crate::sql::CREDENTIAL_JOIN);
                let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(secret_hash.to_vec()).fetch_optional(self.read()).await?;
                match row {
                    None => Ok(None),
                    Some(r) => Ok(Some((crate::rows::credential_from_row(&r)?, crate::rows::human_from_row(&r)?))),
                }
            }

            async fn credentials_of(
                &self,
                human: aim_domain::ids::HumanId,
            ) -> Result<Vec<aim_domain::human::Credential>, crate::StoreError> {
                let sql = format!("{} WHERE c.human_id = $1 ORDER BY c.id", crate::sql::CREDENTIAL_JOIN);
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(human.as_uuid()).fetch_all(self.read()).await?;
                rows.iter().map(crate::rows::credential_from_row).collect()
            }

            async fn bootstrap_credential(
                &self,
            ) -> Result<Option<(aim_domain::human::Credential, aim_domain::human::Human)>, crate::StoreError> {
                let sql = format!("{} WHERE c.label = 'bootstrap' AND c.revoked_at IS NULL ORDER BY c.created_at LIMIT 1", crate::sql::CREDENTIAL_JOIN);
                let row = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_optional(self.read()).await?;
                match row {
                    None => Ok(None),
                    Some(r) => Ok(Some((crate::rows::credential_from_row(&r)?, crate::rows::human_from_row(&r)?))),
                }
            }

            async fn other_admin_since(
                &self,
                except: aim_domain::ids::HumanId,
            ) -> Result<Option<aim_domain::time::Timestamp>, crate::StoreError> {
                let row: (Option<i64>,) = sqlx::query_as(
                    "SELECT MIN(updated_at) FROM humans WHERE state = 'active' AND id <> $1 \
                     AND (',' || roles || ',') LIKE '%,admin,%'",
                )
                .bind(except.as_uuid())
                .fetch_one(self.read())
                .await?;
                Ok(row.0.map(aim_domain::time::Timestamp::from_millis))
            }

            async fn revoke_credential(
                &self,
                id: aim_domain::ids::CredentialId,
                now: aim_domain::time::Timestamp,
                event: &aim_domain::event::Event,
            ) -> Result<bool, crate::StoreError> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query("UPDATE credentials SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                    .bind(now.as_millis())
                    .bind(id.as_uuid())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    == 1;
                if done {
                    Self::commit_with(tx, &[event]).await?;
                }
                Ok(done)
            }
        }

        impl $store {
            async fn insert_credential_tx(
                conn: &mut <<$store as crate::backend::Backend>::Db as sqlx::Database>::Connection,
                c: &aim_domain::human::Credential,
                secret_hash: &[u8],
            ) -> Result<(), crate::StoreError> {
                sqlx::query(crate::sql::INSERT_CREDENTIAL)
                    .bind(c.id.as_uuid())
                    .bind(c.human_id.as_uuid())
                    .bind(secret_hash.to_vec())
                    .bind(c.label.clone())
                    .bind(c.created_at.as_millis())
                    .bind(c.last_used_at.map(|t| t.as_millis()))
                    .bind(c.revoked_at.map(|t| t.as_millis()))
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            }

            async fn update_human_tx(
                conn: &mut <<$store as crate::backend::Backend>::Db as sqlx::Database>::Connection,
                h: &aim_domain::human::Human,
                expected_version: i64,
            ) -> Result<(), crate::StoreError> {
                // INVARIANT: aim always has an active admin, whatever the path (an admin
                // demoting or deactivating another while that one does the same, SCIM, a
                // departure): a write that leaves this human no active admin runs alone
                // and is refused if no other active admin remains.
                let mut last_admin_check = false;
                if !(h.is_active() && h.has_role(aim_domain::human::Role::Admin)) {
                    sqlx::query(crate::write::SERIALIZE_WITH_OTHER_WRITERS)
                        .execute(&mut *conn)
                        .await?;
                    let sql = format!("{} AND id = $1", crate::sql::ACTIVE_ADMINS);
                    let (was,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                        .bind(h.id.as_uuid())
                        .fetch_one(&mut *conn)
                        .await?;
                    last_admin_check = was > 0;
                }
                let n = crate::backend::bind_human!(sqlx::query(crate::sql::UPDATE_HUMAN), h)
                    .bind(expected_version)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| crate::error::unique_or(e, || aim_domain::Refusal::UserNameTaken(h.user_name.clone())))?
                    .rows_affected();
                if n != 1 {
                    return Err(crate::StoreError::Conflict(aim_domain::Refusal::ConcurrentUpdate));
                }
                if last_admin_check {
                    let (admins,): (i64,) = sqlx::query_as(crate::sql::ACTIVE_ADMINS)
                        .fetch_one(&mut *conn)
                        .await?;
                    if admins == 0 {
                        return Err(crate::StoreError::Conflict(aim_domain::Refusal::LastAdmin));
                    }
                }
                Ok(())
            }
        }
    };
}

pub(crate) use impl_human_store;
