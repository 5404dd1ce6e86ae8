//! Discovery imports: an import is opened for one source in one format, its accounts arrive
//! in batches (each assessed and written with its event), and finishing it drops the views
//! of accounts the format no longer shows (an account no format shows is gone) and records
//! the source's counts and the machine-to-human ratio.
//!
//! # Layout
//! - [`across`] — findings across accounts, brought up to date when an import finishes
//! - [`assess`] — one batch: accounts merged with their other views, linked, assessed
//! - [`reassess`] — findings brought up to date without an import (the clock, the owners)
//! - [`remedy`] — adoption into the registry, the decommission list, acknowledged findings
//! - [`rows`] — discovered accounts between the store's rows and the API's shape

pub mod across;
pub mod assess;
pub mod reassess;
pub mod remedy;
pub mod rows;

use std::collections::BTreeMap;

use aim_api::discovery::{BatchCounts, Import, ImportSummary, NewImport, Ratio};
use aim_domain::discovery::{Account, FindingKind, Severity, SourceKind, Thresholds};
use aim_domain::event::AuditAction;
use aim_domain::ids::ImportId;
use aim_domain::time::Timestamp;
use aim_store::ImportRow;
use axum::http::StatusCode;
use serde_json::json;

use crate::auth::HumanCaller;
use crate::error::ApiError;
use crate::state::AppState;

/// An open import with no batch for this long no longer holds its source.
pub(crate) const IDLE_MINUTES: i64 = 15;
/// Accounts marked gone per transaction when an import finishes.
const GONE_PAGE: u32 = 1000;

/// Opens an import of `body.source` in `body.kind`.
pub async fn open(s: &AppState, p: &HumanCaller, body: NewImport) -> Result<Import, ApiError> {
    let source = aim_domain::validate::token("source", body.source.trim(), 128)?;
    let thresholds = body
        .thresholds
        .unwrap_or_else(|| Thresholds::for_source(body.kind))
        .checked(body.kind)
        .map_err(|r| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_thresholds",
                r.to_string(),
            )
        })?;
    let now = s.clock.now();
    let row = ImportRow {
        id: ImportId::new(),
        source: source.clone(),
        kind: body.kind.as_str().to_owned(),
        thresholds: json!(thresholds).to_string(),
        started_at: now,
        started_by: p.human.id.to_string(),
        touched_at: now,
        finished_at: None,
        summary: None,
        abandoned: false,
    };
    let event = p
        .event(
            now,
            AuditAction::DiscoveryImportStarted,
            "discovery_import",
            row.id,
        )
        .detail(json!({ "source": source, "kind": body.kind, "thresholds": thresholds }));
    let stale = Timestamp::from_millis(now.as_millis() - IDLE_MINUTES * 60_000);
    if let Some(open) = s.store.open_import(&row, stale, &event).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "import_in_progress",
            format!(
                "import {} of `{source}` ({}) is still open (its last batch at {}); finish it, \
                 or start again once it has been idle for {IDLE_MINUTES} minutes",
                open.id, open.kind, open.touched_at
            ),
        ));
    }
    import_of(row)
}

/// The import as the API shows it.
pub fn import_of(row: ImportRow) -> Result<Import, ApiError> {
    let kind = SourceKind::parse(&row.kind).map_err(|_| ApiError::internal())?;
    let thresholds = serde_json::from_str(&row.thresholds).map_err(|_| ApiError::internal())?;
    let summary = match (&row.finished_at, &row.summary) {
        (Some(_), Some(s)) if !row.abandoned => {
            Some(serde_json::from_str(s).map_err(|_| ApiError::internal())?)
        }
        _ => None,
    };
    Ok(Import {
        id: row.id,
        source: row.source,
        kind,
        thresholds,
        started_at: row.started_at,
        finished_at: row.finished_at,
        summary,
        abandoned: row.abandoned,
    })
}

/// Ends an open import without marking anything gone: its reading failed, and a new one
/// may start at once.
pub async fn abandon(s: &AppState, p: &HumanCaller, id: ImportId) -> Result<Import, ApiError> {
    let import = open_import(s, id).await?;
    let now = s.clock.now();
    let event = p
        .event(
            now,
            AuditAction::DiscoveryImportAbandoned,
            "discovery_import",
            id,
        )
        .detail(json!({ "source": import.source, "kind": import.kind, "batches": import.summary }));
    if !s.store.abandon_import(id, now, &event).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "import_finished",
            format!("import {id} was finished meanwhile"),
        ));
    }
    import_of(ImportRow {
        finished_at: Some(now),
        abandoned: true,
        ..import
    })
}

/// The open import `id`, or why it cannot take batches.
pub async fn open_import(s: &AppState, id: ImportId) -> Result<ImportRow, ApiError> {
    let row = s
        .store
        .discovery_import(id)
        .await?
        .ok_or_else(|| ApiError::not_found("import"))?;
    if row.finished_at.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "import_finished",
            format!("import {id} is finished; open a new one to import again"),
        ));
    }
    Ok(row)
}

/// What an open import's batches did so far.
fn running(import: &ImportRow) -> Result<BatchCounts, ApiError> {
    Ok(import
        .summary
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|_| ApiError::internal())?
        .unwrap_or_default())
}

