//! An MCP `tools/call` over loopback, four ways in one run: straight to an MCP server,
//! through `mcp-proxy` (crates.io: a Rust MCP gateway on tower that authorizes nothing per
//! call), and through `aim gateway` (the agent's token and a fresh DPoP proof checked, the
//! call decided in the gateway with the tool's pinned definition and aim's policy set, the
//! server's key injected) with its record durable at aim before the call goes on, and on
//! an `audit = "batched"` server, queued. The server is in this process and answers at
//! once; requests are made beforehand and replayed by `wrk`. It refuses to measure unless
//! every checked call was decided in the gateway, and prints one DPoP proof's verification
//! time, measured here.
//!
//! ```sh
//! cargo build --release --bin aim --bin mcp-load
//! cargo install mcp-proxy --version 0.6.0 --no-default-features
//! target/release/mcp-load --aim target/release/aim --mcp-proxy ~/.cargo/bin/mcp-proxy
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

/// Lists the tools of `server` through the gateway (aim records the definition), then
/// pins it.
async fn pin_the_tool(
    admin: &Client,
    key: &aim_token::client::ClientKey,
    token: &str,
    url: &str,
    server: &str,
) -> anyhow::Result<()> {
    let proof = key
        .dpop_proof("POST", url, Some(token), now())
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

/// The gateway's two servers with their tool pinned (durable, decided by aim; batched,
/// decided in the gateway), and a twin of it deciding durable calls itself, for the
/// comparison: their URLs and the twin.
async fn stage_paths(
    st: &aim_bench::GatewayStage,
    dir: &Path,
) -> anyhow::Result<(String, String, String, GatewayProcess)> {
    let url = format!("{}/mcp/crm", st.resource);
    let batched = format!("{}/mcp/crm-batched", st.resource);
    pin_the_tool(&st.admin, &st.key, &st.token, &url, "crm").await?;
    pin_the_tool(&st.admin, &st.key, &st.token, &batched, "crm_batched").await?;
    let (twin, base) = st.twin(&dir.join("here"), "decide = \"gateway\"").await?;
    Ok((url, batched, format!("{base}/mcp/crm"), twin))
}

/// What each path through the gateway is: the default gateway's durable server, its twin
/// deciding durable calls itself, the default gateway's batched server.
const WHAT: [&str; 3] = [
    "token + DPoP + pin + policy decided by aim, durable on its record, key injected (a durable route's default)",
    "the same decided in the gateway, its record durable at aim (`decide = \"gateway\"`)",
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let up = start_mcp_server().await?;
    let st = aim_bench::gateway_stage(&args.load.aim, dir.path(), PERMIT, |key| mcp_route(up, key))
        .await?;
    let proxy = match &args.mcp_proxy {
        Some(bin) => Some(start_mcp_proxy(bin, dir.path(), up).await?),
        None => None,
    };
    let (url, batched, here, _here) = stage_paths(&st, dir.path()).await?;
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
    let mut checked = aim_headers.to_vec();
    checked.push(("Authorization", &authorization));
    for (at, htu) in [(&url, &url), (&batched, &batched), (&here, &url)] {
        check_answered(at, &checked, &body, Some(proof(&st, htu)?)).await?;
    }
    // Each figure is of the path it names: the durable call decided by aim, the batched one
    // in the gateway.
    let (taken_here, by_aim) = st.decisions_taken().await?;
    anyhow::ensure!(
        taken_here == 1 && by_aim == 1,
        "the gateway took {taken_here} decisions itself and left {by_aim} to aim"
    );
    println!(
        "one DPoP proof's verification (Ed25519, in process): {:.1} µs",
        proof_micros(&st.key, &url, &st.token)?
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
            (&url, &url, WHAT[0]),
            (&here, &url, WHAT[1]),
            (&batched, &batched, WHAT[2]),
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
