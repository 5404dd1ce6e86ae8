//! Shared parts of the load runs: an `aim serve` child process, an agent with a key and a
//! task, pre-signed requests replayed by `wrk`, and latency reports.
//!
//! # Layout
//! - [`fill`] — stores filled before a run: identities, audit records, single-use ids, tasks
//! - [`stage`] — `aim gateway` in front of a run's upstream, with aim and an agent, and a twin
//!
//! The load runs are binaries beside it: `authorize_load` (`POST /v1/authorize`),
//! `token_load` (`POST /oauth/token`), `registry_load` (the registry at a million
//! identities), `audit_load` (the audit chain), `decide_bench` (one decision in process,
//! criterion-style figures) and `scale_fill` (a store to run the first two on).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use aim_client::Client;
use aim_domain::{Clock, SystemClock};
use aim_token::client::ClientKey;
use anyhow::{Context, bail};
use serde_json::{Value, json};

pub mod fill;
pub mod stage;

pub const ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Unix seconds.
pub fn now() -> i64 {
    SystemClock.now().as_millis() / 1000
}

/// `aim serve` as a child process on 127.0.0.1:0; killed when dropped.
#[derive(Debug)]
pub struct Serve {
    child: Child,
    pub addr: String,
    data_dir: PathBuf,
}

impl Serve {
    pub fn start(aim: &Path, data_dir: &Path) -> anyhow::Result<Serve> {
        Self::start_with_config(aim, data_dir, None)
    }

    /// As [`Serve::start`], with a config file.
    pub fn start_with_config(
        aim: &Path,
        data_dir: &Path,
        config: Option<&Path>,
    ) -> anyhow::Result<Serve> {
        let mut command = Command::new(aim);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir);
        if let Some(c) = config {
            command.arg("--config").arg(c);
        }
        let mut child = command
            // `AIM_BENCH_LOG=sqlx=debug` shows the server's statements, for instance.
            .env(
                "AIM_LOG",
                std::env::var("AIM_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .spawn()
            .context("spawning aim serve")?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().context("no output")??;
        let addr = first
            .strip_prefix("aim listening on ")
            .and_then(|r| r.split_whitespace().next())
            .context("unexpected first line")?
            .to_owned();
        std::thread::spawn(move || for _ in lines {});
        Ok(Serve {
            child,
            addr,
            data_dir: data_dir.to_owned(),
        })
    }

    /// The first admin's credential, as `aim serve` wrote it at first start.
    pub fn admin_token(&self) -> anyhow::Result<String> {
        Ok(
            std::fs::read_to_string(self.data_dir.join("bootstrap-admin-token"))
                .context("reading the bootstrap admin token")?
                .trim()
                .to_owned(),
        )
    }

    /// CPU seconds (user + system) the server has used so far.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        cpu_seconds(self.child.id())
    }

    /// (current, peak) resident set size in MiB.
    pub fn rss_mib(&self) -> anyhow::Result<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
                .map_or(0, |kb| kb / 1024)
        };
        Ok((field("VmRSS:"), field("VmHWM:")))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU seconds (user + system) process `pid` has used so far, from `/proc/<pid>/stat`
/// (clock ticks of 1/100 s).
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Ok((ticks(11) + ticks(12)) / 100.0)
}

/// One line: count, rate, and latency quantiles of sorted µs samples.
pub fn report(name: &str, lat: &[u64], seconds: u64) {
    let q = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64 / 1000.0;
    println!(
        "{name}: {} requests, {:.0} req/s, p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lat.len(),
        lat.len() as f64 / seconds as f64,
        q(0.50),
        q(0.90),
        q(0.99),
        q(1.0)
    );
}

/// An approved agent with a registered key, and one open task.
pub async fn agent(base: &str, admin: &str) -> anyhow::Result<(String, ClientKey, String, String)> {
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
    let id = i.id.to_string();
    let r = token_for(
        base,
        &id,
        &key,
        &endpoint,
        ("authorization_details", &details),
    )
    .await?;
    let task = r.task_id;
    Ok((i.id.to_string(), key, endpoint, task))
}

/// One `wrk` run over requests made beforehand.
#[derive(Debug)]
pub struct WrkRun<'a> {
    pub concurrency: usize,
    pub seconds: u64,
    pub url: &'a str,
    /// Requests made before the run; a run that outruns them fails rather than replaying.
    pub pool: usize,
    pub content_type: &'a str,
    /// A header every request carries, e.g. `DPoP <token>`.
    pub authorization: Option<&'a str>,
    /// More headers every request carries (name, value).
    pub headers: &'a [(&'a str, &'a str)],
    /// Told when `wrk` starts (after the requests were made), to start something beside it.
    pub started: Option<&'a tokio::sync::Notify>,
}

/// wrk's script: each thread replays its own file once, in order (a line is `DPoP-proof
/// TAB body`); `done` prints one machine-readable line.
const WRK_SCRIPT: &str = r#"
local files, n = {FILES}, 0
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
  local h = { ["Content-Type"] = CONTENT_TYPE, ["DPoP"] = it[1] }
  if AUTHORIZATION ~= "" then h["Authorization"] = AUTHORIZATION end
  for k, v in pairs(HEADERS) do h[k] = v end
  return wrk.format("POST", nil, h, it[2])
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

