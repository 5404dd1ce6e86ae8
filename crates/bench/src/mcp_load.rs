//! An MCP `tools/call` over loopback, six ways in one run: straight to an MCP server,
//! through `mcp-proxy` (crates.io: a Rust MCP gateway on tower that authorizes nothing per
//! call), and through `aim gateway` (the agent's token and a fresh DPoP proof checked, the
//! tool's pinned definition and aim's policy set, the server's key injected) four ways:
//! decided by aim, durable on its record; decided in the gateway, durable at aim; decided
//! in the gateway, durable in its `[journal]`; and on an `audit = "batched"` server,
//! queued. The server is in this process and answers at once; requests are made beforehand
//! and replayed by `wrk`. It refuses to measure unless each checked call was decided where
//! its path says, and prints one DPoP proof's verification time, measured here.
//!
//! ```sh
//! cargo build --release --bin aim --bin mcp-load
//! cargo install mcp-proxy --version 0.6.0 --no-default-features
//! target/release/mcp-load --aim target/release/aim --mcp-proxy ~/.cargo/bin/mcp-proxy
//! # the gateways (only) on one tokio worker, as on a host they share with aim:
//! AIM_BENCH_GATEWAY_WORKERS=1 target/release/mcp-load --aim target/release/aim --mcp-proxy ~/.cargo/bin/mcp-proxy
//! # without behavioural baselines, or with more of aim's settings appended to its config:
//! target/release/mcp-load --aim target/release/aim --without-baselines
//! AIM_BENCH_AIM_CONFIG=$'[behaviour]\nsave_seconds = 3600' target/release/mcp-load --aim target/release/aim
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use aim_bench::{GatewayProcess, WrkRun, now, presigned_wrk};
use aim_client::Client;
use anyhow::{Context, bail};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use clap::Parser;
use serde_json::{Value, json};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    load: aim_bench::LoadArgs,
    /// The `mcp-proxy` binary (`cargo install mcp-proxy`); left out if not given.
    #[arg(long)]
    mcp_proxy: Option<PathBuf>,
}

fn call(tool: &str) -> String {
    json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": { "name": tool, "arguments": { "id": "7" } } })
    .to_string()
}

/// A minimal MCP server (streamable HTTP, JSON answers): one tool, `update_record`.
async fn mcp_server(headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let Ok(msg) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let method = msg["method"].as_str().unwrap_or_default();
    if msg.get("id").is_none() {
        return StatusCode::ACCEPTED.into_response();
    }
    let result = match method {
        "initialize" => json!({
            "protocolVersion": msg["params"]["protocolVersion"].as_str().unwrap_or("2025-11-25"),
            "capabilities": { "tools": {} },
            "serverInfo": { "name": "bench-crm", "version": "1.0.0" },
        }),
        "tools/list" => json!({ "tools": [{
            "name": "update_record",
            "description": "Update a CRM record",
            "inputSchema": { "type": "object", "properties": { "id": { "type": "string" } } },
        }] }),
        "tools/call" => json!({ "content": [{ "type": "text", "text": "updated" }] }),
        "ping" => json!({}),
        _ => {
            let error = json!({ "jsonrpc": "2.0", "id": msg["id"],
                                "error": { "code": -32601, "message": "not offered" } });
            return axum::Json(error).into_response();
        }
    };
    let mut response =
        axum::Json(json!({ "jsonrpc": "2.0", "id": msg["id"], "result": result })).into_response();
    if method == "initialize" && !headers.contains_key("mcp-session-id") {
        response.headers_mut().insert(
            "mcp-session-id",
            axum::http::HeaderValue::from_static("bench-session"),
        );
    }
    response
}

