//! A discovery import at scale: writes a credential report of `--rows` generated IAM users
//! (1,000,000 by default: service users with one or two keys of every age and use, people
//! with console passwords, disabled users, a root row), starts `aim serve` (release) on a
//! fresh SQLite data dir, and runs `aim discover import aws-credential-report` on it as an
//! operator would. It reports the wall time and the peak resident memory of the CLI and of
//! the server, then the same for a second import of the same file (every account
//! unchanged), then a compliance report over them (`aim report compliance --format html`),
//! then every account assessed again without an import (`aim discover reassess`), then the
//! finding computation alone, in process: the report read and every account
//! assessed, without aim.
//!
//! ```sh
//! cargo build --release --bin aim --bin discovery-load
//! target/release/discovery-load --aim target/release/aim --rows 1000000
//! ```

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use aim_bench::Serve;
use aim_domain::discovery::{Owner, Subject, Thresholds, assess};
use aim_domain::time::{DAY_MS, Timestamp};
use aim_domain::{Clock, SystemClock};
use anyhow::Context;
use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    /// The `aim` binary to run.
    #[arg(long)]
    aim: std::path::PathBuf,
    /// IAM users in the generated report.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Accounts per batch the CLI sends.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
}

const HEADER: &str = "user,arn,user_creation_time,password_enabled,password_last_used,\
password_last_changed,password_next_rotation,mfa_active,access_key_1_active,\
access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,\
access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,\
access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,\
cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated";

/// A date `days` before `now`, as the report writes it.
fn date(now: Timestamp, days: u64) -> String {
    Timestamp::from_millis(now.as_millis() - i64::try_from(days).unwrap_or(0) * DAY_MS)
        .to_rfc3339()
        .replace('Z', "+00:00")
}

/// A small deterministic generator (xorshift), so every run writes the same file.
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below.max(1)
    }
}

/// One access key's five columns: active or not, rotated, last used (or N/A).
fn key(rng: &mut Rng, now: Timestamp, created: u64) -> String {
    let rotated = rng.next(created + 1);
    let used = match rng.next(10) {
        0 => "N/A".to_owned(),
        _ => date(now, rng.next(rotated + 1)),
    };
    format!("true,{},{used},eu-west-1,s3", date(now, rotated))
}

