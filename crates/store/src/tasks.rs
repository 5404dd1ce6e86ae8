//! Tasks: opening, reading, listing and ending them, and tasks that follow the records they
//! hang on, written once for both backends like `backend.rs`: ending a task (revoking its tokens, releasing its leases), and bringing an
//! identity's open tasks in line after a change to it (ended when it leaves `active`,
//! narrowed when it loses a system), each inside the caller's transaction.

use aim_domain::event::Event;
use aim_domain::ids::{IdentityId, TaskId};
use aim_domain::single_use::Claim;
use aim_domain::task::Task;
use aim_domain::time::Timestamp;
use async_trait::async_trait;

use crate::StoreError;

#[async_trait]
pub trait TaskStore: Send + Sync {
    /// Opens a task; `events` (the task opened, the first token issued) and the single-use
    /// `claims` they spend go with it, in one durable write. False, with no task and no
    /// event, if any claim was used before (the new ones among them stay used).
    async fn insert_task(
        &self,
        task: &Task,
        events: &[Event],
        claims: &[Claim],
    ) -> Result<bool, StoreError>;
    async fn task(&self, id: TaskId) -> Result<Option<Task>, StoreError>;
    /// Tasks in id order after `after`, optionally of one identity and only open ones.
    async fn list_tasks(
        &self,
        identity: Option<IdentityId>,
        open_only: bool,
        after: Option<TaskId>,
        limit: u32,
    ) -> Result<Vec<Task>, StoreError>;
    /// Ends an open task (false if it is not open) and revokes its tokens.
    async fn end_task(
        &self,
        id: TaskId,
        at: Timestamp,
        reason: &str,
        event: &Event,
    ) -> Result<bool, StoreError>;
    /// Open tasks whose deadline has passed.
    async fn overdue_tasks(&self, now: Timestamp, limit: u32) -> Result<Vec<Task>, StoreError>;
}

/// Implements [`TaskStore`] for `$store` (see `backend::impl_store`).
macro_rules! impl_task_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl crate::tasks::TaskStore for $store {
            async fn insert_task(
                &self,
                task: &aim_domain::task::Task,
                events: &[aim_domain::event::Event],
                claims: &[aim_domain::single_use::Claim],
            ) -> Result<bool, crate::StoreError> {
                let mut tx = self.write_tx().await?;
                let mut all_new = true;
                for c in claims {
                    all_new &= Self::use_once_tx(&mut tx, &c.id, c.expires_at).await?;
                }
                if !all_new {
                    tx.commit_unrecorded().await?;
                    return Ok(false);
                }
                sqlx::query("INSERT INTO tasks (id, identity_id, purpose, systems, subject, triggered_by, state, opened_at, deadline, ended_at, end_reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
                    .bind(task.id.as_uuid())
                    .bind(task.identity_id.as_uuid())
                    .bind(task.purpose.clone())
                    .bind(crate::rows::json_text(&task.systems))
                    .bind(task.subject.clone())
                    .bind(task.triggered_by.clone())
                    .bind(task.state.as_str())
                    .bind(task.opened_at.as_millis())
                    .bind(task.deadline.as_millis())
                    .bind(task.ended_at.map(|t| t.as_millis()))
                    .bind(task.end_reason.clone())
                    .execute(&mut *tx)
                    .await?;
                let events: Vec<&aim_domain::event::Event> = events.iter().collect();
                Self::commit_with(tx, &events).await?;
                Ok(true)
            }
            async fn task(
                &self,
                id: aim_domain::ids::TaskId,
            ) -> Result<Option<aim_domain::task::Task>, crate::StoreError> {
                let sql = crate::credentials::task_select("WHERE id = $1");
                let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.as_uuid()).fetch_optional(self.read()).await?;
                row.as_ref().map(crate::credentials::task_from_row).transpose()
            }
            async fn list_tasks(
                &self,
                identity: Option<aim_domain::ids::IdentityId>,
                open_only: bool,
                after: Option<aim_domain::ids::TaskId>,
                limit: u32,
            ) -> Result<Vec<aim_domain::task::Task>, crate::StoreError> {
                let mut w = crate::sql::Where::default();
                if let Some(i) = identity {
                    w.bound("identity_id = ?", crate::sql::Bind::Uuid(i.as_uuid()));
                }
                if open_only {
                    w.plain("state = 'open'");
                }
                if let Some(a) = after {
                    w.bound("id > ?", crate::sql::Bind::Uuid(a.as_uuid()));
                }
                let sql = crate::credentials::task_select(&format!("{} ORDER BY id LIMIT {limit}", w.sql()));
                let rows = crate::backend::bind_all!(sqlx::query(sqlx::AssertSqlSafe(sql)), w.binds).fetch_all(self.read()).await?;
                rows.iter().map(crate::credentials::task_from_row).collect()
            }
            async fn end_task(
                &self,
                id: aim_domain::ids::TaskId,
                at: aim_domain::time::Timestamp,
                reason: &str,
                event: &aim_domain::event::Event,
            ) -> Result<bool, crate::StoreError> {
                let mut tx = self.write_tx().await?;
                if !Self::end_task_tx(&mut *tx, id, at, reason).await? {
                    return Ok(false);
                }
                Self::commit_with(tx, &[event]).await?;
                Ok(true)
            }
            async fn overdue_tasks(
                &self,
                now: aim_domain::time::Timestamp,
                limit: u32,
            ) -> Result<Vec<aim_domain::task::Task>, crate::StoreError> {
                let sql = crate::credentials::task_select(&format!("WHERE state = 'open' AND deadline <= $1 ORDER BY deadline LIMIT {limit}"));
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now.as_millis()).fetch_all(self.read()).await?;
                rows.iter().map(crate::credentials::task_from_row).collect()
            }
        }
    };
}

