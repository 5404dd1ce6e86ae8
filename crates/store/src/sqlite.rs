//! The SQLite backend: one file under the data dir, WAL, every commit synced. Registry
//! writes go through a single connection with group commit (`group.rs`): SQLite has one
//! writer anyway, and concurrent writers then share one durable commit. Appends (decisions,
//! refusals, tokens issued) are written whole on a thread of their own (`log_writer.rs`),
//! taking turns with the group commit. Reads use a pool.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Sqlite, SqlitePool};

use crate::StoreError;
use crate::appender::Appender;
use crate::backend::{Backend, impl_store};
use crate::group::{Gate, GroupCommit, GroupTx};
use crate::write::{Generation, WriteTx};

#[derive(Debug, Clone)]
pub struct SqliteStore {
    read: SqlitePool,
    group: GroupCommit,
    appender: Appender,
    generation: Generation,
}

impl SqliteStore {
    /// Puts the store together: the read pool, and the two writers of the file at `path`
    /// (sqlx's `writer` with group commit, and the log writer) taking turns.
    fn with(
        path: &Path,
        read_only: bool,
        read: SqlitePool,
        writer: sqlx::SqliteConnection,
    ) -> Result<Self, StoreError> {
        let gate = Gate::default();
        Ok(Self {
            read,
            appender: crate::log_writer::start(path, read_only, gate.clone())?,
            group: GroupCommit::new(writer, gate),
            generation: Generation::default(),
        })
    }
}

impl Backend for SqliteStore {
    type Db = Sqlite;
    type Tx = GroupTx;
    const ANONYMOUS_PARAMS: bool = true;
    const GREATEST: &'static str = "MAX";
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and runs pending migrations. The file,
    /// and the WAL and shared-memory files SQLite makes beside it with its mode, are
    /// readable by their owner alone: they hold the registry and every credential hash.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        private_files(path)?;
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            // 8 MiB of page cache per connection (5 connections); the OS page cache holds
            // the rest of a large registry without counting against the process.
            .pragma("cache_size", "-8192")
            // Savepoints (one per writer in a group commit) journal into memory rather
            // than a temporary file.
            .pragma("temp_store", "memory");
        // Migrations and planner statistics on a short-lived connection, one process at a
        // time: two `aim serve` started at once on a new file would both create its tables.
        let migrating = lock_exclusive(path).await?;
        let mut setup = options.connect().await?;
        crate::migrations::sqlite().run(&mut setup).await?;
        drop(migrating);
        // Gather planner statistics if they are missing or stale (about 2 s for a million
        // identities the first time; nothing when they are fresh).
        sqlx::query("PRAGMA optimize=0x10002")
            .execute(&mut setup)
            .await?;
        forget_tiny_statistics(&mut setup).await?;
        forget_samples(&mut setup).await?;
        sqlx::Connection::close(setup).await?;
        let writer = options
            .clone()
            .optimize_on_close(true, None)
            .connect()
            .await?;
        // Each connection is a thread of sqlx-sqlite's; more of them than a few per core
        // costs more in hand-offs than it gains (token issuance: 4,500/s with 8, 4,900/s
        // with 4, 4,400/s with 2 on two cores).
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.read_only(true))
            .await?;
        Self::with(path, false, read, writer)
    }

    /// Opens an existing database read-only, without migrating: for offline checks such as
    /// `aim audit verify` while the server may be running.
    pub async fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError::Unavailable(sqlx::Error::Configuration(
                format!("no database at {}", path.display()).into(),
            )));
        }
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .read_only(true)
            .busy_timeout(Duration::from_secs(5));
        let read = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options.clone())
            .await?;
        // Writes through read-only connections fail, as they should.
        let writer = options.connect().await?;
        Self::with(path, true, read, writer)
    }

    fn read(&self) -> &SqlitePool {
        &self.read
    }

    /// A transaction for what no cache of live state depends on (a gateway's
    /// acknowledgement): it does not move the generation.
    async fn untracked_tx(&self) -> Result<GroupTx, sqlx::Error> {
        self.group.begin().await
    }

    pub(crate) async fn write_tx(&self) -> Result<WriteTx<GroupTx>, sqlx::Error> {
        Ok(WriteTx::new(self.group.begin().await?, &self.generation))
    }
}

