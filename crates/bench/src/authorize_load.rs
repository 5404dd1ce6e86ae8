//! `POST /v1/authorize` over loopback HTTP, as an agent asks it: its DPoP-bound access
//! token and a fresh proof on every request, under its task, against a policy set of N
//! policies (one permits this agent; the rest name other identities). Each decision
//! checks the token and its proof (single use), reads the identity and task, decides on
//! the slice, and writes a durable audit record before answering. Requests are made
//! beforehand and replayed by `wrk`.
//!
//! ```sh
//! cargo build --release --bin aim --bin authorize-load
//! target/release/authorize-load --aim target/release/aim
//! ```
//!
//! With `--flood N`, each concurrency runs twice: alone, then while N unauthenticated
//! requests from the same source arrive evenly over the run (`--flood-wrk` floods as fast
//! as a second `wrk` can instead); it prints both, how many refusals the flood made and
//! how many audit records they cost.

use aim_bench::{WrkRun, agent, now, presigned_wrk, task_token};
use aim_client::Client;
use clap::Parser;
use serde_json::json;

#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    load: aim_bench::LoadArgs,
    /// Policies in the set.
    #[arg(long, default_value_t = 1000)]
    policies: usize,
    /// Also measure each run while this many unauthenticated requests arrive, evenly
    /// spread over the run.
    #[arg(long)]
    flood: Option<u64>,
    /// Flood with a second `wrk` (-c16, as fast as it goes) instead.
    #[arg(long)]
    flood_wrk: bool,
}

/// `wrk -c16` on `url` (no credential) for `seconds`: how many requests it made.
fn flood_wrk(
    go: std::sync::Arc<tokio::sync::Notify>,
    url: String,
    seconds: u64,
) -> tokio::task::JoinHandle<anyhow::Result<u64>> {
    tokio::spawn(async move {
        go.notified().await;
        tokio::task::spawn_blocking(move || wrk_count(&url, seconds)).await?
    })
}

fn wrk_count(url: &str, seconds: u64) -> anyhow::Result<u64> {
    let out = std::process::Command::new("wrk")
        .args(["-t1", "-c16", &format!("-d{seconds}s"), url])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "  123456 requests in 10.00s, ..."
    let n = text
        .lines()
        .find_map(|l| {
            l.trim()
                .split_once(" requests in ")
                .map(|(n, _)| n.to_owned())
        })
        .ok_or_else(|| anyhow::anyhow!("no request count from wrk: {text}"))?;
    Ok(n.trim().parse()?)
}

/// `total` requests without a credential to `url`, spread evenly over `seconds`; how many
/// were refused (401).
fn flood_paced(
    go: std::sync::Arc<tokio::sync::Notify>,
    url: String,
    total: u64,
    seconds: u64,
) -> tokio::task::JoinHandle<anyhow::Result<u64>> {
    tokio::spawn(async move {
        go.notified().await;
        let http = reqwest::Client::new();
        let ticks = seconds.max(1) * 1000;
        let per_tick = total.div_ceil(ticks).max(1);
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(1));
        let mut running = tokio::task::JoinSet::new();
        let mut sent = 0;
        while sent < total {
            tick.tick().await;
            for _ in 0..per_tick.min(total - sent) {
                let (http, url) = (http.clone(), url.clone());
                running.spawn(async move { http.get(url).send().await.map(|r| r.status()) });
                sent += 1;
            }
        }
        let mut refused = 0;
        while let Some(r) = running.join_next().await {
            if r?? == reqwest::StatusCode::UNAUTHORIZED {
                refused += 1;
            }
        }
        Ok(refused)
    })
}

/// A set of `n` policies, one of which lets `client_id` read what is not restricted.
fn policy_set(client_id: &str, n: usize) -> aim_api::policies::ApplyBody {
    aim_api::policies::ApplyBody {
        content: aim_api::policies::Content {
            sources: vec![aim_domain::policy_file::Source {
                name: "load.cedar".into(),
                text: policies(client_id, n),
            }],
            links: Vec::new(),
        },
        comment: String::new(),
        expected_version: None,
    }
}

