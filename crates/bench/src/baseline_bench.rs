//! Behavioural baselines in process: the time to learn a profile from 1M calls, what the
//! detectors and the response add to one decision (first-of-a-kind and count detectors,
//! then `respond`, against a learnt profile), and the profile's memory.
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

use aim_domain::baseline::burst::bursts;
use aim_domain::baseline::detect::{Registered, first_of_a_kind};
use aim_domain::baseline::profile::{Learning, Observation, Profile};
use aim_domain::baseline::respond::{Responses, respond};
use aim_domain::baseline::sketch::SketchKey;
use aim_domain::identity::Autonomy;
use aim_domain::ids::TaskId;
use aim_domain::risk::{DataSensitivity, RiskTier};
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

fn main() {
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

    // Decisions after it: each checked (first-of-a-kind, counts, response), then learnt.
    let registered: Vec<String> = SYSTEMS.iter().map(|s| (*s).to_owned()).collect();
    let responses = Responses::default_for(RiskTier::High, Autonomy::Autonomous);
    let next = calls(args.decisions, &mut rng);
    let offset = history[history.len() - 1].0 - next[0].0 + 1_000;
    let next: Vec<_> = next
        .into_iter()
        .map(|(at, s, r, sub, t)| (at + offset, s, r, sub, t))
        .collect();
    let (mut checking, mut learning, mut acted) = (
        Vec::with_capacity(next.len()),
        Vec::with_capacity(next.len()),
        0,
    );
    for c in &next {
        let o = observation(c, source);
        let started = Instant::now();
        let mut found = first_of_a_kind(
            &profile,
            &o,
            Registered {
                systems: &registered,
            },
        );
        found.extend(bursts(&profile, &o));
        let response = respond(responses, &found, false, &[]);
        checking.push(started.elapsed().as_nanos() as u64);
        acted += usize::from(
            response.is_some_and(|(r, _)| r != aim_domain::baseline::respond::Response::Observe),
        );
        let started = Instant::now();
        profile.learn(&o);
        learning.push(started.elapsed().as_nanos() as u64);
    }
    for (what, mut took) in [
        ("checked (detectors + response)", checking),
        ("learnt", learning),
    ] {
        took.sort_unstable();
        let at =
            |p: f64| took[((took.len() as f64 * p) as usize).min(took.len() - 1)] as f64 / 1_000.0;
        println!(
            "a decision's call {what}: p50 {:.2} µs, p99 {:.2} µs, max {:.1} µs ({} calls)",
            at(0.5),
            at(0.99),
            at(1.0),
            took.len()
        );
    }
    println!(
        "stepped up or locked: {acted} of {} (a normal service)",
        next.len()
    );
}
