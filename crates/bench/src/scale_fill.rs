//! Makes a SQLite store filled with what aim's hot paths sit on, for `authorize-load` and
//! `token-load` to run on (`--from`): how a path's cost grows with the size of the audit
//! log, the registry, the single-use ids and the open tasks (BENCHMARKS.md).
//!
//! ```sh
//! cargo build --release --bin scale-fill --bin aim --bin authorize-load --bin token-load
//! target/release/scale-fill --aim target/release/aim --data-dir /tmp/aim-scale/events-1m --events 1000000
//! target/release/authorize-load --aim target/release/aim --from /tmp/aim-scale/events-1m
//! ```

use std::path::PathBuf;
use std::time::Instant;

use aim_bench::fill::{Fill, fill};
use anyhow::bail;
use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    /// The `aim` binary: it starts once on the new data dir to make its first admin and keys.
    #[arg(long)]
    aim: PathBuf,
    /// The data dir to make (it must not hold a store yet).
    #[arg(long)]
    data_dir: PathBuf,
    #[command(flatten)]
    fill: Fill,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let db = args.data_dir.join("aim.db");
    if db.exists() {
        bail!("{} already holds a store", db.display());
    }
    std::fs::create_dir_all(&args.data_dir)?;
    // First start: the admin (and its token file), the signing keys.
    aim_bench::Serve::start(&args.aim, &args.data_dir)?.admin_token()?;
    let started = Instant::now();
    fill(&db, &args.fill).await?;
    println!(
        "filled {} with {:?} in {:.1} s",
        db.display(),
        args.fill,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
