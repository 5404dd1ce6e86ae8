//! Groups an identity provider pushes over SCIM. A group's members are the humans whose
//! `member_of` names it, so policies (`principal in Aim::Group::"..."`) and approvals
//! (`@approval("group:...")`) see what the IdP says; this table adds the SCIM id, display
//! name and external id. Written once for both backends, like `backend.rs`.

use aim_domain::event::Event;
use aim_domain::ids::HumanId;
use aim_domain::time::Timestamp;
use async_trait::async_trait;
use uuid::Uuid;

use crate::StoreError;

/// A group as SCIM knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimGroup {
    pub id: Uuid,
    /// The aim group name members are put in, fixed when the group is created.
    pub name: String,
    pub display_name: String,
    pub external_id: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A change of membership: who joins and who leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Membership {
    pub add: Vec<HumanId>,
    pub remove: Vec<HumanId>,
}

#[async_trait]
pub trait ScimGroupStore: Send + Sync {
    /// Stores the group and puts `members` in it, in one write. A name another group has
    /// is `Conflict(Validation)`; a member that does not exist (or was deleted) is
    /// `Conflict(Validation)` too, and nothing is written.
    async fn insert_scim_group(
        &self,
        group: &ScimGroup,
        members: &[HumanId],
        event: &Event,
    ) -> Result<(), StoreError>;

    async fn scim_group(&self, id: Uuid) -> Result<Option<ScimGroup>, StoreError>;

    /// Groups in id order from `offset`, matching the display name or external id when
    /// given (exactly), and how many match.
    async fn list_scim_groups(
        &self,
        display_name: Option<&str>,
        external_id: Option<&str>,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<ScimGroup>, u64), StoreError>;

    /// Writes the group's display name and external id, and the membership change, in
    /// one write (each member's version moves).
    async fn change_scim_group(
        &self,
        group: &ScimGroup,
        change: &Membership,
        event: &Event,
    ) -> Result<(), StoreError>;

    /// Removes the group and takes every member out of it; false if there is none.
    async fn delete_scim_group(&self, id: Uuid, event: &Event) -> Result<bool, StoreError>;
}

/// The columns a group is read from.
pub(crate) const GROUP_COLUMNS: &str =
    "id, name, display_name, external_id, created_at, updated_at";

/// `member_of` with `name` added or taken out.
pub(crate) fn member_of(current: &str, name: &str, add: bool) -> String {
    let mut groups: Vec<&str> = current
        .split(',')
        .filter(|g| !g.is_empty() && *g != name)
        .collect();
    if add {
        groups.push(name);
    }
    groups.sort_unstable();
    groups.join(",")
}

