//! `/v1/approvals`: approvals of exact high-risk actions. Any human may list what waits;
//! the humans a policy named (`@approval("sponsor")`, `"group:<name>"`, `"role:<role>"`,
//! `"human:<user name>"`) approve or deny with a reason; an agent may read its own
//! approvals, to learn when to retry, and never decide one.

use aim_domain::Refusal;
use aim_domain::approval::{ActionApproval, ApprovalState};
use aim_domain::event::AuditAction;
use aim_domain::event::Trail;
use aim_domain::ids::{ApprovalId, IdentityId};
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::{Caller, HumanCaller};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Body, PathId, Query};
use crate::paging;
use crate::state::AppState;
use aim_api::common::ReasonBody;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/approvals", get(list))
        .route("/v1/approvals/{id}", get(show))
        .route("/v1/approvals/{id}/approve", post(approve))
        .route("/v1/approvals/{id}/deny", post(deny))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ApprovalQuery {
    /// `pending` (the default: waiting and unexpired), `approved`, `denied`, `used`, or
    /// `all`.
    state: Option<String>,
    #[param(value_type = Option<String>)]
    identity: Option<IdentityId>,
    cursor: Option<String>,
    limit: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApprovalPage {
    pub items: Vec<ActionApproval>,
    pub next_cursor: Option<String>,
    /// Each identity's name and each human's user name the items hold, by id.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub names: std::collections::BTreeMap<String, String>,
}

/// What waits for a decision (or, with `state`, what was decided).
#[utoipa::path(get, path = "/v1/approvals", tag = "approvals", params(ApprovalQuery),
    responses((status = 200, body = ApprovalPage), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    _: HumanCaller,
    Query(q): Query<ApprovalQuery>,
) -> Result<Json<ApprovalPage>, ApiError> {
    let state = match q.state.as_deref() {
        None => Some(ApprovalState::Pending),
        Some("all") => None,
        Some(other) => Some(ApprovalState::parse(other).map_err(Refusal::from)?),
    };
    let limit = paging::limit(q.limit)?;
    let after = paging::Cursor::id(paging::Cursor::decode(q.cursor.as_deref())?)?
        .map(ApprovalId::from_uuid);
    let now = s.clock.now();
    let mut items = s
        .store
        .list_approvals(state, q.identity, now, after, limit + 1)
        .await?;
    for a in &mut items {
        a.state = a.state_at(now);
    }
    let page = paging::page(items, limit, |a| paging::Cursor::Id(a.id.as_uuid()));
    Ok(Json(ApprovalPage {
        names: crate::names::names_in(&s.store, &page.items).await?,
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

async fn get_approval(s: &AppState, id: ApprovalId) -> Result<ActionApproval, ApiError> {
    let mut a = s
        .store
        .approval(id)
        .await?
        .ok_or_else(|| ApiError::not_found("approval"))?;
    a.state = a.state_at(s.clock.now());
    Ok(a)
}

#[utoipa::path(get, path = "/v1/approvals/{id}", params(("id" = String, Path)), tag = "approvals",
    responses((status = 200, body = ActionApproval), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(s): State<AppState>,
    caller: Caller,
    PathId(id): PathId<ApprovalId>,
) -> Result<Json<ActionApproval>, ApiError> {
    let a = get_approval(&s, id).await?;
    if let Caller::Agent(agent) = &caller
        && agent.identity != a.action.identity_id
    {
        // Another identity's approvals are not this agent's business, nor is their
        // existence.
        return Err(ApiError::not_found("approval"));
    }
    Ok(Json(a))
}

#[utoipa::path(post, path = "/v1/approvals/{id}/approve", params(("id" = String, Path)), tag = "approvals", request_body = ReasonBody,
    responses((status = 200, body = ActionApproval), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn approve(
    s: State<AppState>,
    caller: Caller,
    id: PathId<ApprovalId>,
    body: Body<ReasonBody>,
) -> Result<Json<ActionApproval>, ApiError> {
    decide(s, caller, id, body, true).await
}

#[utoipa::path(post, path = "/v1/approvals/{id}/deny", params(("id" = String, Path)), tag = "approvals", request_body = ReasonBody,
    responses((status = 200, body = ActionApproval), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn deny(
    s: State<AppState>,
    caller: Caller,
    id: PathId<ApprovalId>,
    body: Body<ReasonBody>,
) -> Result<Json<ActionApproval>, ApiError> {
    decide(s, caller, id, body, false).await
}

async fn decide(
    State(s): State<AppState>,
    caller: Caller,
    PathId(id): PathId<ApprovalId>,
    Body(body): Body<ReasonBody>,
    approve: bool,
) -> Result<Json<ActionApproval>, ApiError> {
    let p = match caller {
        Caller::Human(p) => p,
        // An agent holds no human credential; no identity approves an action, least of
        // all its own.
        Caller::Agent(_) => return Err(Refusal::IdentityApproval.into()),
    };
    let mut a = get_approval(&s, id).await?;
    let before = a.state;
    let now = s.clock.now();
    a.decide(&p.human, approve, &body.checked()?, now)?;
    let action = if approve {
        AuditAction::ApprovalApproved
    } else {
        AuditAction::ApprovalDenied
    };
    let event = p
        .event(now, action, "approval", id)
        .reason(a.reason.clone())
        .detail(json!({
            "identity": a.action.identity_id,
            "action": a.action.action,
            "resource": a.action.resource_id,
            "system": a.action.system,
            "args_hash": a.action.args_hash,
        }))
        .trail(Trail {
            task_id: a.action.task_id.to_string(),
            triggered_by: a.triggered_by.clone(),
            policies: a.policies.clone(),
            ..Trail::default()
        });
    if !s.store.update_approval(&a, before, &event).await? {
        return Err(Refusal::ConcurrentUpdate.into());
    }
    Ok(Json(a))
}
