use aim_api::identities::BearerBody;
use aim_domain::identity::{Identity, IdentityKind, IdentityPatch, IdentityRequest};
use aim_domain::ids::{HumanId, IdentityId};
use aim_domain::lifecycle::{LifecycleState, Transition};
use aim_domain::review::Verdict;
use aim_domain::risk::RiskTier;
use aim_domain::time::Timestamp;
use aim_store::{IdentityCursor, IdentityFilter};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::auth::HumanCaller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Body, OptionalBody, PathId, Query};
use crate::paging;
use crate::registry::identities as reg;
use crate::state::AppState;
use aim_api::common::ReasonBody;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/identities", get(list).post(request))
        .route("/v1/identities/{id}", get(show).patch(change))
        .route("/v1/identities/{id}/approve", post(approve))
        .route("/v1/identities/{id}/reject", post(reject))
        .route("/v1/identities/{id}/change/approve", post(approve_change))
        .route("/v1/identities/{id}/change/reject", post(reject_change))
        .route("/v1/identities/{id}/bearer", post(bearer))
        .route("/v1/identities/{id}/suspend", post(suspend))
        .route("/v1/identities/{id}/resume", post(resume))
        .route("/v1/identities/{id}/lock", post(lock))
        .route("/v1/identities/lock-all", post(lock_all))
        .route("/v1/identities/{id}/unlock", post(unlock))
        .route("/v1/identities/{id}/decommission", post(decommission))
        .route("/v1/identities/{id}/attest", post(attest))
}

/// A page of identities.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IdentityPage {
    pub items: Vec<Identity>,
    pub next_cursor: Option<String>,
    /// Each sponsor's, requester's and decider's user name, by id.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub names: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1 to 1000; default 100.
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    #[param(value_type = Option<String>)]
    state: Option<LifecycleState>,
    #[param(value_type = Option<String>)]
    kind: Option<IdentityKind>,
    #[param(value_type = Option<String>)]
    sponsor_id: Option<HumanId>,
    #[param(value_type = Option<String>)]
    risk_tier: Option<RiskTier>,
    /// End-of-life before this RFC 3339 instant.
    #[param(value_type = Option<String>)]
    expiring_before: Option<Timestamp>,
    dormant: Option<bool>,
    orphaned: Option<bool>,
    possible_duplicate: Option<bool>,
    /// Names starting with this; pages then come in name order instead of creation order.
    name_prefix: Option<String>,
    /// Exact name.
    name: Option<String>,
}