/// Implements [`ScimGroupStore`] for `$store` (see `backend::impl_store`).
macro_rules! impl_scim_group_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl crate::scim_groups::ScimGroupStore for $store {
            async fn insert_scim_group(
                &self,
                g: &crate::scim_groups::ScimGroup,
                members: &[aim_domain::ids::HumanId],
                event: &aim_domain::event::Event,
            ) -> Result<(), crate::StoreError> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO scim_groups (id, name, display_name, external_id, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(g.id)
                .bind(g.name.clone())
                .bind(g.display_name.clone())
                .bind(g.external_id.clone())
                .bind(g.created_at.as_millis())
                .bind(g.updated_at.as_millis())
                .execute(&mut *tx)
                .await
                .map_err(|e| crate::error::unique_or(e, || aim_domain::Refusal::Validation(
                    format!("a group named `{}` already exists", g.name),
                )))?;
                for m in members {
                    Self::set_member_tx(&mut *tx, *m, &g.name, true, g.updated_at).await?;
                }
                Self::commit_with(tx, &[event]).await?;
                Ok(())
            }

            async fn scim_group(
                &self,
                id: uuid::Uuid,
            ) -> Result<Option<crate::scim_groups::ScimGroup>, crate::StoreError> {
                let sql = format!("SELECT {} FROM scim_groups WHERE id = $1", crate::scim_groups::GROUP_COLUMNS);
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(self.read())
                .await?;
                row.as_ref().map(crate::scim_groups::group_from_row).transpose()
            }

            async fn list_scim_groups(
                &self,
                display_name: Option<&str>,
                external_id: Option<&str>,
                offset: u64,
                limit: u32,
            ) -> Result<(Vec<crate::scim_groups::ScimGroup>, u64), crate::StoreError> {
                let mut w = crate::sql::Where::default();
                if let Some(d) = display_name {
                    w.bound("display_name = ?", crate::sql::Bind::Text(d.to_owned()));
                }
                if let Some(x) = external_id {
                    w.bound("external_id = ?", crate::sql::Bind::Text(x.to_owned()));
                }
                let count = format!("SELECT COUNT(*) AS n FROM scim_groups{}", w.sql());
                let total = crate::backend::bind_all!(sqlx::query(sqlx::AssertSqlSafe(count)), w.binds.clone())
                    .fetch_one(self.read())
                    .await?;
                let total: i64 = sqlx::Row::try_get(&total, "n")?;
                let page = format!(
                    "SELECT {} FROM scim_groups{} ORDER BY id LIMIT {limit} OFFSET {offset}",
                    crate::scim_groups::GROUP_COLUMNS,
                    w.sql()
                );
                let rows = crate::backend::bind_all!(sqlx::query(sqlx::AssertSqlSafe(page)), w.binds)
                    .fetch_all(self.read())
                    .await?;
                let groups = rows
                    .iter()
                    .map(crate::scim_groups::group_from_row)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((groups, u64::try_from(total).unwrap_or_default()))
            }

            async fn change_scim_group(
                &self,
                g: &crate::scim_groups::ScimGroup,
                change: &crate::scim_groups::Membership,
                event: &aim_domain::event::Event,
            ) -> Result<(), crate::StoreError> {
                let mut tx = self.write_tx().await?;
                let n = sqlx::query(
                    "UPDATE scim_groups SET display_name = $1, external_id = $2, updated_at = $3 WHERE id = $4",
                )
                .bind(g.display_name.clone())
                .bind(g.external_id.clone())
                .bind(g.updated_at.as_millis())
                .bind(g.id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n != 1 {
                    return Err(crate::StoreError::Conflict(aim_domain::Refusal::ConcurrentUpdate));
                }
                for m in &change.add {
                    Self::set_member_tx(&mut *tx, *m, &g.name, true, g.updated_at).await?;
                }
                for m in &change.remove {
                    Self::set_member_tx(&mut *tx, *m, &g.name, false, g.updated_at).await?;
                }
                Self::commit_with(tx, &[event]).await?;
                Ok(())
            }

            async fn delete_scim_group(
                &self,
                id: uuid::Uuid,
                event: &aim_domain::event::Event,
            ) -> Result<bool, crate::StoreError> {
                let mut tx = self.write_tx().await?;
                let name: Option<(String,)> = sqlx::query_as("SELECT name FROM scim_groups WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some((name,)) = name else {
                    return Ok(false);
                };
                let members: Vec<(uuid::Uuid,)> = sqlx::query_as(
                    "SELECT id FROM humans WHERE (',' || member_of || ',') LIKE $1",
                )
                .bind(format!("%,{name},%"))
                .fetch_all(&mut *tx)
                .await?;
                for (m,) in members {
                    let m = aim_domain::ids::HumanId::from_uuid(m);
                    Self::set_member_tx(&mut *tx, m, &name, false, event.at).await?;
                }
                sqlx::query("DELETE FROM scim_groups WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                Self::commit_with(tx, &[event]).await?;
                Ok(true)
            }
        }

        impl $store {
            /// Puts `human` in group `name` (or takes them out); their version moves. A
            /// human that does not exist, or was deleted over SCIM, is refused.
            async fn set_member_tx(
                conn: &mut <<$store as crate::backend::Backend>::Db as sqlx::Database>::Connection,
                human: aim_domain::ids::HumanId,
                name: &str,
                add: bool,
                now: aim_domain::time::Timestamp,
            ) -> Result<(), crate::StoreError> {
                let row: Option<(String,)> = sqlx::query_as(
                    "SELECT member_of FROM humans WHERE id = $1 AND deleted_at IS NULL",
                )
                .bind(human.as_uuid())
                .fetch_optional(&mut *conn)
                .await?;
                let Some((current,)) = row else {
                    return Err(crate::StoreError::Conflict(aim_domain::Refusal::Validation(
                        format!("no user {human}"),
                    )));
                };
                let next = crate::scim_groups::member_of(&current, name, add);
                if next == current {
                    return Ok(());
                }
                sqlx::query(
                    "UPDATE humans SET member_of = $1, version = version + 1, updated_at = $2 WHERE id = $3",
                )
                .bind(next)
                .bind(now.as_millis())
                .bind(human.as_uuid())
                .execute(&mut *conn)
                .await?;
                Ok(())
            }
        }
    };
}
pub(crate) use impl_scim_group_store;

pub(crate) fn group_from_row<'r, R: crate::rows::AimRow<'r>>(
    r: &'r R,
) -> Result<ScimGroup, StoreError>
where
    &'r str: sqlx::ColumnIndex<R>,
{
    Ok(ScimGroup {
        id: r.uuid("id")?,
        name: r.text("name")?,
        display_name: r.text("display_name")?,
        external_id: r.opt_text("external_id")?,
        created_at: Timestamp::from_millis(r.int("created_at")?),
        updated_at: Timestamp::from_millis(r.int("updated_at")?),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn membership_is_a_sorted_set() {
        assert_eq!(super::member_of("", "b", true), "b");
        assert_eq!(super::member_of("c,a", "b", true), "a,b,c");
        assert_eq!(super::member_of("a,b", "b", true), "a,b");
        assert_eq!(super::member_of("a,b,c", "b", false), "a,c");
        assert_eq!(super::member_of("a", "b", false), "a");
    }
}
