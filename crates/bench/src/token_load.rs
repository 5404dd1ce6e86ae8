//! Token issuance and verification: starts `aim serve` (release build) on a fresh SQLite
//! data dir, registers an agent with an Ed25519 key, and measures over loopback HTTP
//! `POST /oauth/token` (client_credentials with a fresh private_key_jwt assertion and a
//! fresh DPoP proof, for an open task) at each concurrency; then verifies access tokens,
//! alone and with a DPoP proof, in-process on one core.
//!
//! ```sh
//! cargo build --release --bin aim --bin token-load
//! target/release/token-load --aim target/release/aim
//! ```
//!
//! The load generator signs each assertion on the same two cores the server uses.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aim_bench::{Serve, report};
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

async fn issue_load(
    concurrency: usize,
    seconds: u64,
    client_id: Arc<String>,
    key: Arc<ClientKey>,
    endpoint: Arc<String>,
    task: Arc<String>,
) -> anyhow::Result<Vec<u64>> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client_id, key, endpoint, task) = (
            client_id.clone(),
            key.clone(),
            endpoint.clone(),
            task.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()?;
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                let assertion = key
                    .assertion(&client_id, &endpoint, now(), 60)
                    .map_err(anyhow::Error::msg)?;
                let proof = key
                    .dpop_proof("POST", &endpoint, None, now())
                    .map_err(anyhow::Error::msg)?;
                let resp = http
                    .post(endpoint.as_str())
                    .header("DPoP", proof)
                    .form(&[
                        ("grant_type", "client_credentials"),
                        ("client_assertion_type", ASSERTION),
                        ("client_assertion", assertion.as_str()),
                        ("task_id", task.as_str()),
                    ])
                    .send()
                    .await?;
                let status = resp.status();
                let body = resp.bytes().await?;
                lat.push(t.elapsed().as_micros() as u64);
                if !status.is_success() {
                    bail!("HTTP {status}: {}", String::from_utf8_lossy(&body));
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
    let (client_id, key, endpoint, task) = (
        Arc::new(client_id),
        Arc::new(key),
        Arc::new(endpoint),
        Arc::new(task),
    );
    for &c in &args.concurrency {
        let lat = issue_load(
            c,
            args.seconds,
            client_id.clone(),
            key.clone(),
            endpoint.clone(),
            task.clone(),
        )
        .await?;
        report(
            &format!("POST /oauth/token (private_key_jwt, open task), c={c}"),
            &lat,
            args.seconds,
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