#[utoipa::path(get, path = "/v1/identities", tag = "identities", params(ListQuery),
    responses((status = 200, body = IdentityPage), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    _: HumanCaller,
    Query(q): Query<ListQuery>,
) -> Result<Json<IdentityPage>, ApiError> {
    let limit = paging::limit(q.limit)?;
    let after = match paging::Cursor::decode(q.cursor.as_deref())? {
        None => None,
        Some(paging::Cursor::Id(id)) => Some(IdentityCursor::Id(IdentityId::from_uuid(id))),
        Some(paging::Cursor::Name(n)) => Some(IdentityCursor::Name(n)),
    };
    let filter = IdentityFilter {
        state: q.state,
        kind: q.kind,
        sponsor_id: q.sponsor_id,
        risk_tier: q.risk_tier,
        expiring_before: q.expiring_before,
        dormant: q.dormant,
        orphaned: q.orphaned,
        possible_duplicate: q.possible_duplicate,
        name_prefix: q.name_prefix,
        name: q.name,
    };
    if after
        .as_ref()
        .is_some_and(|a| matches!(a, IdentityCursor::Name(_)) != filter.orders_by_name())
    {
        return Err(ApiError::bad_request(
            "invalid_cursor",
            "this cursor belongs to another listing",
        ));
    }
    let items = s
        .store
        .list_identities(&filter, after.as_ref(), limit + 1)
        .await?;
    let by_name = filter.orders_by_name();
    let page = paging::page(items, limit, |i| {
        if by_name {
            paging::Cursor::Name(i.name.clone())
        } else {
            paging::Cursor::Id(i.id.as_uuid())
        }
    });
    Ok(Json(IdentityPage {
        names: crate::names::names_in(&s.store, &page.items).await?,
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(post, path = "/v1/identities", tag = "identities", request_body = IdentityRequest,
    responses((status = 201, body = Identity), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn request(
    State(s): State<AppState>,
    p: HumanCaller,
    Body(req): Body<IdentityRequest>,
) -> Result<(StatusCode, Json<Identity>), ApiError> {
    Ok((StatusCode::CREATED, Json(reg::request(&s, &p, req).await?)))
}

#[utoipa::path(get, path = "/v1/identities/{id}", params(("id" = String, Path)), tag = "identities",
    responses((status = 200, body = Identity), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(s): State<AppState>,
    _: HumanCaller,
    PathId(id): PathId<IdentityId>,
) -> Result<Json<Identity>, ApiError> {
    Ok(Json(reg::get(&s, id).await?))
}

/// Changes an identity. What narrows its reach applies at once (200); what widens it waits
/// in `pending_change` for an approver (202).
#[utoipa::path(patch, path = "/v1/identities/{id}", params(("id" = String, Path)), tag = "identities", request_body = IdentityPatch,
    responses((status = 200, body = Identity), (status = 202, body = Identity), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn change(
    State(s): State<AppState>,
    p: HumanCaller,
    PathId(id): PathId<IdentityId>,
    Body(patch): Body<IdentityPatch>,
) -> Result<(axum::http::StatusCode, Json<Identity>), ApiError> {
    let identity = reg::change(&s, &p, id, patch).await?;
    let status = if identity.pending_change.is_some() {
        axum::http::StatusCode::ACCEPTED
    } else {
        axum::http::StatusCode::OK
    };
    Ok((status, Json(identity)))
}

/// Applies an identity's pending change: an approver or admin who did not ask for it (and,
/// if it makes the identity high-risk, not its sponsor).
#[utoipa::path(post, path = "/v1/identities/{id}/change/approve", params(("id" = String, Path)), tag = "identities", request_body = Option<ReasonBody>,
    responses((status = 200, body = Identity), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn approve_change(
    State(s): State<AppState>,
    p: HumanCaller,
    PathId(id): PathId<IdentityId>,
    OptionalBody(b): OptionalBody<ReasonBody>,
) -> Result<Json<Identity>, ApiError> {
    let decider = aim_domain::review::Decider::Human(p.human.id);
    Ok(Json(
        reg::decide_change(&s, &p, id, decider, Verdict::Approve, &b.checked()?).await?,
    ))
}

/// Opts an identity into bearer tokens (admins, with a reason), or out again. Without it
/// every token the identity gets is bound to its key (DPoP).
#[utoipa::path(post, path = "/v1/identities/{id}/bearer", params(("id" = String, Path)), tag = "identities", request_body = BearerBody,
    responses((status = 200, body = Identity), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn bearer(
    State(s): State<AppState>,
    p: HumanCaller,
    PathId(id): PathId<IdentityId>,
    Body(b): Body<BearerBody>,
) -> Result<Json<Identity>, ApiError> {
    Ok(Json(
        reg::set_bearer(&s, &p, id, b.allowed, &b.reason).await?,
    ))
}

/// Drops an identity's pending change.
#[utoipa::path(post, path = "/v1/identities/{id}/change/reject", params(("id" = String, Path)), tag = "identities", request_body = Option<ReasonBody>,
    responses((status = 200, body = Identity), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn reject_change(
    State(s): State<AppState>,
    p: HumanCaller,
    PathId(id): PathId<IdentityId>,
    OptionalBody(b): OptionalBody<ReasonBody>,
) -> Result<Json<Identity>, ApiError> {
    let decider = aim_domain::review::Decider::Human(p.human.id);
    Ok(Json(
        reg::decide_change(&s, &p, id, decider, Verdict::Reject, &b.checked()?).await?,
    ))
}

#[utoipa::path(post, path = "/v1/identities/{id}/approve", params(("id" = String, Path)), tag = "identities", request_body = Option<ReasonBody>,
    responses((status = 200, body = Identity), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn approve(
    State(s): State<AppState>,
    p: HumanCaller,
    PathId(id): PathId<IdentityId>,
    OptionalBody(b): OptionalBody<ReasonBody>,
) -> Result<Json<Identity>, ApiError> {
    Ok(Json(
        reg::decide_request(&s, &p, id, Verdict::Approve, &b.checked()?).await?,
    ))
}

#[utoipa::path(post, path = "/v1/identities/{id}/reject", params(("id" = String, Path)), tag = "identities", request_body = ReasonBody,
    responses((status = 200, body = Identity), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn reject(
    State(s): State<AppState>,
    p: HumanCaller,
    PathId(id): PathId<IdentityId>,
    OptionalBody(b): OptionalBody<ReasonBody>,
) -> Result<Json<Identity>, ApiError> {
    Ok(Json(
        reg::decide_request(&s, &p, id, Verdict::Reject, &b.checked()?).await?,
    ))
}

macro_rules! transition_route {
    ($name:ident, $t:expr, $path:literal) => {
        #[utoipa::path(post, path = $path, params(("id" = String, Path)), tag = "identities", request_body = Option<ReasonBody>,
            responses((status = 200, body = Identity), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
        pub async fn $name(
            State(s): State<AppState>,
            p: HumanCaller,
            PathId(id): PathId<IdentityId>,
            OptionalBody(b): OptionalBody<ReasonBody>,
        ) -> Result<Json<Identity>, ApiError> {
            Ok(Json(reg::move_state(&s, &p, id, $t, &b.checked()?).await?))
        }
    };
}

transition_route!(suspend, Transition::Suspend, "/v1/identities/{id}/suspend");
transition_route!(resume, Transition::Resume, "/v1/identities/{id}/resume");
/// The emergency stop (admin): locks every active identity of a kind (AI agents unless
/// told otherwise), each in its own transaction, then waits for the gateways to
/// acknowledge the last lock. An identity that cannot be locked is reported, not skipped
/// silently; the others stay locked.
#[utoipa::path(post, path = "/v1/identities/lock-all", tag = "identities", request_body = aim_api::gateway::LockAll,
    responses((status = 200, body = aim_api::gateway::LockedAll), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn lock_all(
    State(s): State<AppState>,
    p: HumanCaller,
    Body(b): Body<aim_api::gateway::LockAll>,
) -> Result<Json<aim_api::gateway::LockedAll>, ApiError> {
    p.require_any(&[aim_domain::human::Role::Admin], "the emergency stop")?;
    let reason = ReasonBody { reason: b.reason }.checked()?;
    if reason.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "reason_required",
            "say why everything is being locked: the reason is on every identity's record",
        ));
    }
    let filter = IdentityFilter {
        state: Some(aim_domain::lifecycle::LifecycleState::Active),
        kind: Some(
            b.kind
                .unwrap_or(aim_domain::identity::IdentityKind::AiAgent),
        ),
        ..IdentityFilter::default()
    };
    // Every active one first, then the locks: a lock takes the identity out of the filter.
    let mut targets = Vec::new();
    let mut after = None;
    loop {
        let page = s
            .store
            .list_identities(&filter, after.as_ref(), 500)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(IdentityCursor::Id(last.id));
        targets.extend(page.iter().map(|i| i.id));
    }
    let (mut locked, mut failed) = (0, Vec::new());
    for id in targets {
        match reg::move_state(&s, &p, id, Transition::Lock, &reason).await {
            Ok(_) => locked += 1,
            Err(e) => failed
                .push(serde_json::json!({ "identity": id, "code": e.code, "message": e.message })),
        }
    }
    let committed = std::time::Instant::now();
    let clock = s.clock.clone();
    let gateways = crate::feed::acknowledged(&s.store, || clock.now(), committed).await;
    s.metrics.locked(u64::from(locked));
    tracing::warn!(locked, failed = failed.len(), %gateways, "emergency stop");
    Ok(Json(aim_api::gateway::LockedAll {
        locked,
        failed,
        gateways,
    }))
}

/// Locks the identity (its tokens, tasks, leases and delegates die with it) and waits, at
/// most two seconds, for every connected gateway to acknowledge the lock.
#[utoipa::path(post, path = "/v1/identities/{id}/lock", params(("id" = String, Path)), tag = "identities", request_body = Option<ReasonBody>,
    responses((status = 200, body = aim_api::gateway::Locked), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn lock(
    State(s): State<AppState>,
    p: HumanCaller,
    PathId(id): PathId<IdentityId>,
    OptionalBody(b): OptionalBody<ReasonBody>,
) -> Result<Json<aim_api::gateway::Locked>, ApiError> {
    let identity = reg::move_state(&s, &p, id, Transition::Lock, &b.checked()?).await?;
    s.metrics.locked(1);
    let committed = std::time::Instant::now();
    let clock = s.clock.clone();
    let gateways = crate::feed::acknowledged(&s.store, || clock.now(), committed).await;
    tracing::info!(identity = %id, %gateways, "locked");
    Ok(Json(aim_api::gateway::Locked { identity, gateways }))
}

transition_route!(unlock, Transition::Unlock, "/v1/identities/{id}/unlock");
transition_route!(
    decommission,
    Transition::Decommission,
    "/v1/identities/{id}/decommission"
);

#[utoipa::path(post, path = "/v1/identities/{id}/attest", params(("id" = String, Path)), tag = "identities", request_body = Option<ReasonBody>,
    responses((status = 200, body = Identity), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn attest(
    State(s): State<AppState>,
    p: HumanCaller,
    PathId(id): PathId<IdentityId>,
    OptionalBody(b): OptionalBody<ReasonBody>,
) -> Result<Json<Identity>, ApiError> {
    Ok(Json(reg::attest(&s, &p, id, &b.checked()?).await?))
}
