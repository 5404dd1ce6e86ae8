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
                // Replicas started at once on an empty database: one bootstraps.
                sqlx::query(crate::write::SERIALIZE_WITH_OTHER_WRITERS)
                    .execute(&mut *tx)
                    .await?;
                let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM humans")
                    .fetch_one(&mut *tx)
                    .await?;
                if n > 0 {
                    return Ok(false);
                }
                crate::backend::bind_human!(sqlx::query(crate::sql::INSERT_HUMAN), admin)
                    .execute(&mut *tx)
                    .await?;
                Self::insert_credential_tx(&mut *tx, credential, secret_hash).await?;
                Self::commit_with(tx, &[event]).await?;
                Ok(true)
            }
        }

        impl $store {
            /// The one way a change is written: its `events` appended to the chain in the
            /// change's own transaction, then one durable commit (which moves the
            /// live-state generation). Returns the events' sequence numbers.
            pub(crate) async fn commit_with(
                mut tx: crate::write::WriteTx<<$store as crate::backend::Backend>::Tx>,
                events: &[&aim_domain::event::Event],
            ) -> Result<Vec<i64>, crate::StoreError> {
                let mut owned: Vec<aim_domain::event::Event> =
                    events.iter().map(|e| (*e).clone()).collect();
                let seqs = if owned.is_empty() {
                    Vec::new()
                } else {
                    Self::append_many_tx(&mut *tx, &mut owned).await?
                };
                tx.commit_unrecorded().await?;
                Ok(seqs)
            }
        }
    };
}

/// Names a store's database type for the helpers the macro generates.
pub(crate) trait Backend {
    type Db: sqlx::Database;
    /// The backend's own write transaction, inside a [`crate::write::WriteTx`].
    type Tx;
    /// Whether long statements should use `?` rather than `$n` placeholders.
    const ANONYMOUS_PARAMS: bool;
    /// The larger of two values: `MAX(a, b)` in SQLite, `GREATEST(a, b)` in PostgreSQL.
    const GREATEST: &'static str;
}

pub(crate) use {bind_all, bind_event, bind_human, bind_identity, impl_store};
