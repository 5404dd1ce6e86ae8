//! Token issuance and verification: starts `aim serve` (release build) on a fresh SQLite
//! data dir, registers an agent with an Ed25519 key, and measures over loopback HTTP
//! `POST /oauth/token` (client_credentials with a fresh private_key_jwt assertion and a
//! fresh DPoP proof each, for an open task) at each concurrency; then verifies access tokens,
//! alone and with a DPoP proof, in-process on one core.
//!
//! ```sh
//! cargo build --release --bin aim --bin token-load
//! target/release/token-load --aim target/release/aim
//! ```
//!
//! The requests are signed before each run and replayed by `wrk` (the peers' load
//! generator, `apt-get install wrk`), so the server is measured, not the client's crypto;
//! wrk still shares the two cores with the server.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use aim_bench::Serve;
use aim_client::Client;
use aim_domain::{Clock, SystemClock};
use aim_token::access::{self, Expect, TrustedKeys};
use aim_token::client::ClientKey;
use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};

#[derive(Debug, Parser)]
struct Args {
    /// The `aim` binary to run.
    #[arg(long)]
    aim: PathBuf,
    /// Concurrent client connections; the issuance run repeats for each.
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    concurrency: Vec<usize>,
    /// Seconds per run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Access tokens verified in-process (one core).
    #[arg(long, default_value_t = 100_000)]
    verifications: usize,
}

const ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn now() -> i64 {
    SystemClock.now().as_millis() / 1000
}

/// An approved agent with a registered key, and one open task.
async fn agent(base: &str, admin: &str) -> anyhow::Result<(String, ClientKey, String, String)> {
    let admin = Client::new(base, Some(admin.to_owned()));
    let mk = |user: &str, role: &str| {
        let admin = admin.clone();
        let (user, role) = (user.to_owned(), role.to_owned());
        async move {
            let h: aim_domain::human::Human = admin
                .call(
                    reqwest::Method::POST,
                    "/v1/humans",
                    &Vec::new(),
                    Some(&json!({ "user_name": user, "roles": [role] })),
                )
                .await?;
            let c: Value = admin
                .call(
                    reqwest::Method::POST,
                    &format!("/v1/humans/{}/credentials", h.id),
                    &Vec::new(),
                    Some(&json!({ "label": "bench" })),
                )
                .await?;
            anyhow::Ok((h, c["secret"].as_str().context("secret")?.to_owned()))
        }
    };
    let (sponsor, sponsor_secret) = mk("bench-sponsor", "sponsor").await?;
    let (_, approver_secret) = mk("bench-approver", "approver").await?;
    let sponsor_client = Client::new(base, Some(sponsor_secret));
    let req = aim_domain::identity::IdentityRequest {
        name: "agt-bench".into(),
        kind: aim_domain::identity::IdentityKind::AiAgent,
        autonomy: aim_domain::identity::Autonomy::Autonomous,
        sponsor_id: sponsor.id,
        owner_team: None,
        purpose: "token load".into(),
        systems: vec!["crm".into()],
        data_sensitivity: aim_domain::risk::DataSensitivity::Internal,
        criticality: aim_domain::risk::Level::Low,
        impact: aim_domain::risk::Level::Low,
        labels: Default::default(),
        expires_at: SystemClock.now().plus_days(30),
    };
    let i = sponsor_client.request_identity(&req).await?;
    Client::new(base, Some(approver_secret))
        .identity_action(i.id, "approve", "bench")
        .await?;
    let key = ClientKey::generate("EdDSA").map_err(anyhow::Error::msg)?;
    sponsor_client
        .add_agent_key(i.id, &key.public().to_json(), "bench")
        .await?;
    let endpoint = format!("{base}/oauth/token");
    let details = json!([{ "type": "aim_task", "purpose": "bench", "systems": ["crm"], "triggered_by": "bench" }]).to_string();
    let assertion = key
        .assertion(&i.id.to_string(), &endpoint, now(), 60)
        .map_err(anyhow::Error::msg)?;
    let proof = key
        .dpop_proof("POST", &endpoint, None, now())
        .map_err(anyhow::Error::msg)?;
    let r = Client::new(base, None)
        .oauth_token(
            &[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", ASSERTION),
                ("client_assertion", &assertion),
                ("authorization_details", &details),
            ],
            Some(&proof),
        )
        .await?;
    let task = r["task_id"].as_str().context("task_id")?.to_owned();
    Ok((i.id.to_string(), key, endpoint, task))
}

/// Signs `count` requests ahead of the run (a fresh assertion and DPoP proof each), split
/// into one file per wrk thread: a line is `proof TAB form-body`. Signing beforehand keeps
/// the load generator's own crypto off the two cores while the server is measured.
fn presign(
    dir: &Path,
    count: usize,
    threads: usize,
    client_id: &str,
    key: &ClientKey,
    endpoint: &str,
    task: &str,
) -> anyhow::Result<Vec<PathBuf>> {
    let per = count.div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let path = dir.join(format!("requests-{t}.txt"));
                scope.spawn(move || {
                    let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
                    for _ in 0..per {
                        let assertion = key
                            .assertion(client_id, endpoint, now(), 120)
                            .map_err(anyhow::Error::msg)?;
                        let proof = key
                            .dpop_proof("POST", endpoint, None, now())
                            .map_err(anyhow::Error::msg)?;
                        writeln!(
                            out,
                            "{proof}\tgrant_type=client_credentials&client_assertion_type={}&client_assertion={assertion}&task_id={task}",
                            ASSERTION.replace(':', "%3A")
                        )?;
                    }
                    out.flush()?;
                    anyhow::Ok(path)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().map_err(|_| anyhow::anyhow!("signer panicked"))?)
            .collect()
    })
}

