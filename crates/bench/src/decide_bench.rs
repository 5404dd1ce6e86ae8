//! In-process decisions: aim's sliced evaluation beside Cedar evaluating the whole set, with
//! 10, 1,000 and 10,000 policies and 100,000 registered identities held in memory.
//!
//! Policy i: `permit(principal == Aim::Identity::"<id i>", action == Aim::Action::"read",
//! resource is Aim::Resource) when { principal has team && resource has owner &&
//! resource.owner == principal.team };` — the shape of `../shared/peers/cedar-inprocess`.
//! Each decision picks the identity of policy n/2 from the 100,000 (a hash lookup, as the
//! server does from its cache), builds the request's entities and context, and decides;
//! the answer must be Allow by exactly that policy.
//!
//! ```sh
//! cargo build --release --bin decide-bench && target/release/decide-bench
//! ```

// The allocator `aim serve` runs with (crates/cli/src/main.rs): a decision allocates
// many small objects, so the figure depends on it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use aim_domain::identity::{Autonomy, Identity, IdentityKind, IdentityRequest};
use aim_domain::ids::IdentityId;
use aim_domain::risk::{DataSensitivity, Level};
use aim_domain::{Clock, SystemClock};
use aim_policy::{Call, Effect, Engine, Principal, Query, Source, Target};
use anyhow::Context;
use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    /// Registered identities held in memory.
    #[arg(long, default_value_t = 100_000)]
    identities: usize,
    /// Policy set sizes.
    #[arg(long, value_delimiter = ',', default_value = "10,1000,10000")]
    policies: Vec<usize>,
    /// Stop each measurement after this many calls or 3 seconds.
    #[arg(long, default_value_t = 200_000)]
    calls: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let now = SystemClock.now();
    let t = Instant::now();
    let (registry, order) = registry(args.identities, now)?;
    println!(
        "{} identities registered in memory in {:.2} s",
        args.identities,
        t.elapsed().as_secs_f64()
    );
    let schema = aim_policy::schema::load(&[]).map_err(|p| anyhow::anyhow!("{p:?}"))?;
    for &n in &args.policies {
        anyhow::ensure!(n <= args.identities, "more policies than identities");
        let text: String = order[..n]
            .iter()
            .map(|id| {
                format!(
                    "permit(principal == Aim::Identity::\"{id}\", action == Aim::Action::\"read\", resource is Aim::Resource) \
                     when {{ principal has team && resource has owner && resource.owner == principal.team }};\n"
                )
            })
            .collect();
        let t = Instant::now();
        let compiled = aim_policy::compile(
            &schema,
            &[Source {
                name: "bench.cedar".into(),
                text,
            }],
            &[],
        )
        .map_err(|p| anyhow::anyhow!("{:?}", &p[..p.len().min(3)]))?;
        let engine = Engine::new(schema.clone(), compiled).map_err(anyhow::Error::msg)?;
        let load = t.elapsed();
        let identity = &registry[&order[n / 2]];
        for (label, sliced) in [("aim, sliced", true), ("whole set", false)] {
            let (lat, elapsed) = measure(&engine, identity, sliced, n, args.calls, now)?;
            let q = |p: f64| {
                lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1e6
            };
            println!(
                "policies={n:>6} {label:<12} calls={:>7} p50={:>9.2} µs p99={:>9.2} µs ({:.0}/s on one core; set loaded in {:.0} ms)",
                lat.len(),
                q(0.50),
                q(0.99),
                lat.len() as f64 / elapsed.as_secs_f64(),
                load.as_secs_f64() * 1e3,
            );
        }
    }
    Ok(())
}

/// `n` active identities of one sponsor, in memory, and their ids in order.
fn registry(
    n: usize,
    now: aim_domain::time::Timestamp,
) -> anyhow::Result<(HashMap<IdentityId, Identity>, Vec<IdentityId>)> {
    let sponsor = aim_bench::fill::sponsor("bench-sponsor", now)?;
    let mut registry: HashMap<IdentityId, Identity> = HashMap::with_capacity(n);
    let mut order = Vec::with_capacity(n);
    for i in 0..n {
        let mut identity = IdentityRequest {
            name: format!("agt-bench-{i}"),
            kind: IdentityKind::AiAgent,
            autonomy: Autonomy::Autonomous,
            sponsor_id: sponsor.id,
            owner_team: Some(format!("team-{}", i % 100)),
            purpose: "decision load".into(),
            systems: vec!["crm".into()],
            data_sensitivity: DataSensitivity::Internal,
            criticality: Level::Low,
            impact: Level::Low,
            labels: BTreeMap::new(),
            expires_at: now.plus_days(30),
        }
        .into_identity(
            IdentityId::new(),
            sponsor.id,
            now,
            &Default::default(),
            &Default::default(),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        identity.state = aim_domain::lifecycle::LifecycleState::Active;
        order.push(identity.id);
        registry.insert(identity.id, identity);
    }
    Ok((registry, order))
}

/// Decides `read` on a record of `identity`'s team over and over (for at most `calls`
/// calls or 3 seconds), with the sliced engine or the whole set; the latencies, sorted,
/// and how long the run took.
fn measure(
    engine: &Engine,
    identity: &Identity,
    sliced: bool,
    n: usize,
    calls: usize,
    now: aim_domain::time::Timestamp,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let team = identity.owner_team.clone().context("team")?;
    let target = Target {
        kind: "Resource".into(),
        id: "crm/accounts/7".into(),
        system: "crm".into(),
        attrs: serde_json::json!({ "type": "account", "sensitivity": "internal", "owner": team })
            .as_object()
            .context("attrs")?
            .clone(),
        tags: BTreeMap::new(),
    };
    let call = Call::default();
    let decide = || {
        let q = Query {
            principal: Principal::Identity {
                identity,
                sponsor: None,
                groups: &[],
            },
            action: "read",
            target: &target,
            task: None,
            now,
            call: &call,
        };
        if sliced {
            engine.decide(&q)
        } else {
            engine.decide_full(&q)
        }
    };
    let d = decide()?;
    anyhow::ensure!(
        d.decision == Effect::Allow && d.policies == [format!("bench.cedar#{}", n / 2)],
        "unexpected decision {d:?}"
    );
    let mut lat = Vec::with_capacity(calls);
    let start = Instant::now();
    while lat.len() < calls && start.elapsed() < Duration::from_secs(3) {
        let t = Instant::now();
        let d = decide()?;
        lat.push(t.elapsed());
        std::hint::black_box(d);
    }
    let elapsed = start.elapsed();
    lat.sort_unstable();
    Ok((lat, elapsed))
}
