//! Credentials for upstreams, sealed by the caller under aim's key-encryption key (see
//! [`aim_domain::upstream_secret`]). Written once for both backends; every change is written
//! with its event in one transaction.

use aim_domain::event::Event;
use aim_domain::upstream_secret::UpstreamSecret;
use async_trait::async_trait;

use crate::StoreError;

#[async_trait]
pub trait UpstreamSecretStore: Send + Sync {
    /// Stores `s` with its sealed value, replacing the one at `s.version - 1` (none for
    /// version 1). False if another writer came first.
    async fn put_upstream_secret(
        &self,
        s: &UpstreamSecret,
        sealed: &[u8],
        event: &Event,
    ) -> Result<bool, StoreError>;
    /// The secret and its sealed value.
    async fn upstream_secret(
        &self,
        name: &str,
    ) -> Result<Option<(UpstreamSecret, Vec<u8>)>, StoreError>;
    /// Every secret's metadata, by name.
    async fn upstream_secrets(&self) -> Result<Vec<UpstreamSecret>, StoreError>;
    /// False if there was none.
    async fn delete_upstream_secret(&self, name: &str, event: &Event) -> Result<bool, StoreError>;
}

/// Implements [`UpstreamSecretStore`] for `$store` (see `backend::impl_store`).
macro_rules! impl_upstream_secret_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl crate::upstream_secrets::UpstreamSecretStore for $store {
            async fn put_upstream_secret(
                &self,
                s: &aim_domain::upstream_secret::UpstreamSecret,
                sealed: &[u8],
                event: &aim_domain::event::Event,
            ) -> Result<bool, crate::StoreError> {
                let mut tx = self.write_tx().await?;
                let doc = crate::rows::doc(s)?;
                let n = if s.version == 1 {
                    sqlx::query("INSERT INTO upstream_secrets (name, sealed, version, doc) VALUES ($1, $2, 1, $3) ON CONFLICT (name) DO NOTHING")
                        .bind(&s.name)
                        .bind(sealed)
                        .bind(doc)
                        .execute(&mut *tx)
                        .await?
                } else {
                    // Replace only the version this writer read.
                    sqlx::query("UPDATE upstream_secrets SET sealed = $1, doc = $2, version = $3 WHERE name = $4 AND version = $5")
                        .bind(sealed)
                        .bind(doc)
                        .bind(s.version)
                        .bind(&s.name)
                        .bind(s.version - 1)
                        .execute(&mut *tx)
                        .await?
                }
                .rows_affected();
                if n != 1 {
                    return Ok(false);
                }
                Self::commit_with(tx, &[event]).await?;
                Ok(true)
            }
            async fn upstream_secret(
                &self,
                name: &str,
            ) -> Result<Option<(aim_domain::upstream_secret::UpstreamSecret, Vec<u8>)>, crate::StoreError> {
                let row: Option<(String, Vec<u8>)> =
                    sqlx::query_as("SELECT doc, sealed FROM upstream_secrets WHERE name = $1")
                        .bind(name)
                        .fetch_optional(self.read())
                        .await?;
                row.map(|(doc, sealed)| {
                    serde_json::from_str(&doc)
                        .map(|s| (s, sealed))
                        .map_err(|e| crate::StoreError::Corrupt(format!("upstream_secrets.doc: {e}")))
                })
                .transpose()
            }
            async fn upstream_secrets(
                &self,
            ) -> Result<Vec<aim_domain::upstream_secret::UpstreamSecret>, crate::StoreError> {
                let rows = sqlx::query("SELECT doc FROM upstream_secrets ORDER BY name")
                    .fetch_all(self.read())
                    .await?;
                rows.iter()
                    .map(|r| crate::rows::doc_from_row(r, "upstream_secrets"))
                    .collect()
            }
            async fn delete_upstream_secret(
                &self,
                name: &str,
                event: &aim_domain::event::Event,
            ) -> Result<bool, crate::StoreError> {
                let mut tx = self.write_tx().await?;
                let n = sqlx::query("DELETE FROM upstream_secrets WHERE name = $1")
                    .bind(name)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n != 1 {
                    return Ok(false);
                }
                Self::commit_with(tx, &[event]).await?;
                Ok(true)
            }
        }
    };
}

pub(crate) use impl_upstream_secret_store;
