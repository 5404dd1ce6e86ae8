//! `aim gateway` on a stage for load runs: aim serve, an agent with a token on a task,
//! the gateway in front of what a run configures, and a twin of it.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use aim_client::Client;
use aim_token::client::ClientKey;
use anyhow::{Context, bail};
use serde_json::json;

use crate::{Serve, agent, token_with};

/// `aim gateway` as a child process; killed when dropped.
#[derive(Debug)]
pub struct GatewayProcess(pub Child);

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn start_gateway(aim: &Path, dir: &Path, config: &str) -> anyhow::Result<GatewayProcess> {
    let path = dir.join("gateway.toml");
    std::fs::write(&path, config)?;
    let mut command = Command::new(aim);
    command
        .args(["gateway", "--config"])
        .arg(&path)
        .env("AIM_LOG", "warn")
        .stdout(Stdio::null());
    // The operator's knob for a gateway sharing its host (docs/operations.md), for the
    // gateways alone: not for aim, the tools or the load generator.
    if let Some(workers) = std::env::var_os("AIM_BENCH_GATEWAY_WORKERS").filter(|w| !w.is_empty()) {
        command.env("TOKIO_WORKER_THREADS", workers);
    }
    let child = command.spawn().context("spawning aim gateway")?;
    Ok(GatewayProcess(child))
}

/// A gateway account's credential, written to a file in `dir`.
pub async fn gateway_account(admin: &Client, dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    let human: aim_domain::human::Human = admin
        .call(
            reqwest::Method::POST,
            "/v1/humans",
            &Vec::new(),
            Some(&json!({ "user_name": "gw-load", "roles": ["gateway"] })),
        )
        .await?;
    let credential: serde_json::Value = admin
        .call(
            reqwest::Method::POST,
            &format!("/v1/humans/{}/credentials", human.id),
            &Vec::new(),
            Some(&json!({ "label": "load" })),
        )
        .await?;
    let file = dir.join("gateway-credential");
    std::fs::write(&file, credential["secret"].as_str().context("secret")?)?;
    Ok(file)
}

/// Waits until `url` answers 2xx (10 s at most).
pub async fn wait_ready(url: &str) -> anyhow::Result<()> {
    for _ in 0..200 {
        if reqwest::get(url)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    bail!("{url} never became ready")
}

/// aim serve (the gateway's URL one of its token resources), an agent the policy `permit`
/// allows (`{agent}` in it is the agent's id), and `aim gateway` in front of what `rest`
/// configures (given the file holding the upstream's key), ready; the agent's token is on
/// a task, for the gateway.
#[derive(Debug)]
pub struct GatewayStage {
    // Stopped first (fields drop in order), so it does not outlive aim.
    pub process: GatewayProcess,
    pub serve: Serve,
    pub admin: Client,
    pub key: ClientKey,
    pub token: String,
    /// The gateway's URL, without a trailing `/`.
    pub resource: String,
    /// Its admin listener's URL (`/metrics`).
    pub admin_url: String,
    aim_bin: std::path::PathBuf,
    /// Its config's `[aim]` table and what follows it, for a twin.
    aim_section: String,
    rest: String,
}

impl GatewayStage {
    /// A second gateway behind the same name (agents' proofs name the first's URL), with
    /// `aim_line` added to its `[aim]` table (or a table after it); its config and files go
    /// in `dir`.
    pub async fn twin(&self, dir: &Path, aim_line: &str) -> anyhow::Result<Twin> {
        let port = || -> anyhow::Result<u16> {
            Ok(std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port())
        };
        let (gw_port, admin_port) = (port()?, port()?);
        let config = format!(
            "listen = \"127.0.0.1:{gw_port}\"\nadmin_listen = \"127.0.0.1:{admin_port}\"\nresource = \"{}\"\n{}{aim_line}\n{}",
            self.resource, self.aim_section, self.rest
        );
        std::fs::create_dir_all(dir)?;
        let process = start_gateway(&self.aim_bin, dir, &config)?;
        let admin_url = format!("http://127.0.0.1:{admin_port}");
        wait_ready(&format!("{admin_url}/readyz")).await?;
        Ok(Twin {
            _process: process,
            url: format!("http://127.0.0.1:{gw_port}"),
            admin_url,
        })
    }

    /// How many decisions the gateway took itself, and how many it left to aim, from its
    /// metrics.
    pub async fn decisions_taken(&self) -> anyhow::Result<(u64, u64)> {
        decisions_taken(&self.admin_url).await
    }
}

/// A second gateway of a stage (see [`GatewayStage::twin`]), stopped when dropped.
#[derive(Debug)]
pub struct Twin {
    _process: GatewayProcess,
    /// Where it listens.
    pub url: String,
    pub admin_url: String,
}

/// How many decisions the gateway whose admin listener is at `admin_url` took itself, and
/// how many it left to aim, from its metrics.
pub async fn decisions_taken(admin_url: &str) -> anyhow::Result<(u64, u64)> {
    let text = reqwest::get(format!("{admin_url}/metrics"))
        .await?
        .text()
        .await?;
    let (mut here, mut aim) = (0, 0);
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("aim_gateway_decisions_total{") else {
            continue;
        };
        let n: u64 = rest
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if rest.starts_with("taken=\"gateway\"") {
            here += n;
        } else {
            aim += n;
        }
    }
    Ok((here, aim))
}