fn write_report(path: &Path, rows: u64, now: Timestamp) -> anyhow::Result<u64> {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(out, "{HEADER}")?;
    writeln!(
        out,
        "<root_account>,arn:aws:iam::111122223333:root,{},not_supported,{},not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A",
        date(now, 2000),
        date(now, 3)
    )?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let none = "false,N/A,N/A,N/A,N/A";
    for i in 1..rows {
        let created = 1 + rng.next(1500);
        let user = format!("svc-{i:07}");
        let arn = format!("arn:aws:iam::111122223333:user/bench/{user}");
        let (password, keys) = match rng.next(20) {
            // A person: a console password and no key.
            0 => (
                format!(
                    "true,{},{},N/A,true",
                    date(now, rng.next(60)),
                    date(now, rng.next(created))
                ),
                format!("{none},{none}"),
            ),
            // Disabled: an inactive key.
            1 => (
                "false,N/A,N/A,N/A,false".to_owned(),
                format!("false,{},N/A,N/A,N/A,{none}", date(now, created)),
            ),
            // Two active keys.
            2 | 3 => (
                "false,N/A,N/A,N/A,false".to_owned(),
                format!(
                    "{},{}",
                    key(&mut rng, now, created),
                    key(&mut rng, now, created)
                ),
            ),
            // A service user with a console password too.
            4 => (
                format!(
                    "true,{},{},N/A,false",
                    date(now, rng.next(30)),
                    date(now, created)
                ),
                format!("{},{none}", key(&mut rng, now, created)),
            ),
            _ => (
                "false,N/A,N/A,N/A,false".to_owned(),
                format!("{},{none}", key(&mut rng, now, created)),
            ),
        };
        writeln!(
            out,
            "{user},{arn},{},{password},{keys},false,N/A,false,N/A",
            date(now, created)
        )?;
    }
    out.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// Runs `aim discover import` on `file`: its wall time, peak resident memory (MiB) and CPU
/// seconds, and the import's summary.
fn import(
    args: &Args,
    serve: &Serve,
    token: &str,
    file: &Path,
) -> anyhow::Result<(Duration, u64, f64, String)> {
    let started = Instant::now();
    let mut child = Command::new(&args.aim)
        .args(["discover", "import", "aws-credential-report"])
        .arg(file)
        .args([
            "--source",
            "bench",
            "--batch",
            &args.batch.to_string(),
            "-o",
            "json",
        ])
        .env("AIM_ADDR", &serve.addr)
        .env("AIM_TOKEN", token)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("spawning aim discover import")?;
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let mut cpu = 0.0;
    loop {
        if let Ok(c) = aim_bench::cpu_seconds(child.id()) {
            cpu = c;
        }
        if let Ok(s) = std::fs::read_to_string(&status_file)
            && let Some(kb) = s
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        {
            peak = peak.max(kb / 1024);
        }
        if child.try_wait()?.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output()?;
    let took = started.elapsed();
    anyhow::ensure!(
        out.status.success(),
        "the import failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok((took, peak, cpu, v["summary"].to_string()))
}

/// Runs `aim ARGS` against `serve` as its admin; what it printed.
fn cli(args: &Args, serve: &Serve, token: &str, cli_args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(&args.aim)
        .args(cli_args)
        .env("AIM_ADDR", &serve.addr)
        .env("AIM_TOKEN", token)
        .output()
        .with_context(|| format!("running aim {}", cli_args.join(" ")))?;
    anyhow::ensure!(
        out.status.success(),
        "aim {} failed: {}",
        cli_args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let now = SystemClock.now();
    let file = dir.path().join("credential-report.csv");
    let t = Instant::now();
    let bytes = write_report(&file, args.rows, now)?;
    println!(
        "report: {} rows, {:.1} MiB, written in {:.1} s",
        args.rows,
        bytes as f64 / 1048576.0,
        t.elapsed().as_secs_f64()
    );
    // Long enough for a reassessment of every account to answer in one request.
    let config = dir.path().join("aim.toml");
    std::fs::write(&config, "[limits]\nrequest_timeout_seconds = 1800\n")?;
    let serve = Serve::start_with_config(&args.aim, &dir.path().join("aim-data"), Some(&config))?;
    let token = serve.admin_token()?;
    for run in ["first import", "re-import (unchanged)"] {
        let server_cpu = serve.cpu_seconds()?;
        let (took, cli_peak, cli_cpu, summary) = import(&args, &serve, &token, &file)?;
        let server_cpu = serve.cpu_seconds()? - server_cpu;
        let (_, server_peak) = serve.rss_mib()?;
        println!(
            "{run}: {:.1} s ({:.0} rows/s); CPU: CLI {cli_cpu:.1} s, aim serve {server_cpu:.1} s; peak memory: CLI {cli_peak} MiB, aim serve {server_peak} MiB (high-water mark so far)",
            took.as_secs_f64(),
            args.rows as f64 / took.as_secs_f64()
        );
        println!("  summary: {summary}");
    }
    let page = dir.path().join("compliance.html");
    let t = Instant::now();
    let page_arg = page.display().to_string();
    cli(
        &args,
        &serve,
        &token,
        &[
            "report",
            "compliance",
            "--format",
            "html",
            "--out",
            &page_arg,
        ],
    )?;
    println!(
        "compliance report over them: {:.2} s, {} KiB of HTML",
        t.elapsed().as_secs_f64(),
        std::fs::metadata(&page)?.len() / 1024
    );
    // The accounts assessed again without an import (what aim does daily): nothing moved,
    // so this is the read and the assessment, with nothing to write.
    let t = Instant::now();
    let server_cpu = serve.cpu_seconds()?;
    let out = cli(
        &args,
        &serve,
        &token,
        &["discover", "reassess", "--wait", "1790"],
    )?;
    println!(
        "reassessed without an import: {:.1} s, aim serve CPU {:.1} s, peak {} MiB: {}",
        t.elapsed().as_secs_f64(),
        serve.cpu_seconds()? - server_cpu,
        serve.rss_mib()?.1,
        out.trim()
    );
    // The finding computation alone: the report read and each account assessed, one at a
    // time as the CLI reads them.
    let thresholds = Thresholds {
        dormant_days: 30,
        rotation_days: 90,
    };
    let (mut n, mut findings) = (0u64, 0usize);
    let mut assessing = Duration::ZERO;
    let t = Instant::now();
    for a in aim_discovery::credential_report::open(std::fs::File::open(&file)?)? {
        let a = a?;
        let s = Instant::now();
        findings += assess(&Subject {
            account: &a,
            previous: Some(&a),
            owner: Owner::None,
            thresholds,
            now,
        })
        .len();
        assessing += s.elapsed();
        n += 1;
    }
    let total = t.elapsed();
    println!(
        "in process: read {n} accounts in {:.2} s, assessed them in {:.2} s ({:.2} µs each), {findings} findings",
        (total - assessing).as_secs_f64(),
        assessing.as_secs_f64(),
        assessing.as_secs_f64() * 1e6 / n.max(1) as f64
    );
    Ok(())
}
