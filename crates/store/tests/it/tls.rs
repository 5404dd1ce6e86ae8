//! PostgreSQL over TLS: with `sslmode=require` in the URL, aim's store connects, migrates
//! and writes over an encrypted connection (rustls), as a managed database demands.

use aim_store::postgres::PgStore;
use aim_testkit::Backend;
use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::fixtures::{event, human};

#[tokio::test]
async fn postgres_with_sslmode_require_is_encrypted() {
    for backend in Backend::enabled() {
        if backend != Backend::Postgres {
            continue;
        }
        let url = std::env::var(aim_testkit::db::PG_URL_VAR).expect("set with the backend");
        let sep = if url.contains('?') { '&' } else { '?' };
        let tls_url = format!("{url}{sep}sslmode=require");
        let (options, _, schema) = aim_testkit::db::fresh_pg_schema_at(&tls_url).await;
        let store = PgStore::connect_with(options.clone()).await.unwrap();
        let h = human("tls-check");
        aim_store::HumanStore::insert_human(&store, &h, &event("human.created", h.id))
            .await
            .unwrap();
        let mut conn = PgConnection::connect_with(&options).await.unwrap();
        let (ssl,): (bool,) =
            sqlx::query_as("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert!(ssl, "the connection is encrypted");
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&mut conn)
            .await
            .unwrap();
    }
}
