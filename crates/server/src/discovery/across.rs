//! Findings across accounts, worked out when an import finishes: duplicates among the
//! source's accounts (the same owner, purpose and permissions; one vendor's bot more than
//! once), secrets shared between environments (across every source), and the registered
//! systems an account that is a registry identity has not used for 90 days. Each account's
//! set is replaced only where it changed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aim_domain::discovery::{Finding, FindingKind, across};
use aim_domain::event::AuditAction;
use aim_domain::ids::AccountId;
use aim_domain::time::Timestamp;
use aim_store::{ImportRow, Member};
use serde_json::json;

use super::assess::kinds_of;
use crate::auth::HumanCaller;
use crate::error::ApiError;
use crate::state::AppState;

/// Accounts whose findings are rewritten per transaction.
const PAGE: usize = 1000;

/// The findings across accounts each account should carry now.
async fn wanted(s: &AppState, source: &str) -> Result<HashMap<AccountId, Vec<Finding>>, ApiError> {
    let mut out: HashMap<AccountId, Vec<Finding>> = HashMap::new();
    let mut groups: BTreeMap<String, Vec<Member>> = BTreeMap::new();
    for m in s.store.duplicate_groups(source).await? {
        groups.entry(m.key.clone()).or_default().push(m);
    }
    for (key, members) in &groups {
        for m in members {
            let others: Vec<String> = members
                .iter()
                .filter(|o| o.account != m.account)
                .map(|o| o.name.clone())
                .collect();
            out.entry(m.account)
                .or_default()
                .push(across::duplicate(key, &others));
        }
    }
    let mut prints: BTreeMap<String, Vec<Member>> = BTreeMap::new();
    for m in s.store.shared_fingerprints().await? {
        prints.entry(m.key.clone()).or_default().push(m);
    }
    for members in prints.values() {
        let environments: Vec<String> = members
            .iter()
            .filter_map(|m| m.environment.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        for m in members {
            let others: Vec<String> = members
                .iter()
                .filter(|o| !(o.account == m.account && o.credential == m.credential))
                .map(|o| o.name.clone())
                .collect();
            let credential = m.credential.clone().unwrap_or_default();
            out.entry(m.account).or_default().push(across::shared(
                &credential,
                &environments,
                &others,
            ));
        }
    }
    Ok(out)
}

/// For each account of `source` that is an active registry identity: the systems it is
/// registered for and has not reached in aim's record (its behavioural baseline keeps when
/// each system was last reached) for 90 days. Nothing when baselines are off: aim then keeps
/// no such record.
async fn unused(
    s: &AppState,
    source: &str,
    now: Timestamp,
    into: &mut HashMap<AccountId, Vec<Finding>>,
) -> Result<(), ApiError> {
    if s.behaviour.config().mode == crate::behaviour::Mode::Off {
        return Ok(());
    }
    for (account, id) in s.store.linked_accounts(source).await? {
        let Some(identity) = s.store.identity(id).await? else {
            continue;
        };
        if identity.state != aim_domain::lifecycle::LifecycleState::Active {
            continue;
        }
        let profile = s.behaviour.profile(id).await?;
        let since = identity.decided_at.unwrap_or(identity.created_at);
        let used = |system: &str| profile.as_ref().and_then(|p| p.system_used.get(system));
        if let Some(f) = across::unused(&identity.name, &identity.systems, used, since, now) {
            into.entry(account).or_default().push(f);
        }
    }
    Ok(())
}

/// Brings every affected account's findings across accounts up to date after an import of
/// `import.source`; returns how many accounts changed.
pub async fn refresh(
    s: &AppState,
    p: &HumanCaller,
    import: &ImportRow,
    now: Timestamp,
) -> Result<u64, ApiError> {
    let mut wanted = wanted(s, &import.source).await?;
    unused(s, &import.source, now, &mut wanted).await?;
    let mut ids: BTreeSet<AccountId> = wanted.keys().copied().collect();
    for kind in [FindingKind::Duplicate, FindingKind::UnusedPermissions] {
        ids.extend(
            s.store
                .carrying(kind.as_str(), Some(&import.source))
                .await?,
        );
    }
    ids.extend(
        s.store
            .carrying(FindingKind::SharedAcrossEnvironments.as_str(), None)
            .await?,
    );
    let ids: Vec<AccountId> = ids.into_iter().collect();
    let mut changed_total = 0;
    for chunk in ids.chunks(PAGE) {
        let mut changed = Vec::new();
        for (row, _) in s.store.discovered_by_ids(chunk).await? {
            let current: Vec<Finding> =
                serde_json::from_str(&row.findings).map_err(|_| ApiError::internal())?;
            // Another source's duplicates and unused permissions are its own imports' to
            // change.
            let keep = |f: &Finding| {
                !across::KINDS.contains(&f.kind)
                    || (f.kind != FindingKind::SharedAcrossEnvironments
                        && row.source != import.source)
            };
            let mut next: Vec<Finding> = current.iter().filter(|f| keep(f)).cloned().collect();
            next.extend(wanted.remove(&row.id).unwrap_or_default());
            if next != current {
                let text = serde_json::to_string(&next).map_err(|_| ApiError::internal())?;
                changed.push((row.id, text, kinds_of(&next)));
            }
        }
        if changed.is_empty() {
            continue;
        }
        let event = p
            .event(
                now,
                AuditAction::DiscoveryAccountsImported,
                "discovery_import",
                import.id,
            )
            .detail(json!({ "source": import.source, "findings_across_accounts": changed.len() }));
        s.store.set_findings(&changed, now, &event).await?;
        changed_total += changed.len() as u64;
    }
    Ok(changed_total)
}