async fn start_mcp_server() -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/mcp",
        axum::routing::post(mcp_server)
            .get(|| async { StatusCode::METHOD_NOT_ALLOWED })
            .delete(|| async { StatusCode::OK }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `mcp-proxy` in front of the server, and a session opened through it: (URL, session id).
async fn start_mcp_proxy(
    bin: &Path,
    dir: &Path,
    up: SocketAddr,
) -> anyhow::Result<(GatewayProcess, String, String)> {
    let port = free_port()?;
    let config = dir.join("proxy.toml");
    std::fs::write(
        &config,
        format!(
            "[proxy]\nname = \"bench\"\n[proxy.listen]\nhost = \"127.0.0.1\"\nport = {port}\n\
             [observability]\naudit = false\nlog_level = \"warn\"\n\
             [[backends]]\nname = \"crm\"\ntransport = \"http\"\nurl = \"http://{up}/mcp\"\n"
        ),
    )?;
    let child = Command::new(bin)
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("spawning mcp-proxy")?;
    let process = GatewayProcess(child);
    let http = reqwest::Client::new();
    for path in ["/mcp", "/"] {
        let url = format!("http://127.0.0.1:{port}{path}");
        for _ in 0..100 {
            let init = json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": { "name": "mcp-load", "version": "1" } } });
            let sent = http
                .post(&url)
                .header("accept", "application/json, text/event-stream")
                .json(&init)
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    let session = r
                        .headers()
                        .get("mcp-session-id")
                        .and_then(|v| v.to_str().ok())
                        .context("mcp-proxy gave no session")?
                        .to_owned();
                    http.post(&url)
                        .header("accept", "application/json, text/event-stream")
                        .header("mcp-session-id", &session)
                        .json(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }))
                        .send()
                        .await?;
                    return Ok((process, url, session));
                }
                Ok(r) if r.status() == StatusCode::NOT_FOUND => break,
                _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            }
        }
    }
    bail!("mcp-proxy never answered an initialize")
}

/// The gateway in front of the MCP server at `up`.
fn mcp_route(up: SocketAddr, key: &Path) -> String {
    format!(
        r#"[upstreams.crm_mcp]
url = "http://{up}/mcp"
allow_addresses = ["127.0.0.1/32"]
credential = {{ kind = "header", name = "x-api-key", credential_file = "{}" }}
[mcp.crm]
upstream = "crm_mcp"
path = "/mcp/crm"
[mcp.crm_batched]
upstream = "crm_mcp"
path = "/mcp/crm-batched"
system = "crm"
audit = "batched"
"#,
        key.display()
    )
}

const PERMIT: &str = "permit(principal == Aim::Identity::\"{agent}\", action == Aim::Action::\"call_tool\", resource is Aim::Tool);";

/// Lists the tools through the gateway at `url` (aim records the definition; the gateway
/// keeps the hash it listed, which a call's decision in it needs), with a proof for `htu`.
async fn list_tools(
    key: &aim_token::client::ClientKey,
    token: &str,
    url: &str,
    htu: &str,
) -> anyhow::Result<()> {
    let proof = key
        .dpop_proof("POST", htu, Some(token), now())
        .map_err(anyhow::Error::msg)?;
    let listed = reqwest::Client::new()
        .post(url)
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/list")
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }))
        .send()
        .await?;
    anyhow::ensure!(
        listed.status().is_success(),
        "tools/list through the gateway: {}",
        listed.status()
    );
    Ok(())
}

/// Lists the tools of `server` through the gateway (aim records the definition), then
/// pins it.
async fn pin_the_tool(
    admin: &Client,
    key: &aim_token::client::ClientKey,
    token: &str,
    url: &str,
    server: &str,
) -> anyhow::Result<()> {
    list_tools(key, token, url, url).await?;
    let tool: aim_api::tools::ToolView = admin
        .call(
            reqwest::Method::GET,
            &format!("/v1/tools/{server}/update_record"),
            &Vec::new(),
            None::<&()>,
        )
        .await?;
    let _: Value = admin
        .call(
            reqwest::Method::POST,
            &format!("/v1/tools/{server}/update_record/approve"),
            &Vec::new(),
            Some(&json!({ "hash": tool.tool.seen.hash })),
        )
        .await?;
    Ok(())
}

/// Sends one call and checks the tool itself answered (a JSON-RPC error or a refusal as
/// an `isError` result would be 200s too, and measure nothing).
async fn check_answered(
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
    proof: Option<String>,
) -> anyhow::Result<()> {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(p) = proof {
        req = req.header("dpop", p);
    }
    let text = req.send().await?.text().await?;
    // A JSON body, or the `data:` of an event stream.
    let json = text
        .lines()
        .find_map(|l| l.strip_prefix("data:"))
        .unwrap_or(&text);
    let answer: Value = serde_json::from_str(json.trim()).context("the answer is not JSON-RPC")?;
    if answer["result"]["content"][0]["text"] != "updated" || answer["result"]["isError"] == true {
        bail!("{url} did not reach the tool: {answer}");
    }
    Ok(())
}

