//! A call through `aim gateway` over loopback, beside the same call straight to the
//! upstream: `POST /crm/records/{id}` with a ~110-byte JSON body, as an agent makes it (its
//! DPoP-bound token, a fresh proof on every request, under its task). Through the gateway,
//! each call is checked and decided by aim (`POST /v1/gateway/authorize` over a kept-alive
//! connection, the decision durable before the answer), forwarded with the upstream's
//! injected key, and its upstream status recorded after. The upstream answers 200 at once
//! (in this process). Requests are made beforehand and replayed by `wrk`.
//!
//! ```sh
//! cargo build --release --bin aim --bin gateway-load
//! target/release/gateway-load --aim target/release/aim
//! ```
//!
//! Beside it, in the same hour: `../shared/peers/haproxy-baseline.sh` (the same body
//! through HAProxy to nginx), the floor of a proxy hop that decides nothing.

use std::path::Path;

use aim_bench::{
    GatewayProcess, WrkRun, agent, gateway_account, now, presigned_wrk, start_gateway, token_with,
};
use aim_client::Client;
use clap::Parser;
use serde_json::json;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    load: aim_bench::LoadArgs,
}

const BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"update_record","arguments":{"id":"7"}}}"#;

/// An upstream that answers every request 200 with a small JSON body.
async fn upstream() -> anyhow::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().fallback(|| async { axum::Json(json!({ "ok": true })) });
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

/// aim serve, its gateway account, an agent allowed to write, the gateway in front of the
/// upstream; what the runs need.
struct Stage {
    // Stopped first (fields drop in order), so it does not outlive aim.
    _gateway: GatewayProcess,
    serve: aim_bench::Serve,
    key: aim_token::client::ClientKey,
    token: String,
    through: String,
    direct: String,
}

fn gateway_config(
    gw_port: u16,
    admin_port: u16,
    base: &str,
    secret: &Path,
    key: &Path,
    up: std::net::SocketAddr,
) -> String {
    format!(
        r#"listen = "127.0.0.1:{gw_port}"
admin_listen = "127.0.0.1:{admin_port}"
resource = "http://127.0.0.1:{gw_port}"
[aim]
url = "{base}"
credential_file = "{}"
[upstreams.crm]
url = "http://{up}"
strip_prefix = "/crm"
allow_addresses = ["127.0.0.1/32"]
credential = {{ kind = "header", name = "x-api-key", credential_file = "{}" }}
[[routes]]
upstream = "crm"
method = "POST"
path = "/crm/records/{{id}}"
action = "write"
resource = {{ system = "crm", id = "crm/records/{{id}}", attrs = {{ type = "record", sensitivity = "internal" }} }}
"#,
        secret.display(),
        key.display()
    )
}

async fn stage(args: &Args, dir: &Path) -> anyhow::Result<Stage> {
    let gw_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let admin_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let gateway = format!("http://127.0.0.1:{gw_port}");
    let aim_config = dir.join("aim.toml");
    std::fs::write(
        &aim_config,
        format!("[tokens]\nresources = [\"{gateway}\"]\n"),
    )?;
    let serve = aim_bench::Serve::start_with_config(
        &args.load.aim,
        &dir.join("aim-data"),
        Some(&aim_config),
    )?;
    let admin_token = serve.admin_token()?;
    let base = serve.addr.clone();
    let (client_id, key, endpoint, task) = agent(&base, &admin_token).await?;
    let admin = Client::new(&base, Some(admin_token));
    let policy: aim_api::policies::ApplyBody = serde_json::from_value(json!({
        "sources": [{ "name": "load.cedar", "text": format!(
            "permit(principal == Aim::Identity::\"{client_id}\", action == Aim::Action::\"write\", resource is Aim::Resource);"
        ) }],
    }))?;
    admin.apply_policies(&policy).await?;
    let secret = gateway_account(&admin, dir).await?;
    let key_file = dir.join("upstream-key");
    std::fs::write(&key_file, "upstream-key-for-load")?;
    let up = upstream().await?;
    let config = gateway_config(gw_port, admin_port, &base, &secret, &key_file, up);
    let gateway_process = start_gateway(&args.load.aim, dir, &config)?;
    aim_bench::wait_ready(&format!("http://127.0.0.1:{admin_port}/readyz")).await?;
    let token = token_with(
        &base,
        &client_id,
        &key,
        &endpoint,
        &[("task_id", task.as_str()), ("resource", gateway.as_str())],
    )
    .await?
    .access_token;
    Ok(Stage {
        _gateway: gateway_process,
        serve,
        key,
        token,
        through: format!("{gateway}/crm/records/7"),
        direct: format!("http://{up}/records/7"),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let st = stage(&args, dir.path()).await?;
    let authorization = format!("DPoP {}", st.token);
    for &c in &args.load.concurrency {
        let pool = args.load.seconds as usize * if c == 1 { 3_000 } else { 12_000 };
        let run = |url, authorization| WrkRun {
            concurrency: c,
            seconds: args.load.seconds,
            url,
            pool,
            content_type: "application/json",
            authorization,
            headers: &[],
            started: None,
        };
        let plain = presigned_wrk(dir.path(), &run(&st.direct, None), || {
            Ok(format!("-\t{BODY}"))
        })?;
        println!("upstream direct (no auth), c={c}: {plain}");
        let line = || -> anyhow::Result<String> {
            let proof = st
                .key
                .dpop_proof("POST", &st.through, Some(&st.token), now())
                .map_err(anyhow::Error::msg)?;
            Ok(format!("{proof}\t{BODY}"))
        };
        let result = presigned_wrk(dir.path(), &run(&st.through, Some(&authorization)), line)?;
        println!(
            "through aim gateway (token + DPoP checked, decided and recorded by aim, key injected), c={c}: {result}"
        );
    }
    let (rss, peak) = st.serve.rss_mib()?;
    println!("aim serve RSS {rss} MiB (peak {peak} MiB)");
    Ok(())
}
