//! Findings brought up to date without an import. Most findings move with the clock (a key
//! unused for a month becomes dormant, an expiry passes, a credential ages past rotation)
//! or with aim's humans (an owner who leaves makes their accounts orphaned); an import
//! sees both, but imports come when someone runs them. This assesses every source's
//! present accounts again, as kept, against the clock and the humans now: daily by itself
//! (`discovery_reassess_interval_seconds`), and when an admin asks
//! (`POST /v1/discovery/reassess`, `aim discover reassess`).
//!
//! What only an import can tell stays as the last import found it: findings across
//! accounts (their own refresh runs at each import's end) and `privilege_added` (it
//! compares two imports). Each page of changed accounts is written with its event
//! (`discovery.findings_reassessed`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, LazyLock};

use aim_api::discovery::Reassessment;
use aim_domain::discovery::{Finding, FindingKind, Subject, Thresholds, reassess as rules};
use aim_domain::event::AuditAction;
use aim_domain::ids::AccountId;
use aim_domain::time::Timestamp;
use aim_store::{Discovered, DiscoveryFilter};
use serde_json::json;
use tokio::task::JoinHandle;

use super::assess::{Owners, carried, kept_account, kinds_of};
use crate::auth::{Asker, HumanCaller};
use crate::error::ApiError;
use crate::state::AppState;

/// Accounts read and written at a time.
const PAGE: u32 = 1000;

/// The component that reassesses by itself: its events' actor.
pub const JOB: &str = "discovery-reassess";

/// One reassessment at a time in this process (another waits for it): two would read
/// and write the same accounts for nothing.
static RUNNING: LazyLock<Arc<tokio::sync::Mutex<()>>> = LazyLock::new(Arc::default);

/// Starts a reassessment on its own task, after any running one: it finishes even if
/// whoever asked stops waiting (a request's timeout, a client that goes away). `caller`
/// is on its events; without one, the job's.
pub fn spawn(
    s: &AppState,
    caller: Option<HumanCaller>,
) -> JoinHandle<Result<Reassessment, ApiError>> {
    let s = s.clone();
    tokio::spawn(async move {
        let _one = RUNNING.clone().lock_owned().await;
        let by = caller.as_ref().map_or(Asker::Job(JOB), Asker::Human);
        let started = std::time::Instant::now();
        let r = all(&s, by, s.clock.now()).await?;
        tracing::info!(
            sources = r.sources,
            accounts = r.accounts,
            changed = r.changed,
            seconds = started.elapsed().as_secs_f64(),
            "discovered accounts assessed again"
        );
        Ok(r)
    })
}

/// Assesses every source's present accounts again at `now`; `by` is on each change's event.
pub async fn all(s: &AppState, by: Asker<'_>, now: Timestamp) -> Result<Reassessment, ApiError> {
    let sources: BTreeSet<String> = s
        .store
        .discovery_sources()
        .await?
        .into_iter()
        .map(|(source, _)| source)
        .collect();
    let mut total = Reassessment::default();
    for source in sources {
        let thresholds = match last_import(s, &source, now).await? {
            Last::Finished(t) => t,
            Last::Running => {
                total.busy.push(source);
                continue;
            }
            Last::Never => continue,
        };
        total.sources += 1;
        let filter = DiscoveryFilter {
            source: Some(source.clone()),
            present: Some(true),
            ..DiscoveryFilter::default()
        };
        let mut after = None;
        loop {
            let page = s.store.discovered_page(&filter, after, PAGE).await?;
            after = page.last().map(|(row, _)| row.id);
            let full = page.len() == PAGE as usize;
            total.accounts += page.len() as u64;
            let pass = self::page(s, thresholds, &page, now).await?;
            if !pass.changed.is_empty() {
                total.changed += pass.changed.len() as u64;
                add(&mut total.appeared, &pass.appeared);
                add(&mut total.went, &pass.went);
                let event = by
                    .event(
                        now,
                        AuditAction::DiscoveryFindingsReassessed,
                        "discovery_source",
                        &source,
                    )
                    .detail(json!({
                        "source": source,
                        "changed": pass.changed.len(),
                        "appeared": pass.appeared,
                        "went": pass.went,
                    }));
                s.store.set_findings(&pass.changed, now, &event).await?;
            }
            if !full {
                break;
            }
        }
    }
    Ok(total)
}