pub async fn gateway_stage(
    load: &crate::LoadArgs,
    dir: &Path,
    permit: &str,
    rest: impl FnOnce(&Path) -> String,
) -> anyhow::Result<GatewayStage> {
    let aim = load.aim.as_path();
    let port = |_| -> anyhow::Result<u16> {
        Ok(std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port())
    };
    let (gw_port, admin_port) = (port(())?, port(())?);
    let resource = format!("http://127.0.0.1:{gw_port}");
    let aim_config = dir.join("aim.toml");
    std::fs::write(
        &aim_config,
        format!(
            "[tokens]\nresources = [\"{resource}\"]\n{}{}",
            if load.without_baselines {
                "[behaviour]\nmode = \"off\"\n"
            } else {
                ""
            },
            // More of aim's settings for an experiment (`[behaviour]\nsave_seconds = 3600`).
            std::env::var("AIM_BENCH_AIM_CONFIG").unwrap_or_default()
        ),
    )?;
    let serve = Serve::start_with_config(aim, &dir.join("aim-data"), Some(&aim_config))?;
    let admin_token = serve.admin_token()?;
    let base = serve.addr.clone();
    let (client_id, key, endpoint, task) = agent(&base, &admin_token).await?;
    let admin = Client::new(&base, Some(admin_token));
    let policy: aim_api::policies::ApplyBody = serde_json::from_value(json!({
        "sources": [{ "name": "load.cedar", "text": permit.replace("{agent}", &client_id) }],
    }))?;
    admin.apply_policies(&policy).await?;
    let secret = gateway_account(&admin, dir).await?;
    let key_file = dir.join("upstream-key");
    std::fs::write(&key_file, "upstream-key-for-load")?;
    let aim_section = format!(
        "[aim]\nurl = \"{base}\"\ncredential_file = \"{}\"\n",
        secret.display()
    );
    let rest = rest(&key_file);
    let config = format!(
        "listen = \"127.0.0.1:{gw_port}\"\nadmin_listen = \"127.0.0.1:{admin_port}\"\nresource = \"{resource}\"\n{aim_section}{rest}"
    );
    let process = start_gateway(aim, dir, &config)?;
    wait_ready(&format!("http://127.0.0.1:{admin_port}/readyz")).await?;
    let token = token_with(
        &base,
        &client_id,
        &key,
        &endpoint,
        &[("task_id", task.as_str()), ("resource", resource.as_str())],
    )
    .await?
    .access_token;
    Ok(GatewayStage {
        process,
        serve,
        admin,
        key,
        token,
        resource,
        admin_url: format!("http://127.0.0.1:{admin_port}"),
        aim_bin: aim.to_owned(),
        aim_section,
        rest,
    })
}
