//! The SQLite backend: one file under the data dir, WAL, every commit synced. Writes go
//! through a single connection (SQLite has one writer anyway; queuing them here avoids
//! busy errors), reads through a pool.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

use crate::StoreError;
use crate::backend::{Backend, impl_store};

#[derive(Debug, Clone)]
pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
}

impl Backend for SqliteStore {
    type Db = Sqlite;
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and runs pending migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            // 8 MiB of page cache per connection (9 connections); the OS page cache holds
            // the rest of a large registry without counting against the process.
            .pragma("cache_size", "-8192");
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            // Refresh the planner's statistics when the writer closes, so it keeps picking
            // the selective index for combined filters.
            .connect_with(options.clone().optimize_on_close(true, None))
            .await?;
        crate::migrations::sqlite().run(&write).await?;
        // Gather planner statistics if they are missing or stale (about 2 s for a million
        // identities the first time; nothing when they are fresh).
        sqlx::query("PRAGMA optimize=0x10002")
            .execute(&write)
            .await?;
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self { read, write })
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
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await?;
        Ok(Self {
            read: pool.clone(),
            write: pool,
        })
    }

    fn write_pool(&self) -> &SqlitePool {
        &self.write
    }

    fn read(&self) -> &SqlitePool {
        &self.read
    }

    async fn write_tx(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.write.begin_with("BEGIN IMMEDIATE").await
    }
}

impl_store!(SqliteStore);
