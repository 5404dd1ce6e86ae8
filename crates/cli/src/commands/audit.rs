use std::sync::Arc;

use aim_store::postgres::PgStore;
use aim_store::sqlite::SqliteStore;
use aim_store::{DynStore, verify_chain};
use anyhow::Context;

use crate::args::{Format, VerifyArgs};

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
