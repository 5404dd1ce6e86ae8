//! `/v1/identities/{id}/keys`: the public keys an agent signs its client assertions and
//! proofs with. Registered and revoked by an admin or the identity's sponsor.

use aim_api::identities::NewAgentKey;
use aim_domain::agent_key::AgentKey;
use aim_domain::event::AuditAction;
use aim_domain::event::Event;
use aim_domain::human::Role;
use aim_domain::identity::Identity;
use aim_domain::ids::IdentityId;
use aim_domain::lifecycle::LifecycleState;
use aim_store::NewRevocation;
use aim_token::PublicJwk;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde_json::json;

use crate::auth::HumanCaller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Body, OptionalBody, PathId};
use crate::registry::identities as reg;
use crate::state::AppState;
use aim_api::common::ReasonBody;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/identities/{id}/keys", get(list).post(add))
        .route("/v1/identities/{id}/keys/{kid}", delete(revoke))
}

fn may_manage(p: &HumanCaller, identity: &Identity) -> Result<(), ApiError> {
    p.require_admin_or_sponsor_of(identity, "managing an identity's keys")
}

#[utoipa::path(post, path = "/v1/identities/{id}/keys", params(("id" = String, Path)), tag = "identities", request_body = NewAgentKey,
    responses((status = 201, body = AgentKey), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add(
    State(s): State<AppState>,
    p: HumanCaller,
    PathId(id): PathId<IdentityId>,
    Body(body): Body<NewAgentKey>,
) -> Result<(StatusCode, Json<AgentKey>), ApiError> {
    let identity = reg::get(&s, id).await?;
    may_manage(&p, &identity)?;
    if matches!(
        identity.state,
        LifecycleState::Decommissioned | LifecycleState::Rejected | LifecycleState::Expired
    ) {
        return Err(aim_domain::Refusal::StateForbids {
            state: identity.state,
            action: "register a key on",
        }
        .into());
    }
    let label =
        aim_domain::validate::optional_text("label", Some(body.label), 200)?.unwrap_or_default();
    let jwk = PublicJwk::from_json(&body.jwk).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_key",
            e.to_string(),
        )
    })?;
    let now = s.clock.now();
    let key = AgentKey {
        identity_id: id,
        kid: jwk.thumbprint(),
        jwk: jwk.to_json(),
        alg: jwk.alg_name().to_owned(),
        label,
        created_at: now,
        created_by: format!("human:{}", p.human.id),
        revoked_at: None,
        last_used_at: None,
    };
    let event = p
        .event(now, AuditAction::AgentKeyAdded, "identity", id)
        .detail(json!({ "kid": key.kid, "alg": key.alg, "label": key.label }));
    s.store.insert_agent_key(&key, &event).await?;
    Ok((StatusCode::CREATED, Json(key)))
}

#[utoipa::path(get, path = "/v1/identities/{id}/keys", params(("id" = String, Path)), tag = "identities",
    responses((status = 200, body = Vec<AgentKey>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    p: HumanCaller,
    PathId(id): PathId<IdentityId>,
) -> Result<Json<Vec<AgentKey>>, ApiError> {
    let identity = reg::get(&s, id).await?;
    if !p.is(Role::Auditor) {
        may_manage(&p, &identity)?;
    }
    Ok(Json(s.store.agent_keys(id).await?))
}

#[utoipa::path(delete, path = "/v1/identities/{id}/keys/{kid}", params(("id" = String, Path), ("kid" = String, Path)), tag = "identities",
    responses((status = 200, body = AgentKey), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    State(s): State<AppState>,
    p: HumanCaller,
    Path((id, kid)): Path<(String, String)>,
    OptionalBody(body): OptionalBody<ReasonBody>,
) -> Result<Json<AgentKey>, ApiError> {
    let id = IdentityId::parse(&id)
        .map_err(|_| ApiError::bad_request("invalid_id", "not a valid identity id"))?;
    let identity = reg::get(&s, id).await?;
    may_manage(&p, &identity)?;
    let reason = body.checked()?;
    let key = s
        .store
        .agent_key(id, &kid)
        .await?
        .ok_or_else(|| ApiError::not_found("key"))?;
    if key.revoked_at.is_none() {
        let now = s.clock.now();
        let revocation = NewRevocation {
            kind: aim_domain::agent_key::RevocationKind::AgentKey,
            value: format!("{id}:{}", key.kid),
            reason: if reason.is_empty() {
                "key revoked".to_owned()
            } else {
                reason.clone()
            },
            expires_at: now.plus_millis(aim_token::access::MAX_ACCESS_LIFETIME * 1000),
        };
        let event: Event = p
            .event(now, AuditAction::AgentKeyRevoked, "identity", id)
            .reason(reason)
            .detail(json!({ "kid": key.kid }));
        s.store
            .revoke_agent_key(id, &key.kid, now, &revocation, &event)
            .await?;
    }
    let key = s
        .store
        .agent_key(id, &kid)
        .await?
        .ok_or_else(|| ApiError::not_found("key"))?;
    Ok(Json(key))
}
