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

use std::path::Path;
use std::time::Instant;

use aim_bench::{ASSERTION, WrkRun, agent, now, presigned_wrk, task_token};
use aim_token::access::{self, Expect, TrustedKeys};
use aim_token::client::ClientKey;
use clap::Parser;
use serde_json::Value;

#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    load: aim_bench::LoadArgs,
    /// Access tokens verified in-process (one core).
    #[arg(long, default_value_t = 100_000)]
    verifications: usize,
}

/// One wrk run of `POST /oauth/token` over requests signed beforehand.
fn issue_load(
    dir: &Path,
    concurrency: usize,
    seconds: u64,
    pool: usize,
    signer: (&str, &ClientKey, &str, &str),
) -> anyhow::Result<String> {
    let (client_id, key, endpoint, task) = signer;
    let form = format!(
        "grant_type=client_credentials&client_assertion_type={}",
        ASSERTION.replace(':', "%3A")
    );
    let line = || -> anyhow::Result<String> {
        let assertion = key
            .assertion(client_id, endpoint, now(), 120)
            .map_err(anyhow::Error::msg)?;
        let proof = key
            .dpop_proof("POST", endpoint, None, now())
            .map_err(anyhow::Error::msg)?;
        Ok(format!(
            "{proof}\t{form}&client_assertion={assertion}&task_id={task}"
        ))
    };
    presigned_wrk(
        dir,
        &WrkRun {
            started: None,
            concurrency,
            seconds,
            url: endpoint,
            pool,
            content_type: "application/x-www-form-urlencoded",
            authorization: None,
            headers: &[],
        },
        line,
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("aim-data");
    let serve = args.load.serve(&data)?;
    let admin = serve.admin_token()?;
    let base = serve.addr.clone();
    let (client_id, key, endpoint, task) = agent(&base, &admin).await?;
    for &c in &args.load.concurrency {
        // Generous: a run that outruns its pool fails rather than reporting replays.
        let pool = args.load.seconds as usize * if c == 1 { 4_000 } else { 16_000 };
        let result = issue_load(
            dir.path(),
            c,
            args.load.seconds,
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
    let token = task_token(&base, &client_id, &key, &endpoint, &task).await?;
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
    let cached = args.verifications as f64 / secs;
    println!(
        "verify access token + DPoP proof in-process (one core, verified-token cache): {} in {secs:.2} s = {cached:.0} requests/s",
        args.verifications,
    );
    // The floor of the cached path: the one Ed25519 verification a fresh proof needs,
    // alone (the proof's own signature over its signing input, with aws-lc-rs).
    let bare = bare_ed25519(&call_proof, &key, args.verifications)?;
    println!(
        "bare Ed25519 verification of that proof (one core): {bare:.0}/s; the cached path is {:.2}x of it",
        cached / bare
    );
    Ok(())
}

/// Verifications per second of `proof`'s Ed25519 signature by `key`, nothing else.
fn bare_ed25519(proof: &str, key: &ClientKey, n: usize) -> anyhow::Result<f64> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (input, sig) = proof
        .rsplit_once('.')
        .ok_or_else(|| anyhow::anyhow!("a proof is a JWS"))?;
    let sig = b64.decode(sig)?;
    let x = key.public().to_json()["x"]
        .as_str()
        .map(|x| b64.decode(x))
        .transpose()?
        .ok_or_else(|| anyhow::anyhow!("an Ed25519 key has x"))?;
    let public = aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ED25519, x);
    let t = Instant::now();
    for _ in 0..n {
        public
            .verify(input.as_bytes(), &sig)
            .map_err(|_| anyhow::anyhow!("the proof's signature does not verify"))?;
    }
    Ok(n as f64 / t.elapsed().as_secs_f64())
}
