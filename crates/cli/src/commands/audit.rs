use std::sync::Arc;

use aim_store::postgres::PgStore;
use aim_store::sqlite::SqliteStore;
use aim_store::{DynStore, verify_chain};
use anyhow::Context;

use aim_client::Client;
use aim_domain::event::Event;

use crate::args::{AuditListArgs, Format, VerifyArgs};
use crate::commands::{collect, more_hint};
use crate::output::{Table, emit, fields};

/// Opens the store read-only (no migrations) and walks the chain.
pub async fn verify(format: Format, args: VerifyArgs) -> anyhow::Result<()> {
    let (store, source): (DynStore, String) = match (&args.data_dir, &args.database_url) {
        (Some(dir), _) => {
            let path = dir.join("aim.db");
            let store = SqliteStore::open_read_only(&path)
                .await
                .with_context(|| format!("opening {}", path.display()))?;
            (Arc::new(store), path.display().to_string())
        }
        (None, Some(url)) => {
            let store = PgStore::connect_unmigrated(url)
                .await
                .context("connecting to PostgreSQL")?;
            (Arc::new(store), "postgresql".to_owned())
        }
        (None, None) => anyhow::bail!("give --data-dir or --database-url"),
    };
    let verdict = verify_chain(store.as_ref())
        .await
        .context("reading the event log")?;
    match verdict {
        Ok(n) => {
            match format {
                Format::Json => println!(
                    "{}",
                    serde_json::json!({ "intact": true, "records": n, "source": source })
                ),
                Format::Table => println!("intact: {n} records verified ({source})"),
            }
            Ok(())
        }
        Err(b) => {
            if format == Format::Json {
                println!(
                    "{}",
                    serde_json::json!({ "intact": false, "first_bad_seq": b.first_bad(), "problem": b.to_string(), "source": source })
                );
            }
            Err(anyhow::Error::new(b).context(format!("the audit chain of {source} is broken")))
        }
    }
}

fn row(e: &Event) -> Vec<String> {
    vec![
        e.seq.to_string(),
        e.at.to_string(),
        format!("{}:{}", e.actor.kind, e.actor.id),
        e.action.clone(),
        format!("{}:{}", e.target_type, e.target_id),
        e.outcome.to_string(),
        e.reason.clone(),
    ]
}

pub async fn list(client: &Client, format: Format, a: AuditListArgs) -> anyhow::Result<()> {
    let identity = match &a.identity {
        Some(i) => Some(client.find_identity(i).await?.id.to_string()),
        None => None,
    };
    let human = match &a.human {
        Some(h) => Some(client.find_human(h).await?.id.to_string()),
        None => None,
    };
    let filters: Vec<(&'static str, String)> = [
        ("identity", identity),
        ("human", human),
        ("action", a.action.clone()),
        ("outcome", a.outcome.clone()),
        ("since", a.since.clone()),
        ("until", a.until.clone()),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    let (items, next) = collect(&a.page, |mut p| {
        p.extend(filters.iter().cloned());
        async move { client.audit(&p).await }
    })
    .await?;
    emit(format, &items, |items| {
        let mut t = Table::new(&[
            "SEQ", "AT", "ACTOR", "ACTION", "TARGET", "OUTCOME", "REASON",
        ]);
        for e in items {
            t.row(row(e));
        }
        t.print();
    })?;
    more_hint(format, &next);
    Ok(())
}

pub async fn show(client: &Client, format: Format, seq: i64) -> anyhow::Result<()> {
    let e = client.audit_record(seq).await?;
    emit(format, &e, |e| {
        fields(&[
            ("seq", e.seq.to_string()),
            ("at", e.at.to_string()),
            ("actor", format!("{}:{}", e.actor.kind, e.actor.id)),
            ("action", e.action.clone()),
            ("target", format!("{}:{}", e.target_type, e.target_id)),
            ("outcome", e.outcome.to_string()),
            ("reason", e.reason.clone()),
            ("detail", e.detail.to_string()),
            ("prev hash", e.prev_hash.clone()),
            ("hash", e.hash.clone()),
        ])
    })
}
