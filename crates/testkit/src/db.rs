//! A fresh, empty store per test.

use std::str::FromStr;
use std::sync::Arc;

use aim_store::DynStore;
use aim_store::postgres::PgStore;
use aim_store::sqlite::SqliteStore;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tempfile::TempDir;

/// The environment variable naming the PostgreSQL database the tests may use.
pub const PG_URL_VAR: &str = "AIM_TEST_DATABASE_URL";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backends this run tests: SQLite always, PostgreSQL when `AIM_TEST_DATABASE_URL`
    /// is set.
    pub fn enabled() -> Vec<Backend> {
        let mut v = vec![Backend::Sqlite];
        if std::env::var_os(PG_URL_VAR).is_some() {
            v.push(Backend::Postgres);
        }
        v
    }
}

/// A store that lives as long as this value; the PostgreSQL schema is dropped by
/// [`TestStore::cleanup`].
#[derive(Debug)]
pub struct TestStore {
    pub store: DynStore,
    pub backend: Backend,
    /// Where the SQLite file lives (and where a server's data dir is).
    pub dir: TempDir,
    pg: Option<(String, String)>,
}

impl TestStore {
    /// A fresh store on `backend`. Panics (failing the test, never skipping it) if
    /// PostgreSQL was asked for and cannot be reached.
    pub async fn new(backend: Backend) -> TestStore {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => {
                let store = SqliteStore::open(&dir.path().join("aim.db"))
                    .await
                    .expect("open sqlite");
                TestStore {
                    store: Arc::new(store),
                    backend,
                    dir,
                    pg: None,
                }
            }
            Backend::Postgres => {
                let (options, url, schema) = fresh_pg_schema().await;
                let store = PgStore::connect_with(options)
                    .await
                    .expect("connect postgres store");
                TestStore {
                    store: Arc::new(store),
                    backend,
                    dir,
                    pg: Some((url, schema)),
                }
            }
        }
    }

    /// For PostgreSQL, the connection options of this test's schema (to start a server on it).
    pub fn pg_schema(&self) -> Option<(String, String)> {
        self.pg.clone()
    }

    /// Runs SQL (several statements allowed) straight against the database, behind the
    /// store's back: for tests that play an attacker with database access.
    pub async fn raw(&self, sql: &str) {
        match &self.pg {
            None => {
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(self.dir.path().join("aim.db"));
                let mut c = sqlx::SqliteConnection::connect_with(&options)
                    .await
                    .expect("open sqlite");
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                    .execute(&mut c)
                    .await
                    .expect("raw sql");
            }
            Some((url, schema)) => {
                let options = PgConnectOptions::from_str(url)
                    .expect("url")
                    .options([("search_path", schema.as_str())]);
                let mut c = PgConnection::connect_with(&options).await.expect("connect");
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                    .execute(&mut c)
                    .await
                    .expect("raw sql");
            }
        }
    }

    /// Another store on the same PostgreSQL schema, with its own connection pool: what a
    /// second `aim serve` replica has. `None` on SQLite.
    pub async fn replica(&self) -> Option<DynStore> {
        let (url, schema) = self.pg.as_ref()?;
        let options = PgConnectOptions::from_str(url)
            .expect("url")
            .options([("search_path", schema.as_str())]);
        Some(Arc::new(
            PgStore::connect_with(options)
                .await
                .expect("replica connects"),
        ))
    }

    /// Another store on the same database, on either backend: for SQLite a second set of
    /// pools on the same file (as a second process would have).
    pub async fn second_store(&self) -> DynStore {
        match self.replica().await {
            Some(s) => s,
            None => Arc::new(
                SqliteStore::open(&self.dir.path().join("aim.db"))
                    .await
                    .expect("open sqlite again"),
            ),
        }
    }

    /// Takes the database's write lock from another connection and holds it until
    /// [`WriteLock::release`]: the store then cannot write (reads still work).
    pub async fn hold_write_lock(&self) -> WriteLock {
        match &self.pg {
            None => {
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(self.dir.path().join("aim.db"));
                let mut c = sqlx::SqliteConnection::connect_with(&options)
                    .await
                    .expect("open sqlite");
                sqlx::raw_sql("BEGIN EXCLUSIVE")
                    .execute(&mut c)
                    .await
                    .expect("lock");
                WriteLock::Sqlite(c)
            }
            Some((url, schema)) => {
                let options = PgConnectOptions::from_str(url)
                    .expect("url")
                    .options([("search_path", schema.as_str())]);
                let mut c = PgConnection::connect_with(&options).await.expect("connect");
                sqlx::raw_sql("BEGIN; LOCK TABLE chain_head IN EXCLUSIVE MODE;")
                    .execute(&mut c)
                    .await
                    .expect("lock");
                WriteLock::Postgres(c)
            }
        }
    }

    /// Drops the PostgreSQL schema. Call at the end of a test.
    pub async fn cleanup(self) {
        if let Some((url, schema)) = &self.pg
            && let Ok(mut c) = PgConnection::connect(url).await
        {
            let drop = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
            let _ = sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&mut c).await;
        }
    }
}

