//! Stores filled with what aim's paths sit on, before `aim serve` starts on them: a
//! registry of generated identities, audit records, single-use ids and open tasks.

use std::collections::BTreeMap;
use std::path::Path;

use aim_domain::event::{Actor, AuditAction, Event};
use aim_domain::governance::GovernanceConfig;
use aim_domain::human::{NewHuman, Role};
use aim_domain::identity::{Autonomy, Identity, IdentityKind, IdentityRequest};
use aim_domain::ids::{HumanId, IdentityId, TaskId};
use aim_domain::lifecycle::{StateCause, Transition};
use aim_domain::naming::NamingPolicy;
use aim_domain::review::{Decider, Verdict, decide};
use aim_domain::risk::{DataSensitivity, Level};
use aim_domain::task::{Task, TaskState};
use aim_domain::{Clock, SystemClock};
use aim_store::sqlite::SqliteStore;
use aim_store::{AuditStore, HumanStore, IdentityStore, TaskStore};

/// xorshift64*: reproducible, dependency-free.
#[derive(Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
}

/// The `n`th benchmark identity: one of five kinds, sponsored by one of `sponsors`, with
/// the mix of states a real registry has.
pub fn identity(
    rng: &mut Rng,
    n: usize,
    sponsors: &[HumanId],
    now: aim_domain::Timestamp,
    g: &GovernanceConfig,
    naming: &NamingPolicy,
) -> anyhow::Result<Identity> {
    let kinds = [
        IdentityKind::AiAgent,
        IdentityKind::Bot,
        IdentityKind::ServiceAccount,
        IdentityKind::ApiKey,
        IdentityKind::Automation,
    ];
    let kind = rng.pick(&kinds);
    let prefix = match kind {
        IdentityKind::AiAgent => "agt",
        IdentityKind::Bot => "bot",
        IdentityKind::ServiceAccount => "svc",
        IdentityKind::ApiKey => "key",
        IdentityKind::Automation => "job",
    };
    let systems = [
        "crm",
        "billing",
        "claims-db",
        "warehouse",
        "github",
        "slack",
        "s3-reports",
        "hr",
    ];
    let sensitivities = [
        DataSensitivity::Public,
        DataSensitivity::Internal,
        DataSensitivity::Internal,
        DataSensitivity::Confidential,
    ];
    let levels = [Level::Low, Level::Low, Level::Medium];
    let req = IdentityRequest {
        name: format!("{prefix}-bench-{n:07}"),
        kind,
        autonomy: rng.pick(&[
            Autonomy::Automation,
            Autonomy::Assistant,
            Autonomy::Autonomous,
        ]),
        sponsor_id: sponsors[rng.below(sponsors.len())],
        owner_team: Some(format!("team-{}", rng.below(50))),
        purpose: format!("benchmark workload {}", rng.below(10_000)),
        systems: vec![rng.pick(&systems).to_owned(), rng.pick(&systems).to_owned()],
        data_sensitivity: rng.pick(&sensitivities),
        criticality: rng.pick(&levels),
        impact: rng.pick(&levels),
        labels: BTreeMap::from([(
            "env".to_owned(),
            rng.pick(&["prod", "staging", "dev"]).to_owned(),
        )]),
        // Spread over the next 20 to 89 days, as real end-of-life dates are.
        expires_at: now.plus_days(20 + rng.below(70) as u32),
    };
    let mut i = req
        .into_identity(IdentityId::new(), sponsors[0], now, naming, g)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // 80% active, 8% suspended, 2% locked, 10% still requested.
    let roll = rng.below(100);
    if roll >= 10 {
        decide(
            &mut i,
            Decider::Human(sponsors[1]),
            Verdict::Approve,
            "",
            now,
            g,
        )
        .ok();
    }
    // Half a percent orphaned, one percent flagged as possible duplicates.
    if rng.below(200) == 0 {
        i.orphaned_since = Some(now);
    }
    i.possible_duplicate = rng.below(100) == 0;
    if (10..18).contains(&roll) {
        i.transition(Transition::Suspend, StateCause::Manual, "bench", now, g)
            .ok();
    } else if (18..20).contains(&roll) {
        i.transition(Transition::Lock, StateCause::Manual, "bench", now, g)
            .ok();
    }
    Ok(i)
}

/// How much to put in a store before a run.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct Fill {
    /// Audit records (decisions about the filled identities), besides those of the rest.
    #[arg(long, default_value_t = 0)]
    pub events: usize,
    /// Identities, each with the record of its import, sponsored by 100 humans.
    #[arg(long, default_value_t = 0)]
    pub identities: usize,
    /// Single-use ids, unexpired for a day (a busy minute holds ~100,000 at 1,500/s).
    #[arg(long, default_value_t = 0)]
    pub used_ids: usize,
    /// Open tasks, each with the record of its opening.
    #[arg(long, default_value_t = 0)]
    pub open_tasks: usize,
}

