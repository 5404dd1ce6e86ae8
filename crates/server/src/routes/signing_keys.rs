//! `/v1/signing-keys`: aim's own token signing keys. Admins rotate and revoke; revoking a
//! key kills every token it signed, at once.

use aim_api::tokens::SigningKeyInfo;
use aim_domain::event::AuditAction;
use aim_domain::human::Role;
use aim_store::NewRevocation;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::auth::HumanCaller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::OptionalBody;
use crate::state::AppState;
use aim_api::common::ReasonBody;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/signing-keys", get(list))
        .route("/v1/signing-keys/rotate", post(rotate))
        .route("/v1/signing-keys/{kid}/revoke", post(revoke))
}

async fn infos(s: &AppState) -> Result<Vec<SigningKeyInfo>, ApiError> {
    let ring = s.tokens.keys.current();
    Ok(s.store
        .signing_keys()
        .await?
        .into_iter()
        .map(|k| SigningKeyInfo {
            current: k.kid == ring.signer.kid(),
            published: ring.trusted.contains(&k.kid),
            kid: k.kid,
            alg: k.alg,
            created_at: k.created_at,
            retire_at: k.retire_at,
            revoked_at: k.revoked_at,
        })
        .collect())
}

#[utoipa::path(get, path = "/v1/signing-keys", tag = "tasks",
    responses((status = 200, body = Vec<SigningKeyInfo>), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    p: HumanCaller,
) -> Result<Json<Vec<SigningKeyInfo>>, ApiError> {
    p.require_any(&[Role::Admin, Role::Auditor], "listing signing keys")?;
    Ok(Json(infos(&s).await?))
}

/// Starts signing with a new key now; the old one still verifies its tokens until they
/// expire.
#[utoipa::path(post, path = "/v1/signing-keys/rotate", tag = "tasks",
    responses((status = 200, body = Vec<SigningKeyInfo>), (status = 403, body = ErrorBody)))]
pub async fn rotate(
    State(s): State<AppState>,
    p: HumanCaller,
) -> Result<Json<Vec<SigningKeyInfo>>, ApiError> {
    p.require_any(&[Role::Admin], "rotating signing keys")?;
    let now = s.clock.now();
    let old = s.tokens.keys.current().signer.kid().to_owned();
    let event = p
        .event(now, AuditAction::SigningKeyRetired, "signing_key", &old)
        .reason("rotated");
    s.tokens.keys.rotate(now, &event).await.map_err(|e| {
        tracing::error!(error = %e, "rotating the signing key failed");
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "could not rotate the signing key",
        )
    })?;
    Ok(Json(infos(&s).await?))
}

/// Revokes a signing key: every token it signed is dead at once, everywhere.
#[utoipa::path(post, path = "/v1/signing-keys/{kid}/revoke", params(("kid" = String, Path)), tag = "tasks", request_body = ReasonBody,
    responses((status = 200, body = Vec<SigningKeyInfo>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    State(s): State<AppState>,
    p: HumanCaller,
    Path(kid): Path<String>,
    OptionalBody(body): OptionalBody<ReasonBody>,
) -> Result<Json<Vec<SigningKeyInfo>>, ApiError> {
    p.require_any(&[Role::Admin], "revoking signing keys")?;
    let reason = body.checked()?;
    let now = s.clock.now();
    let revocation = NewRevocation {
        kind: aim_domain::agent_key::RevocationKind::SigningKey,
        value: kid.clone(),
        reason: if reason.is_empty() {
            "signing key revoked".into()
        } else {
            reason.clone()
        },
        expires_at: now.plus_millis(aim_token::access::MAX_ACCESS_LIFETIME * 1000),
    };
    let event = p
        .event(now, AuditAction::SigningKeyRevoked, "signing_key", &kid)
        .reason(reason)
        .detail(json!({ "kid": kid }));
    if !s
        .store
        .revoke_signing_key(&kid, now, &revocation, &event)
        .await?
    {
        return Err(ApiError::not_found("unrevoked signing key"));
    }
    // A revoked current key is replaced at once.
    s.tokens.keys.refresh(now).await.map_err(|e| {
        tracing::error!(error = %e, "refreshing the signing keys failed");
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "could not refresh the signing keys",
        )
    })?;
    Ok(Json(infos(&s).await?))
}
