//! Behavioural baselines in process: the time to learn a profile from 1M calls, what
//! holding one decision's call against the learnt profile adds to it (as the decision path
//! does it: the call as the baseline sees it, every detector, the response, the learning),
//! and the profile's memory.
//!
//! The calls are an around-the-clock service's: 5 systems, records drawn with a long tail
//! (2 % never seen before), tasks of 5–30 calls, about 2 a minute by day and 0.5 by night.
//!
//! ```sh
//! cargo build --release --bin baseline-bench && target/release/baseline-bench
//! ```

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::IpAddr;
use std::time::Instant;

use aim_domain::baseline::profile::{Learning, Observation, Profile};
use aim_domain::baseline::respond::Response;
use aim_domain::baseline::sketch::SketchKey;
use aim_domain::baseline::watch::{Rules, Seen, check};
use aim_domain::decision::Target;
use aim_domain::ids::TaskId;
use aim_domain::risk::DataSensitivity;
use aim_domain::time::Timestamp;
use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    /// Calls to learn from.
    #[arg(long, default_value_t = 1_000_000)]
    calls: usize,
    /// Decisions timed against the learnt profile.
    #[arg(long, default_value_t = 200_000)]
    decisions: usize,
}

/// SplitMix64, fixed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
}

const SYSTEMS: [&str; 5] = ["crm", "billing", "tickets", "warehouse", "reports"];

/// The calls, as (ms, system, record, subject, task).
fn calls(n: usize, rng: &mut Rng) -> Vec<(i64, usize, String, String, TaskId)> {
    let mut at = 1_795_996_800_000i64;
    let (mut task, mut left) = (TaskId::new(), 0u64);
    (0..n)
        .map(|_| {
            if left == 0 {
                task = TaskId::new();
                left = 5 + rng.next() % 26;
            }
            left -= 1;
            let hour = (at / 3_600_000) % 24;
            let per_minute = if (8..20).contains(&hour) { 2.0 } else { 0.5 };
            at += (-rng.uniform().ln() * 60_000.0 / per_minute) as i64 + 1;
            let record = if rng.uniform() < 0.02 {
                1_000 + rng.next() % 1_000_000
            } else {
                (-rng.uniform().ln() * 40.0) as u64
            };
            let system = (rng.next() % SYSTEMS.len() as u64) as usize;
            (
                at,
                system,
                format!("records/{record}"),
                format!("customer:{}", record % 997),
                task,
            )
        })
        .collect()
}

fn observation<'a>(c: &'a (i64, usize, String, String, TaskId), source: IpAddr) -> Observation<'a> {
    Observation {
        at: Timestamp::from_millis(c.0),
        action: "read",
        system: SYSTEMS[c.1],
        resource_type: "record",
        resource: &c.2,
        sensitivity: Some(DataSensitivity::Internal),
        tool: Some("crm.read_record"),
        subject: Some(&c.3),
        task: Some(c.4),
        key: Some("jkt-1"),
        source: Some(source),
        denied: false,
    }
}

/// A record of `system`, as a question names it.
fn target(system: usize, record: String, subject: String) -> Target {
    let attrs =
        serde_json::json!({ "type": "record", "sensitivity": "internal", "subject": subject });
    Target {
        kind: "Resource".into(),
        id: record,
        system: SYSTEMS[system].into(),
        attrs: attrs.as_object().cloned().unwrap_or_default(),
        tags: Default::default(),
    }
}

/// A high-risk autonomous agent registered for the service's systems (the strictest
/// responses).
fn agent() -> anyhow::Result<aim_domain::identity::Identity> {
    use aim_domain::identity::{Autonomy, IdentityKind, IdentityRequest};
    use aim_domain::risk::Level;
    let request = IdentityRequest {
        name: "agt-bench".into(),
        kind: IdentityKind::AiAgent,
        autonomy: Autonomy::Autonomous,
        sponsor_id: aim_domain::ids::HumanId::new(),
        owner_team: None,
        purpose: "a service around the clock".into(),
        systems: SYSTEMS.iter().map(|s| s.to_string()).collect(),
        data_sensitivity: DataSensitivity::Internal,
        criticality: Level::High,
        impact: Level::Medium,
        labels: Default::default(),
        expires_at: Timestamp::from_millis(1_795_996_800_000 + 60 * 86_400_000),
    };
    Ok(request.into_identity(
        aim_domain::ids::IdentityId::new(),
        aim_domain::ids::HumanId::new(),
        Timestamp::from_millis(1_795_996_800_000),
        &aim_domain::naming::NamingPolicy::default(),
        &aim_domain::governance::GovernanceConfig::default(),
    )?)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut rng = Rng(16);
    let source: IpAddr = IpAddr::from([10, 1, 2, 3]);
    let history = calls(args.calls, &mut rng);
    let mut profile = Profile::new(SketchKey::generate(), Timestamp::from_millis(history[0].0));
    let started = Instant::now();
    for c in &history {
        profile.learn(&observation(c, source));
    }
    let took = started.elapsed();
    println!(
        "learnt from {} calls ({} days) in {:.3} s: {:.0} ns a call; profile {} bytes",
        history.len(),
        (history[history.len() - 1].0 - history[0].0) / 86_400_000,
        took.as_secs_f64(),
        took.as_nanos() as f64 / history.len() as f64,
        profile.bytes()
    );
    assert!(!profile.learning(
        Learning::default(),
        Timestamp::from_millis(history[history.len() - 1].0)
    ));

    // Decisions after it, as the decision path holds each against the baseline: the call
    // as the baseline sees it (`Seen::of` from the question), the detectors, the response
    // and the learning (`watch::check`).
    let identity = agent()?;
    let rules = Rules::default();
    let next = calls(args.decisions, &mut rng);
    let offset = history[history.len() - 1].0 - next[0].0 + 1_000;
    let next: Vec<(i64, Target, TaskId)> = next
        .into_iter()
        .map(|(at, system, record, subject, task)| {
            (at + offset, target(system, record, subject), task)
        })
        .collect();
    let (mut checking, mut acted) = (Vec::with_capacity(next.len()), 0);
    let source = source.to_string();
    for (at, t, task) in &next {
        let started = Instant::now();
        let seen = Seen::of(
            Timestamp::from_millis(*at),
            "read",
            t,
            Some(*task),
            Some("jkt-1"),
            Some(&source),
            false,
        );
        let verdict = check(&mut profile, &seen, &identity, &rules);
        checking.push(started.elapsed().as_nanos() as u64);
        acted += usize::from(verdict.response != Response::Observe);
    }
    let mut took = checking;
    took.sort_unstable();
    let at = |p: f64| took[((took.len() as f64 * p) as usize).min(took.len() - 1)] as f64 / 1_000.0;
    println!(
        "a decision's call held against its baseline (Seen + detectors + response + learning): p50 {:.2} µs, p99 {:.2} µs, max {:.1} µs ({} calls)",
        at(0.5),
        at(0.99),
        at(1.0),
        took.len()
    );
    println!(
        "stepped up or locked: {acted} of {} (a normal service)",
        next.len()
    );
    Ok(())
}
