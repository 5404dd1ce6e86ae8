//! What the discovery store's methods share, written once for both backends: accounts read
//! with their views, and accounts written with their fingerprints.

/// Adds the helpers to `$store` (see `discovery_sql`).
macro_rules! impl_discovery_rows {
    ($store:ty) => {
        impl $store {
            async fn discovered_with_views(
                &self,
                accounts: Vec<crate::discovery::AccountRow>,
            ) -> Result<Vec<crate::discovery::Discovered>, crate::StoreError> {
                type Db = <$store as crate::backend::Backend>::Db;
                let mut views = Vec::new();
                for chunk in accounts.chunks(crate::discovery::CHUNK) {
                    let mut q = sqlx::QueryBuilder::<Db>::new(format!(
                        "SELECT {} FROM discovered_views WHERE account_id IN (",
                        crate::discovery::VIEW_COLUMNS
                    ));
                    let mut list = q.separated(", ");
                    for a in chunk {
                        list.push_bind(a.id.as_uuid());
                    }
                    q.push(")");
                    for r in q.build().fetch_all(self.read()).await? {
                        views.push(crate::discovery::view_from_row(&r)?);
                    }
                }
                Ok(crate::discovery::with_views(accounts, views))
            }

            async fn write_accounts_tx(
                conn: &mut <<$store as crate::backend::Backend>::Db as sqlx::Database>::Connection,
                accounts: &[crate::discovery::AccountRow],
            ) -> Result<(), crate::StoreError> {
                type Db = <$store as crate::backend::Backend>::Db;
                for chunk in accounts.chunks(crate::discovery::CHUNK) {
                    let mut q = sqlx::QueryBuilder::<Db>::new(format!(
                        "INSERT INTO discovered_accounts ({}) ",
                        crate::discovery::ACCOUNT_COLUMNS
                    ));
                    q.push_values(chunk, |mut b, a| {
                        b.push_bind(a.id.as_uuid())
                            .push_bind(a.source.clone())
                            .push_bind(a.key.clone())
                            .push_bind(a.name.clone())
                            .push_bind(a.kind.clone())
                            .push_bind(a.enabled)
                            .push_bind(a.owner.clone())
                            .push_bind(a.identity.map(|i| i.as_uuid()))
                            .push_bind(a.tier.clone())
                            .push_bind(a.risk.clone())
                            .push_bind(a.findings.clone())
                            .push_bind(a.finding_kinds.clone())
                            .push_bind(a.account.clone())
                            .push_bind(a.first_seen.as_millis())
                            .push_bind(a.updated_at.as_millis())
                            .push_bind(a.gone_at.map(|t| t.as_millis()))
                            .push_bind(a.dup_key.clone())
                            .push_bind(a.vendor_key.clone());
                    });
                    q.push(
                        " ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind, \
                         enabled = excluded.enabled, owner = excluded.owner, \
                         identity_id = excluded.identity_id, tier = excluded.tier, \
                         risk = excluded.risk, findings = excluded.findings, \
                         finding_kinds = excluded.finding_kinds, account = excluded.account, \
                         updated_at = excluded.updated_at, gone_at = excluded.gone_at, \
                         dup_key = excluded.dup_key, vendor_key = excluded.vendor_key",
                    );
                    q.build().execute(&mut *conn).await?;
                    let mut q = sqlx::QueryBuilder::<Db>::new(
                        "DELETE FROM discovered_fingerprints WHERE account_id IN (",
                    );
                    let mut list = q.separated(", ");
                    for a in chunk {
                        list.push_bind(a.id.as_uuid());
                    }
                    q.push(")");
                    q.build().execute(&mut *conn).await?;
                    let prints: Vec<_> = chunk
                        .iter()
                        .flat_map(|a| a.fingerprints.iter().map(move |f| (a, f)))
                        .collect();
                    for some in prints.chunks(crate::discovery::CHUNK) {
                        let mut q = sqlx::QueryBuilder::<Db>::new(
                            "INSERT INTO discovered_fingerprints (account_id, credential, fingerprint, environment) ",
                        );
                        q.push_values(some, |mut b, (a, (credential, fingerprint))| {
                            b.push_bind(a.id.as_uuid())
                                .push_bind(credential.clone())
                                .push_bind(fingerprint.clone())
                                .push_bind(a.environment.clone());
                        });
                        q.push(" ON CONFLICT (account_id, credential) DO NOTHING");
                        q.build().execute(&mut *conn).await?;
                    }
                }
                Ok(())
            }
        }
    };
}

pub(crate) use impl_discovery_rows;
