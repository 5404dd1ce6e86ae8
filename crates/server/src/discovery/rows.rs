//! Discovered accounts from the store's rows to the API's shape.

use aim_api::discovery::{
    AcknowledgementView, DiscoveredAccount, DispositionView, FindingRow, Presence,
};
use aim_domain::discovery::{AccountKind, Finding, SourceKind};
use aim_store::Discovered;

use crate::error::ApiError;

fn corrupt(what: &str) -> ApiError {
    tracing::error!(what, "a discovered account's stored row could not be read");
    ApiError::internal()
}

/// The account as the API shows it.
pub fn account(d: Discovered) -> Result<DiscoveredAccount, ApiError> {
    let (row, views) = d;
    Ok(DiscoveredAccount {
        id: row.id,
        kind: AccountKind::parse(&row.kind).map_err(|_| corrupt("kind"))?,
        presence: if row.gone_at.is_some() {
            Presence::Gone
        } else {
            Presence::Present
        },
        risk: serde_json::from_str(&row.risk).map_err(|_| corrupt("risk"))?,
        findings: serde_json::from_str(&row.findings).map_err(|_| corrupt("findings"))?,
        account: super::assess::kept_account(&row, &views)?,
        seen_in: views
            .iter()
            .filter_map(|v| SourceKind::parse(&v.kind).ok())
            .collect(),
        disposition: row.disposition.clone().map(|d| DispositionView {
            state: d.state,
            reason: d.reason,
            by: d.by,
            at: d.at,
        }),
        acknowledgements: Vec::new(),
        source: row.source,
        key: row.key,
        name: row.name,
        enabled: row.enabled,
        owner: row.owner,
        identity: row.identity,
        first_seen: row.first_seen,
        updated_at: row.updated_at,
        gone_at: row.gone_at,
    })
}

/// Each finding of the account, with the account named and its acknowledgement, if any.
pub fn findings(a: &DiscoveredAccount) -> impl Iterator<Item = FindingRow> + '_ {
    a.findings.iter().map(|f: &Finding| FindingRow {
        account: a.id,
        source: a.source.clone(),
        key: a.key.clone(),
        name: a.name.clone(),
        finding: f.clone(),
        acknowledged: a
            .acknowledgements
            .iter()
            .find(|k| k.finding == f.slot())
            .cloned(),
    })
}

/// The accounts with the acknowledgements of their findings still running.
pub async fn with_acknowledgements(
    s: &crate::state::AppState,
    mut accounts: Vec<DiscoveredAccount>,
) -> Result<Vec<DiscoveredAccount>, ApiError> {
    let ids: Vec<_> = accounts.iter().map(|a| a.id).collect();
    let acks = s.store.acknowledgements(&ids, s.clock.now()).await?;
    for a in &mut accounts {
        a.acknowledgements = acks
            .iter()
            .filter(|k| k.account == a.id)
            .map(|k| AcknowledgementView {
                finding: k.finding.clone(),
                reason: k.reason.clone(),
                until: k.until,
                by: k.by.clone(),
                at: k.at,
            })
            .collect();
    }
    Ok(accounts)
}
