//! Findings across accounts, worked out when an import finishes: duplicates among the
//! source's accounts (the same owner, purpose and permissions; one vendor's bot more than
//! once) and secrets shared between environments (across every source). Each account's
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

/// Brings every affected account's findings across accounts up to date after an import of
/// `import.source`; returns how many accounts changed.
pub async fn refresh(
    s: &AppState,
    p: &HumanCaller,
    import: &ImportRow,
    now: Timestamp,
) -> Result<u64, ApiError> {
    let mut wanted = wanted(s, &import.source).await?;
    let mut ids: BTreeSet<AccountId> = wanted.keys().copied().collect();
    ids.extend(
        s.store
            .carrying(FindingKind::Duplicate.as_str(), Some(&import.source))
            .await?,
    );
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
            // Another source's duplicates are its own imports' to change.
            let keep = |f: &Finding| {
                !across::KINDS.contains(&f.kind)
                    || (f.kind == FindingKind::Duplicate && row.source != import.source)
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