/// Makes `run.pool` request lines with `line` (on two threads, before the run, so the
/// load generator's own crypto stays off the cores while the server is measured), then
/// replays them with `wrk`; returns wrk's RESULT line. Fails on any non-2xx answer.
pub fn presigned_wrk(
    dir: &Path,
    run: &WrkRun<'_>,
    line: impl Fn() -> anyhow::Result<String> + Sync,
) -> anyhow::Result<String> {
    let threads = run.concurrency.min(2);
    let per = run.pool.div_ceil(threads);
    let line = &line;
    let files: Vec<PathBuf> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let path = dir.join(format!("requests-{t}.txt"));
                scope.spawn(move || {
                    let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
                    for _ in 0..per {
                        writeln!(out, "{}", line()?)?;
                    }
                    out.flush()?;
                    anyhow::Ok(path)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().map_err(|_| anyhow::anyhow!("signer panicked"))?)
            .collect::<anyhow::Result<_>>()
    })?;
    let lua_string = |s: &str| format!("{:?}", s);
    let script = dir.join("run.lua");
    std::fs::write(
        &script,
        format!(
            "CONTENT_TYPE = {}\nAUTHORIZATION = {}\nHEADERS = {{{}}}\n{}",
            lua_string(run.content_type),
            lua_string(run.authorization.unwrap_or("")),
            run.headers
                .iter()
                .map(|(k, v)| format!("[{}] = {}", lua_string(k), lua_string(v)))
                .collect::<Vec<_>>()
                .join(", "),
            WRK_SCRIPT.replace(
                "{FILES}",
                &format!(
                    "{{{}}}",
                    files
                        .iter()
                        .map(|f| lua_string(&f.display().to_string()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        ),
    )?;
    if let Some(n) = run.started {
        n.notify_one();
    }
    let out = Command::new("wrk")
        .arg(format!("-t{threads}"))
        .arg(format!("-c{}", run.concurrency))
        .arg(format!("-d{}s", run.seconds))
        .arg("-s")
        .arg(&script)
        .arg(run.url)
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
            "errors under load (pool of {} requests made beforehand; a run past its end replays): {result}",
            run.pool
        );
    }
    Ok(result)
}

/// The token endpoint's answer for the agent: a new task (`("authorization_details",
/// ...)`) or an open one (`("task_id", ...)`), DPoP-bound.
async fn token_for(
    base: &str,
    client_id: &str,
    key: &ClientKey,
    endpoint: &str,
    task: (&str, &str),
) -> anyhow::Result<aim_api::oauth::TokenResponse> {
    token_with(base, client_id, key, endpoint, &[task]).await
}

/// A DPoP-bound token for `client_id` with these form fields besides the client's.
pub async fn token_with(
    base: &str,
    client_id: &str,
    key: &ClientKey,
    endpoint: &str,
    extra: &[(&str, &str)],
) -> anyhow::Result<aim_api::oauth::TokenResponse> {
    let assertion = key
        .assertion(client_id, endpoint, now(), 60)
        .map_err(anyhow::Error::msg)?;
    let proof = key
        .dpop_proof("POST", endpoint, None, now())
        .map_err(anyhow::Error::msg)?;
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_assertion_type", ASSERTION),
        ("client_assertion", assertion.as_str()),
    ];
    form.extend_from_slice(extra);
    let r = Client::new(base, None)
        .oauth_token(&form, Some(&proof))
        .await?;
    Ok(r)
}

/// A DPoP-bound access token for the agent's open `task`.
pub async fn task_token(
    base: &str,
    client_id: &str,
    key: &ClientKey,
    endpoint: &str,
    task: &str,
) -> anyhow::Result<String> {
    let r = token_for(base, client_id, key, endpoint, ("task_id", task)).await?;
    Ok(r.access_token)
}

/// What every load run takes.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// The `aim` binary to run.
    #[arg(long)]
    pub aim: PathBuf,
    /// Concurrent client connections; the run repeats for each.
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    pub concurrency: Vec<usize>,
    /// Seconds per run.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Start from a copy of the store in this data dir (made by `scale-fill`) instead of
    /// an empty one.
    #[arg(long)]
    pub from: Option<PathBuf>,
    /// Keep no behavioural baselines (`[behaviour] mode = "off"`), to measure what they
    /// add to each decision.
    #[arg(long)]
    pub without_baselines: bool,
}

impl LoadArgs {
    /// Starts `aim serve` on `data_dir`, first copying the store of `--from` into it.
    pub fn serve(&self, data_dir: &Path) -> anyhow::Result<Serve> {
        if let Some(from) = &self.from {
            std::fs::create_dir_all(data_dir)?;
            for entry in std::fs::read_dir(from)? {
                let path = entry?.path();
                if path.is_file() {
                    let to = data_dir.join(path.file_name().context("a file name")?);
                    std::fs::copy(&path, to)
                        .with_context(|| format!("copying {}", path.display()))?;
                }
            }
        }
        if !self.without_baselines {
            return Serve::start(&self.aim, data_dir);
        }
        let parent = data_dir.parent().context("a data dir inside a folder")?;
        let config = parent.join("without-baselines.toml");
        std::fs::write(&config, "[behaviour]\nmode = \"off\"\n")?;
        Serve::start_with_config(&self.aim, data_dir, Some(&config))
    }
}

pub use stage::{
    GatewayProcess, GatewayStage, Twin, decisions_taken, gateway_account, gateway_stage,
    start_gateway, wait_ready,
};