/// A write lock held by another connection (see [`TestStore::hold_write_lock`]).
#[derive(Debug)]
pub enum WriteLock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(PgConnection),
}

impl WriteLock {
    pub async fn release(self) {
        match self {
            WriteLock::Sqlite(mut c) => {
                sqlx::raw_sql("ROLLBACK")
                    .execute(&mut c)
                    .await
                    .expect("unlock");
            }
            WriteLock::Postgres(mut c) => {
                sqlx::raw_sql("ROLLBACK")
                    .execute(&mut c)
                    .await
                    .expect("unlock");
            }
        }
    }
}

/// Creates a uniquely named schema and returns options whose `search_path` is that schema.
pub async fn fresh_pg_schema() -> (PgConnectOptions, String, String) {
    let url = std::env::var(PG_URL_VAR).expect("AIM_TEST_DATABASE_URL");
    fresh_pg_schema_at(&url).await
}

/// A fresh database with nothing in it, not even aim's tables: what replicas starting
/// for the first time find. Each [`EmptyDatabase::open`] is what one `aim serve` opens
/// (and migrates) as it starts.
#[derive(Debug)]
pub enum EmptyDatabase {
    Sqlite(tempfile::TempDir),
    Postgres {
        options: Box<PgConnectOptions>,
        url: String,
        schema: String,
    },
}

impl EmptyDatabase {
    pub async fn new(backend: Backend) -> EmptyDatabase {
        match backend {
            Backend::Sqlite => EmptyDatabase::Sqlite(tempfile::tempdir().expect("temp dir")),
            Backend::Postgres => {
                let (options, url, schema) = fresh_pg_schema().await;
                EmptyDatabase::Postgres {
                    options: Box::new(options),
                    url,
                    schema,
                }
            }
        }
    }

    /// A store on it, opened as `aim serve` opens one: migrating it if need be.
    pub async fn open(&self) -> Result<DynStore, aim_store::StoreError> {
        Ok(match self {
            EmptyDatabase::Sqlite(dir) => {
                Arc::new(SqliteStore::open(&dir.path().join("aim.db")).await?)
            }
            EmptyDatabase::Postgres { options, .. } => {
                Arc::new(PgStore::connect_with((**options).clone()).await?)
            }
        })
    }

    /// Drops the PostgreSQL schema (the SQLite file goes with its directory).
    pub async fn cleanup(self) {
        if let EmptyDatabase::Postgres { url, schema, .. } = self {
            let mut c = PgConnection::connect(&url).await.expect("connect");
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&mut c)
                .await
                .expect("drop schema");
        }
    }
}

/// As [`fresh_pg_schema`], on `url`. Panics if PostgreSQL is unreachable there.
pub async fn fresh_pg_schema_at(url: &str) -> (PgConnectOptions, String, String) {
    let url = url.to_owned();
    let mut admin = PgConnection::connect(&url).await.unwrap_or_else(|e| {
        panic!("{PG_URL_VAR} is set but PostgreSQL is unreachable at {url}: {e}")
    });
    let schema = format!("aim_t_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .expect("create schema");
    let options = PgConnectOptions::from_str(&url)
        .expect("parse AIM_TEST_DATABASE_URL")
        .options([("search_path", schema.as_str())]);
    (options, url, schema)
}

#[cfg(test)]
mod tests {
    /// Asking for PostgreSQL that is not there fails the test; it never silently skips.
    #[tokio::test]
    #[should_panic(expected = "is set but PostgreSQL is unreachable")]
    async fn unreachable_postgres_fails_loudly() {
        super::fresh_pg_schema_at("postgres://postgres@127.0.0.1:1/test").await;
    }
}
