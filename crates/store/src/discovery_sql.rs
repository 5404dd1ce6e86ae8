//! The SQL of [`crate::discovery::DiscoveryStore`], written once for both backends. Lists of
//! keys and rows go through `QueryBuilder`, which writes each backend's placeholders.

/// Implements [`crate::discovery::DiscoveryStore`] for `$store` (see `backend::impl_store`).
macro_rules! impl_discovery_store_for {
    ($store:ty) => {
        crate::discovery_rows::impl_discovery_rows!($store);

        #[async_trait::async_trait]
        impl crate::discovery::DiscoveryStore for $store {
            async fn open_import(
                &self,
                import: &crate::discovery::ImportRow,
                stale_before: aim_domain::time::Timestamp,
                event: &aim_domain::event::Event,
            ) -> Result<Option<crate::discovery::ImportRow>, crate::StoreError> {
                let mut tx = self.write_tx().await?;
                sqlx::query(crate::write::SERIALIZE_WITH_OTHER_WRITERS)
                    .execute(&mut *tx)
                    .await?;
                let open = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM discovery_imports WHERE source = $1 AND kind = $2 \
                     AND finished_at IS NULL AND touched_at > $3 ORDER BY started_at DESC LIMIT 1",
                    crate::discovery::IMPORT_COLUMNS
                )))
                .bind(&import.source)
                .bind(&import.kind)
                .bind(stale_before.as_millis())
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(r) = open {
                    return Ok(Some(crate::discovery::import_from_row(&r)?));
                }
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO discovery_imports ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL, FALSE)",
                    crate::discovery::IMPORT_COLUMNS
                )))
                .bind(import.id.as_uuid())
                .bind(&import.source)
                .bind(&import.kind)
                .bind(&import.thresholds)
                .bind(import.started_at.as_millis())
                .bind(&import.started_by)
                .bind(import.touched_at.as_millis())
                .execute(&mut *tx)
                .await?;
                Self::commit_with(tx, &[event]).await?;
                Ok(None)
            }

            async fn discovery_import(
                &self,
                id: aim_domain::ids::ImportId,
            ) -> Result<Option<crate::discovery::ImportRow>, crate::StoreError> {
                let r = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM discovery_imports WHERE id = $1",
                    crate::discovery::IMPORT_COLUMNS
                )))
                .bind(id.as_uuid())
                .fetch_optional(self.read())
                .await?;
                r.as_ref().map(crate::discovery::import_from_row).transpose()
            }

            async fn discovery_imports(
                &self,
                source: Option<&str>,
                before: Option<aim_domain::ids::ImportId>,
                limit: u32,
            ) -> Result<Vec<crate::discovery::ImportRow>, crate::StoreError> {
                type Db = <$store as crate::backend::Backend>::Db;
                let mut q = sqlx::QueryBuilder::<Db>::new(format!(
                    "SELECT {} FROM discovery_imports WHERE 1 = 1",
                    crate::discovery::IMPORT_COLUMNS
                ));
                if let Some(s) = source {
                    q.push(" AND source = ").push_bind(s.to_owned());
                }
                if let Some(b) = before {
                    q.push(" AND id < ").push_bind(b.as_uuid());
                }
                q.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(limit));
                q.build()
                    .fetch_all(self.read())
                    .await?
                    .iter()
                    .map(crate::discovery::import_from_row)
                    .collect()
            }

            async fn discovered_by_key(
                &self,
                source: &str,
                keys: &[String],
            ) -> Result<Vec<crate::discovery::Discovered>, crate::StoreError> {
                type Db = <$store as crate::backend::Backend>::Db;
                let mut accounts = Vec::new();
                for chunk in keys.chunks(crate::discovery::CHUNK) {
                    let mut q = sqlx::QueryBuilder::<Db>::new(format!(
                        "SELECT {} FROM discovered_accounts WHERE source = ",
                        crate::discovery::SELECT_COLUMNS
                    ));
                    q.push_bind(source.to_owned()).push(" AND key IN (");
                    let mut list = q.separated(", ");
                    for k in chunk {
                        list.push_bind(k.clone());
                    }
                    q.push(")");
                    for r in q.build().fetch_all(self.read()).await? {
                        accounts.push(crate::discovery::account_from_row(&r)?);
                    }
                }
                self.discovered_with_views(accounts).await
            }

            async fn save_discovered(
                &self,
                accounts: &[crate::discovery::AccountRow],
                views: &[crate::discovery::ViewRow],
                progress: crate::discovery::Progress<'_>,
                event: &aim_domain::event::Event,
            ) -> Result<bool, crate::StoreError> {
                type Db = <$store as crate::backend::Backend>::Db;
                let mut tx = self.write_tx().await?;
                let moved = sqlx::query(
                    "UPDATE discovery_imports SET summary = $1, touched_at = $2 WHERE id = $3 \
                     AND finished_at IS NULL AND COALESCE(summary, '') = $4",
                )
                .bind(progress.after)
                .bind(progress.at.as_millis())
                .bind(progress.import.as_uuid())
                .bind(progress.before.unwrap_or(""))
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if moved == 0 {
                    return Ok(false);
                }
                Self::write_accounts_tx(&mut *tx, accounts).await?;
                for chunk in views.chunks(crate::discovery::CHUNK) {
                    let mut q = sqlx::QueryBuilder::<Db>::new(format!(
                        "INSERT INTO discovered_views ({}) ",
                        crate::discovery::VIEW_COLUMNS
                    ));
                    q.push_values(chunk, |mut b, v| {
                        b.push_bind(v.account.as_uuid())
                            .push_bind(v.kind.clone())
                            .push_bind(v.source.clone())
                            .push_bind(v.import.as_uuid())
                            .push_bind(v.digest.clone())
                            .push_bind(v.record.clone());
                    });
                    q.push(
                        " ON CONFLICT (account_id, kind) DO UPDATE SET import_id = excluded.import_id, \
                         digest = excluded.digest, record = excluded.record",
                    );
                    q.build().execute(&mut *tx).await?;
                }
                Self::commit_with(tx, &[event]).await?;
                Ok(true)
            }

            async fn discovered_unseen(
                &self,
                source: &str,
                kind: &str,
                import: aim_domain::ids::ImportId,
                limit: u32,
            ) -> Result<Vec<crate::discovery::Discovered>, crate::StoreError> {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM discovered_accounts WHERE id IN (SELECT account_id FROM \
                     discovered_views WHERE source = $1 AND kind = $2 AND import_id <> $3) \
                     ORDER BY id LIMIT $4",
                    crate::discovery::SELECT_COLUMNS
                )))
                .bind(source)
                .bind(kind)
                .bind(import.as_uuid())
                .bind(i64::from(limit))
                .fetch_all(self.read())
                .await?;
                let accounts = rows
                    .iter()
                    .map(crate::discovery::account_from_row)
                    .collect::<Result<Vec<_>, _>>()?;
                self.discovered_with_views(accounts).await
            }

            async fn view_counts(
                &self,
                source: &str,
                kind: &str,
                import: aim_domain::ids::ImportId,
            ) -> Result<(u64, u64), crate::StoreError> {
                let (total, unseen): (i64, Option<i64>) = sqlx::query_as(
                    "SELECT COUNT(*), SUM(CASE WHEN v.import_id <> $3 THEN 1 ELSE 0 END) \
                     FROM discovered_views v JOIN discovered_accounts a ON a.id = v.account_id \
                     WHERE v.source = $1 AND v.kind = $2 AND a.gone_at IS NULL",
                )
                .bind(source)
                .bind(kind)
                .bind(import.as_uuid())
                .fetch_one(self.read())
                .await?;
                Ok((
                    u64::try_from(total).unwrap_or_default(),
                    u64::try_from(unseen.unwrap_or_default()).unwrap_or_default(),
                ))
            }

            async fn drop_views(
                &self,
                views: &[(aim_domain::ids::AccountId, String)],
                accounts: &[crate::discovery::AccountRow],
                event: &aim_domain::event::Event,
            ) -> Result<(), crate::StoreError> {
                let mut tx = self.write_tx().await?;
                for (account, kind) in views {
                    sqlx::query("DELETE FROM discovered_views WHERE account_id = $1 AND kind = $2")
                        .bind(account.as_uuid())
                        .bind(kind)
                        .execute(&mut *tx)
                        .await?;
                }
                Self::write_accounts_tx(&mut *tx, accounts).await?;
                Self::commit_with(tx, &[event]).await?;
                Ok(())
            }

            async fn finish_import(
                &self,
                id: aim_domain::ids::ImportId,
                at: aim_domain::time::Timestamp,
                summary: &str,
                event: &aim_domain::event::Event,
            ) -> Result<bool, crate::StoreError> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "UPDATE discovery_imports SET finished_at = $1, summary = $2 \
                     WHERE id = $3 AND finished_at IS NULL",
                )
                .bind(at.as_millis())
                .bind(summary)
                .bind(id.as_uuid())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if done == 0 {
                    return Ok(false);
                }
                Self::commit_with(tx, &[event]).await?;
                Ok(true)
            }

            async fn abandon_import(
                &self,
                id: aim_domain::ids::ImportId,
                at: aim_domain::time::Timestamp,
                event: &aim_domain::event::Event,
            ) -> Result<bool, crate::StoreError> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "UPDATE discovery_imports SET finished_at = $1, abandoned = TRUE \
                     WHERE id = $2 AND finished_at IS NULL",
                )
                .bind(at.as_millis())
                .bind(id.as_uuid())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if done == 0 {
                    return Ok(false);
                }
                Self::commit_with(tx, &[event]).await?;
                Ok(true)
            }

            async fn discovered_page(
                &self,
                filter: &crate::discovery::DiscoveryFilter,
                after: Option<aim_domain::ids::AccountId>,
                limit: u32,
            ) -> Result<Vec<crate::discovery::Discovered>, crate::StoreError> {
                type Db = <$store as crate::backend::Backend>::Db;
                let mut q = sqlx::QueryBuilder::<Db>::new(format!(
                    "SELECT {} FROM discovered_accounts WHERE 1 = 1",
                    crate::discovery::SELECT_COLUMNS
                ));
                if let Some(s) = &filter.source {
                    q.push(" AND source = ").push_bind(s.clone());
                }
                if let Some(n) = &filter.name {
                    q.push(" AND name = ").push_bind(n.clone());
                }
                match filter.present {
                    Some(true) => {
                        q.push(" AND gone_at IS NULL");
                    }
                    Some(false) => {
                        q.push(" AND gone_at IS NOT NULL");
                    }
                    None => {}
                }
                if let Some(k) = &filter.finding {
                    q.push(" AND finding_kinds LIKE ")
                        .push_bind(crate::discovery::like_kind(k));
                }
                if let Some(s) = &filter.severity {
                    q.push(" AND finding_kinds LIKE ")
                        .push_bind(crate::discovery::like_severity(s));
                }
                if let Some(a) = after {
                    q.push(" AND id > ").push_bind(a.as_uuid());
                }
                q.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
                let accounts = q
                    .build()
                    .fetch_all(self.read())
                    .await?
                    .iter()
                    .map(crate::discovery::account_from_row)
                    .collect::<Result<Vec<_>, _>>()?;
                self.discovered_with_views(accounts).await
            }

            async fn discovered_account(
                &self,
                id: aim_domain::ids::AccountId,
            ) -> Result<Option<crate::discovery::Discovered>, crate::StoreError> {
                let r = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM discovered_accounts WHERE id = $1",
                    crate::discovery::SELECT_COLUMNS
                )))
                .bind(id.as_uuid())
                .fetch_optional(self.read())
                .await?;
                let Some(r) = r else { return Ok(None) };
                let a = crate::discovery::account_from_row(&r)?;
                Ok(self.discovered_with_views(vec![a]).await?.pop())
            }

            async fn discovery_tally(
                &self,
                source: &str,
            ) -> Result<crate::discovery::Tally, crate::StoreError> {
                let (present, machine): (i64, Option<i64>) = sqlx::query_as(
                    "SELECT COUNT(*), SUM(CASE WHEN enabled AND kind <> 'human' THEN 1 ELSE 0 END) \
                     FROM discovered_accounts WHERE source = $1 AND gone_at IS NULL",
                )
                .bind(source)
                .fetch_one(self.read())
                .await?;
                let kinds: Vec<(String,)> = sqlx::query_as(
                    "SELECT finding_kinds FROM discovered_accounts \
                     WHERE source = $1 AND gone_at IS NULL AND finding_kinds <> ''",
                )
                .bind(source)
                .fetch_all(self.read())
                .await?;
                Ok(crate::discovery::Tally {
                    present: u64::try_from(present).unwrap_or_default(),
                    machine_enabled: u64::try_from(machine.unwrap_or_default()).unwrap_or_default(),
                    finding_kinds: kinds.into_iter().map(|(k,)| k).collect(),
                })
            }

            async fn duplicate_groups(
                &self,
                source: &str,
            ) -> Result<Vec<crate::discovery::Member>, crate::StoreError> {
                let mut out = Vec::new();
                for column in ["dup_key", "vendor_key"] {
                    let rows: Vec<(String, uuid::Uuid, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "SELECT {column}, id, name FROM discovered_accounts WHERE source = $1 \
                         AND gone_at IS NULL AND {column} IN (SELECT {column} FROM discovered_accounts \
                         WHERE source = $1 AND gone_at IS NULL AND {column} IS NOT NULL \
                         GROUP BY {column} HAVING COUNT(*) > 1) ORDER BY name"
                    )))
                    .bind(source)
                    .fetch_all(self.read())
                    .await?;
                    out.extend(rows.into_iter().map(|(key, id, name)| crate::discovery::Member {
                        key,
                        account: aim_domain::ids::AccountId::from_uuid(id),
                        name,
                        credential: None,
                        environment: None,
                    }));
                }
                Ok(out)
            }

            async fn shared_fingerprints(
                &self,
            ) -> Result<Vec<crate::discovery::Member>, crate::StoreError> {
                let rows: Vec<(String, uuid::Uuid, String, String, String)> = sqlx::query_as(
                    "SELECT f.fingerprint, a.id, a.name, f.credential, f.environment \
                     FROM discovered_fingerprints f JOIN discovered_accounts a ON a.id = f.account_id \
                     WHERE a.gone_at IS NULL AND a.enabled AND f.environment IS NOT NULL \
                     AND f.fingerprint IN (SELECT f2.fingerprint FROM discovered_fingerprints f2 \
                     JOIN discovered_accounts a2 ON a2.id = f2.account_id \
                     WHERE a2.gone_at IS NULL AND a2.enabled AND f2.environment IS NOT NULL \
                     GROUP BY f2.fingerprint HAVING COUNT(DISTINCT f2.environment) > 1) \
                     ORDER BY a.name",
                )
                .fetch_all(self.read())
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(key, id, name, credential, environment)| crate::discovery::Member {
                        key,
                        account: aim_domain::ids::AccountId::from_uuid(id),
                        name,
                        credential: Some(credential),
                        environment: Some(environment),
                    })
                    .collect())
            }

            async fn carrying(
                &self,
                kind: &str,
                source: Option<&str>,
            ) -> Result<Vec<aim_domain::ids::AccountId>, crate::StoreError> {
                type Db = <$store as crate::backend::Backend>::Db;
                let mut q = sqlx::QueryBuilder::<Db>::new(
                    "SELECT id FROM discovered_accounts WHERE gone_at IS NULL AND finding_kinds LIKE ",
                );
                q.push_bind(crate::discovery::like_kind(kind));
                if let Some(s) = source {
                    q.push(" AND source = ").push_bind(s.to_owned());
                }
                let rows: Vec<(uuid::Uuid,)> = q.build_query_as().fetch_all(self.read()).await?;
                Ok(rows
                    .into_iter()
                    .map(|(id,)| aim_domain::ids::AccountId::from_uuid(id))
                    .collect())
            }

            async fn discovered_by_ids(
                &self,
                ids: &[aim_domain::ids::AccountId],
            ) -> Result<Vec<crate::discovery::Discovered>, crate::StoreError> {
                type Db = <$store as crate::backend::Backend>::Db;
                let mut accounts = Vec::new();
                for chunk in ids.chunks(crate::discovery::CHUNK) {
                    let mut q = sqlx::QueryBuilder::<Db>::new(format!(
                        "SELECT {} FROM discovered_accounts WHERE id IN (",
                        crate::discovery::SELECT_COLUMNS
                    ));
                    let mut list = q.separated(", ");
                    for id in chunk {
                        list.push_bind(id.as_uuid());
                    }
                    q.push(")");
                    for r in q.build().fetch_all(self.read()).await? {
                        accounts.push(crate::discovery::account_from_row(&r)?);
                    }
                }
                self.discovered_with_views(accounts).await
            }

            async fn linked_accounts(
                &self,
                source: &str,
            ) -> Result<Vec<(aim_domain::ids::AccountId, aim_domain::ids::IdentityId)>, crate::StoreError> {
                let rows: Vec<(uuid::Uuid, uuid::Uuid)> = sqlx::query_as(
                    "SELECT id, identity_id FROM discovered_accounts WHERE source = $1 \
                     AND gone_at IS NULL AND identity_id IS NOT NULL",
                )
                .bind(source)
                .fetch_all(self.read())
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(a, i)| {
                        (
                            aim_domain::ids::AccountId::from_uuid(a),
                            aim_domain::ids::IdentityId::from_uuid(i),
                        )
                    })
                    .collect())
            }

            async fn set_findings(
                &self,
                rows: &[(aim_domain::ids::AccountId, String, String)],
                at: aim_domain::time::Timestamp,
                event: &aim_domain::event::Event,
            ) -> Result<(), crate::StoreError> {
                let mut tx = self.write_tx().await?;
                for (id, findings, kinds) in rows {
                    sqlx::query(
                        "UPDATE discovered_accounts SET findings = $1, finding_kinds = $2, \
                         updated_at = $3 WHERE id = $4",
                    )
                    .bind(findings)
                    .bind(kinds)
                    .bind(at.as_millis())
                    .bind(id.as_uuid())
                    .execute(&mut *tx)
                    .await?;
                }
                Self::commit_with(tx, &[event]).await?;
                Ok(())
            }

            async fn unlinked_machine_accounts(&self) -> Result<u64, crate::StoreError> {
                let (n,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM discovered_accounts WHERE gone_at IS NULL AND enabled \
                     AND kind <> 'human' AND identity_id IS NULL",
                )
                .fetch_one(self.read())
                .await?;
                Ok(u64::try_from(n).unwrap_or_default())
            }

            async fn discovery_sources(&self) -> Result<Vec<(String, String)>, crate::StoreError> {
                Ok(sqlx::query_as(
                    "SELECT DISTINCT source, kind FROM discovery_imports \
                     WHERE finished_at IS NOT NULL ORDER BY source, kind",
                )
                .fetch_all(self.read())
                .await?)
            }

            async fn population(&self) -> Result<(u64, Vec<String>), crate::StoreError> {
                let (n,): (i64,) =
                    sqlx::query_as("SELECT COUNT(*) FROM identities WHERE state = 'active'")
                        .fetch_one(self.read())
                        .await?;
                let roles: Vec<(String,)> = sqlx::query_as(
                    "SELECT roles FROM humans WHERE state = 'active' AND deleted_at IS NULL",
                )
                .fetch_all(self.read())
                .await?;
                Ok((
                    u64::try_from(n).unwrap_or_default(),
                    roles.into_iter().map(|(r,)| r).collect(),
                ))
            }

            async fn humans_named(
                &self,
                names: &[String],
            ) -> Result<Vec<(String, String)>, crate::StoreError> {
                type Db = <$store as crate::backend::Backend>::Db;
                let mut out = Vec::new();
                for chunk in names.chunks(crate::discovery::CHUNK) {
                    for column in ["user_name_key", "LOWER(email)"] {
                        let mut q = sqlx::QueryBuilder::<Db>::new(format!(
                            "SELECT {column}, state FROM humans WHERE deleted_at IS NULL AND {column} IN ("
                        ));
                        let mut list = q.separated(", ");
                        for n in chunk {
                            list.push_bind(n.clone());
                        }
                        q.push(")");
                        let rows: Vec<(String, String)> =
                            q.build_query_as().fetch_all(self.read()).await?;
                        out.extend(rows);
                    }
                }
                Ok(out)
            }

            async fn identities_named(
                &self,
                names: &[String],
            ) -> Result<Vec<(String, aim_domain::ids::IdentityId)>, crate::StoreError> {
                type Db = <$store as crate::backend::Backend>::Db;
                let mut out = Vec::new();
                for chunk in names.chunks(crate::discovery::CHUNK) {
                    let mut q = sqlx::QueryBuilder::<Db>::new(
                        "SELECT name, id FROM identities WHERE name IN (",
                    );
                    let mut list = q.separated(", ");
                    for n in chunk {
                        list.push_bind(n.clone());
                    }
                    q.push(")");
                    let rows: Vec<(String, uuid::Uuid)> =
                        q.build_query_as().fetch_all(self.read()).await?;
                    out.extend(
                        rows.into_iter()
                            .map(|(n, id)| (n, aim_domain::ids::IdentityId::from_uuid(id))),
                    );
                }
                Ok(out)
            }
        }
    };
}

pub(crate) use impl_discovery_store_for;
