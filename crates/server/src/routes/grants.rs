//! `/v1/grants`: least privilege given explicitly. Admins grant an identity or a group
//! (team) an action on a record or a system, optionally until a deadline, and revoke it.
//! An agent asks for a just-in-time elevation under its task, with a reason and a
//! duration; its sponsor (or an approver) approves it, and it expires by itself.

use aim_domain::Refusal;
use aim_domain::event::{Actor, AuditAction, Event, Trail};
use aim_domain::grant::{ElevationRequest, Grant, GrantState, Grantee, NewGrant};
use aim_domain::human::Role;
use aim_domain::ids::{GrantId, IdentityId};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::{Caller, HumanCaller};
use crate::error::{ApiError, ErrorBody};
use crate::extract::RequestContext;
use crate::extract::{Body, PathId, Query};
use crate::paging;
use crate::registry::identities as reg;
use crate::state::AppState;
use aim_api::common::ReasonBody;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/grants", get(list).post(add))
        .route("/v1/grants/requests", post(request))
        .route("/v1/grants/{id}", get(show))
        .route("/v1/grants/{id}/approve", post(approve))
        .route("/v1/grants/{id}/deny", post(deny))
        .route("/v1/grants/{id}/revoke", post(revoke))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GrantQuery {
    /// `requested`, `active`, `denied`, `revoked`; all by default.
    state: Option<GrantState>,
    /// Grants to this identity.
    #[param(value_type = Option<String>)]
    identity: Option<IdentityId>,
    /// Grants to this group.
    group: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GrantPage {
    pub items: Vec<Grant>,
    pub next_cursor: Option<String>,
    /// Each identity's name and each human's user name the items hold, by id.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub names: std::collections::BTreeMap<String, String>,
}

/// Reloads this replica's live grants after a change.
async fn changed(s: &AppState) {
    if let Err(e) = s.decisions.refresh_grants(&s.store, s.clock.now()).await {
        tracing::error!(error = %e, "could not reload the grants; the background refresh will retry");
    }
}

fn with_state(mut g: Grant, s: &AppState) -> Grant {
    g.state = g.state_at(s.clock.now());
    g
}

#[utoipa::path(post, path = "/v1/grants", tag = "grants", request_body = NewGrant,
    responses((status = 201, body = Grant), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add(
    State(s): State<AppState>,
    p: HumanCaller,
    Body(body): Body<NewGrant>,
) -> Result<(StatusCode, Json<Grant>), ApiError> {
    p.require_any(&[Role::Admin], "granting")?;
    if let Grantee::Identity(i) = &body.grantee {
        reg::get(&s, *i).await?;
    }
    let now = s.clock.now();
    let g = body.into_grant(format!("human:{}", p.human.id), now)?;
    let event = p
        .event(now, AuditAction::GrantAdded, "grant", g.id)
        .reason(g.reason.clone())
        .detail(json!(g));
    s.store.insert_grant(&g, &event).await?;
    changed(&s).await;
    Ok((StatusCode::CREATED, Json(g)))
}

#[utoipa::path(get, path = "/v1/grants", tag = "grants", params(GrantQuery),
    responses((status = 200, body = GrantPage), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    p: HumanCaller,
    Query(q): Query<GrantQuery>,
) -> Result<Json<GrantPage>, ApiError> {
    let grantee = match (q.identity, &q.group) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "conflicting_filters",
                "filter by identity or by group, not both",
            ));
        }
        (Some(i), None) => Some(format!("identity:{i}")),
        (None, Some(g)) => Some(format!("group:{g}")),
        (None, None) => None,
    };
    let sees_all = [Role::Admin, Role::Auditor, Role::Approver]
        .iter()
        .any(|r| p.is(*r));
    if !sees_all {
        let Some(i) = q.identity else {
            return Err(ApiError::forbidden(
                "listing every grant requires the role admin, auditor or approver; a sponsor lists those of an identity they sponsor",
            ));
        };
        p.require_admin_or_sponsor_of(&reg::get(&s, i).await?, "reading grants")?;
    }
    let limit = paging::limit(q.limit)?;
    let after =
        paging::Cursor::id(paging::Cursor::decode(q.cursor.as_deref())?)?.map(GrantId::from_uuid);
    let items = s
        .store
        .list_grants(q.state, grantee.as_deref(), after, limit + 1)
        .await?
        .into_iter()
        .map(|g| with_state(g, &s))
        .collect();
    let page = paging::page(items, limit, |g: &Grant| paging::Cursor::Id(g.id.as_uuid()));
    Ok(Json(GrantPage {
        names: crate::names::names_in(&s.store, &page.items).await?,
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

async fn get_grant(s: &AppState, id: GrantId) -> Result<Grant, ApiError> {
    s.store
        .grant(id)
        .await?
        .map(|g| with_state(g, s))
        .ok_or_else(|| ApiError::not_found("grant"))
}

#[utoipa::path(get, path = "/v1/grants/{id}", params(("id" = String, Path)), tag = "grants",
    responses((status = 200, body = Grant), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(s): State<AppState>,
    caller: Caller,
    PathId(id): PathId<GrantId>,
) -> Result<Json<Grant>, ApiError> {
    let g = get_grant(&s, id).await?;
    // Whoever could list it: the grantee agent; admins, auditors, approvers; the sponsor of
    // the identity it is for. Anyone else learns nothing, not even that it exists.
    let may = match &caller {
        Caller::Agent(a) => g.grantee == Grantee::Identity(a.identity),
        Caller::Human(p)
            if [Role::Admin, Role::Auditor, Role::Approver]
                .iter()
                .any(|r| p.is(*r)) =>
        {
            true
        }
        Caller::Human(p) => match g.grantee {
            Grantee::Identity(i) => {
                p.is(Role::Sponsor) && reg::get(&s, i).await?.sponsor_id == p.human.id
            }
            Grantee::Group(_) => false,
        },
    };
    if !may {
        return Err(ApiError::not_found("grant"));
    }
    Ok(Json(g))
}

/// An agent asks for a just-in-time elevation for itself.
#[utoipa::path(post, path = "/v1/grants/requests", tag = "grants", request_body = ElevationRequest,
    responses((status = 201, body = Grant), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn request(
    State(s): State<AppState>,
    ctx: RequestContext,
    caller: Caller,
    Body(body): Body<ElevationRequest>,
) -> Result<(StatusCode, Json<Grant>), ApiError> {
    let Caller::Agent(a) = caller else {
        return Err(ApiError::forbidden(
            "an elevation is asked for by an agent, with its token; admins grant directly",
        ));
    };
    let now = s.clock.now();
    let (_, task) = &*a.live;
    if !task.systems.contains(&body.scope.system) {
        return Err(ApiError::forbidden(format!(
            "system `{}` is outside the task's systems",
            body.scope.system
        )));
    }
    let g = body.into_grant(
        a.identity,
        format!("identity:{}", a.identity),
        now,
        s.decisions.approvals.elevation_pending_seconds,
    )?;
    let event = Event::new(
        now,
        Actor::identity(a.identity),
        AuditAction::GrantRequested,
        "grant",
        g.id,
    )
    .reason(g.reason.clone())
    .detail(json!(g))
    .trail(Trail {
        task_id: task.id.to_string(),
        jti: a.claims.jti.clone(),
        session_id: a.claims.sid.clone(),
        triggered_by: task.triggered_by.clone(),
        ..Trail::default()
    })
    .from_request(&ctx.id, &ctx.source);
    s.store.insert_grant(&g, &event).await?;
    s.decisions.announce(
        &s.store,
        &s.clock,
        format!("msg_{}", g.id),
        AuditAction::GrantRequested,
        json!(g),
    );
    Ok((StatusCode::CREATED, Json(g)))
}

#[utoipa::path(post, path = "/v1/grants/{id}/approve", params(("id" = String, Path)), tag = "grants", request_body = ReasonBody,
    responses((status = 200, body = Grant), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn approve(
    s: State<AppState>,
    caller: Caller,
    id: PathId<GrantId>,
    body: Body<ReasonBody>,
) -> Result<Json<Grant>, ApiError> {
    decide(s, caller, id, body, true).await
}

#[utoipa::path(post, path = "/v1/grants/{id}/deny", params(("id" = String, Path)), tag = "grants", request_body = ReasonBody,
    responses((status = 200, body = Grant), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn deny(
    s: State<AppState>,
    caller: Caller,
    id: PathId<GrantId>,
    body: Body<ReasonBody>,
) -> Result<Json<Grant>, ApiError> {
    decide(s, caller, id, body, false).await
}

async fn decide(
    State(s): State<AppState>,
    caller: Caller,
    PathId(id): PathId<GrantId>,
    Body(body): Body<ReasonBody>,
    approve: bool,
) -> Result<Json<Grant>, ApiError> {
    let Caller::Human(p) = caller else {
        return Err(Refusal::IdentityApproval.into());
    };
    let mut g = get_grant(&s, id).await?;
    let Grantee::Identity(identity) = g.grantee else {
        return Err(Refusal::NotPending {
            what: "grant",
            state: g.state.to_string(),
        }
        .into());
    };
    let sponsor = reg::get(&s, identity).await?.sponsor_id;
    let before = g.state;
    let now = s.clock.now();
    g.decide(&p.human, sponsor, approve, &body.checked()?, now)?;
    let action = if approve {
        AuditAction::GrantApproved
    } else {
        AuditAction::GrantDenied
    };
    let event = p
        .event(now, action, "grant", id)
        .reason(g.decision_reason.clone())
        .detail(json!(g));
    if !s.store.update_grant(&g, before, &event).await? {
        return Err(Refusal::ConcurrentUpdate.into());
    }
    changed(&s).await;
    Ok(Json(g))
}

/// Ends a grant (or withdraws a request) now: admins, or the sponsor of the identity it
/// is for.
#[utoipa::path(post, path = "/v1/grants/{id}/revoke", params(("id" = String, Path)), tag = "grants", request_body = ReasonBody,
    responses((status = 200, body = Grant), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn revoke(
    State(s): State<AppState>,
    p: HumanCaller,
    PathId(id): PathId<GrantId>,
    Body(body): Body<ReasonBody>,
) -> Result<Json<Grant>, ApiError> {
    let mut g = get_grant(&s, id).await?;
    match g.grantee {
        Grantee::Identity(i) => {
            p.require_admin_or_sponsor_of(&reg::get(&s, i).await?, "revoking a grant")?
        }
        Grantee::Group(_) => p.require_any(&[Role::Admin], "revoking a group's grant")?,
    }
    let before = g.state;
    let now = s.clock.now();
    g.revoke(p.human.id, &body.checked()?, now)?;
    let event = p
        .event(now, AuditAction::GrantRevoked, "grant", id)
        .reason(g.decision_reason.clone())
        .detail(
            json!({ "grantee": g.grantee, "action": g.scope.action, "system": g.scope.system }),
        );
    if !s.store.update_grant(&g, before, &event).await? {
        return Err(Refusal::ConcurrentUpdate.into());
    }
    changed(&s).await;
    Ok(Json(g))
}
