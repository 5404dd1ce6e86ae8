//! Discovered accounts from the store's rows to the API's shape.

use aim_api::discovery::{DiscoveredAccount, FindingRow, Presence};
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

/// Each finding of the account, with the account named.
pub fn findings(a: &DiscoveredAccount) -> impl Iterator<Item = FindingRow> + '_ {
    a.findings.iter().map(|f: &Finding| FindingRow {
        account: a.id,
        source: a.source.clone(),
        key: a.key.clone(),
        name: a.name.clone(),
        finding: f.clone(),
    })
}
