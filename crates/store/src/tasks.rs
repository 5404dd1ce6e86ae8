//! Tasks that follow the records they hang on, written once for both backends like
//! `backend.rs`: ending a task (revoking its tokens, releasing its leases), and bringing an
//! identity's open tasks in line after a change to it (ended when it leaves `active`,
//! narrowed when it loses a system), each inside the caller's transaction.

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
            /// if it left `active`, each ends (with a `task.ended` event); otherwise each
            /// keeps only the systems the identity still has (with a `task.narrowed` event).
            pub(crate) async fn follow_identity_tx(
                conn: &mut <<$store as crate::backend::Backend>::Db as sqlx::Database>::Connection,
                identity: &aim_domain::identity::Identity,
                at: aim_domain::time::Timestamp,
            ) -> Result<(), crate::StoreError> {
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
                    Self::append_tx(&mut *conn, &event.trail(aim_domain::event::Trail {
                        task_id: task.id.to_string(),
                        triggered_by: task.triggered_by.clone(),
                        ..aim_domain::event::Trail::default()
                    }))
                    .await?;
                }
                Ok(())
            }
        }
    };
}

pub(crate) use impl_task_follow;