/// The paths through the gateway, for the comparison: its two servers with their tool
/// pinned (durable, decided by aim; batched, decided in the gateway), a twin of it deciding
/// durable calls itself with their records durable at aim, and a twin with a journal
/// (durable calls decided in it, their records durable on its disk). Their URLs and the
/// twins, and the journal's folder.
async fn stage_paths(st: &aim_bench::GatewayStage, dir: &Path) -> anyhow::Result<Paths> {
    let url = format!("{}/mcp/crm", st.resource);
    let batched = format!("{}/mcp/crm-batched", st.resource);
    pin_the_tool(&st.admin, &st.key, &st.token, &url, "crm").await?;
    pin_the_tool(&st.admin, &st.key, &st.token, &batched, "crm_batched").await?;
    let here = st.twin(&dir.join("here"), "decide = \"gateway\"").await?;
    let journal = dir.join("journal");
    let line = format!("[journal]\npath = \"{}\"", journal.display());
    let journaled = st.twin(&dir.join("journaled"), &line).await?;
    Ok(Paths {
        here: format!("{}/mcp/crm", here.url),
        journaled: format!("{}/mcp/crm", journaled.url),
        url,
        batched,
        journal,
        twins: [here, journaled],
    })
}

struct Paths {
    url: String,
    batched: String,
    here: String,
    journaled: String,
    journal: std::path::PathBuf,
    twins: [aim_bench::Twin; 2],
}

/// What each path through the gateway is, as [`stage_paths`] lists them.
const WHAT: [&str; 4] = [
    "token + DPoP + pin + policy decided by aim, durable on its record, key injected (a durable route's default)",
    "the same decided in the gateway, its record durable at aim (`decide = \"gateway\"`)",
    "the same decided in the gateway, its record durable in the gateway's `[journal]`",
    "decided in the gateway, `audit = \"batched\"` (record queued)",
];

/// A fresh DPoP proof of the stage's agent for `POST htu`.
fn proof(st: &aim_bench::GatewayStage, htu: &str) -> anyhow::Result<String> {
    st.key
        .dpop_proof("POST", htu, Some(&st.token), now())
        .map_err(anyhow::Error::msg)
}

/// The time one DPoP proof's check takes here (its Ed25519 signature, its claims), in µs:
/// the median of 2,000.
fn proof_micros(key: &aim_token::client::ClientKey, url: &str, token: &str) -> anyhow::Result<f64> {
    let mut took = Vec::with_capacity(2_000);
    for _ in 0..2_000 {
        let proof = key
            .dpop_proof("POST", url, Some(token), now())
            .map_err(anyhow::Error::msg)?;
        let expect = aim_token::dpop::Expect {
            method: "POST",
            url,
            access_token: Some(token),
            nonce: None,
            now: now(),
        };
        let started = std::time::Instant::now();
        aim_token::dpop::verify(&proof, &expect).map_err(|e| anyhow::anyhow!("{e}"))?;
        took.push(started.elapsed().as_secs_f64() * 1e6);
    }
    took.sort_by(f64::total_cmp);
    Ok(took[took.len() / 2])
}

