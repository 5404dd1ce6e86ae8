//! The registry at scale: bulk-creates N identities in a SQLite data dir, starts `aim serve`
//! on it as a separate process, and measures over loopback HTTP the latency of a filtered
//! page of 100 and of a get by id, plus the server's resident memory.
//!
//! ```sh
//! cargo build --release --bin aim --bin registry-load
//! target/release/registry-load --aim target/release/aim --identities 1000000
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aim_bench::fill::Rng;
use aim_bench::{Serve, report};
use aim_domain::ids::IdentityId;
use aim_domain::{Clock, SystemClock};
use aim_store::IdentityStore;
use aim_store::sqlite::SqliteStore;
use anyhow::{Context, bail};
use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    /// The `aim` binary to run.
    #[arg(long)]
    aim: PathBuf,
    /// Data dir to fill (created; must not hold a store yet unless --reuse).
    #[arg(long, default_value = "/tmp/aim-bench-data")]
    data_dir: PathBuf,
    #[arg(long, default_value_t = 1_000_000)]
    identities: usize,
    #[arg(long, default_value_t = 1000)]
    sponsors: usize,
    /// Use an existing filled data dir as it is.
    #[arg(long)]
    reuse: bool,
    /// Concurrent client connections; each scenario runs once per value.
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    concurrency: Vec<usize>,
    /// Seconds per scenario.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
}

async fn fill(args: &Args) -> anyhow::Result<Vec<IdentityId>> {
    let store = SqliteStore::open(&args.data_dir.join("aim.db")).await?;
    let sponsors = aim_bench::fill::sponsors(&store, args.sponsors).await?;
    let started = Instant::now();
    let ids = aim_bench::fill::identities(&store, args.identities, &sponsors).await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "bulk create: {} identities in {:.1} s = {:.0} identities/s (SQLite, batches of 5000, each with its event, synchronous=FULL)",
        args.identities,
        secs,
        args.identities as f64 / secs
    );
    Ok(ids)
}

async fn ids_from_store(args: &Args) -> anyhow::Result<Vec<IdentityId>> {
    let store = SqliteStore::open(&args.data_dir.join("aim.db")).await?;
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_identities(&Default::default(), after.as_ref(), 1000)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(aim_store::IdentityCursor::Id(last.id));
        ids.extend(page.iter().map(|i| i.id));
    }
    Ok(ids)
}

/// Runs `concurrency` loops of GET `make(rng)` for `seconds`, each on its own keep-alive
/// connection; returns sorted latencies in µs.
async fn load<F>(token: &str, concurrency: usize, seconds: u64, make: F) -> anyhow::Result<Vec<u64>>
where
    F: Fn(&mut Rng) -> String + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse()?,
    );
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let make = make.clone();
        let headers = headers.clone();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .default_headers(headers)
                .pool_max_idle_per_host(1)
                .build()?;
            let mut rng = Rng(0xDEAD_BEEF ^ ((w as u64 + 1) * 7919));
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let url = make(&mut rng);
                let t = Instant::now();
                let resp = http.get(&url).send().await?;
                let status = resp.status();
                let _ = resp.bytes().await?;
                lat.push(t.elapsed().as_micros() as u64);
                if !status.is_success() {
                    bail!("{url}: HTTP {status}");
                }
            }
            anyhow::Ok(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    all.sort_unstable();
    Ok(all)
}

/// The ids of up to 1,000 active humans.
async fn active_sponsors(base: &str, token: &str) -> anyhow::Result<Vec<String>> {
    let v: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/v1/humans?limit=1000&state=active"))
        .bearer_auth(token)
        .send()
        .await?
        .json()
        .await?;
    Ok(v["items"]
        .as_array()
        .context("humans")?
        .iter()
        .filter_map(|h| h["id"].as_str().map(str::to_owned))
        .collect())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let token_file = args.data_dir.join("bootstrap-admin-token");
    let ids = if args.reuse {
        ids_from_store(&args).await?
    } else {
        if args.data_dir.join("aim.db").exists() {
            bail!(
                "{} already holds a store; remove it or pass --reuse",
                args.data_dir.display()
            );
        }
        // First start bootstraps the admin; then the bulk load goes straight to the store.
        drop(Serve::start(&args.aim, &args.data_dir)?);
        fill(&args).await?
    };
    let token = std::fs::read_to_string(&token_file)
        .context("bootstrap token")?
        .trim()
        .to_owned();
    let serve = Serve::start(&args.aim, &args.data_dir)?;
    let (rss, _) = serve.rss_mib()?;
    println!(
        "aim serve started on {} identities: RSS {rss} MiB",
        ids.len()
    );
    let base = serve.addr.clone();
    let sponsors = active_sponsors(&base, &token).await?;

    let soon = SystemClock.now().plus_days(25);
    let filters: Arc<Vec<String>> = Arc::new(
        [
            "state=active&kind=ai_agent".to_owned(),
            "state=suspended".to_owned(),
            "risk_tier=medium&state=active".to_owned(),
            "kind=service_account&dormant=false".to_owned(),
            "state=locked&risk_tier=low".to_owned(),
            "orphaned=true".to_owned(),
            "possible_duplicate=true".to_owned(),
            format!("expiring_before={soon}"),
        ]
        .to_vec(),
    );
    let sponsors = Arc::new(sponsors);
    let ids = Arc::new(ids);
    for &c in &args.concurrency {
        let (list_base, sponsors, filters) = (base.clone(), sponsors.clone(), filters.clone());
        let list = load(&token, c, args.seconds, move |rng| {
            if rng.below(5) == 0 {
                format!(
                    "{list_base}/v1/identities?limit=100&sponsor_id={}",
                    sponsors[rng.below(sponsors.len())]
                )
            } else {
                format!(
                    "{list_base}/v1/identities?limit=100&{}",
                    filters[rng.below(filters.len())]
                )
            }
        })
        .await?;
        report(
            &format!("list a filtered page of 100, c={c}"),
            &list,
            args.seconds,
        );
        let (get_base, ids) = (base.clone(), ids.clone());
        let get = load(&token, c, args.seconds, move |rng| {
            format!("{get_base}/v1/identities/{}", ids[rng.below(ids.len())])
        })
        .await?;
        report(
            &format!("get one identity by id, c={c}"),
            &get,
            args.seconds,
        );
        let prefix_base = base.clone();
        let prefix = load(&token, c, args.seconds, move |rng| {
            let kind = rng.pick(&["agt", "bot", "svc", "key", "job"]);
            // Each prefix matches about 20,000 names (`agt-bench-03`: 0300000 to 0399999).
            format!(
                "{prefix_base}/v1/identities?limit=100&name_prefix={kind}-bench-0{}",
                rng.below(10)
            )
        })
        .await?;
        report(
            &format!("list a name-prefix page of 100, c={c}"),
            &prefix,
            args.seconds,
        );
    }
    let (rss, peak) = serve.rss_mib()?;
    println!("aim serve RSS after load: {rss} MiB (peak {peak} MiB)");
    Ok(())
}
