use std::io::IsTerminal;
use std::sync::Arc;

use aim_domain::SystemClock;
use aim_server::{Config, Server};
use anyhow::Context;
use tracing_subscriber::EnvFilter;

use crate::args::ServeArgs;

/// Logs to standard error, filtered by `AIM_LOG` (default `info`).
pub(crate) fn init_logging(json: bool) {
    let filter = EnvFilter::try_from_env("AIM_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_logging(args.log_json);
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let Some(a) = args.admin_listen {
        config.admin_listen = Some(a);
    }
    if let Some(u) = args.database_url {
        config.database_url = Some(u);
    }
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        config.tls.cert_file = Some(cert);
        config.tls.key_file = Some(key);
    }
    let scheme = if config.tls.cert_file.is_some() {
        "https"
    } else {
        "http"
    };
    let (server, startup) = Server::prepare(&config, Arc::new(SystemClock))
        .await
        .context("starting aim")?;
    println!(
        "aim listening on {scheme}://{} (store: {})",
        startup.addr, startup.store
    );
    if let Some(b) = &startup.bootstrap {
        println!("bootstrap admin credential (shown once): {}", b.secret);
        println!("  also written to {} (mode 0600)", b.file.display());
        println!("  export AIM_TOKEN=$(cat {})", b.file.display());
    }
    if let Some(a) = startup.admin {
        println!("  /healthz, /readyz and /metrics on http://{a}");
    }
    server.run(shutdown_signal()).await
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
