//! Credentials for upstreams kept in aim, sealed under its key-encryption key
//! (AES-256-GCM, bound to the secret's name), so a gateway's config holds a name, not a
//! key:
//!
//! - `PUT /v1/upstream-secrets/{name}` (admin): store or replace a value;
//! - `GET /v1/upstream-secrets` (admin, auditor): the metadata, never a value;
//! - `DELETE /v1/upstream-secrets/{name}` (admin);
//! - `GET /v1/gateway/upstream-secrets/{name}` (gateway accounts only, and only those the
//!   secret names when it names any): the value, to inject; each read is on the record.

use aim_api::secrets::{PutUpstreamSecret, UpstreamSecretValue};
use aim_domain::event::{AuditAction, Event};
use aim_domain::human::Role;
use aim_domain::upstream_secret::{UpstreamSecret, check_value};
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::auth::HumanCaller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Body, RequestContext};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/upstream-secrets", get(list))
        .route(
            "/v1/upstream-secrets/{name}",
            axum::routing::put(put).delete(delete),
        )
        .route("/v1/gateway/upstream-secrets/{name}", get(read))
}

/// A secret's name in the path.
#[derive(Debug)]
pub struct SecretName(String);

impl<S: Send + Sync> FromRequestParts<S> for SecretName {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(name) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| {
                    ApiError::bad_request("invalid_path", "missing or malformed path parameter")
                })?;
        if !aim_domain::tool::valid_name(&name) {
            return Err(ApiError::bad_request(
                "invalid_secret_name",
                "a secret's name is 1-128 of A-Z a-z 0-9 _ - .",
            ));
        }
        Ok(Self(name))
    }
}

/// What the value is sealed with: the secret's name, so a sealed value cannot be moved to
/// another name.
fn context(name: &str) -> String {
    format!("aim upstream secret {name}")
}

/// Stores the value sealed (version 1), or replaces it (one version more).
#[utoipa::path(put, path = "/v1/upstream-secrets/{name}", tag = "secrets", request_body = PutUpstreamSecret,
    params(("name" = String, Path)),
    responses((status = 200, body = UpstreamSecret), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put(
    State(s): State<AppState>,
    ctx: RequestContext,
    p: HumanCaller,
    SecretName(name): SecretName,
    Body(body): Body<PutUpstreamSecret>,
) -> Result<Json<UpstreamSecret>, ApiError> {
    p.require_any(&[Role::Admin], "storing an upstream credential")?;
    check_value(&body.value)
        .map_err(|m| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_secret", m))?;
    let description: String = body
        .description
        .chars()
        .filter(|c| !c.is_control())
        .take(512)
        .collect();
    let version = match s.store.upstream_secret(&name).await? {
        Some((before, _)) => before.version + 1,
        None => 1,
    };
    let now = s.clock.now();
    if body.gateways.len() > 100
        || body
            .gateways
            .iter()
            .any(|g| g.is_empty() || g.len() > 256 || g.chars().any(char::is_control))
    {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_secret",
            "gateways: at most 100 gateway account user names",
        ));
    }
    let secret = UpstreamSecret {
        name: name.clone(),
        description,
        gateways: body.gateways.clone(),
        version,
        updated_at: now,
        updated_by: p.human.id,
    };
    let sealed = s
        .tokens
        .keys
        .kek()
        .seal(body.value.as_bytes(), &context(&name))
        .map_err(|e| {
            tracing::error!(error = %e, "sealing an upstream secret failed");
            ApiError::internal()
        })?;
    let event = Event::new(
        now,
        p.actor(),
        AuditAction::UpstreamSecretStored,
        "upstream_secret",
        &name,
    )
    .from_request(&ctx.id, &ctx.source)
    .detail(json!({ "version": version, "description": secret.description, "gateways": secret.gateways }));
    if !s
        .store
        .put_upstream_secret(&secret, &sealed, &event)
        .await?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "concurrent_update",
            "the secret was changed meanwhile; try again",
        ));
    }
    Ok(Json(secret))
}

#[utoipa::path(get, path = "/v1/upstream-secrets", tag = "secrets",
    responses((status = 200, body = Vec<UpstreamSecret>), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    p: HumanCaller,
) -> Result<Json<Vec<UpstreamSecret>>, ApiError> {
    p.require_any(
        &[Role::Admin, Role::Auditor],
        "listing upstream credentials",
    )?;
    Ok(Json(s.store.upstream_secrets().await?))
}

#[utoipa::path(delete, path = "/v1/upstream-secrets/{name}", tag = "secrets",
    params(("name" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(s): State<AppState>,
    ctx: RequestContext,
    p: HumanCaller,
    SecretName(name): SecretName,
) -> Result<StatusCode, ApiError> {
    p.require_any(&[Role::Admin], "deleting an upstream credential")?;
    let event = Event::new(
        s.clock.now(),
        p.actor(),
        AuditAction::UpstreamSecretDeleted,
        "upstream_secret",
        &name,
    )
    .from_request(&ctx.id, &ctx.source);
    if !s.store.delete_upstream_secret(&name, &event).await? {
        return Err(ApiError::not_found("upstream secret"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The value, for a gateway to inject; the read is on the record.
#[utoipa::path(get, path = "/v1/gateway/upstream-secrets/{name}", tag = "secrets",
    params(("name" = String, Path)),
    responses((status = 200, body = UpstreamSecretValue), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn read(
    State(s): State<AppState>,
    ctx: RequestContext,
    p: HumanCaller,
    SecretName(name): SecretName,
) -> Result<Json<UpstreamSecretValue>, ApiError> {
    // INVARIANT: only a gateway account reads a value back, not even an admin.
    p.require_any(&[Role::Gateway], "reading an upstream credential")?;
    let Some((secret, sealed)) = s.store.upstream_secret(&name).await? else {
        return Err(ApiError::not_found("upstream secret"));
    };
    if !secret.readable_by(&p.human.user_name) {
        return Err(ApiError::forbidden(format!(
            "upstream secret {name} is for other gateway accounts"
        )));
    }
    let value = s
        .tokens
        .keys
        .kek()
        .open(&sealed, &context(&name))
        .ok()
        .and_then(|v| String::from_utf8(v).ok())
        .ok_or_else(|| {
            tracing::error!(secret = %name, "an upstream secret does not open with this key-encryption key");
            ApiError::internal()
        })?;
    let event = Event::new(
        s.clock.now(),
        p.actor(),
        AuditAction::UpstreamSecretRead,
        "upstream_secret",
        &name,
    )
    .from_request(&ctx.id, &ctx.source)
    .detail(json!({ "version": secret.version, "gateway": p.human.user_name }));
    s.store.append_event(&event).await?;
    Ok(Json(UpstreamSecretValue {
        name,
        version: secret.version,
        value,
    }))
}
