//! The PostgreSQL backend: one database shared by every `aim serve` replica.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

use crate::StoreError;
use crate::appender::{Appender, BatchWriter, Entry};
use crate::backend::{Backend, impl_store};
use crate::write::{Generation, WriteTx};

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    appender: Appender,
    generation: Generation,
    listener: Option<Arc<Listening>>,
    /// Where write transactions notify other replicas.
    channel: Arc<str>,
}

/// The task hearing other replicas' changes; it stops (and its connection closes) with the
/// store.
#[derive(Debug)]
struct Listening(tokio::task::JoinHandle<()>);

impl Drop for Listening {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The channel every write transaction notifies on commit, per schema: replicas sharing a
/// schema hear each other, and deployments in other schemas of the same database do not.
fn channel(schema: &str) -> String {
    format!("aim_changes:{schema}")
}

/// Writes batches of appends, each in its own transaction.
struct Writer(PgPool);

impl BatchWriter for Writer {
    async fn write(&self, entries: &mut [Entry]) -> Result<Vec<Option<i64>>, StoreError> {
        let mut tx = self.0.begin().await?;
        let seqs = PgStore::append_entries_tx(&mut tx, entries).await?;
        tx.commit().await?;
        Ok(seqs)
    }
}

impl PgStore {
    fn with(pool: PgPool) -> Self {
        Self {
            appender: Appender::start(Writer(pool.clone())),
            pool,
            generation: Generation::default(),
            listener: None,
            channel: channel("public").into(),
        }
    }

