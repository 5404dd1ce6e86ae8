//! Behavioural baselines (see [`aim_domain::baseline`]), serialized by the caller. They are
//! derived from decisions already on the record, so saving one records no event; a saved
//! profile is replaced only by one that has learnt at least as many calls (two replicas
//! saving the same identity keep the one that saw more).

use aim_domain::ids::IdentityId;
use aim_domain::time::Timestamp;
use async_trait::async_trait;

use crate::StoreError;

/// One identity's profile to save: the serialized profile and how many calls it learnt.
#[derive(Debug, Clone)]
pub struct SavedBaseline {
    pub identity: IdentityId,
    pub profile: String,
    pub events: u64,
}

#[async_trait]
pub trait BaselineStore: Send + Sync {
    /// The identity's saved profile, if any.
    async fn baseline(&self, identity: IdentityId) -> Result<Option<String>, StoreError>;
    /// Saves `rows` in one transaction, each unless the saved one has learnt more.
    async fn save_baselines(
        &self,
        rows: &[SavedBaseline],
        now: Timestamp,
    ) -> Result<(), StoreError>;
}

/// Implements [`BaselineStore`] for `$store` (see `backend::impl_store`).
macro_rules! impl_baseline_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl crate::baselines::BaselineStore for $store {
            async fn baseline(
                &self,
                identity: aim_domain::ids::IdentityId,
            ) -> Result<Option<String>, crate::StoreError> {
                let row: Option<(String,)> =
                    sqlx::query_as("SELECT profile FROM baselines WHERE identity_id = $1")
                        .bind(identity.as_uuid())
                        .fetch_optional(self.read())
                        .await?;
                Ok(row.map(|(p,)| p))
            }

            async fn save_baselines(
                &self,
                rows: &[crate::baselines::SavedBaseline],
                now: aim_domain::time::Timestamp,
            ) -> Result<(), crate::StoreError> {
                if rows.is_empty() {
                    return Ok(());
                }
                let mut tx = self.write_tx().await?;
                for r in rows {
                    sqlx::query(
                        "INSERT INTO baselines (identity_id, profile, events, updated_at) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (identity_id) DO UPDATE SET profile = excluded.profile, \
                         events = excluded.events, updated_at = excluded.updated_at \
                         WHERE baselines.events <= excluded.events",
                    )
                    .bind(r.identity.as_uuid())
                    .bind(&r.profile)
                    .bind(i64::try_from(r.events).unwrap_or(i64::MAX))
                    .bind(now.as_millis())
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit_unrecorded().await?;
                Ok(())
            }
        }
    };
}

pub(crate) use impl_baseline_store;