/// wrk's script: each thread replays its own file of pre-signed requests once, in order;
/// `done` prints one machine-readable line.
const WRK_SCRIPT: &str = r#"
local files, n = {...}, 0
function setup(thread) n = n + 1; thread:set("file", files[n]) end
local items, i = {}, 0
function init(args)
  for line in io.lines(file) do
    local tab = line:find("\t", 1, true)
    items[#items + 1] = { line:sub(1, tab - 1), line:sub(tab + 1) }
  end
end
function request()
  i = i + 1
  local it = items[i] or items[#items] -- past the end: a replay, counted as non-2xx
  return wrk.format("POST", nil, { ["Content-Type"] = "application/x-www-form-urlencoded", ["DPoP"] = it[1] }, it[2])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f requests=%d non2xx=%d sockerr=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout))
end
"#;

/// One wrk run over pre-signed requests; returns wrk's RESULT line.
fn issue_load(
    dir: &Path,
    concurrency: usize,
    seconds: u64,
    pool: usize,
    signer: (&str, &ClientKey, &str, &str),
) -> anyhow::Result<String> {
    let threads = concurrency.min(2);
    let (client_id, key, endpoint, task) = signer;
    let files = presign(dir, pool, threads, client_id, key, endpoint, task)?;
    let script = dir.join("token.lua");
    std::fs::write(
        &script,
        WRK_SCRIPT.replace(
            "{...}",
            &format!(
                "{{{}}}",
                files
                    .iter()
                    .map(|f| format!("{:?}", f.display().to_string()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    )?;
    let out = Command::new("wrk")
        .arg(format!("-t{threads}"))
        .arg(format!("-c{concurrency}"))
        .arg(format!("-d{seconds}s"))
        .arg("-s")
        .arg(&script)
        .arg(endpoint)
        .output()
        .context("running wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let result = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .with_context(|| {
            format!(
                "no RESULT from wrk: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?
        .to_owned();
    if !result.contains(" non2xx=0 ") || !result.ends_with(" sockerr=0") {
        bail!(
            "errors under load (pool of {pool} pre-signed requests; a run past its end replays): {result}"
        );
    }
    Ok(result)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("aim-data");
    let serve = Serve::start(&args.aim, &data)?;
    let admin = std::fs::read_to_string(data.join("bootstrap-admin-token"))?
        .trim()
        .to_owned();
    let base = serve.addr.clone();
    let (client_id, key, endpoint, task) = agent(&base, &admin).await?;
    for &c in &args.concurrency {
        // Generous: a run that outruns its pool fails rather than reporting replays.
        let pool = args.seconds as usize * if c == 1 { 4_000 } else { 12_000 };
        let result = issue_load(
            dir.path(),
            c,
            args.seconds,
            pool,
            (&client_id, &key, &endpoint, &task),
        )?;
        println!(
            "POST /oauth/token (private_key_jwt + DPoP, open task, wrk, pre-signed), c={c}: {result}"
        );
    }
    let (rss, peak) = serve.rss_mib()?;
    println!("aim serve RSS {rss} MiB (peak {peak} MiB)");

    // In-process verification of one real token, as a gateway would do it per call.
    let assertion = key
        .assertion(&client_id, &endpoint, now(), 60)
        .map_err(anyhow::Error::msg)?;
    let proof = key
        .dpop_proof("POST", &endpoint, None, now())
        .map_err(anyhow::Error::msg)?;
    let r = Client::new(&base, None)
        .oauth_token(
            &[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", ASSERTION),
                ("client_assertion", &assertion),
                ("task_id", &task),
            ],
            Some(&proof),
        )
        .await?;
    let token = r["access_token"].as_str().context("token")?.to_owned();
    let jwks: Value = reqwest::get(format!("{base}/.well-known/jwks.json"))
        .await?
        .json()
        .await?;
    let keys = TrustedKeys::from_jwks(&jwks).map_err(anyhow::Error::msg)?;
    let expect = Expect {
        issuer: &base,
        audience: "aim",
        now: now(),
    };
    let t = Instant::now();
    for _ in 0..args.verifications {
        access::verify(&token, &keys, &expect).map_err(anyhow::Error::msg)?;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "verify access token in-process (one core): {} in {secs:.2} s = {:.0} tokens/s",
        args.verifications,
        args.verifications as f64 / secs
    );
    let url = "https://tools.example/crm/records/42";
    let call_proof = key
        .dpop_proof("GET", url, Some(&token), now())
        .map_err(anyhow::Error::msg)?;
    let t = Instant::now();
    for _ in 0..args.verifications {
        access::verify_request(&token, Some(&call_proof), "GET", url, &keys, &expect)
            .map_err(anyhow::Error::msg)?;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "verify access token + DPoP proof in-process (one core, no cache): {} in {secs:.2} s = {:.0} requests/s",
        args.verifications,
        args.verifications as f64 / secs
    );
    // As a gateway does: the token's signature once, a proof on every call.
    let verifier = access::Verifier::new(
        TrustedKeys::from_jwks(&jwks).map_err(anyhow::Error::msg)?,
        10_000,
    );
    let t = Instant::now();
    for _ in 0..args.verifications {
        verifier
            .verify_request(&token, Some(&call_proof), "GET", url, &expect)
            .map_err(anyhow::Error::msg)?;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "verify access token + DPoP proof in-process (one core, verified-token cache): {} in {secs:.2} s = {:.0} requests/s",
        args.verifications,
        args.verifications as f64 / secs
    );
    Ok(())
}
