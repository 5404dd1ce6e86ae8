//! One batch of an import, assessed: each account merged with what the source's other
//! formats say of it, linked to the registry identity of its name, its owner looked up
//! among aim's humans, its findings and tier worked out, and compared with what was kept.

use std::collections::{HashMap, HashSet};

use aim_api::discovery::{BatchCounts, MAX_BATCH};
use aim_domain::discovery::{
    Account, Finding, Owner, SourceKind, Subject, Thresholds, across, assess as rules, tier,
};
use aim_domain::ids::{AccountId, IdentityId};
use aim_domain::time::Timestamp;
use aim_store::{AccountRow, Discovered, ImportRow, ViewRow};
use axum::http::StatusCode;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::AppState;

/// A batch ready to write.
#[derive(Debug)]
pub struct Assessed {
    pub counts: BatchCounts,
    pub accounts: Vec<AccountRow>,
    pub views: Vec<ViewRow>,
}

fn invalid(code: &'static str, message: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

fn corrupt(what: &str) -> ApiError {
    tracing::error!(
        what,
        "a discovered account's stored record could not be read"
    );
    ApiError::internal()
}

fn parse_account(text: &str) -> Result<Account, ApiError> {
    serde_json::from_str(text).map_err(|_| corrupt("account"))
}

/// `accounts` of one batch of `import`, assessed against what is kept.
pub async fn batch(
    s: &AppState,
    import: &ImportRow,
    kind: SourceKind,
    thresholds: Thresholds,
    accounts: Vec<Account>,
    now: Timestamp,
) -> Result<Assessed, ApiError> {
    let checked = checked(accounts)?;
    let keys: Vec<String> = checked.iter().map(|a| a.key.clone()).collect();
    let mut kept: HashMap<String, Discovered> = s
        .store
        .discovered_by_key(&import.source, &keys)
        .await?
        .into_iter()
        .map(|d| (d.0.key.clone(), d))
        .collect();
    let mut counts = BatchCounts {
        received: checked.len() as u64,
        ..BatchCounts::default()
    };
    let mut views = Vec::with_capacity(checked.len());
    let mut pending = Vec::with_capacity(checked.len());
    for account in checked {
        let record = serde_json::to_string(&account).map_err(|_| ApiError::internal())?;
        let digest = hex(&Sha256::digest(record.as_bytes()));
        let existing = kept.remove(&account.key);
        let id = existing.as_ref().map_or_else(AccountId::new, |(a, _)| a.id);
        let mut merged = account;
        let mut previous = None;
        let mut single = true;
        let mut seen_before = false;
        if let Some((row, views)) = &existing {
            for v in views {
                if v.kind == kind.as_str() {
                    seen_before = v.digest == digest;
                } else {
                    merged = merged.merge(&parse_account(&v.record)?);
                    single = false;
                }
            }
            // Only a privileged group needs the previous import's view (was it there?).
            if row.gone_at.is_none() && merged.groups.iter().any(|g| g.privileged) {
                previous = Some(kept_account(row, views)?);
            }
        }
        views.push(ViewRow {
            account: id,
            kind: kind.as_str().to_owned(),
            source: import.source.clone(),
            import: import.id,
            digest,
            record,
        });
        pending.push(Pending {
            id,
            existing: existing.map(|(row, _)| row),
            merged,
            single,
            seen_before,
            previous,
        });
    }
    let accounts = rows(s, &import.source, thresholds, pending, now).await?;
    for a in &accounts {
        match a.1 {
            Change::New => counts.new += 1,
            Change::Updated => counts.updated += 1,
            Change::Unchanged => counts.unchanged += 1,
        }
        counts.findings += a.2;
    }
    // An unchanged account is not written again; its view still moves to this import (it
    // is seen).
    Ok(Assessed {
        counts,
        accounts: accounts
            .into_iter()
            .filter(|a| a.1 != Change::Unchanged)
            .map(|a| a.0)
            .collect(),
        views,
    })
}

/// The batch's accounts checked (text, bounds), each key once; the first bad account
/// refuses the batch, named by its position and key.
fn checked(accounts: Vec<Account>) -> Result<Vec<Account>, ApiError> {
    if accounts.len() > MAX_BATCH {
        return Err(invalid(
            "batch_too_large",
            format!(
                "a batch holds at most {MAX_BATCH} accounts; this one has {}",
                accounts.len()
            ),
        ));
    }
    let mut checked = Vec::with_capacity(accounts.len());
    let mut keys = HashSet::new();
    for (i, a) in accounts.into_iter().enumerate() {
        let key: String = a.key.chars().take(128).collect();
        let a = a.checked().map_err(|r| {
            invalid(
                "invalid_account",
                format!("account {i} (`{}`): {r}", key.escape_debug()),
            )
        })?;
        if !keys.insert(a.key.clone()) {
            return Err(invalid(
                "duplicate_account",
                format!(
                    "account {i}: the key `{}` is already in this batch",
                    key.escape_debug()
                ),
            ));
        }
        checked.push(a);
    }
    Ok(checked)
}

/// An account to assess: its id, the row kept for it, its views merged, whether it has
/// only the one view (whose record is then the account: it is not kept twice), whether that
/// view's record is the one already kept, and what the previous import saw of it.
struct Pending {
    id: AccountId,
    existing: Option<AccountRow>,
    merged: Account,
    single: bool,
    seen_before: bool,
    previous: Option<Account>,
}

/// The account a kept row holds: its merged views, or its only view's record.
pub fn kept_account(row: &AccountRow, views: &[ViewRow]) -> Result<Account, ApiError> {
    if !row.account.is_empty() {
        return parse_account(&row.account);
    }
    match views {
        [only] => parse_account(&only.record),
        _ => Err(corrupt("account with no merged record and not one view")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    New,
    Updated,
    Unchanged,
}

/// Assesses each pending account: owners and identities looked up for all of them at once.
async fn rows(
    s: &AppState,
    source: &str,
    thresholds: Thresholds,
    pending: Vec<Pending>,
    now: Timestamp,
) -> Result<Vec<(AccountRow, Change, u64)>, ApiError> {
    let humans = Owners::of(s, pending.iter().map(|p| &p.merged)).await?;
    let names: Vec<String> = pending
        .iter()
        .map(|p| p.merged.name.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let identities: HashMap<String, IdentityId> = s
        .store
        .identities_named(&names)
        .await?
        .into_iter()
        .collect();
    let mut out = Vec::with_capacity(pending.len());
    for p in pending {
        let mut findings = rules(&Subject {
            account: &p.merged,
            previous: p.previous.as_ref(),
            owner: humans.owner(&p.merged),
            thresholds,
            now,
        });
        // Findings across accounts are the import's end's to change: carried until then.
        if let Some(e) = &p.existing {
            findings.extend(carried(e)?);
        }
        let identity = p
            .existing
            .as_ref()
            .and_then(|e| e.identity)
            .or_else(|| identities.get(&p.merged.name).copied());
        let text = if p.single {
            String::new()
        } else {
            serde_json::to_string(&p.merged).map_err(|_| ApiError::internal())?
        };
        let row = account_row(p.id, source, (&p.merged, text), identity, &findings, now)?;
        let (row, change) = match p.existing {
            None => (row, Change::New),
            Some(e) if e.gone_at.is_some() => (
                AccountRow {
                    first_seen: e.first_seen,
                    ..row
                },
                Change::New,
            ),
            Some(e) => {
                let same = p.seen_before
                    && e.account == row.account
                    && e.findings == row.findings
                    && e.identity == row.identity;
                let row = AccountRow {
                    first_seen: e.first_seen,
                    updated_at: if same { e.updated_at } else { now },
                    ..row
                };
                (
                    row,
                    if same {
                        Change::Unchanged
                    } else {
                        Change::Updated
                    },
                )
            }
        };
        out.push((row, change, findings.len() as u64));
    }
    Ok(out)
}

/// The states of the humans some accounts name as owners (by lower-cased name or e-mail).
#[derive(Debug)]
pub struct Owners(HashMap<String, String>);

impl Owners {
    pub async fn of(
        s: &AppState,
        accounts: impl Iterator<Item = &Account>,
    ) -> Result<Owners, ApiError> {
        let names: Vec<String> = accounts
            .filter_map(|a| a.owner.as_deref())
            .map(str::to_lowercase)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        Ok(Owners(
            s.store.humans_named(&names).await?.into_iter().collect(),
        ))
    }

    /// What aim knows of `a`'s owner.
    pub fn owner(&self, a: &Account) -> Owner {
        match a.owner.as_deref() {
            None => Owner::None,
            Some(o) => match self.0.get(&o.to_lowercase()).map(String::as_str) {
                Some("active") => Owner::Active(o.to_owned()),
                Some(_) => Owner::Departed(o.to_owned()),
                None => Owner::Unknown(o.to_owned()),
            },
        }
    }
}

/// The row kept for an account; `text` is its merged JSON, empty when it has one view.
fn account_row(
    id: AccountId,
    source: &str,
    (a, text): (&Account, String),
    identity: Option<IdentityId>,
    findings: &[Finding],
    now: Timestamp,
) -> Result<AccountRow, ApiError> {
    let risk = tier::tier(a);
    Ok(AccountRow {
        id,
        source: source.to_owned(),
        key: a.key.clone(),
        name: a.name.clone(),
        kind: a.kind.as_str().to_owned(),
        enabled: a.enabled,
        owner: a.owner.clone(),
        identity,
        tier: risk.tier.as_str().to_owned(),
        risk: serde_json::to_string(&risk).map_err(|_| ApiError::internal())?,
        findings: serde_json::to_string(findings).map_err(|_| ApiError::internal())?,
        finding_kinds: kinds_of(findings),
        account: text,
        first_seen: now,
        updated_at: now,
        gone_at: None,
        dup_key: across::duplicate_key(a),
        vendor_key: across::vendor_key(a),
        fingerprints: a
            .active()
            .filter_map(|c| Some((c.id.clone(), c.fingerprint.clone()?)))
            .collect(),
        environment: a.environment.clone(),
        disposition: None,
    })
}

/// The findings across accounts a kept row carries.
pub fn carried(row: &AccountRow) -> Result<Vec<Finding>, ApiError> {
    let marks = across::KINDS
        .iter()
        .any(|k| row.finding_kinds.contains(&format!(",{k}:")));
    if !marks {
        return Ok(Vec::new());
    }
    let all: Vec<Finding> = serde_json::from_str(&row.findings).map_err(|_| corrupt("findings"))?;
    Ok(all
        .into_iter()
        .filter(|f| across::KINDS.contains(&f.kind))
        .collect())
}

/// `,kind:severity,` for each finding, as lists filter on.
pub fn kinds_of(findings: &[Finding]) -> String {
    let kinds: String = findings
        .iter()
        .map(|f| format!(",{}:{}", f.kind, f.severity))
        .collect();
    if kinds.is_empty() { kinds } else { kinds + "," }
}

/// Accounts an import of `kind` no longer shows: that view dropped, the rest re-assessed,
/// those with no view left gone. Returns the views to drop, the rows to write, and how
/// many are gone.
pub async fn unseen(
    s: &AppState,
    kind: SourceKind,
    thresholds: Thresholds,
    page: Vec<Discovered>,
    now: Timestamp,
) -> Result<(Vec<(AccountId, String)>, Vec<AccountRow>, u64), ApiError> {
    let mut dropped = Vec::with_capacity(page.len());
    let mut rows_out = Vec::new();
    let mut pending = Vec::new();
    let mut gone = 0;
    let source = page.first().map(|d| d.0.source.clone()).unwrap_or_default();
    for (row, views) in page {
        dropped.push((row.id, kind.as_str().to_owned()));
        let mut left = views.iter().filter(|v| v.kind != kind.as_str());
        let Some(first) = left.next() else {
            gone += 1;
            // The last view goes: the account keeps what it said.
            let account = match row.account.as_str() {
                "" => views.first().map(|v| v.record.clone()).unwrap_or_default(),
                _ => row.account.clone(),
            };
            rows_out.push(AccountRow {
                account,
                findings: "[]".to_owned(),
                finding_kinds: String::new(),
                updated_at: now,
                gone_at: Some(now),
                ..row
            });
            continue;
        };
        let mut merged = parse_account(&first.record)?;
        let mut single = true;
        for v in left {
            merged = merged.merge(&parse_account(&v.record)?);
            single = false;
        }
        let previous = Some(kept_account(&row, &views)?);
        pending.push(Pending {
            id: row.id,
            existing: Some(row),
            merged,
            single,
            seen_before: false,
            previous,
        });
    }
    rows_out.extend(
        rows(s, &source, thresholds, pending, now)
            .await?
            .into_iter()
            .map(|r| r.0),
    );
    Ok((dropped, rows_out, gone))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