/// Where a source's imports stand.
enum Last {
    /// Its newest finished import's thresholds: what it was last assessed with.
    Finished(Thresholds),
    /// An import of it is running: it assesses what it reads, and what this would write
    /// could overwrite a batch's findings with ones from before it.
    Running,
    Never,
}

async fn last_import(s: &AppState, source: &str, now: Timestamp) -> Result<Last, ApiError> {
    let idle = Timestamp::from_millis(now.as_millis() - super::IDLE_MINUTES * 60_000);
    let mut before = None;
    loop {
        let imports = s.store.discovery_imports(Some(source), before, 20).await?;
        for i in &imports {
            if i.finished_at.is_some() && !i.abandoned {
                return serde_json::from_str(&i.thresholds)
                    .map(Last::Finished)
                    .map_err(|_| ApiError::internal());
            }
            if before.is_none() && i.finished_at.is_none() && !i.abandoned && i.touched_at > idle {
                return Ok(Last::Running);
            }
        }
        match imports.last() {
            Some(last) if imports.len() == 20 => before = Some(last.id),
            _ => return Ok(Last::Never),
        }
    }
}

/// What one page's assessment changed.
#[derive(Default)]
struct Pass {
    /// `(account, findings JSON, finding_kinds)` to write.
    changed: Vec<(AccountId, String, String)>,
    appeared: BTreeMap<FindingKind, u64>,
    went: BTreeMap<FindingKind, u64>,
}

async fn page(
    s: &AppState,
    thresholds: Thresholds,
    page: &[Discovered],
    now: Timestamp,
) -> Result<Pass, ApiError> {
    let accounts = page
        .iter()
        .map(|(row, views)| kept_account(row, views))
        .collect::<Result<Vec<_>, _>>()?;
    let owners = Owners::of(s, accounts.iter()).await?;
    let mut pass = Pass::default();
    for ((row, _), account) in page.iter().zip(&accounts) {
        let kept: Vec<Finding> =
            serde_json::from_str(&row.findings).map_err(|_| ApiError::internal())?;
        let mut next = rules(
            &Subject {
                account,
                previous: None,
                owner: owners.owner(account),
                thresholds,
                now,
            },
            &kept,
        );
        next.extend(carried(row)?);
        // Only the days in a message moved: not rewritten (nor an event) every day.
        if next.len() == kept.len() && next.iter().zip(&kept).all(|(a, b)| a.same_as(b)) {
            continue;
        }
        count(&mut pass.appeared, &next, &kept);
        count(&mut pass.went, &kept, &next);
        let text = serde_json::to_string(&next).map_err(|_| ApiError::internal())?;
        pass.changed.push((row.id, text, kinds_of(&next)));
    }
    Ok(pass)
}

/// Counts, by kind, the findings of `these` that `others` does not have (a finding is its
/// kind and credential: one whose evidence moved, `unused for 41 days`, is the same).
fn count(into: &mut BTreeMap<FindingKind, u64>, these: &[Finding], others: &[Finding]) {
    let same = |a: &Finding, b: &Finding| a.kind == b.kind && a.credential == b.credential;
    for f in these.iter().filter(|f| !others.iter().any(|o| same(f, o))) {
        *into.entry(f.kind).or_default() += 1;
    }
}

fn add(into: &mut BTreeMap<FindingKind, u64>, from: &BTreeMap<FindingKind, u64>) {
    for (kind, n) in from {
        *into.entry(*kind).or_default() += n;
    }
}
