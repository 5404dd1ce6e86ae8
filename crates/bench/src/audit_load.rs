//! The audit chain's hot paths: durable appends per second on SQLite and PostgreSQL, and
//! verification speed (from the store, and of the hashing alone).
//!
//! ```sh
//! cargo build --release --bin audit-load
//! target/release/audit-load --events 200000 --database-url postgres://postgres@127.0.0.1/test
//! ```

use std::sync::Arc;
use std::time::Instant;

use aim_domain::audit::{Chained, GENESIS, Verifier, chain_hash};
use aim_domain::event::{Actor, AuditAction, Event};
use aim_domain::time::Timestamp;
use aim_store::postgres::PgStore;
use aim_store::sqlite::SqliteStore;
use aim_store::{DynStore, verify_chain};
use anyhow::Context;
use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    /// Events appended per backend.
    #[arg(long, default_value_t = 20_000)]
    events: usize,
    /// Concurrent writers.
    #[arg(long, default_value_t = 16)]
    writers: usize,
    /// Events hashed and checked in memory for the verifier figure.
    #[arg(long, default_value_t = 1_000_000)]
    verify_events: usize,
    /// Also measure PostgreSQL (a fresh schema is created in this database).
    #[arg(long)]
    database_url: Option<String>,
}

fn sample(n: usize) -> Event {
    Event::new(
        Timestamp::from_millis(1_790_000_000_000 + n as i64),
        Actor::system("bench"),
        AuditAction::IdentityChanged,
        "identity",
        n,
    )
    .reason("changed purpose, systems")
    .detail(serde_json::json!({ "fields": ["purpose", "systems"], "risk_tier_before": "low" }))
}

async fn appends(label: &str, store: DynStore, args: &Args) -> anyhow::Result<()> {
    let per = args.events / args.writers;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..args.writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..per {
                store.append_event(&sample(w * per + n)).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    let total = per * args.writers;
    println!(
        "{label}: {total} durable appends by {} writers in {secs:.2} s = {:.0} appends/s",
        args.writers,
        total as f64 / secs
    );
    let started = Instant::now();
    let n = verify_chain(store.as_ref(), None)
        .await?
        .map_err(|b| anyhow::anyhow!("{b}"))?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{label}: verify from the store: {n} records in {secs:.2} s = {:.0} records/s",
        n as f64 / secs
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();

    // Hashing and checking alone, in memory.
    let mut records = Vec::with_capacity(args.verify_events);
    let mut prev = GENESIS;
    for n in 0..args.verify_events {
        let mut e = sample(n);
        e.seq = n as i64 + 1;
        let hash = chain_hash(&prev, &e);
        records.push(Chained {
            event: e,
            prev_hash: prev,
            hash,
        });
        prev = hash;
    }
    let started = Instant::now();
    let mut v = Verifier::default();
    for r in &records {
        v.push(r).map_err(|b| anyhow::anyhow!("{b}"))?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "verify in memory (one core): {} records in {secs:.2} s = {:.0} records/s",
        v.verified(),
        v.verified() as f64 / secs
    );
    drop(records);

    let dir = tempfile::tempdir()?;
    let sqlite: DynStore = Arc::new(SqliteStore::open(&dir.path().join("aim.db")).await?);
    appends("sqlite (synchronous=FULL, WAL)", sqlite, &args).await?;

    if let Some(url) = &args.database_url {
        use sqlx::Connection;
        let schema = format!("aim_bench_{}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(url)
            .await
            .context("connecting")?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut admin)
            .await?;
        let options = <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(url)?
            .options([("search_path", schema.as_str())]);
        let pg: DynStore = Arc::new(PgStore::connect_with(options).await?);
        let result = appends("postgresql (local, default fsync)", pg, &args).await;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&mut admin)
            .await?;
        result?;
    }
    Ok(())
}
