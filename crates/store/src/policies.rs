//! Storage for versions of the policy set. Written once for both backends, like
//! `backend.rs`; each new version is written with its event in one transaction.

use aim_domain::event::Event;
use aim_domain::time::Timestamp;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::StoreError;

/// One version of the policy set: the Cedar files and template links as applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersion {
    pub version: i64,
    /// `[{name, text}]`.
    pub sources: serde_json::Value,
    /// `[{id, template, principal?, resource?}]`.
    pub links: serde_json::Value,
    pub digest: String,
    pub created_at: Timestamp,
    pub created_by: String,
    pub comment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<i64>,
}

#[async_trait]
pub trait PolicyStore: Send + Sync {
    /// Stores `v` as the next version, `expected` + 1, if the newest version is still
    /// `expected` (0 when there is none); conflict `PolicyChanged` otherwise. `event`
    /// gets the new version in its detail.
    async fn insert_policy_version(
        &self,
        v: &PolicyVersion,
        expected: i64,
        event: &Event,
    ) -> Result<i64, StoreError>;
    /// A version, or the newest with `None`.
    async fn policy_version(
        &self,
        version: Option<i64>,
    ) -> Result<Option<PolicyVersion>, StoreError>;
    /// The newest version's number, 0 if none (cheap: replicas poll it).
    async fn latest_policy_version(&self) -> Result<i64, StoreError>;
    /// Versions before `before` (all with `None`), newest first.
    async fn policy_versions(
        &self,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<PolicyVersion>, StoreError>;
}

pub(crate) fn policy_version_from_row<R>(row: &R) -> Result<PolicyVersion, StoreError>
where
    R: sqlx::Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let json = |col: &str| -> Result<serde_json::Value, StoreError> {
        let text: String = row.try_get(col)?;
        serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt(format!("policy_versions.{col}: {e}")))
    };
    Ok(PolicyVersion {
        version: row.try_get("version")?,
        sources: json("sources")?,
        links: json("links")?,
        digest: row.try_get("digest")?,
        created_at: Timestamp::from_millis(row.try_get("created_at")?),
        created_by: row.try_get("created_by")?,
        comment: row.try_get("comment")?,
        rollback_of: row.try_get("rollback_of")?,
    })
}

/// Implements [`PolicyStore`] for `$store` (see `backend::impl_store`).
macro_rules! impl_policy_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl crate::policies::PolicyStore for $store {
            async fn insert_policy_version(
                &self,
                v: &crate::policies::PolicyVersion,
                expected: i64,
                event: &aim_domain::event::Event,
            ) -> Result<i64, crate::StoreError> {
                let mut tx = self.write_tx().await?;
                let latest: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM policy_versions")
                    .fetch_one(&mut *tx)
                    .await?;
                if latest != expected {
                    return Err(crate::StoreError::Conflict(aim_domain::Refusal::PolicyChanged { expected, latest }));
                }
                let version = latest + 1;
                sqlx::query("INSERT INTO policy_versions (version, sources, links, digest, created_at, created_by, comment, rollback_of) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                    .bind(version)
                    .bind(v.sources.to_string())
                    .bind(v.links.to_string())
                    .bind(v.digest.clone())
                    .bind(v.created_at.as_millis())
                    .bind(v.created_by.clone())
                    .bind(v.comment.clone())
                    .bind(v.rollback_of)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| crate::error::unique_or(e, || aim_domain::Refusal::PolicyChanged { expected, latest: version }))?;
                let mut event = event.clone();
                if let Some(detail) = event.detail.as_object_mut() {
                    detail.insert("version".into(), version.into());
                }
                Self::commit_with(tx, &[&event]).await?;
                Ok(version)
            }

            async fn policy_version(
                &self,
                version: Option<i64>,
            ) -> Result<Option<crate::policies::PolicyVersion>, crate::StoreError> {
                let row = match version {
                    Some(v) => sqlx::query("SELECT * FROM policy_versions WHERE version = $1")
                        .bind(v)
                        .fetch_optional(self.read())
                        .await?,
                    None => sqlx::query("SELECT * FROM policy_versions ORDER BY version DESC LIMIT 1")
                        .fetch_optional(self.read())
                        .await?,
                };
                row.as_ref().map(crate::policies::policy_version_from_row).transpose()
            }

            async fn latest_policy_version(&self) -> Result<i64, crate::StoreError> {
                Ok(sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM policy_versions")
                    .fetch_one(self.read())
                    .await?)
            }

            async fn policy_versions(
                &self,
                before: Option<i64>,
                limit: u32,
            ) -> Result<Vec<crate::policies::PolicyVersion>, crate::StoreError> {
                let rows = sqlx::query("SELECT * FROM policy_versions WHERE version < $1 ORDER BY version DESC LIMIT $2")
                    .bind(before.unwrap_or(i64::MAX))
                    .bind(i64::from(limit))
                    .fetch_all(self.read())
                    .await?;
                rows.iter().map(crate::policies::policy_version_from_row).collect()
            }
        }
    };
}

pub(crate) use impl_policy_store;
