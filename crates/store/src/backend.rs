//! The [`Store`](crate::Store) implementation, written once. Both backends accept the same
//! SQL (`$n` placeholders, `RETURNING`, `ON CONFLICT`), so the only differences live in the
//! backend modules: how a pool is opened and how a write transaction starts. The macro
//! stamps this code out for each backend's concrete types.

/// Binds an identity's columns in `crate::sql::IDENTITY_COLUMNS` order.
macro_rules! bind_identity {
    ($q:expr, $i:expr) => {{
        let i: &aim_domain::identity::Identity = $i;
        $q.bind(i.id.as_uuid())
            .bind(i.name.clone())
            .bind(i.kind.as_str())
            .bind(i.autonomy.as_str())
            .bind(i.sponsor_id.as_uuid())
            .bind(i.owner_team.clone())
            .bind(i.purpose.clone())
            .bind(crate::rows::json_text(&i.systems))
            .bind(i.data_sensitivity.as_str())
            .bind(i.criticality.as_str())
            .bind(i.impact.as_str())
            .bind(crate::rows::json_text(&i.labels))
            .bind(i.risk.tier.as_str())
            .bind(crate::rows::json_text(&i.risk.reasons))
            .bind(i.state.as_str())
            .bind(i.state_cause.as_str())
            .bind(i.state_reason.clone())
            .bind(i.state_changed_at.as_millis())
            .bind(i.created_at.as_millis())
            .bind(i.created_by.as_uuid())
            .bind(i.decided_by.map(|h| h.as_uuid()))
            .bind(i.decided_at.map(|t| t.as_millis()))
            .bind(i.expires_at.as_millis())
            .bind(i.last_seen_at.map(|t| t.as_millis()))
            .bind(i.last_attested_at.map(|t| t.as_millis()))
            .bind(i.attestation_due_at.map(|t| t.as_millis()))
            .bind(i.last_activity().as_millis())
            .bind(i.dormant)
            .bind(i.orphaned_since.map(|t| t.as_millis()))
            .bind(i.possible_duplicate)
            .bind(i.duplicate_key())
            .bind(i.updated_at.as_millis())
            .bind(i.version)
            .bind(i.pending_change.as_ref().map(crate::rows::json_text))
            .bind(i.bearer_reason.clone())
    }};
}

/// Binds a human's columns in `crate::sql::INSERT_HUMAN` order.
macro_rules! bind_human {
    ($q:expr, $h:expr) => {{
        let h: &aim_domain::human::Human = $h;
        $q.bind(h.id.as_uuid())
            .bind(h.user_name.clone())
            .bind(h.user_name.to_lowercase())
            .bind(h.display_name.clone())
            .bind(h.email.clone())
            .bind(h.external_id.clone())
            .bind(crate::rows::roles_to_text(&h.roles))
            .bind(h.state.as_str())
            .bind(h.created_at.as_millis())
            .bind(h.updated_at.as_millis())
            .bind(h.departed_at.map(|t| t.as_millis()))
            .bind(h.deleted_at.map(|t| t.as_millis()))
            .bind(h.version)
            .bind(h.groups.join(","))
    }};
}

macro_rules! bind_event {
    ($q:expr, $e:expr) => {{
        let e: &aim_domain::event::Event = $e;
        $q.bind(e.seq)
            .bind(e.at.as_millis())
            .bind(e.actor.kind.as_str())
            .bind(e.actor.id.clone())
            .bind(e.action.as_str())
            .bind(e.target_type.clone())
            .bind(e.target_id.clone())
            .bind(e.outcome.as_str())
            .bind(e.reason.clone())
            .bind(crate::rows::json_text(&e.detail))
            .bind(e.request_id.clone())
            .bind(e.source.clone())
            .bind(crate::rows::json_text(&e.trail.act))
            .bind(e.trail.task_id.clone())
            .bind(e.trail.session_id.clone())
            .bind(e.trail.jti.clone())
            .bind(e.trail.triggered_by.clone())
            .bind(crate::rows::json_text(&e.trail.policies))
            .bind(
                e.trail
                    .model_decision
                    .as_ref()
                    .map(crate::rows::json_text)
                    .unwrap_or_default(),
            )
    }};
}

macro_rules! bind_all {
    ($q:expr, $binds:expr) => {{
        let mut q = $q;
        for b in $binds {
            q = match b {
                crate::sql::Bind::Text(s) => q.bind(s),
                crate::sql::Bind::Int(i) => q.bind(i),
                crate::sql::Bind::Uuid(u) => q.bind(u),
            };
        }
        q
    }};
}

