//! Storage for just-in-time credentials: aim's signing keys, agents' public keys, tasks,
//! single-use ids and the revocation list. Written once for both backends, like
//! `backend.rs`; every change writes its event in the same transaction.

use aim_domain::agent_key::{AgentKey, RevocationKind};
use aim_domain::event::Event;
use aim_domain::ids::{CredentialId, IdentityId, TaskId};
use aim_domain::time::Timestamp;
use async_trait::async_trait;

use crate::StoreError;
pub use aim_domain::live::{Hangs, LiveContext, TokenContext};

pub(crate) use crate::credential_rows::*;

/// One of aim's signing keys as stored: the private half sealed under the KEK.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRow {
    pub kid: String,
    pub alg: String,
    pub public_jwk: String,
    pub sealed_private: Vec<u8>,
    pub created_at: Timestamp,
    pub retire_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

impl std::fmt::Debug for SigningKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRow")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("retire_at", &self.retire_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

/// No access token lives longer than this (`aim_token::access::MAX_ACCESS_LIFETIME`), so a
/// revocation entry can be dropped this long after it was made.
pub const MAX_TOKEN_LIFETIME_MS: i64 = 3_600_000;

/// A one-time join token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JoinToken {
    pub id: uuid::Uuid,
    pub identity_id: IdentityId,
    pub created_at: Timestamp,
    pub created_by: String,
    pub expires_at: Timestamp,
}

/// A revocation to record with a change (see [`RevocationKind`] for which tokens it kills).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRevocation {
    pub kind: RevocationKind,
    pub value: String,
    pub reason: String,
    pub expires_at: Timestamp,
}

#[async_trait]
pub trait CredentialStore: Send + Sync {
    /// Every signing key, newest first.
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>, StoreError>;
    /// Adds a signing key unless a key that can sign at its `created_at` exists besides
    /// those in `unusable` (ones this replica cannot open): false, writing nothing, when
    /// another replica made one first, so replicas starting or rotating at once sign with
    /// one key.
    async fn insert_signing_key(
        &self,
        key: &SigningKeyRow,
        unusable: &[String],
        event: &Event,
    ) -> Result<bool, StoreError>;
    /// Stops the key signing from `at` (it still verifies its tokens until they expire);
    /// false if it is unknown, revoked or already retired by then.
    async fn retire_signing_key(
        &self,
        kid: &str,
        at: Timestamp,
        event: &Event,
    ) -> Result<bool, StoreError>;
    /// Marks the key revoked (false if unknown or already revoked).
    async fn revoke_signing_key(
        &self,
        kid: &str,
        at: Timestamp,
        revocation: &NewRevocation,
        event: &Event,
    ) -> Result<bool, StoreError>;

    /// The identity, its sponsor's state, its key `kid`, its task `task`, and whether
    /// aim's signing key `signer` has been revoked (by any replica), in one read; `None`
    /// if there is no such identity.
    async fn token_context(
        &self,
        identity: IdentityId,
        kid: &str,
        task: Option<TaskId>,
        signer: &str,
    ) -> Result<Option<TokenContext>, StoreError>;

    /// Records that the identity was seen (it got a token) at `at`, unless it was already
    /// seen within the hour before, and clears its dormant flag. Its version moves, so a
    /// write of the identity read before (a sweep, an admin's change) is refused as
    /// concurrent instead of putting an older `last_seen_at` back. When it was flagged
    /// dormant, `active_again` is recorded in the same write. The key `kid` it used gets
    /// its `last_used_at`, also to the hour. Returns whether the identity was written.
    async fn touch_identity(
        &self,
        identity: IdentityId,
        kid: Option<&str>,
        at: Timestamp,
        active_again: &Event,
    ) -> Result<bool, StoreError>;

    /// Records that a human's API credential was used at `at`, unless it was within the
    /// hour before (telemetry: no event, no version).
    async fn touch_credential(&self, id: CredentialId, at: Timestamp) -> Result<(), StoreError>;