impl_store!(SqliteStore);
crate::humans::impl_human_store!(SqliteStore);
crate::identities::impl_identity_store!(SqliteStore);
crate::audit::impl_audit_store!(SqliteStore);
crate::credentials::impl_credential_store!(SqliteStore);
crate::revocations::impl_revocation_store!(SqliteStore);
crate::tasks::impl_task_follow!(SqliteStore);
crate::tasks::impl_task_store!(SqliteStore);
crate::policies::impl_policy_store!(SqliteStore);
crate::approvals::impl_approval_store!(SqliteStore);
crate::grants::impl_grant_store!(SqliteStore);
crate::leases::impl_lease_store!(SqliteStore);
crate::names::impl_name_store!(SqliteStore);
crate::scim_groups::impl_scim_group_store!(SqliteStore);
crate::tools::impl_tool_store!(SqliteStore);
crate::upstream_secrets::impl_upstream_secret_store!(SqliteStore);
crate::baselines::impl_baseline_store!(SqliteStore);
crate::discovery::impl_discovery_store!(SqliteStore);
crate::discovery_remedy::impl_discovery_remedy_store!(SqliteStore);
crate::reports::impl_report_store!(SqliteStore);

/// Below this many rows, a table's statistics are dropped.
const TINY_TABLE: i64 = 1000;

/// Drops the planner statistics of tables analysed while they were tiny. A first start
/// analyses a registry of one human and one key; those statistics tell the planner a scan
/// costs nothing, and `PRAGMA optimize` may keep them long after the table has grown: a
/// token's live state then scanned every human (measured: six times slower at 100). With
/// no statistics SQLite takes a table for large and looks rows up by their index; tables
/// of a thousand rows and more keep theirs for the list queries that need them.
pub(crate) async fn forget_tiny_statistics(
    conn: &mut sqlx::SqliteConnection,
) -> Result<(), sqlx::Error> {
    if has_table(conn, "sqlite_stat1").await? {
        sqlx::query("DELETE FROM sqlite_stat1 WHERE CAST(stat AS INTEGER) < $1")
            .bind(TINY_TABLE)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Drops the value samples `ANALYZE` keeps in `sqlite_stat4`. With samples for an index,
/// SQLite prepares again, on every new binding, each statement comparing a parameter with
/// that index's columns (its plan might depend on the value): a token's live state was
/// parsed and planned anew on every request, 113 µs instead of 29 µs. The row counts of
/// `sqlite_stat1` stay, and they are what aim's plans need.
pub(crate) async fn forget_samples(conn: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
    if has_table(conn, "sqlite_stat4").await? {
        sqlx::query("DELETE FROM sqlite_stat4")
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn has_table(conn: &mut sqlx::SqliteConnection, name: &str) -> Result<bool, sqlx::Error> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM sqlite_schema WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(found.is_some())
}

/// Makes the database file (created empty if missing, which SQLite takes as a new
/// database) and any WAL or shared-memory file beside it mode 0600.
/// An exclusive `flock` on the database file, held until the file handle is dropped.
/// SQLite's own locks are `fcntl` locks, which on Linux never interact with `flock`.
async fn lock_exclusive(path: &Path) -> Result<std::fs::File, StoreError> {
    let path = path.to_owned();
    let unavailable = |e: String| StoreError::Unavailable(sqlx::Error::Configuration(e.into()));
    tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new().read(true).open(&path)?;
        file.lock()?;
        Ok::<_, std::io::Error>(file)
    })
    .await
    .map_err(|e| unavailable(e.to_string()))?
    .map_err(|e| unavailable(format!("locking the database file to migrate it: {e}")))
}

fn private_files(path: &Path) -> Result<(), StoreError> {
    let unavailable = |e: std::io::Error| {
        StoreError::Unavailable(sqlx::Error::Configuration(
            format!("{}: {e}", path.display()).into(),
        ))
    };
    let mut create = std::fs::OpenOptions::new();
    create.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        create.mode(0o600);
        create.open(path).map_err(unavailable)?;
        for suffix in ["", "-wal", "-shm"] {
            let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
            if file.exists() {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                    .map_err(unavailable)?;
            }
        }
    }
    #[cfg(not(unix))]
    create.open(path).map_err(unavailable)?;
    Ok(())
}