    /// Records the entries' claims, then appends the events whose claim was new (see
    /// `appender::BatchWriter`).
    async fn append_entries_tx(
        conn: &mut sqlx::PgConnection,
        entries: &mut [crate::appender::Entry],
    ) -> Result<Vec<Option<i64>>, crate::StoreError> {
        let claims: Vec<&crate::appender::Claim> = entries.iter().flat_map(|e| &e.claims).collect();
        let mut won = std::collections::HashSet::new();
        let mut rest = &claims[..];
        while !rest.is_empty() {
            let rows = crate::sql::INSERT_CHUNKS
                .into_iter()
                .find(|&r| r <= rest.len())
                .unwrap_or(1);
            let (chunk, tail) = rest.split_at(rows);
            let mut q = sqlx::query_as::<_, (String,)>(crate::sql::multi_insert(
                crate::sql::MultiInsert::UsedIds,
                rows,
                Self::ANONYMOUS_PARAMS,
            ));
            for c in chunk {
                q = q.bind(c.id.clone()).bind(c.expires_at.as_millis());
            }
            won.extend(q.fetch_all(&mut *conn).await?.into_iter().map(|(id,)| id));
            rest = tail;
        }
        // An id twice in one batch: the first entry has it.
        let keep = crate::appender::kept(entries, &mut won);
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
}

impl Backend for PgStore {
    type Db = Postgres;
    type Tx = Transaction<'static, Postgres>;
    const ANONYMOUS_PARAMS: bool = false;
    const GREATEST: &'static str = "GREATEST";
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host/db`) and runs pending migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(PgConnectOptions::from_str(url)?).await
    }

    /// As [`PgStore::connect`], with requests waiting at most `wait` for a connection.
    pub async fn connect_url_waiting(url: &str, wait: Duration) -> Result<Self, StoreError> {
        Self::connect_waiting(PgConnectOptions::from_str(url)?, wait).await
    }

    /// Connects with explicit options (tests use them to set a per-test `search_path`).
    pub async fn connect_with(options: PgConnectOptions) -> Result<Self, StoreError> {
        Self::connect_waiting(options, Duration::from_secs(2)).await
    }

    /// As [`PgStore::connect_with`]; a request waits at most `wait` for a connection (the
    /// database unreachable, say) before it fails (503) rather than queueing.
    pub async fn connect_waiting(
        options: PgConnectOptions,
        wait: Duration,
    ) -> Result<Self, StoreError> {
        // Fail closed rather than hang: a write that cannot get its locks within 5 s, or a
        // statement that runs for 30 s, is an error (503), and nothing of it is applied.
        let options = options.options([("lock_timeout", "5s"), ("statement_timeout", "30s")]);
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(wait)
            .connect_with(options.clone())
            .await?;
        crate::migrations::postgres().run(&pool).await?;
        let (schema,): (String,) = sqlx::query_as("SELECT current_schema()")
            .fetch_one(&pool)
            .await?;
        let mut store = Self::with(pool);
        store.channel = channel(&schema).into();
        // Its own connection, so the listener never takes one of the pool's.
        let listening = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(wait)
            .connect_with(options)
            .await?;
        store.listener = Some(Arc::new(store.listen(listening).await?));
        Ok(store)
    }

    /// Hears the changes other replicas commit (each write transaction notifies
    /// its schema's channel) and moves this replica's generation for each, so what this replica
    /// keeps of the live state behind tokens is dropped the moment another replica locks,
    /// suspends or revokes, and the revocation feed reads at once. A lost connection moves
    /// it too (what was missed meanwhile is unknown) and is re-established by the listener.
    async fn listen(&self, pool: PgPool) -> Result<Listening, StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
        listener.listen(&self.channel).await?;
        let generation = self.generation.clone();
        Ok(Listening(tokio::spawn(async move {
            loop {
                match listener.try_recv().await {
                    Ok(Some(_)) => generation.advance(),
                    Ok(None) => {
                        tracing::warn!("the PostgreSQL listener lost its connection; reconnecting");
                        generation.advance();
                    }
                    // The pool is closing: the store is going away.
                    Err(sqlx::Error::PoolClosed) => return,
                    Err(e) => {
                        tracing::error!(error = %e, "the PostgreSQL listener failed; retrying");
                        generation.advance();
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        })))
    }

    /// Connects without migrating: for offline checks such as `aim audit verify`.
    pub async fn connect_unmigrated(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(PgConnectOptions::from_str(url)?)
            .await?;
        Ok(Self::with(pool))
    }

    fn read(&self) -> &PgPool {
        &self.pool
    }

    /// A transaction for what no cache of live state depends on (a gateway's
    /// acknowledgement): it neither notifies other replicas nor moves the generation.
    /// Nor does it wait for the disk: an acknowledgement lost in a crash is repeated by the
    /// next heartbeat, and the lock waiting for it should not wait for an fsync.
    async fn untracked_tx(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET LOCAL synchronous_commit TO OFF")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    async fn write_tx(&self) -> Result<WriteTx<Transaction<'static, Postgres>>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        // Delivered to every replica's listener when (and only if) this commits.
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(&*self.channel)
            .execute(&mut *tx)
            .await?;
        Ok(WriteTx::new(tx, &self.generation))
    }
}

impl_store!(PgStore);
crate::humans::impl_human_store!(PgStore);
crate::identities::impl_identity_store!(PgStore);
crate::audit::impl_audit_store!(PgStore);
crate::credentials::impl_credential_store!(PgStore);
crate::revocations::impl_revocation_store!(PgStore);
crate::tasks::impl_task_follow!(PgStore);
crate::tasks::impl_task_store!(PgStore);
crate::policies::impl_policy_store!(PgStore);
crate::approvals::impl_approval_store!(PgStore);
crate::grants::impl_grant_store!(PgStore);
crate::leases::impl_lease_store!(PgStore);
crate::names::impl_name_store!(PgStore);
crate::scim_groups::impl_scim_group_store!(PgStore);
crate::tools::impl_tool_store!(PgStore);
crate::upstream_secrets::impl_upstream_secret_store!(PgStore);
crate::baselines::impl_baseline_store!(PgStore);
crate::discovery::impl_discovery_store!(PgStore);
crate::discovery_remedy::impl_discovery_remedy_store!(PgStore);
crate::reports::impl_report_store!(PgStore);
