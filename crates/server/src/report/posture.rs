//! Reads a [`Posture`] from the store and the running config: one pass over the registry
//! and the humans (in pages), the discovery sources' tallies, and one page of names per
//! finding kind.

use std::collections::{BTreeMap, BTreeSet};

use aim_domain::compliance::posture::{
    Audit, Behaviour, Decisions, Discovery, Humans, NAMED, Registry, Tokens, Tools,
};
use aim_domain::compliance::{Named, Posture};
use aim_domain::discovery::{FindingKind, SourceKind};
use aim_domain::human::{HumanState, Role};
use aim_domain::identity::{Autonomy, Identity, IdentityKind};
use aim_domain::ids::AccountId;
use aim_domain::lifecycle::{LifecycleState, StateCause};
use aim_domain::time::Timestamp;
use aim_domain::tool::PinState;
use aim_store::{DiscoveryFilter, HumanFilter, IdentityCursor, IdentityFilter};

use crate::behaviour::Mode;
use crate::error::ApiError;
use crate::state::AppState;

/// Rows read per page of identities and humans.
const PAGE: u32 = 1000;

pub async fn read(s: &AppState) -> Result<Posture, ApiError> {
    let at = s.clock.now();
    Ok(Posture {
        at,
        registry: registry(s, at).await?,
        humans: humans(s).await?,
        tokens: tokens(s),
        decisions: Decisions {
            policy_version: s.policies.active().version,
            live_grants: s.store.live_grants(at).await?.1.len() as u64,
        },
        behaviour: Behaviour {
            mode: match s.behaviour.config().mode {
                Mode::Enforce => "enforce",
                Mode::Observe => "observe",
                Mode::Off => "off",
            }
            .to_owned(),
            profiles: s.behaviour.held() as u64,
        },
        audit: audit(s).await?,
        tools: tools(s, at).await?,
        discovery: discovery(s, at).await?,
    })
}

async fn registry(s: &AppState, now: Timestamp) -> Result<Registry, ApiError> {
    let mut r = Registry::default();
    let filter = IdentityFilter::default();
    let mut after = None;
    loop {
        let page = s
            .store
            .list_identities(&filter, after.as_ref(), PAGE)
            .await?;
        for i in &page {
            count(&mut r, i, now);
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => after = Some(IdentityCursor::Id(last.id)),
            _ => return Ok(r),
        }
    }
}

fn count(r: &mut Registry, i: &Identity, now: Timestamp) {
    if !i.state.is_live() {
        return;
    }
    let name = i.name.as_str();
    r.live += 1;
    if i.kind == IdentityKind::AiAgent {
        r.agents += 1;
    }
    if i.orphaned_since.is_some() {
        r.orphaned.add(name);
    }
    if i.expires_at <= now {
        r.past_end_of_life.add(name);
    }
    if i.state == LifecycleState::Active && i.attestation_due_at.is_some_and(|d| d < now) {
        r.attestation_overdue.add(name);
    }
    if i.dormant {
        r.dormant.add(name);
    }
    if i.possible_duplicate {
        r.possible_duplicates.add(name);
    }
    if i.bearer_reason.is_some() {
        r.bearer.add(name);
    }
    if i.state != LifecycleState::Requested && i.decided_by.is_none() {
        r.unreviewed.add(name);
    }
    if i.state == LifecycleState::Locked && i.state_cause == StateCause::Behaviour {
        r.behaviour_locked.add(name);
    }
}

async fn humans(s: &AppState) -> Result<Humans, ApiError> {
    let mut h = Humans::default();
    let filter = HumanFilter {
        state: Some(HumanState::Active),
        ..HumanFilter::default()
    };
    let mut after = None;
    loop {
        let page = s.store.list_humans(&filter, after, PAGE).await?;
        for human in page.iter().filter(|h| h.is_active()) {
            if !aim_domain::human::is_person(&human.roles) {
                continue;
            }
            h.active += 1;
            h.admins += u64::from(human.has_role(Role::Admin));
            h.approvers +=
                u64::from(human.has_role(Role::Approver) && !human.has_role(Role::Admin));
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => after = Some(last.id),
            _ => return Ok(h),
        }
    }
}

/// The longest token aim issues: the longest autonomy class's default, under the cap.
fn tokens(s: &AppState) -> Tokens {
    let longest = Autonomy::ALL
        .iter()
        .map(|a| aim_domain::task::token_seconds(*a))
        .max()
        .unwrap_or(0);
    Tokens {
        max_token_seconds: longest.min(s.tokens.max_token_seconds.unwrap_or(i64::MAX)),
        max_delegation_depth: s.tokens.max_delegation_depth as u64,
    }
}

async fn audit(s: &AppState) -> Result<Audit, ApiError> {
    let (events, _) = s.store.chain_head().await?;
    Ok(Audit {
        events,
        latest_checkpoint: s.store.latest_checkpoint().await?.map(|c| c.at),
        checkpoint_every_seconds: s.reporting.checkpoint_every_seconds,
        sinks: s.reporting.sinks.clone(),
    })
}

