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

use aim_bench::{WrkRun, now, presigned_wrk};
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

/// The gateway in front of `up`: one REST route, `POST /crm/records/{id}`, a write.
fn routes(up: std::net::SocketAddr, key: &Path) -> String {
    format!(
        r#"[upstreams.crm]
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
        key.display()
    )
}

const PERMIT: &str = "permit(principal == Aim::Identity::\"{agent}\", action == Aim::Action::\"write\", resource is Aim::Resource);";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let up = upstream().await?;
    let st =
        aim_bench::gateway_stage(&args.load, dir.path(), PERMIT, |key| routes(up, key)).await?;
    let through = format!("{}/crm/records/7", st.resource);
    let direct = format!("http://{up}/records/7");
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
        let plain = presigned_wrk(dir.path(), &run(&direct, None), || Ok(format!("-\t{BODY}")))?;
        println!("upstream direct (no auth), c={c}: {plain}");
        let line = || -> anyhow::Result<String> {
            let proof = st
                .key
                .dpop_proof("POST", &through, Some(&st.token), now())
                .map_err(anyhow::Error::msg)?;
            Ok(format!("{proof}\t{BODY}"))
        };
        let result = presigned_wrk(dir.path(), &run(&through, Some(&authorization)), line)?;
        println!(
            "through aim gateway (token + DPoP checked, decided and recorded by aim, key injected), c={c}: {result}"
        );
    }
    let (rss, peak) = st.serve.rss_mib()?;
    println!("aim serve RSS {rss} MiB (peak {peak} MiB)");
    Ok(())
}
