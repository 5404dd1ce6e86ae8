//! What a security team does about a discovered account: adopt it into the registry (an
//! identity requested for it, approved like any other), put it on its source's
//! decommission list, or acknowledge one of its findings until a date.

use aim_api::discovery::{AcknowledgeBody, AdoptBody, Adopted, DecommissionRow};
use aim_domain::discovery::{Account, tier};
use aim_domain::event::AuditAction;
use aim_domain::identity::{Autonomy, IdentityRequest};
use aim_domain::ids::AccountId;
use aim_store::{Acknowledgement, Discovered, Disposition};
use axum::http::StatusCode;
use serde_json::json;

use super::assess::kept_account;
use crate::auth::HumanCaller;
use crate::error::ApiError;
use crate::state::AppState;

/// The longest an acknowledgement runs.
const MAX_ACK_DAYS: u32 = 365;
/// The most accounts one decommission list holds.
pub const MAX_LIST: u32 = 100_000;

fn conflict(code: &'static str, message: String) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, code, message)
}

/// A present account, or why it cannot be acted on.
async fn present(s: &AppState, id: AccountId) -> Result<(Discovered, Account), ApiError> {
    let d = s
        .store
        .discovered_account(id)
        .await?
        .ok_or_else(|| ApiError::not_found("discovered account"))?;
    if d.0.gone_at.is_some() {
        return Err(conflict(
            "account_gone",
            format!("`{}` is no longer in its source", d.0.name),
        ));
    }
    if let Some(disp) = &d.0.disposition {
        return Err(conflict(
            "already_decided",
            format!(
                "`{}` was already {} by {} at {}",
                d.0.name,
                if disp.state == "adopted" {
                    "adopted"
                } else {
                    "marked for decommissioning"
                },
                disp.by,
                disp.at
            ),
        ));
    }
    let account = kept_account(&d.0, &d.1)?;
    Ok((d, account))
}

fn reason(text: &str) -> Result<String, ApiError> {
    let r = aim_api::common::ReasonBody {
        reason: text.to_owned(),
    }
    .checked()?;
    if r.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "reason_required",
            "say why: the reason is on the record",
        ));
    }
    Ok(r)
}

/// Requests an identity for the account and links them.
pub async fn adopt(
    s: &AppState,
    p: &HumanCaller,
    id: AccountId,
    body: AdoptBody,
) -> Result<Adopted, ApiError> {
    let ((row, _), account) = present(s, id).await?;
    if let Some(identity) = row.identity {
        return Err(conflict(
            "already_in_registry",
            format!(
                "`{}` is already the registry's identity {identity}",
                row.name
            ),
        ));
    }
    let (criticality, sensitivity, impact) = tier::inputs(&account);
    let purpose = body.purpose.or(account.purpose.clone()).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "purpose_required",
            format!(
                "`{}` has no purpose in its source: say what it is for",
                row.name
            ),
        )
    })?;
    let request = IdentityRequest {
        name: body.name.unwrap_or_else(|| account.name.clone()),
        kind: body.kind,
        autonomy: body.autonomy.unwrap_or(Autonomy::Automation),
        sponsor_id: body.sponsor_id,
        owner_team: body.owner_team,
        purpose,
        systems: body.systems.unwrap_or_else(|| account.systems.clone()),
        data_sensitivity: body.data_sensitivity.unwrap_or(sensitivity),
        criticality: body.criticality.unwrap_or(criticality),
        impact: body.impact.unwrap_or(impact),
        labels: body.labels,
        expires_at: body.expires_at,
    };
    let identity = crate::registry::identities::request(s, p, request).await?;
    let now = s.clock.now();
    let disposition = Disposition {
        state: "adopted".to_owned(),
        reason: format!("adopted as {}", identity.name),
        by: p.human.user_name.clone(),
        at: now,
    };
    let event = p
        .event(now, AuditAction::DiscoveryAccountAdopted, "discovered_account", id)
        .detail(json!({ "source": row.source, "key": row.key, "identity": identity.id, "name": identity.name }));
    if !s
        .store
        .set_disposition(id, &disposition, Some(identity.id), &event)
        .await?
    {
        // Another admin decided meanwhile; the identity request stands on its own.
        return Err(conflict(
            "already_decided",
            format!(
                "`{}` was decided meanwhile; the identity {} was requested and is not linked to it",
                row.name, identity.name
            ),
        ));
    }
    Ok(Adopted {
        account: id,
        identity,
    })
}