async fn tools(s: &AppState, now: Timestamp) -> Result<Tools, ApiError> {
    let acks = s.store.gateway_acks().await?;
    let (gateways_connected, gateways_behind) = crate::feed::presence(&acks, s.feed.epoch(), now);
    let mut t = Tools {
        gateways_connected,
        gateways_behind,
        ..Tools::default()
    };
    for tool in s.store.list_tools(None).await? {
        t.seen += 1;
        let name = format!("{}/{}", tool.server, tool.name);
        match tool.state() {
            PinState::New => t.unapproved.add(&name),
            PinState::Changed => t.changed.add(&name),
            PinState::Approved => {}
        }
    }
    Ok(t)
}

async fn discovery(s: &AppState, now: Timestamp) -> Result<Discovery, ApiError> {
    let mut d = Discovery::default();
    let mut formats: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (source, kind) in s.store.discovery_sources().await? {
        formats.entry(source).or_default().insert(kind);
    }
    let mut per_kind: BTreeMap<FindingKind, u64> = BTreeMap::new();
    for (source, kinds) in &formats {
        let tally = s.store.discovery_tally(source).await?;
        d.accounts += tally.present;
        for account in &tally.finding_kinds {
            for k in kinds_of(account) {
                *per_kind.entry(k).or_default() += 1;
            }
        }
        d.cloud_sources |= kinds.iter().any(|k| is_cloud(k));
        let list: Vec<&str> = kinds.iter().map(String::as_str).collect();
        d.sources.push(format!("{source}: {}", list.join(" + ")));
    }
    let acknowledged = acknowledged(&s.store.running_acknowledgements(now).await?);
    for (kind, n) in per_kind {
        let mut named = names(s, kind, n, now).await?;
        named.acknowledged = acknowledged.get(&kind).copied().unwrap_or(0);
        d.findings.insert(kind, named);
    }
    if !d.sources.is_empty() {
        d.unlinked = s.store.unlinked_machine_accounts().await?;
    }
    d.per_human = crate::discovery::ratio(s).await?.per_human;
    Ok(d)
}

/// The finding kinds in an account's `finding_kinds` (`,kind:severity,...`).
fn kinds_of(finding_kinds: &str) -> BTreeSet<FindingKind> {
    finding_kinds
        .split(',')
        .filter_map(|e| e.split_once(':'))
        .filter_map(|(k, _)| FindingKind::parse(k).ok())
        .collect()
}

/// Per finding kind, the present accounts that have it now and have it (or one of its
/// credentials) acknowledged: from `running_acknowledgements`.
fn acknowledged(running: &[(AccountId, String, String)]) -> BTreeMap<FindingKind, u64> {
    let mut accounts: BTreeSet<(FindingKind, AccountId)> = BTreeSet::new();
    for (account, finding, has) in running {
        let kind = finding
            .split(':')
            .next()
            .and_then(|k| FindingKind::parse(k).ok());
        if let Some(kind) = kind.filter(|k| kinds_of(has).contains(k)) {
            accounts.insert((kind, *account));
        }
    }
    let mut per_kind = BTreeMap::new();
    for (kind, _) in accounts {
        *per_kind.entry(kind).or_default() += 1;
    }
    per_kind
}

fn is_cloud(kind: &str) -> bool {
    SourceKind::parse(kind).is_ok_and(|k| {
        matches!(
            k,
            SourceKind::AwsCredentialReport | SourceKind::AwsAuthorization | SourceKind::Kubernetes
        )
    })
}

/// `count` accounts have `kind`: the first [`NAMED`] of them by name (`source/name`), each
/// saying until when it is acknowledged if it is (an acknowledged finding still counts).
async fn names(
    s: &AppState,
    kind: FindingKind,
    count: u64,
    now: Timestamp,
) -> Result<Named, ApiError> {
    let filter = DiscoveryFilter {
        present: Some(true),
        finding: Some(kind.as_str().to_owned()),
        ..DiscoveryFilter::default()
    };
    let page = s.store.discovered_page(&filter, None, NAMED as u32).await?;
    let ids: Vec<AccountId> = page.iter().map(|(a, _)| a.id).collect();
    let acks = s.store.acknowledgements(&ids, now).await?;
    let names = page
        .iter()
        .map(|(a, _)| {
            let until = acks
                .iter()
                .filter(|k| k.account == a.id)
                .filter(|k| k.finding.split(':').next() == Some(kind.as_str()))
                .map(|k| k.until)
                .max();
            match until {
                Some(t) => format!(
                    "{}/{} (acknowledged until {})",
                    a.source,
                    a.name,
                    t.to_rfc3339().get(..10).unwrap_or_default()
                ),
                None => format!("{}/{}", a.source, a.name),
            }
        })
        .collect();
    Ok(Named {
        count,
        names,
        acknowledged: 0,
    })
}