/// A human with the sponsor role, not yet stored.
pub fn sponsor(
    user_name: &str,
    now: aim_domain::Timestamp,
) -> anyhow::Result<aim_domain::human::Human> {
    NewHuman {
        user_name: user_name.to_owned(),
        display_name: None,
        email: None,
        external_id: None,
        roles: vec![Role::Sponsor],
        groups: Vec::new(),
    }
    .into_human(HumanId::new(), now)
    .map_err(|e| anyhow::anyhow!("{e}"))
}

/// `n` sponsors, each with the record of its creation.
pub async fn sponsors(store: &SqliteStore, n: usize) -> anyhow::Result<Vec<HumanId>> {
    let now = SystemClock.now();
    let mut ids = Vec::with_capacity(n);
    for k in 0..n {
        let h = sponsor(&format!("sponsor{k}@example.com"), now)?;
        let e = Event::new(now, bench(), AuditAction::HumanCreated, "human", h.id);
        store.insert_human(&h, &e).await?;
        ids.push(h.id);
    }
    Ok(ids)
}

/// `n` identities (see [`identity`]), imported in batches of 5,000, each with its record.
pub async fn identities(
    store: &SqliteStore,
    n: usize,
    sponsors: &[HumanId],
) -> anyhow::Result<Vec<IdentityId>> {
    let now = SystemClock.now();
    let (g, naming) = (GovernanceConfig::default(), NamingPolicy::default());
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut ids = Vec::with_capacity(n);
    let mut batch = Vec::with_capacity(5000);
    for k in 0..n {
        let i = identity(&mut rng, k, sponsors, now, &g, &naming)?;
        ids.push(i.id);
        let e = Event::new(
            now,
            bench(),
            AuditAction::IdentityImported,
            "identity",
            i.id,
        );
        batch.push((i, e));
        if batch.len() == 5000 || k + 1 == n {
            store.import_identities(&batch).await?;
            batch.clear();
        }
    }
    Ok(ids)
}

fn bench() -> Actor {
    Actor::system("bench")
}

/// Creates the store at `path` and fills it as `fill` says.
pub async fn fill(path: &Path, fill: &Fill) -> anyhow::Result<()> {
    let store = SqliteStore::open(path).await?;
    let sponsors = sponsors(&store, 100).await?;
    // At least one identity to hang decisions and tasks on.
    let ids = identities(&store, fill.identities.max(1), &sponsors).await?;
    let now = SystemClock.now();
    in_flights(fill.events, |k| {
        let (store, id) = (store.clone(), ids[k % ids.len()]);
        async move {
            let e = Event::new(now, bench(), AuditAction::Decision, "identity", id).reason("bench");
            store.append_event(&e).await.map(drop)
        }
    })
    .await?;
    in_flights(fill.open_tasks, |k| {
        let (store, id) = (store.clone(), ids[k % ids.len()]);
        async move {
            let task = Task {
                id: TaskId::new(),
                identity_id: id,
                purpose: "bench".into(),
                systems: vec!["crm".into()],
                subject: None,
                triggered_by: "bench".into(),
                state: TaskState::Open,
                opened_at: now,
                deadline: now.plus_days(1),
                ended_at: None,
                end_reason: String::new(),
            };
            let e = Event::new(now, bench(), AuditAction::TaskOpened, "task", task.id);
            store.insert_task(&task, &[e], &[]).await.map(drop)
        }
    })
    .await?;
    drop(store);
    used_ids(path, fill.used_ids, now.plus_days(1)).await
}

/// Runs `job(0..n)` in flights of 512 at once, so appends share durable commits.
async fn in_flights<F>(n: usize, job: impl Fn(usize) -> F) -> anyhow::Result<()>
where
    F: std::future::Future<Output = Result<(), aim_store::StoreError>> + Send + 'static,
{
    let mut done = 0;
    while done < n {
        let flight = (n - done).min(512);
        let mut set = tokio::task::JoinSet::new();
        for k in done..done + flight {
            set.spawn(job(k));
        }
        while let Some(r) = set.join_next().await {
            r??;
        }
        done += flight;
    }
    Ok(())
}

/// `n` single-use ids expiring at `expires_at`, written straight into the table in
/// transactions of 50,000 (they have no record of their own).
async fn used_ids(path: &Path, n: usize, expires_at: aim_domain::Timestamp) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await?;
    let mut k = 0;
    while k < n {
        let mut tx = conn.begin().await?;
        for j in k..(k + 50_000).min(n) {
            sqlx::query("INSERT INTO used_ids (id, expires_at) VALUES (?, ?)")
                .bind(format!("dpop:bench:{j:09}"))
                .bind(expires_at.as_millis())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        k += 50_000;
    }
    Ok(())
}
