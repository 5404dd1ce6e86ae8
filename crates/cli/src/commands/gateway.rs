//! `aim gateway --config gateway.toml`: the enforcement point in front of tools.

use aim_gateway::Gateway;
use aim_gateway::config::Config;
use anyhow::Context;

use crate::args::GatewayArgs;
use crate::commands::serve::{init_logging, shutdown_signal};

pub async fn run(args: GatewayArgs) -> anyhow::Result<()> {
    init_logging(args.log_json);
    let config = Config::load(&args.config)?;
    let listen = config.listen;
    let admin = config.admin_listen;
    let resource = config.resource.clone();
    let routes = config.routes.len();
    let gateway = Gateway::new(config).map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    println!("aim gateway listening on http://{addr} for {resource} ({routes} routes)");
    if let Some(admin) = admin {
        let listener = tokio::net::TcpListener::bind(admin)
            .await
            .with_context(|| format!("cannot listen on {admin} (admin_listen)"))?;
        println!(
            "  /healthz, /readyz and /metrics on http://{}",
            listener.local_addr()?
        );
        tokio::spawn(aim_gateway::admin::serve(
            gateway.heard(),
            gateway.metrics(),
            listener,
        ));
    }
    aim_gateway::serve(gateway, listener, shutdown_signal())
        .await
        .context("serving the gateway")
}