/// `n` policies, one of which lets `client_id` read what is not restricted.
fn policies(client_id: &str, n: usize) -> String {
    let mut text = format!(
        "permit(principal == Aim::Identity::\"{client_id}\", action == Aim::Action::\"read\", resource is Aim::Resource) when {{ resource.sensitivity != \"restricted\" }};\n"
    );
    for _ in 1..n {
        text.push_str(&format!(
            "permit(principal == Aim::Identity::\"{}\", action == Aim::Action::\"read\", resource is Aim::Resource) when {{ resource.sensitivity != \"restricted\" }};\n",
            uuid::Uuid::now_v7()
        ));
    }
    text
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("aim-data");
    let serve = args.load.serve(&data)?;
    let admin_token = serve.admin_token()?;
    let base = serve.addr.clone();
    let (client_id, key, endpoint, task) = agent(&base, &admin_token).await?;
    let admin = Client::new(&base, Some(admin_token.clone()));
    admin
        .apply_policies(&policy_set(&client_id, args.policies))
        .await?;
    let token = task_token(&base, &client_id, &key, &endpoint, &task).await?;
    let url = format!("{base}/v1/authorize");
    let body = json!({
        "action": "read",
        "resource": { "type": "Resource", "id": "crm/customers/7", "system": "crm",
                      "attrs": { "type": "customer_record", "sensitivity": "internal" } },
    })
    .to_string();
    let authorization = format!("DPoP {token}");
    let runs: Vec<(usize, bool)> = args
        .load
        .concurrency
        .iter()
        .flat_map(|&c| {
            if args.flood.is_some() || args.flood_wrk {
                vec![(c, false), (c, true)]
            } else {
                vec![(c, false)]
            }
        })
        .collect();
    for (c, flooded) in runs {
        let pool = args.load.seconds as usize * if c == 1 { 4_000 } else { 20_000 };
        let head_before = admin.audit_head().await?.seq;
        let target = format!("{base}/v1/identities");
        let go = std::sync::Arc::new(tokio::sync::Notify::new());
        let flooding = match (flooded, args.flood) {
            (false, _) => None,
            (true, Some(n)) => Some(flood_paced(go.clone(), target, n, args.load.seconds)),
            (true, None) => Some(flood_wrk(go.clone(), target, args.load.seconds + 1)),
        };
        let line = || -> anyhow::Result<String> {
            let proof = key
                .dpop_proof("POST", &url, Some(&token), now())
                .map_err(anyhow::Error::msg)?;
            Ok(format!("{proof}\t{body}"))
        };
        let result = presigned_wrk(
            dir.path(),
            &WrkRun {
                concurrency: c,
                seconds: args.load.seconds,
                url: &url,
                pool,
                content_type: "application/json",
                authorization: Some(&authorization),
                headers: &[],
                started: Some(&go),
            },
            line,
        )?;
        let refusals = match flooding {
            Some(f) => Some(f.await??),
            None => None,
        };
        // Let the last refusal window close, so its summary is on the record too.
        if refusals.is_some() {
            tokio::time::sleep(std::time::Duration::from_secs(11)).await;
        }
        let records = admin.audit_head().await?.seq - head_before;
        let decisions: i64 = result
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix("requests="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let under = match refusals {
            Some(n) => format!(
                " UNDER FLOOD of {n} unauthenticated requests; audit records {records} ({} beyond the decisions)",
                records - decisions
            ),
            None => format!("; audit records {records}"),
        };
        println!(
            "POST /v1/authorize (agent token + DPoP, {} policies, durable decision record, {}, wrk), c={c}: {result}{under}",
            args.policies,
            if args.load.without_baselines {
                "no baselines"
            } else {
                "baselines on"
            },
        );
    }
    let (rss, peak) = serve.rss_mib()?;
    println!("aim serve RSS {rss} MiB (peak {peak} MiB)");
    Ok(())
}