/// Puts the account on its source's decommission list.
pub async fn decommission(
    s: &AppState,
    p: &HumanCaller,
    id: AccountId,
    why: &str,
) -> Result<DecommissionRow, ApiError> {
    let why = reason(why)?;
    let ((row, _), account) = present(s, id).await?;
    let now = s.clock.now();
    let disposition = Disposition {
        state: "decommission".to_owned(),
        reason: why.clone(),
        by: p.human.user_name.clone(),
        at: now,
    };
    let event = p
        .event(
            now,
            AuditAction::DiscoveryAccountMarked,
            "discovered_account",
            id,
        )
        .reason(why)
        .detail(json!({ "source": row.source, "key": row.key, "name": row.name }));
    if !s
        .store
        .set_disposition(id, &disposition, None, &event)
        .await?
    {
        return Err(conflict(
            "already_decided",
            format!("`{}` was decided meanwhile", row.name),
        ));
    }
    Ok(list_row(
        aim_store::AccountRow {
            disposition: Some(disposition),
            ..row
        },
        &account,
    ))
}

/// One account of a decommission list.
pub fn list_row(row: aim_store::AccountRow, account: &Account) -> DecommissionRow {
    let d = row.disposition.unwrap_or(Disposition {
        state: String::new(),
        reason: String::new(),
        by: String::new(),
        at: row.updated_at,
    });
    DecommissionRow {
        account: row.id,
        source: row.source,
        key: row.key,
        name: row.name,
        kind: account.kind,
        owner: row.owner,
        active_credentials: account.active().map(|c| c.id.clone()).collect(),
        reason: d.reason,
        marked_by: d.by,
        marked_at: d.at,
        gone_at: row.gone_at,
    }
}

/// The decommission list of `source` (or of every source).
pub async fn list(s: &AppState, source: Option<&str>) -> Result<Vec<DecommissionRow>, ApiError> {
    let rows = s.store.disposed("decommission", source, MAX_LIST).await?;
    // An account with one view keeps its record there: read those views at once.
    let single: Vec<AccountId> = rows
        .iter()
        .filter(|r| r.account.is_empty())
        .map(|r| r.id)
        .collect();
    let mut views: std::collections::HashMap<AccountId, Vec<aim_store::ViewRow>> = s
        .store
        .discovered_by_ids(&single)
        .await?
        .into_iter()
        .map(|(r, v)| (r.id, v))
        .collect();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let v = views.remove(&row.id).unwrap_or_default();
        let account = kept_account(&row, &v)?;
        out.push(list_row(row, &account));
    }
    Ok(out)
}

/// Acknowledges one of the account's findings until a date.
pub async fn acknowledge(
    s: &AppState,
    p: &HumanCaller,
    id: AccountId,
    body: AcknowledgeBody,
) -> Result<Acknowledgement, ApiError> {
    let why = reason(&body.reason)?;
    let d = s
        .store
        .discovered_account(id)
        .await?
        .ok_or_else(|| ApiError::not_found("discovered account"))?;
    let findings: Vec<aim_domain::discovery::Finding> =
        serde_json::from_str(&d.0.findings).map_err(|_| ApiError::internal())?;
    if !findings.iter().any(|f| f.slot() == body.finding) {
        let slots: Vec<String> = findings.iter().map(|f| f.slot()).collect();
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "finding_not_found",
            format!(
                "`{}` has no finding `{}`; its findings: {}",
                d.0.name,
                body.finding.chars().take(128).collect::<String>(),
                if slots.is_empty() {
                    "none".to_owned()
                } else {
                    slots.join(", ")
                }
            ),
        ));
    }
    let now = s.clock.now();
    if body.until <= now || body.until > now.plus_days(MAX_ACK_DAYS) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_until",
            format!("`until` must be after now and at most {MAX_ACK_DAYS} days away"),
        ));
    }
    let ack = Acknowledgement {
        account: id,
        finding: body.finding,
        reason: why.clone(),
        until: body.until,
        by: p.human.user_name.clone(),
        at: now,
    };
    let event = p
        .event(now, AuditAction::DiscoveryFindingAcknowledged, "discovered_account", id)
        .reason(why)
        .detail(json!({ "source": d.0.source, "key": d.0.key, "finding": ack.finding, "until": ack.until }));
    s.store.acknowledge(&ack, &event).await?;
    Ok(ack)
}