/// Implements [`Store`](crate::Store) for `$store`, whose inherent methods `read()` (a pool)
/// and `write_tx()` (a write transaction) are the only backend-specific parts.
macro_rules! impl_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl crate::Store for $store {
            fn generation(&self) -> &crate::Generation {
                &self.generation
            }

            async fn ping(&self) -> Result<(), crate::StoreError> {
                sqlx::query("SELECT 1").execute(self.read()).await?;
                Ok(())
            }

            async fn bootstrap(
                &self,
                admin: &aim_domain::human::Human,
                credential: &aim_domain::human::Credential,
                secret_hash: &[u8],
                event: &aim_domain::event::Event,
            ) -> Result<bool, crate::StoreError> {
                let mut tx = self.write_tx().await?;
                let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM humans").fetch_one(&mut *tx).await?;
                if n > 0 {
                    return Ok(false);
                }
                crate::backend::bind_human!(sqlx::query(crate::sql::INSERT_HUMAN), admin).execute(&mut *tx).await?;
                Self::insert_credential_tx(&mut *tx, credential, secret_hash).await?;
                Self::append_tx(&mut *tx, event).await?;
                tx.commit().await?;
                Ok(true)
            }

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
                Self::append_tx(&mut *tx, event).await?;
                tx.commit().await?;
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
                Self::append_tx(&mut *tx, event).await?;
                tx.commit().await?;
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
                Self::append_tx(&mut *tx, event).await?;
                let mut changes = Vec::with_capacity(ids.len());
                for (id,) in ids {
                    let (action, reason) = if departed {
                        (aim_domain::event::AuditAction::IdentityOrphaned, format!("sponsor {} departed", human.user_name))
                    } else {
                        (aim_domain::event::AuditAction::IdentitySponsorReturned, format!("sponsor {} is active again", human.user_name))
                    };
                    let mut ev = Event::new(now, Actor::system("sponsorship"), action, "identity", id)
                        .reason(reason)
                        .detail(serde_json::json!({ "sponsor_id": human.id }));
                    ev.seq = Self::append_tx(&mut *tx, &ev).await?;
                    changes.push((aim_domain::ids::IdentityId::from_uuid(id), ev));
                }
                tx.commit().await?;
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
                Self::append_tx(&mut *tx, event).await?;
                tx.commit().await?;
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

            async fn credentials_of(
                &self,
                human: aim_domain::ids::HumanId,
            ) -> Result<Vec<aim_domain::human::Credential>, crate::StoreError> {
                let sql = format!("{} WHERE c.human_id = $1 ORDER BY c.id", crate::sql::CREDENTIAL_JOIN);
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(human.as_uuid()).fetch_all(self.read()).await?;
                rows.iter().map(crate::rows::credential_from_row).collect()
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
                    Self::append_tx(&mut *tx, event).await?;
                    tx.commit().await?;
                }
                Ok(done)
            }

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
                Self::append_tx(&mut *tx, event).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn import_identities(
                &self,
                batch: &[(aim_domain::identity::Identity, aim_domain::event::Event)],
            ) -> Result<(), crate::StoreError> {
                let mut tx = self.write_tx().await?;
                for (identity, event) in batch {
                    crate::backend::bind_identity!(sqlx::query(crate::sql::INSERT_IDENTITY), identity)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| crate::error::unique_or(e, || aim_domain::Refusal::NameTaken(identity.name.clone())))?;
                    Self::append_tx(&mut *tx, event).await?;
                }
                tx.commit().await?;
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
                Self::append_tx(&mut *tx, event).await?;
                // Its open tasks end with it, or keep only the systems it still has.
                Self::follow_identity_tx(&mut *tx, identity, identity.updated_at).await?;
                tx.commit().await?;
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

            async fn insert_checkpoint(&self, c: &aim_domain::audit::Checkpoint) -> Result<(), crate::StoreError> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO checkpoints (seq, hash, at, public_key, signature) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (seq) DO NOTHING",
                )
                .bind(c.seq)
                .bind(c.hash.clone())
                .bind(c.at.as_millis())
                .bind(c.public_key.clone())
                .bind(c.signature.clone())
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn latest_checkpoint(&self) -> Result<Option<aim_domain::audit::Checkpoint>, crate::StoreError> {
                let row: Option<(i64, String, i64, String, String)> = sqlx::query_as(
                    "SELECT seq, hash, at, public_key, signature FROM checkpoints ORDER BY seq DESC LIMIT 1",
                )
                .fetch_optional(self.read())
                .await?;
                Ok(row.map(|(seq, hash, at, public_key, signature)| aim_domain::audit::Checkpoint {
                    seq,
                    hash,
                    at: aim_domain::time::Timestamp::from_millis(at),
                    public_key,
                    signature,
                }))
            }

            async fn sink_position(&self, name: &str) -> Result<i64, crate::StoreError> {
                let row: Option<(i64,)> = sqlx::query_as("SELECT seq FROM sink_positions WHERE name = $1")
                    .bind(name.to_owned())
                    .fetch_optional(self.read())
                    .await?;
                Ok(row.map_or(0, |r| r.0))
            }

            async fn set_sink_position(&self, name: &str, seq: i64) -> Result<(), crate::StoreError> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO sink_positions (name, seq) VALUES ($1, $2) \
                     ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
                )
                .bind(name.to_owned())
                .bind(seq)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn chain_head(&self) -> Result<(i64, [u8; 32]), crate::StoreError> {
                let (seq, hash): (i64, Vec<u8>) = sqlx::query_as("SELECT seq, hash FROM chain_head WHERE id = 1")
                    .fetch_one(self.read())
                    .await?;
                let hash = <[u8; 32]>::try_from(hash)
                    .map_err(|_| crate::StoreError::Corrupt("chain_head.hash is not 32 bytes".into()))?;
                Ok((seq, hash))
            }

            async fn append_event(
                &self,
                event: &aim_domain::event::Event,
            ) -> Result<i64, crate::StoreError> {
                self.appender.append(event).await
            }

            async fn audit(
                &self,
                filter: &crate::AuditFilter,
                after_seq: i64,
                limit: u32,
            ) -> Result<Vec<aim_domain::event::Event>, crate::StoreError> {
                let w = crate::sql::audit_where(filter, after_seq);
                let sql = format!("SELECT {} FROM events{} ORDER BY seq LIMIT {limit}", crate::sql::EVENT_COLUMNS, w.sql());
                let rows = crate::backend::bind_all!(sqlx::query(sqlx::AssertSqlSafe(sql)), w.binds).fetch_all(self.read()).await?;
                rows.iter().map(crate::rows::event_from_row).collect()
            }

            async fn event(&self, seq: i64) -> Result<Option<aim_domain::event::Event>, crate::StoreError> {
                let sql = format!("SELECT {} FROM events WHERE seq = $1", crate::sql::EVENT_COLUMNS);
                let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(seq).fetch_optional(self.read()).await?;
                row.as_ref().map(crate::rows::event_from_row).transpose()
            }

            async fn events(
                &self,
                after_seq: i64,
                limit: u32,
            ) -> Result<Vec<aim_domain::event::Event>, crate::StoreError> {
                let sql = format!("SELECT {} FROM events WHERE seq > $1 ORDER BY seq LIMIT $2", crate::sql::EVENT_COLUMNS);
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(after_seq)
                .bind(i64::from(limit))
                .fetch_all(self.read())
                .await?;
                rows.iter().map(crate::rows::event_from_row).collect()
            }
        }

        impl $store {
            /// Appends `event` to the hash chain inside `tx`. Returns its sequence number.
            async fn append_tx(
                conn: &mut <<$store as crate::backend::Backend>::Db as sqlx::Database>::Connection,
                event: &aim_domain::event::Event,
            ) -> Result<i64, crate::StoreError> {
                let seqs = Self::append_many_tx(conn, &mut [event.clone()]).await?;
                seqs.first().copied().ok_or_else(|| crate::StoreError::Corrupt("no sequence number for an append".into()))
            }

            /// Records the entries' claims, then appends the events whose claim was new (see
            /// `appender::BatchWriter`).
            pub(crate) async fn append_entries_tx(
                conn: &mut <<$store as crate::backend::Backend>::Db as sqlx::Database>::Connection,
                entries: &mut [crate::appender::Entry],
            ) -> Result<Vec<Option<i64>>, crate::StoreError> {
                let claims: Vec<&crate::appender::Claim> = entries.iter().flat_map(|e| &e.claims).collect();
                let mut won = std::collections::HashSet::new();
                let mut rest = &claims[..];
                while !rest.is_empty() {
                    let rows = crate::sql::INSERT_CHUNKS.into_iter().find(|&r| r <= rest.len()).unwrap_or(1);
                    let (chunk, tail) = rest.split_at(rows);
                    let mut q = sqlx::query_as::<_, (String,)>(crate::sql::multi_insert(crate::sql::MultiInsert::UsedIds, rows, <$store as crate::backend::Backend>::ANONYMOUS_PARAMS));
                    for c in chunk {
                        q = q.bind(c.id.clone()).bind(c.expires_at.as_millis());
                    }
                    won.extend(q.fetch_all(&mut *conn).await?.into_iter().map(|(id,)| id));
                    rest = tail;
                }
                // An id twice in one batch: the first entry has it.
                let keep: Vec<bool> = entries
                    .iter()
                    .map(|e| e.claims.iter().fold(true, |all, c| won.remove(&c.id) && all))
                    .collect();
                let mut events: Vec<aim_domain::event::Event> = entries
                    .iter()
                    .zip(&keep)
                    .filter(|(_, k)| **k)
                    .map(|(e, _)| e.event.clone())
                    .collect();
                let mut seqs = if events.is_empty() {
                    Vec::new()
                } else {
                    Self::append_many_tx(conn, &mut events).await?
                }
                .into_iter();
                let mut out = Vec::with_capacity(entries.len());
                for (entry, k) in entries.iter_mut().zip(keep) {
                    if k {
                        let seq = seqs.next();
                        if let Some(s) = seq {
                            entry.event.seq = s;
                        }
                        out.push(seq);
                    } else {
                        out.push(None);
                    }
                }
                Ok(out)
            }

            /// Appends `events`, in order, to the hash chain inside `tx`: advances the
            /// (then locked) chain head once, chains each record to the one before, inserts
            /// them with a few multi-row statements and moves the head. Returns their
            /// sequence numbers.
            pub(crate) async fn append_many_tx(
                conn: &mut <<$store as crate::backend::Backend>::Db as sqlx::Database>::Connection,
                events: &mut [aim_domain::event::Event],
            ) -> Result<Vec<i64>, crate::StoreError> {
                let n = events.len() as i64;
                let (last, prev): (i64, Vec<u8>) = sqlx::query_as(crate::sql::ADVANCE_HEAD)
                    .bind(n)
                    .fetch_one(&mut *conn)
                    .await?;
                let mut prev = <[u8; 32]>::try_from(prev)
                    .map_err(|_| crate::StoreError::Corrupt("chain_head.hash is not 32 bytes".into()))?;
                let mut chained = Vec::with_capacity(events.len());
                for (i, e) in events.iter_mut().enumerate() {
                    e.seq = last - n + 1 + i as i64;
                    let hash = aim_domain::audit::chain_hash(&prev, e);
                    chained.push((&*e, prev, hash));
                    prev = hash;
                }
                let mut rest = &chained[..];
                while !rest.is_empty() {
                    let rows = crate::sql::INSERT_CHUNKS.into_iter().find(|&r| r <= rest.len()).unwrap_or(1);
                    let (chunk, tail) = rest.split_at(rows);
                    let mut q = sqlx::query(crate::sql::multi_insert(crate::sql::MultiInsert::Events, rows, <$store as crate::backend::Backend>::ANONYMOUS_PARAMS));
                    for (e, prev, hash) in chunk {
                        q = crate::backend::bind_event!(q, e).bind(prev.to_vec()).bind(hash.to_vec());
                    }
                    q.execute(&mut *conn).await?;
                    rest = tail;
                }
                sqlx::query(crate::sql::SET_HEAD_HASH).bind(prev.to_vec()).execute(&mut *conn).await?;
                Ok(chained.iter().map(|(e, _, _)| e.seq).collect())
            }

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
                let n = crate::backend::bind_human!(sqlx::query(crate::sql::UPDATE_HUMAN), h)
                    .bind(expected_version)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| crate::error::unique_or(e, || aim_domain::Refusal::UserNameTaken(h.user_name.clone())))?
                    .rows_affected();
                if n != 1 {
                    return Err(crate::StoreError::Conflict(aim_domain::Refusal::ConcurrentUpdate));
                }
                Ok(())
            }
        }
    };
}

/// Names a store's database type for the helpers the macro generates.
pub(crate) trait Backend {
    type Db: sqlx::Database;
    /// Whether long statements should use `?` rather than `$n` placeholders.
    const ANONYMOUS_PARAMS: bool;
}

pub(crate) use {bind_all, bind_event, bind_human, bind_identity, impl_store};
