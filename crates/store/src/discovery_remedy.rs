//! What a security team does about discovered accounts: adopt one into the registry, mark
//! one for decommissioning, acknowledge a finding until a date. Written once for both
//! backends; every change with its event.

use aim_domain::event::Event;
use aim_domain::ids::{AccountId, IdentityId};
use aim_domain::time::Timestamp;
use async_trait::async_trait;

use crate::StoreError;
use crate::discovery::{AccountRow, Disposition};

/// A finding acknowledged until a date.
#[derive(Debug, Clone, PartialEq)]
pub struct Acknowledgement {
    pub account: AccountId,
    /// Its kind, and `:credential` when it is about one.
    pub finding: String,
    pub reason: String,
    pub until: Timestamp,
    pub by: String,
    pub at: Timestamp,
}

#[async_trait]
pub trait DiscoveryRemedyStore: Send + Sync {
    /// Records `d` (and, for an adoption, links `identity`) unless the account already has
    /// a disposition: false then, and nothing written.
    async fn set_disposition(
        &self,
        account: AccountId,
        d: &Disposition,
        identity: Option<IdentityId>,
        event: &Event,
    ) -> Result<bool, StoreError>;
    /// Accounts with the disposition `state`, of `source` if given, oldest decision first,
    /// at most `limit`.
    async fn disposed(
        &self,
        state: &str,
        source: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AccountRow>, StoreError>;
    /// Records (or replaces) an acknowledgement, with `event`.
    async fn acknowledge(&self, ack: &Acknowledgement, event: &Event) -> Result<(), StoreError>;
    /// The acknowledgements of these accounts still running at `now`.
    async fn acknowledgements(
        &self,
        accounts: &[AccountId],
        now: Timestamp,
    ) -> Result<Vec<Acknowledgement>, StoreError>;
    /// Every acknowledgement running at `now` on a present account: the account, the
    /// finding acknowledged, and the account's `finding_kinds` (what it has now).
    async fn running_acknowledgements(
        &self,
        now: Timestamp,
    ) -> Result<Vec<(AccountId, String, String)>, StoreError>;
}

/// Implements [`DiscoveryRemedyStore`] for `$store` (see `backend::impl_store`).
macro_rules! impl_discovery_remedy_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl crate::discovery_remedy::DiscoveryRemedyStore for $store {
            async fn set_disposition(
                &self,
                account: aim_domain::ids::AccountId,
                d: &crate::discovery::Disposition,
                identity: Option<aim_domain::ids::IdentityId>,
                event: &aim_domain::event::Event,
            ) -> Result<bool, crate::StoreError> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "UPDATE discovered_accounts SET disposition = $1, disposition_reason = $2, \
                     disposition_by = $3, disposition_at = $4, \
                     identity_id = COALESCE($5, identity_id) \
                     WHERE id = $6 AND disposition IS NULL",
                )
                .bind(&d.state)
                .bind(&d.reason)
                .bind(&d.by)
                .bind(d.at.as_millis())
                .bind(identity.map(|i| i.as_uuid()))
                .bind(account.as_uuid())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if done == 0 {
                    return Ok(false);
                }
                Self::commit_with(tx, &[event]).await?;
                Ok(true)
            }

            async fn disposed(
                &self,
                state: &str,
                source: Option<&str>,
                limit: u32,
            ) -> Result<Vec<crate::discovery::AccountRow>, crate::StoreError> {
                type Db = <$store as crate::backend::Backend>::Db;
                let mut q = sqlx::QueryBuilder::<Db>::new(format!(
                    "SELECT {} FROM discovered_accounts WHERE disposition = ",
                    crate::discovery::SELECT_COLUMNS
                ));
                q.push_bind(state.to_owned());
                if let Some(s) = source {
                    q.push(" AND source = ").push_bind(s.to_owned());
                }
                q.push(" ORDER BY disposition_at, id LIMIT ").push_bind(i64::from(limit));
                q.build()
                    .fetch_all(self.read())
                    .await?
                    .iter()
                    .map(crate::discovery::account_from_row)
                    .collect()
            }

            async fn acknowledge(
                &self,
                ack: &crate::discovery_remedy::Acknowledgement,
                event: &aim_domain::event::Event,
            ) -> Result<(), crate::StoreError> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO discovery_acknowledgements (account_id, finding, reason, until, \
                     acknowledged_by, acknowledged_at) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (account_id, finding) DO UPDATE SET reason = excluded.reason, \
                     until = excluded.until, acknowledged_by = excluded.acknowledged_by, \
                     acknowledged_at = excluded.acknowledged_at",
                )
                .bind(ack.account.as_uuid())
                .bind(&ack.finding)
                .bind(&ack.reason)
                .bind(ack.until.as_millis())
                .bind(&ack.by)
                .bind(ack.at.as_millis())
                .execute(&mut *tx)
                .await?;
                Self::commit_with(tx, &[event]).await?;
                Ok(())
            }

            async fn acknowledgements(
                &self,
                accounts: &[aim_domain::ids::AccountId],
                now: aim_domain::time::Timestamp,
            ) -> Result<Vec<crate::discovery_remedy::Acknowledgement>, crate::StoreError> {
                type Db = <$store as crate::backend::Backend>::Db;
                let mut out = Vec::new();
                for chunk in accounts.chunks(crate::discovery::CHUNK) {
                    let mut q = sqlx::QueryBuilder::<Db>::new(
                        "SELECT account_id, finding, reason, until, acknowledged_by, acknowledged_at \
                         FROM discovery_acknowledgements WHERE until > ",
                    );
                    q.push_bind(now.as_millis()).push(" AND account_id IN (");
                    let mut list = q.separated(", ");
                    for id in chunk {
                        list.push_bind(id.as_uuid());
                    }
                    q.push(")");
                    let rows: Vec<(uuid::Uuid, String, String, i64, String, i64)> =
                        q.build_query_as().fetch_all(self.read()).await?;
                    out.extend(rows.into_iter().map(|(id, finding, reason, until, by, at)| {
                        crate::discovery_remedy::Acknowledgement {
                            account: aim_domain::ids::AccountId::from_uuid(id),
                            finding,
                            reason,
                            until: aim_domain::time::Timestamp::from_millis(until),
                            by,
                            at: aim_domain::time::Timestamp::from_millis(at),
                        }
                    }));
                }
                Ok(out)
            }

            async fn running_acknowledgements(
                &self,
                now: aim_domain::time::Timestamp,
            ) -> Result<Vec<(aim_domain::ids::AccountId, String, String)>, crate::StoreError> {
                let rows: Vec<(uuid::Uuid, String, String)> = sqlx::query_as(
                    "SELECT k.account_id, k.finding, a.finding_kinds \
                     FROM discovery_acknowledgements k \
                     JOIN discovered_accounts a ON a.id = k.account_id \
                     WHERE k.until > $1 AND a.gone_at IS NULL",
                )
                .bind(now.as_millis())
                .fetch_all(self.read())
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, finding, kinds)| {
                        (aim_domain::ids::AccountId::from_uuid(id), finding, kinds)
                    })
                    .collect())
            }
        }
    };
}

pub(crate) use impl_discovery_remedy_store;