/// Writes one batch of an open import.
pub async fn batch(
    s: &AppState,
    p: &HumanCaller,
    id: ImportId,
    accounts: Vec<Account>,
) -> Result<BatchCounts, ApiError> {
    let import = open_import(s, id).await?;
    let kind = SourceKind::parse(&import.kind).map_err(|_| ApiError::internal())?;
    let thresholds: Thresholds =
        serde_json::from_str(&import.thresholds).map_err(|_| ApiError::internal())?;
    let now = s.clock.now();
    let assessed = assess::batch(s, &import, kind, thresholds, accounts, now).await?;
    let before = running(&import)?;
    let counts = assessed.counts.clone();
    let running = json!(BatchCounts {
        received: before.received + counts.received,
        new: before.new + counts.new,
        updated: before.updated + counts.updated,
        unchanged: before.unchanged + counts.unchanged,
        findings: before.findings + counts.findings,
    })
    .to_string();
    let event = p
        .event(
            now,
            AuditAction::DiscoveryAccountsImported,
            "discovery_import",
            id,
        )
        .detail(json!({ "source": import.source, "kind": kind, "counts": counts }));
    let progress = aim_store::Progress {
        import: id,
        before: import.summary.as_deref(),
        after: &running,
        at: now,
    };
    if !s
        .store
        .save_discovered(&assessed.accounts, &assessed.views, progress, &event)
        .await?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "import_changed",
            format!(
                "import {id} finished or took another batch while this one was read; \
                 send batches one at a time"
            ),
        ));
    }
    Ok(counts)
}

/// Finishes an open import: the accounts its format no longer shows lose that view (and are
/// gone when no view is left), and its counts are recorded.
pub async fn finish(
    s: &AppState,
    p: &HumanCaller,
    id: ImportId,
    allow_mass_removal: bool,
) -> Result<Import, ApiError> {
    let import = open_import(s, id).await?;
    let kind = SourceKind::parse(&import.kind).map_err(|_| ApiError::internal())?;
    let (total, unseen) = s
        .store
        .view_counts(&import.source, kind.as_str(), id)
        .await?;
    if mass_removal(total, unseen) && !allow_mass_removal {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "mass_removal",
            format!(
                "this import of `{}` ({kind}) would mark {unseen} of the {total} accounts it \
                 showed before as no longer there: a wrong or empty file does that. If the \
                 source really lost them, finish with allow_mass_removal \
                 (--allow-mass-removal); otherwise abandon the import",
                import.source
            ),
        ));
    }
    let thresholds: Thresholds =
        serde_json::from_str(&import.thresholds).map_err(|_| ApiError::internal())?;
    let batches = running(&import)?;
    let now = s.clock.now();
    let mut gone = 0;
    loop {
        let page = s
            .store
            .discovered_unseen(&import.source, kind.as_str(), id, GONE_PAGE)
            .await?;
        if page.is_empty() {
            break;
        }
        let (dropped, rows, left) = assess::unseen(s, kind, thresholds, page, now).await?;
        gone += left;
        let event = p
            .event(now, AuditAction::DiscoveryAccountsImported, "discovery_import", id)
            .detail(json!({ "source": import.source, "kind": kind, "no_longer_shown": dropped.len(), "gone": left }));
        s.store.drop_views(&dropped, &rows, &event).await?;
    }
    across::refresh(s, p, &import, now).await?;
    let summary = summarize(s, &import.source, batches, gone).await?;
    let event = p
        .event(
            now,
            AuditAction::DiscoveryImportFinished,
            "discovery_import",
            id,
        )
        .detail(json!({ "source": import.source, "kind": kind, "summary": summary }));
    let text = json!(summary).to_string();
    if !s.store.finish_import(id, now, &text, &event).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "import_finished",
            format!("import {id} was finished meanwhile"),
        ));
    }
    import_of(ImportRow {
        finished_at: Some(now),
        summary: Some(text),
        ..import
    })
}

/// Whether an import would mark more than half of a format's accounts gone (at least
/// [`MASS_REMOVAL_MIN`] of them): what a wrong or empty file does.
pub fn mass_removal(total: u64, unseen: u64) -> bool {
    unseen >= MASS_REMOVAL_MIN && unseen * 2 > total
}

/// The fewest accounts a mass removal is about.
pub const MASS_REMOVAL_MIN: u64 = 4;

/// The source's counts now, and the machine-to-human ratio over every source.
async fn summarize(
    s: &AppState,
    source: &str,
    batches: BatchCounts,
    gone: u64,
) -> Result<ImportSummary, ApiError> {
    let tally = s.store.discovery_tally(source).await?;
    let mut findings: BTreeMap<FindingKind, u64> = BTreeMap::new();
    let mut severities: BTreeMap<Severity, u64> = BTreeMap::new();
    for entry in tally.finding_kinds.iter().flat_map(|k| k.split(',')) {
        let Some((kind, severity)) = entry.split_once(':') else {
            continue;
        };
        if let (Ok(k), Ok(sev)) = (FindingKind::parse(kind), Severity::parse(severity)) {
            *findings.entry(k).or_default() += 1;
            *severities.entry(sev).or_default() += 1;
        }
    }
    Ok(ImportSummary {
        batches,
        gone,
        present: tally.present,
        machine_enabled: tally.machine_enabled,
        findings,
        severities,
        ratio: ratio(s).await?,
    })
}

/// Enabled machine identities (discovered and not in the registry, plus the registry's
/// active ones) per active person (a human with only machine roles is not one).
pub async fn ratio(s: &AppState) -> Result<Ratio, ApiError> {
    let unlinked = s.store.unlinked_machine_accounts().await?;
    let (registered, roles) = s.store.population().await?;
    let people = roles
        .iter()
        .filter(|r| {
            let roles: Vec<aim_domain::human::Role> = r
                .split(',')
                .filter_map(|x| aim_domain::human::Role::parse(x).ok())
                .collect();
            aim_domain::human::is_person(&roles)
        })
        .count() as u64;
    let machines = unlinked + registered;
    Ok(Ratio {
        machine_identities: machines,
        active_humans: people,
        per_human: (people > 0).then(|| machines as f64 / people as f64),
    })
}