    /// Stores a join token (by the hash of its secret) with the event that records it.
    async fn insert_join_token(
        &self,
        token: &JoinToken,
        secret_hash: &[u8],
        event: &Event,
    ) -> Result<(), StoreError>;

    /// Uses the join token with `secret_hash` once, if it is unused and unexpired at `now`,
    /// to register `key` (whose `identity_id` is replaced by the token's) with `event`
    /// (whose target is set to that identity): all in one transaction. `None` if the token
    /// is unknown, used or expired; conflict `StateForbids` (and the token left unused) if
    /// the identity is no longer `requested` or `active`.
    async fn redeem_join_token(
        &self,
        secret_hash: &[u8],
        now: Timestamp,
        key: &AgentKey,
        event: &Event,
    ) -> Result<Option<AgentKey>, StoreError>;

    /// Conflict `KeyAlreadyRegistered` if the identity already has this key.
    async fn insert_agent_key(&self, key: &AgentKey, event: &Event) -> Result<(), StoreError>;
    async fn agent_keys(&self, identity: IdentityId) -> Result<Vec<AgentKey>, StoreError>;
    async fn agent_key(
        &self,
        identity: IdentityId,
        kid: &str,
    ) -> Result<Option<AgentKey>, StoreError>;
    /// False if the key is unknown or already revoked.
    async fn revoke_agent_key(
        &self,
        identity: IdentityId,
        kid: &str,
        at: Timestamp,
        revocation: &NewRevocation,
        event: &Event,
    ) -> Result<bool, StoreError>;

    /// Records a single-use id until `expires_at`; false if it was seen before (a replay).
    async fn use_once(&self, id: &str, expires_at: Timestamp) -> Result<bool, StoreError>;

    /// Records the single-use `claims` and appends `event` in one durable write, batched
    /// with other appends; `None` (and no event) if any claim was used before.
    async fn append_claimed(
        &self,
        event: &Event,
        claims: Vec<crate::appender::Claim>,
    ) -> Result<Option<i64>, StoreError>;

    /// Forgets single-use ids that expired before `now`; returns how many.
    async fn forget_used(&self, now: Timestamp) -> Result<u64, StoreError>;
}