/// Adds the task helpers to `$store` (see `backend::impl_store`).
macro_rules! impl_task_follow {
    ($store:ty) => {
        impl $store {
            /// Ends task `id` if it is open (false if not): revokes its tokens and releases
            /// its leases. The caller appends the event.
            pub(crate) async fn end_task_tx(
                conn: &mut <<$store as crate::backend::Backend>::Db as sqlx::Database>::Connection,
                id: aim_domain::ids::TaskId,
                at: aim_domain::time::Timestamp,
                reason: &str,
            ) -> Result<bool, crate::StoreError> {
                let deadline: Option<(i64,)> = sqlx::query_as("UPDATE tasks SET state = 'ended', ended_at = $1, end_reason = $2 WHERE id = $3 AND state = 'open' RETURNING deadline")
                    .bind(at.as_millis())
                    .bind(reason.to_owned())
                    .bind(id.as_uuid())
                    .fetch_optional(&mut *conn)
                    .await?;
                let Some((deadline,)) = deadline else {
                    return Ok(false);
                };
                let revocation = crate::credentials::NewRevocation {
                    kind: aim_domain::agent_key::RevocationKind::Task,
                    value: id.to_string(),
                    reason: reason.to_owned(),
                    // Tokens never outlive their task's deadline.
                    expires_at: aim_domain::time::Timestamp::from_millis(deadline),
                };
                Self::add_revocation_tx(&mut *conn, &revocation, at).await?;
                // The task's leases go with it.
                sqlx::query("UPDATE leases SET released_at = $1, release_reason = $2 WHERE task_id = $3 AND released_at IS NULL")
                    .bind(at.as_millis())
                    .bind(format!("task ended: {reason}"))
                    .bind(id.as_uuid())
                    .execute(&mut *conn)
                    .await?;
                Ok(true)
            }

            /// Brings the open tasks of `identity` in line with it, after a change to it:
            /// if it left `active`, each ends (a `task.ended` event); otherwise each keeps
            /// only the systems the identity still has (a `task.narrowed` event). Returns
            /// the events, for the caller to commit with its own.
            pub(crate) async fn follow_identity_tx(
                conn: &mut <<$store as crate::backend::Backend>::Db as sqlx::Database>::Connection,
                identity: &aim_domain::identity::Identity,
                at: aim_domain::time::Timestamp,
            ) -> Result<Vec<aim_domain::event::Event>, crate::StoreError> {
                use aim_domain::event::{Actor, Event};
                let sql = crate::credentials::task_select("WHERE identity_id = $1 AND state = 'open' ORDER BY id");
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(identity.id.as_uuid())
                    .fetch_all(&mut *conn)
                    .await?;
                let tasks: Vec<aim_domain::task::Task> = rows
                    .iter()
                    .map(crate::credentials::task_from_row)
                    .collect::<Result<_, _>>()?;
                let active = identity.state == aim_domain::lifecycle::LifecycleState::Active;
                let mut events = Vec::new();
                for task in tasks {
                    let event = if !active {
                        let reason = format!("identity {}", identity.state);
                        if !Self::end_task_tx(&mut *conn, task.id, at, &reason).await? {
                            continue;
                        }
                        Event::new(at, Actor::system("lifecycle"), aim_domain::event::AuditAction::TaskEnded, "task", task.id)
                            .reason(reason)
                    } else {
                        let kept: Vec<String> = task
                            .systems
                            .iter()
                            .filter(|s| identity.systems.contains(s))
                            .cloned()
                            .collect();
                        if kept.len() == task.systems.len() {
                            continue;
                        }
                        sqlx::query("UPDATE tasks SET systems = $1 WHERE id = $2 AND state = 'open'")
                            .bind(serde_json::to_string(&kept).map_err(|e| crate::StoreError::Corrupt(e.to_string()))?)
                            .bind(task.id.as_uuid())
                            .execute(&mut *conn)
                            .await?;
                        Event::new(at, Actor::system("lifecycle"), aim_domain::event::AuditAction::TaskNarrowed, "task", task.id)
                            .reason(format!("identity {} no longer has every system of the task", identity.name))
                            .detail(serde_json::json!({ "systems": kept, "before": task.systems }))
                    };
                    events.push(event.trail(aim_domain::event::Trail {
                        task_id: task.id.to_string(),
                        triggered_by: task.triggered_by.clone(),
                        ..aim_domain::event::Trail::default()
                    }));
                }
                Ok(events)
            }
        }
    };
}

pub(crate) use {impl_task_follow, impl_task_store};
