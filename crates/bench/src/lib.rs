//! Shared parts of the load runs: an `aim serve` child process and latency reports.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::Context;

/// `aim serve` as a child process on 127.0.0.1:0; killed when dropped.
#[derive(Debug)]
pub struct Serve {
    child: Child,
    pub addr: String,
}

impl Serve {
    pub fn start(aim: &Path, data_dir: &Path) -> anyhow::Result<Serve> {
        let mut child = Command::new(aim)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("AIM_LOG", "warn")
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
        Ok(Serve { child, addr })
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
