//! Behavioural baselines over HTTP: `POST /v1/behaviour/backtest` replays the record through
//! the detectors (admin); `GET /v1/identities/{id}/why` shows an identity's state, its
//! baseline and the findings behind them (admin, auditor, or its sponsor);
//! `POST /v1/identities/{id}/behaviour/expected` marks a finding as expected, which teaches
//! the baseline (admin, with a reason).

use aim_api::behaviour::{Backtest, BacktestBody, BaselineSummary, ExpectedBody, Why};
use aim_domain::baseline::watch::Seen;
use aim_domain::event::{AuditAction, Event};
use aim_domain::human::Role;
use aim_domain::ids::IdentityId;
use aim_store::AuditFilter;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::auth::HumanCaller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Body, PathId, RequestContext};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/behaviour/backtest", post(backtest))
        .route("/v1/identities/{id}/why", get(why))
        .route("/v1/identities/{id}/behaviour/expected", post(expected))
}

/// What the detectors make of the recorded history, with the rules in force or with
/// detectors that only observe now enforced.
#[utoipa::path(post, path = "/v1/behaviour/backtest", tag = "policies", request_body = BacktestBody,
    responses((status = 200, body = Backtest), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn backtest(
    State(s): State<AppState>,
    p: HumanCaller,
    Body(body): Body<BacktestBody>,
) -> Result<Json<Backtest>, ApiError> {
    p.require_any(&[Role::Admin], "backtesting the behavioural detectors")?;
    Ok(Json(crate::behaviour::backtest::run(&s, &body).await?))
}

/// How far back `why` looks.
const WHY_DAYS: u32 = 90;
const WHY_EVENTS: usize = 100;

/// Why the identity is in the state it is: its baseline and its findings.
#[utoipa::path(get, path = "/v1/identities/{id}/why", params(("id" = String, Path)), tag = "identities",
    responses((status = 200, body = Why), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn why(
    State(s): State<AppState>,
    p: HumanCaller,
    PathId(id): PathId<IdentityId>,
) -> Result<Json<Why>, ApiError> {
    let identity = crate::registry::identities::get(&s, id).await?;
    if !p.human.has_role(Role::Admin) && !p.human.has_role(Role::Auditor) {
        p.require_admin_or_sponsor_of(&identity, "reading why an identity was held")?;
    }
    let now = s.clock.now();
    let mut events = Vec::new();
    for action in [
        AuditAction::AnomalyDetected,
        AuditAction::AnomalyExpected,
        AuditAction::IdentityLocked,
        AuditAction::IdentityUnlocked,
    ] {
        let filter = AuditFilter {
            identity: Some(id),
            action: Some(action),
            since: Some(now.minus_days(WHY_DAYS)),
            ..AuditFilter::default()
        };
        events.extend(read_all(&s, &filter).await?);
    }
    events.sort_by_key(|e| e.seq);
    let skip = events.len().saturating_sub(WHY_EVENTS);
    events.drain(..skip);
    let rules = s.behaviour.rules();
    let baseline = s
        .behaviour
        .profile(id)
        .await?
        .filter(|b| b.events > 0)
        .map(|b| BaselineSummary {
            events: b.events,
            first: b.first,
            last: b.last,
            learning: b.learning(rules.learning, now),
            systems: names(b.systems.names()),
            tools: names(b.tools.names()),
            networks: names(b.networks.names()),
            bytes: b.bytes() as u64,
        });
    Ok(Json(Why {
        identity: id,
        name: identity.name,
        state: identity.state.as_str().to_owned(),
        state_cause: identity.state_cause.as_str().to_owned(),
        state_reason: identity.state_reason,
        baseline,
        events,
    }))
}

fn names(v: Vec<&str>) -> Vec<String> {
    v.into_iter().map(str::to_owned).collect()
}

/// Every event `filter` selects, up to the last [`WHY_EVENTS`] thousand read.
async fn read_all(s: &AppState, filter: &AuditFilter) -> Result<Vec<Event>, ApiError> {
    let mut out: Vec<Event> = Vec::new();
    let mut after = 0;
    loop {
        let page = s.store.audit(filter, after, 500).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        out.extend(page);
        if out.len() > WHY_EVENTS * 10 {
            let skip = out.len() - WHY_EVENTS;
            out.drain(..skip);
        }
    }
    Ok(out)
}

/// Marks a finding as expected: the call behind it becomes part of the baseline, so the
/// same call is not found again.
#[utoipa::path(post, path = "/v1/identities/{id}/behaviour/expected", params(("id" = String, Path)), tag = "identities", request_body = ExpectedBody,
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn expected(
    State(s): State<AppState>,
    ctx: RequestContext,
    p: HumanCaller,
    PathId(id): PathId<IdentityId>,
    Body(body): Body<ExpectedBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    p.require_any(&[Role::Admin], "marking an anomaly as expected")?;
    let reason = aim_api::common::ReasonBody {
        reason: body.reason.clone(),
    }
    .checked()?;
    if reason.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "reason_required",
            "say why the anomaly was expected: the reason is on the record",
        ));
    }
    let finding = s
        .store
        .event(body.finding)
        .await?
        .filter(|e| e.action == AuditAction::AnomalyDetected && e.target_id == id.to_string())
        .ok_or_else(|| ApiError::not_found("finding of this identity"))?;
    let decision_seq = finding.detail["decision_seq"].as_i64().unwrap_or_default();
    let seen = match s.store.event(decision_seq).await? {
        Some(e) => Seen::from_record(&e).filter(|(who, _, _)| *who == id),
        None => None,
    };
    let Some((_, seen, _)) = seen else {
        return Err(ApiError::not_found("decision record behind this finding"));
    };
    s.behaviour.accept(id, &seen).await?;
    let event = p
        .event(s.clock.now(), AuditAction::AnomalyExpected, "identity", id)
        .reason(reason)
        .detail(json!({ "finding": body.finding, "decision_seq": decision_seq, "anomalies": finding.detail["anomalies"] }))
        .from_request(&ctx.id, &ctx.source);
    let seq = s.store.append_event(&event).await?;
    Ok(Json(json!({ "seq": seq, "finding": body.finding })))
}
