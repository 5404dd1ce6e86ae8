//! The audit log: the hash chain and its appends, reads of the record, signed checkpoints,
//! and how far each sink has read. Written once for both backends, like `backend.rs`.

use aim_domain::event::Event;
use aim_domain::time::Timestamp;
use async_trait::async_trait;

use crate::{AuditFilter, StoreError};

/// A key audit checkpoints are signed with, as stored: the private half sealed under the
/// KEK, with the public key as associated data.
#[derive(Clone, PartialEq, Eq)]
pub struct CheckpointKeyRow {
    /// Ed25519, hex.
    pub public_key: String,
    pub sealed_private: Vec<u8>,
    pub created_at: Timestamp,
    /// Signs nothing after this; still verifies what it signed.
    pub retired_at: Option<Timestamp>,
}

impl std::fmt::Debug for CheckpointKeyRow {
    // INVARIANT: even sealed, the private half stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointKeyRow")
            .field("public_key", &self.public_key)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Stores a signed checkpoint (once per sequence number; a second is ignored).
    async fn insert_checkpoint(
        &self,
        checkpoint: &aim_domain::audit::Checkpoint,
    ) -> Result<(), StoreError>;

    /// The keys audit checkpoints are signed with, newest first.
    async fn checkpoint_keys(&self) -> Result<Vec<CheckpointKeyRow>, StoreError>;

    /// Makes `key` the key checkpoints are signed with, retiring `current` (at the new
    /// key's `created_at`), if `current` is still the newest unretired key (`None`: there
    /// is none yet). Returns false, writing nothing, if another replica got there first:
    /// replicas that start or rotate at once end up with one key.
    async fn replace_checkpoint_key(
        &self,
        key: &CheckpointKeyRow,
        current: Option<&str>,
        event: &Event,
    ) -> Result<bool, StoreError>;

    /// The checkpoint with the highest sequence number.
    async fn latest_checkpoint(&self) -> Result<Option<aim_domain::audit::Checkpoint>, StoreError>;

    /// The last sequence number the sink `name` acknowledged (0 if none yet).
    async fn sink_position(&self, name: &str) -> Result<i64, StoreError>;

    async fn set_sink_position(&self, name: &str, seq: i64) -> Result<(), StoreError>;

    /// The head of the hash chain: the last sequence number and its hash.
    async fn chain_head(&self) -> Result<(i64, [u8; 32]), StoreError>;

    /// Appends an event that records no change (a refusal).
    async fn append_event(&self, event: &Event) -> Result<i64, StoreError>;

    /// Appends a record of something that already happened and that no answer to an agent
    /// waits on (a gateway's report of a call): written with the next append, or alone
    /// after at most 20 ms; durable when this returns, like any other.
    async fn append_event_carried(&self, event: &Event) -> Result<i64, StoreError>;

    /// Events after `after_seq`, oldest first.
    async fn events(&self, after_seq: i64, limit: u32) -> Result<Vec<Event>, StoreError>;

    /// Events matching `filter` after `after_seq`, oldest first.
    async fn audit(
        &self,
        filter: &AuditFilter,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError>;

    /// One event by sequence number.
    async fn event(&self, seq: i64) -> Result<Option<Event>, StoreError>;
}

/// Implements [`AuditStore`] for `$store` (see `backend::impl_store`).
macro_rules! impl_audit_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl crate::audit::AuditStore for $store {
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
                tx.commit_unrecorded().await?;
                Ok(())
            }

            async fn checkpoint_keys(&self) -> Result<Vec<crate::audit::CheckpointKeyRow>, crate::StoreError> {
                let rows: Vec<(String, Vec<u8>, i64, Option<i64>)> = sqlx::query_as(
                    "SELECT public_key, sealed_private, created_at, retired_at FROM checkpoint_keys \
                     ORDER BY created_at DESC, public_key",
                )
                .fetch_all(self.read())
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(public_key, sealed_private, created_at, retired_at)| crate::audit::CheckpointKeyRow {
                        public_key,
                        sealed_private,
                        created_at: aim_domain::time::Timestamp::from_millis(created_at),
                        retired_at: retired_at.map(aim_domain::time::Timestamp::from_millis),
                    })
                    .collect())
            }

            async fn replace_checkpoint_key(
                &self,
                key: &crate::audit::CheckpointKeyRow,
                current: Option<&str>,
                event: &aim_domain::event::Event,
            ) -> Result<bool, crate::StoreError> {
                let mut tx = self.write_tx().await?;
                sqlx::query(crate::write::SERIALIZE_WITH_OTHER_WRITERS)
                    .execute(&mut *tx)
                    .await?;
                let newest: Option<(String,)> = sqlx::query_as(
                    "SELECT public_key FROM checkpoint_keys WHERE retired_at IS NULL \
                     ORDER BY created_at DESC, public_key LIMIT 1",
                )
                .fetch_optional(&mut *tx)
                .await?;
                if newest.as_ref().map(|(k,)| k.as_str()) != current {
                    return Ok(false);
                }
                sqlx::query("UPDATE checkpoint_keys SET retired_at = $1 WHERE retired_at IS NULL")
                    .bind(key.created_at.as_millis())
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO checkpoint_keys (public_key, sealed_private, created_at, retired_at) \
                     VALUES ($1, $2, $3, NULL)",
                )
                .bind(key.public_key.clone())
                .bind(key.sealed_private.clone())
                .bind(key.created_at.as_millis())
                .execute(&mut *tx)
                .await?;
                Self::commit_with(tx, &[event]).await?;
                Ok(true)
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
                tx.commit_unrecorded().await?;
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

            async fn append_event_carried(
                &self,
                event: &aim_domain::event::Event,
            ) -> Result<i64, crate::StoreError> {
                self.appender.append_carried(event).await
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
        }

        impl $store {
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
                let (chained, head) = crate::audit::chain(events.iter_mut(), last - n + 1, prev)?;
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
                sqlx::query(crate::sql::SET_HEAD_HASH).bind(head.to_vec()).execute(&mut *conn).await?;
                Ok(chained.iter().map(|(e, _, _)| e.seq).collect())
            }
        }
    };
}

pub(crate) use impl_audit_store;

/// An event chained: the record, the hash before it and its own.
pub(crate) type Chained<'e> = (&'e Event, [u8; 32], [u8; 32]);

/// Numbers `events` from `first_seq` on and chains each to the one before, starting from
/// the head's hash `prev`. Returns them chained, and the new head's hash.
pub(crate) fn chain<'e>(
    events: impl Iterator<Item = &'e mut Event>,
    first_seq: i64,
    prev: Vec<u8>,
) -> Result<(Vec<Chained<'e>>, [u8; 32]), StoreError> {
    let mut prev = <[u8; 32]>::try_from(prev)
        .map_err(|_| StoreError::Corrupt("chain_head.hash is not 32 bytes".into()))?;
    let mut chained = Vec::new();
    for (seq, e) in (first_seq..).zip(events) {
        e.seq = seq;
        let hash = aim_domain::audit::chain_hash(&prev, e);
        chained.push((&*e, prev, hash));
        prev = hash;
    }
    Ok((chained, prev))
}