/// Checks that one call on each path through the gateway reaches the tool and is decided
/// where the path says, and that the journaled twin's record went through its journal.
async fn check_paths(
    st: &aim_bench::GatewayStage,
    paths: &Paths,
    aim_headers: &[(&str, &str)],
    authorization: &str,
    body: &str,
) -> anyhow::Result<()> {
    let (url, batched, here, journaled) =
        (&paths.url, &paths.batched, &paths.here, &paths.journaled);
    let mut checked = aim_headers.to_vec();
    checked.push(("Authorization", authorization));
    // A twin decides a tool's call only once it has listed the tool itself.
    for at in [here, journaled] {
        list_tools(&st.key, &st.token, at, url).await?;
    }
    for (at, htu) in [
        (url, url),
        (batched, batched),
        (here, url),
        (journaled, url),
    ] {
        check_answered(at, &checked, body, Some(proof(st, htu)?)).await?;
    }
    // Each figure is of the path it names: the first gateway's durable call decided by
    // aim and its batched one here; each twin's call decided in the twin.
    let taken = [
        st.decisions_taken().await?,
        aim_bench::decisions_taken(&paths.twins[0].admin_url).await?,
        aim_bench::decisions_taken(&paths.twins[1].admin_url).await?,
    ];
    anyhow::ensure!(
        taken == [(1, 1), (1, 0), (1, 0)],
        "decisions (taken in the gateway, by aim): first {:?}, twins {:?} and {:?}",
        taken[0],
        taken[1],
        taken[2]
    );
    // The journaled twin's record went to aim through its journal.
    let mark = paths.journal.join("shipped");
    for _ in 0..100 {
        if mark.exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    anyhow::ensure!(
        mark.exists(),
        "the journaled gateway never shipped its record"
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let up = start_mcp_server().await?;
    let st =
        aim_bench::gateway_stage(&args.load, dir.path(), PERMIT, |key| mcp_route(up, key)).await?;
    let proxy = match &args.mcp_proxy {
        Some(bin) => Some(start_mcp_proxy(bin, dir.path(), up).await?),
        None => None,
    };
    let paths = stage_paths(&st, dir.path()).await?;
    let (url, batched, here, journaled) =
        (&paths.url, &paths.batched, &paths.here, &paths.journaled);
    let authorization = format!("DPoP {}", st.token);
    let accept = ("Accept", "application/json, text/event-stream");
    let direct = format!("http://{up}/mcp");
    let session = proxy
        .as_ref()
        .map(|(_, _, s)| s.clone())
        .unwrap_or_default();
    let proxy_headers = [accept, ("Mcp-Session-Id", session.as_str())];
    let direct_headers = [accept];
    let aim_headers = [
        accept,
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", "update_record"),
    ];
    let body = call("update_record");
    check_answered(&direct, &direct_headers, &body, None).await?;
    if let Some((_, url, _)) = &proxy {
        check_answered(url, &proxy_headers, &call("crm/update_record"), None).await?;
    }
    check_paths(&st, &paths, &aim_headers, &authorization, &body).await?;
    println!(
        "one DPoP proof's verification (Ed25519, in process): {:.1} µs",
        proof_micros(&st.key, url, &st.token)?
    );
    for &c in &args.load.concurrency {
        let pool = args.load.seconds as usize * if c == 1 { 3_000 } else { 12_000 };
        let run = |url, authorization, headers| WrkRun {
            concurrency: c,
            seconds: args.load.seconds,
            url,
            pool,
            content_type: "application/json",
            authorization,
            headers,
            started: None,
        };

        let plain = presigned_wrk(dir.path(), &run(&direct, None, &direct_headers[..]), || {
            Ok(format!("-\t{body}"))
        })?;
        println!("MCP server direct, c={c}: {plain}");
        if let Some((_, url, _)) = &proxy {
            let namespaced = call("crm/update_record");
            let result = presigned_wrk(dir.path(), &run(url, None, &proxy_headers[..]), || {
                Ok(format!("-\t{namespaced}"))
            })?;
            println!("through mcp-proxy 0.6.0 (no per-call authorization), c={c}: {result}");
        }

        let aim_runs = [
            (url, url, WHAT[0]),
            (here, url, WHAT[1]),
            (journaled, url, WHAT[2]),
            (batched, batched, WHAT[3]),
        ];
        for (at, htu, what) in aim_runs {
            let line = || Ok(format!("{}\t{body}", proof(&st, htu)?));
            let result = presigned_wrk(
                dir.path(),
                &run(at, Some(&authorization), &aim_headers[..]),
                line,
            )?;
            println!("through aim gateway, {what}, c={c}: {result}");
        }
    }
    let (taken_here, by_aim) = st.decisions_taken().await?;
    println!("first gateway: decisions taken in it {taken_here}, by aim {by_aim}");
    let (rss, peak) = st.serve.rss_mib()?;
    println!("aim serve RSS {rss} MiB (peak {peak} MiB)");
    Ok(())
}