/// Implements [`CredentialStore`] for `$store` (see `backend::impl_store`).
macro_rules! impl_credential_store {
    ($store:ty) => {
        impl $store {
            /// Records the single-use `id` inside a write; false if it was used before.
            async fn use_once_tx(
                conn: &mut <<$store as crate::backend::Backend>::Db as sqlx::Database>::Connection,
                id: &str,
                expires_at: aim_domain::time::Timestamp,
            ) -> Result<bool, crate::StoreError> {
                let n = sqlx::query(crate::sql::USE_ONCE)
                    .bind(id.to_owned())
                    .bind(expires_at.as_millis())
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                Ok(n == 1)
            }

            /// Registers `key`; conflict `KeyAlreadyRegistered` if the identity has it.
            async fn insert_agent_key_tx(
                conn: &mut <<$store as crate::backend::Backend>::Db as sqlx::Database>::Connection,
                key: &aim_domain::agent_key::AgentKey,
            ) -> Result<(), crate::StoreError> {
                sqlx::query("INSERT INTO agent_keys (identity_id, kid, jwk, alg, label, created_at, created_by, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                    .bind(key.identity_id.as_uuid())
                    .bind(key.kid.clone())
                    .bind(key.jwk.to_string())
                    .bind(key.alg.clone())
                    .bind(key.label.clone())
                    .bind(key.created_at.as_millis())
                    .bind(key.created_by.clone())
                    .bind(key.revoked_at.map(|t| t.as_millis()))
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| crate::error::unique_or(e, || aim_domain::Refusal::KeyAlreadyRegistered(key.kid.clone())))?;
                Ok(())
            }

        }

        #[async_trait::async_trait]
        impl crate::credentials::CredentialStore for $store {
            async fn signing_keys(&self) -> Result<Vec<crate::credentials::SigningKeyRow>, crate::StoreError> {
                let rows = sqlx::query("SELECT kid, alg, public_jwk, sealed_private, created_at, retire_at, revoked_at FROM signing_keys ORDER BY created_at DESC, kid")
                    .fetch_all(self.read())
                    .await?;
                rows.iter().map(crate::credentials::signing_key_from_row).collect()
            }

            async fn insert_signing_key(
                &self,
                key: &crate::credentials::SigningKeyRow,
                unusable: &[String],
                event: &aim_domain::event::Event,
            ) -> Result<bool, crate::StoreError> {
                let mut tx = self.write_tx().await?;
                sqlx::query(crate::write::SERIALIZE_WITH_OTHER_WRITERS)
                    .execute(&mut *tx)
                    .await?;
                let signing: Vec<(String,)> = sqlx::query_as(
                    "SELECT kid FROM signing_keys WHERE revoked_at IS NULL AND retire_at > $1",
                )
                .bind(key.created_at.as_millis())
                .fetch_all(&mut *tx)
                .await?;
                if signing.iter().any(|(kid,)| !unusable.contains(kid)) {
                    return Ok(false);
                }
                sqlx::query("INSERT INTO signing_keys (kid, alg, public_jwk, sealed_private, created_at, retire_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                    .bind(key.kid.clone())
                    .bind(key.alg.clone())
                    .bind(key.public_jwk.clone())
                    .bind(key.sealed_private.clone())
                    .bind(key.created_at.as_millis())
                    .bind(key.retire_at.as_millis())
                    .bind(key.revoked_at.map(|t| t.as_millis()))
                    .execute(&mut *tx)
                    .await?;
                Self::commit_with(tx, &[event]).await?;
                Ok(true)
            }

            async fn retire_signing_key(
                &self,
                kid: &str,
                at: aim_domain::time::Timestamp,
                event: &aim_domain::event::Event,
            ) -> Result<bool, crate::StoreError> {
                let mut tx = self.write_tx().await?;
                let n = sqlx::query("UPDATE signing_keys SET retire_at = $1 WHERE kid = $2 AND revoked_at IS NULL AND retire_at > $1")
                    .bind(at.as_millis())
                    .bind(kid.to_owned())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n == 0 {
                    return Ok(false);
                }
                Self::commit_with(tx, &[event]).await?;
                Ok(true)
            }

            async fn revoke_signing_key(
                &self,
                kid: &str,
                at: aim_domain::time::Timestamp,
                revocation: &crate::credentials::NewRevocation,
                event: &aim_domain::event::Event,
            ) -> Result<bool, crate::StoreError> {
                let mut tx = self.write_tx().await?;
                let n = sqlx::query("UPDATE signing_keys SET revoked_at = $1 WHERE kid = $2 AND revoked_at IS NULL")
                    .bind(at.as_millis())
                    .bind(kid.to_owned())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                Self::commit_revocation(tx, n > 0, revocation, at, event).await
            }

            async fn insert_agent_key(
                &self,
                key: &aim_domain::agent_key::AgentKey,
                event: &aim_domain::event::Event,
            ) -> Result<(), crate::StoreError> {
                let mut tx = self.write_tx().await?;
                Self::insert_agent_key_tx(&mut *tx, key).await?;
                Self::commit_with(tx, &[event]).await?;
                Ok(())
            }

            async fn token_context(
                &self,
                identity: aim_domain::ids::IdentityId,
                kid: &str,
                task: Option<aim_domain::ids::TaskId>,
                signer: &str,
            ) -> Result<Option<crate::credentials::TokenContext>, crate::StoreError> {
                let row = sqlx::query(crate::credentials::issuing_context_sql())
                    .bind(identity.as_uuid())
                    .bind(kid.to_owned())
                    .bind(task.map(|t| t.as_uuid()))
                    .bind(signer.to_owned())
                    .fetch_optional(self.read())
                    .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let revoked: i64 = sqlx::Row::try_get(&row, "signer_revoked")?;
                Ok(Some(crate::credentials::TokenContext {
                    signer_revoked: revoked > 0,
                    ..crate::credentials::token_context_from_row(&row)?
                }))
            }

            async fn touch_identity(
                &self,
                identity: aim_domain::ids::IdentityId,
                kid: Option<&str>,
                at: aim_domain::time::Timestamp,
                active_again: &aim_domain::event::Event,
            ) -> Result<bool, crate::StoreError> {
                let mut tx = self.write_tx().await?;
                if let Some(kid) = kid {
                    sqlx::query(
                        "UPDATE agent_keys SET last_used_at = $1 WHERE identity_id = $2 AND kid = $3 \
                         AND (last_used_at IS NULL OR last_used_at < $4)",
                    )
                    .bind(at.as_millis())
                    .bind(identity.as_uuid())
                    .bind(kid.to_owned())
                    .bind(at.as_millis() - 3_600_000)
                    .execute(&mut *tx)
                    .await?;
                }
                let was: Option<(bool,)> = sqlx::query_as(
                    "SELECT dormant FROM identities WHERE id = $1 AND (last_seen_at IS NULL OR last_seen_at < $2)",
                )
                .bind(identity.as_uuid())
                .bind(at.as_millis() - 3_600_000)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((dormant,)) = was else {
                    tx.commit_unrecorded().await?;
                    return Ok(false);
                };
                sqlx::query(
                    "UPDATE identities SET last_seen_at = $1, last_activity_at = $1, dormant = FALSE, \
                     version = version + 1 WHERE id = $2",
                )
                .bind(at.as_millis())
                .bind(identity.as_uuid())
                .execute(&mut *tx)
                .await?;
                if dormant {
                    Self::commit_with(tx, &[active_again]).await?;
                } else {
                    tx.commit_unrecorded().await?;
                }
                Ok(true)
            }

            async fn touch_credential(
                &self,
                id: aim_domain::ids::CredentialId,
                at: aim_domain::time::Timestamp,
            ) -> Result<(), crate::StoreError> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "UPDATE credentials SET last_used_at = $1 WHERE id = $2 \
                     AND (last_used_at IS NULL OR last_used_at < $3)",
                )
                .bind(at.as_millis())
                .bind(id.as_uuid())
                .bind(at.as_millis() - 3_600_000)
                .execute(&mut *tx)
                .await?;
                tx.commit_unrecorded().await?;
                Ok(())
            }

            async fn insert_join_token(
                &self,
                token: &crate::credentials::JoinToken,
                secret_hash: &[u8],
                event: &aim_domain::event::Event,
            ) -> Result<(), crate::StoreError> {
                let mut tx = self.write_tx().await?;
                sqlx::query("INSERT INTO join_tokens (id, identity_id, secret_hash, created_at, created_by, expires_at) VALUES ($1, $2, $3, $4, $5, $6)")
                    .bind(token.id)
                    .bind(token.identity_id.as_uuid())
                    .bind(secret_hash.to_vec())
                    .bind(token.created_at.as_millis())
                    .bind(token.created_by.clone())
                    .bind(token.expires_at.as_millis())
                    .execute(&mut *tx)
                    .await?;
                Self::commit_with(tx, &[event]).await?;
                Ok(())
            }

            async fn redeem_join_token(
                &self,
                secret_hash: &[u8],
                now: aim_domain::time::Timestamp,
                key: &aim_domain::agent_key::AgentKey,
                event: &aim_domain::event::Event,
            ) -> Result<Option<aim_domain::agent_key::AgentKey>, crate::StoreError> {
                let mut tx = self.write_tx().await?;
                let row: Option<(uuid::Uuid, uuid::Uuid)> = sqlx::query_as(
                    "UPDATE join_tokens SET used_at = $1, used_kid = $2 \
                     WHERE secret_hash = $3 AND used_at IS NULL AND expires_at > $1 RETURNING id, identity_id",
                )
                .bind(now.as_millis())
                .bind(key.kid.clone())
                .bind(secret_hash.to_vec())
                .fetch_optional(&mut *tx)
                .await?;
                let Some((token_id, identity)) = row else {
                    return Ok(None);
                };
                // The identity as it is now, not as it was when the token was made: a
                // locked, suspended or retired identity gains no key (and the token stays
                // unused, as the transaction is not committed).
                let (state,): (String,) = sqlx::query_as("SELECT state FROM identities WHERE id = $1")
                    .bind(identity)
                    .fetch_one(&mut *tx)
                    .await?;
                let state = aim_domain::lifecycle::LifecycleState::parse(&state)
                    .map_err(|e| crate::StoreError::Corrupt(format!("identities.state: {e}")))?;
                if !matches!(state, aim_domain::lifecycle::LifecycleState::Requested | aim_domain::lifecycle::LifecycleState::Active) {
                    return Err(crate::StoreError::Conflict(aim_domain::Refusal::StateForbids {
                        state,
                        action: "register a key for",
                    }));
                }
                let identity = aim_domain::ids::IdentityId::from_uuid(identity);
                let key = aim_domain::agent_key::AgentKey {
                    identity_id: identity,
                    created_by: format!("join-token:{token_id}"),
                    ..key.clone()
                };
                Self::insert_agent_key_tx(&mut *tx, &key).await?;
                let mut event = event.clone();
                event.actor = aim_domain::event::Actor::identity(identity);
                event.target_id = identity.to_string();
                event.detail["join_token"] = serde_json::json!(token_id);
                Self::commit_with(tx, &[&event]).await?;
                Ok(Some(key))
            }

            async fn agent_keys(
                &self,
                identity: aim_domain::ids::IdentityId,
            ) -> Result<Vec<aim_domain::agent_key::AgentKey>, crate::StoreError> {
                let sql = crate::credentials::agent_key_select("WHERE identity_id = $1 ORDER BY created_at, kid");
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(identity.as_uuid()).fetch_all(self.read()).await?;
                rows.iter().map(crate::credentials::agent_key_from_row).collect()
            }

            async fn agent_key(
                &self,
                identity: aim_domain::ids::IdentityId,
                kid: &str,
            ) -> Result<Option<aim_domain::agent_key::AgentKey>, crate::StoreError> {
                let sql = crate::credentials::agent_key_select("WHERE identity_id = $1 AND kid = $2");
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(identity.as_uuid())
                    .bind(kid.to_owned())
                    .fetch_optional(self.read())
                    .await?;
                row.as_ref().map(crate::credentials::agent_key_from_row).transpose()
            }

            async fn revoke_agent_key(
                &self,
                identity: aim_domain::ids::IdentityId,
                kid: &str,
                at: aim_domain::time::Timestamp,
                revocation: &crate::credentials::NewRevocation,
                event: &aim_domain::event::Event,
            ) -> Result<bool, crate::StoreError> {
                let mut tx = self.write_tx().await?;
                let n = sqlx::query("UPDATE agent_keys SET revoked_at = $1 WHERE identity_id = $2 AND kid = $3 AND revoked_at IS NULL")
                    .bind(at.as_millis())
                    .bind(identity.as_uuid())
                    .bind(kid.to_owned())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                Self::commit_revocation(tx, n > 0, revocation, at, event).await
            }

            async fn append_claimed(
                &self,
                event: &aim_domain::event::Event,
                claims: Vec<crate::appender::Claim>,
            ) -> Result<Option<i64>, crate::StoreError> {
                self.appender.append_claimed(event, claims).await
            }

            async fn forget_used(&self, now: aim_domain::time::Timestamp) -> Result<u64, crate::StoreError> {
                let mut tx = self.write_tx().await?;
                let n = sqlx::query("DELETE FROM used_ids WHERE expires_at < $1")
                    .bind(now.as_millis())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit_unrecorded().await?;
                Ok(n)
            }

            async fn use_once(
                &self,
                id: &str,
                expires_at: aim_domain::time::Timestamp,
            ) -> Result<bool, crate::StoreError> {
                let mut tx = self.write_tx().await?;
                let new = Self::use_once_tx(&mut tx, id, expires_at).await?;
                tx.commit_unrecorded().await?;
                Ok(new)
            }

        }
    };
}

pub(crate) use impl_credential_store;
