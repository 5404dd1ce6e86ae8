//! One-time join tokens: an admin or the sponsor makes one for an identity
//! (`POST /v1/identities/{id}/join-tokens`, the secret shown once); the new agent presents
//! it once at `POST /v1/join` with its public key and a DPoP proof signed by that key, and
//! the key is registered. Expired, used or unknown tokens are refused alike.

use aim_api::identities::{IssuedJoinToken, JoinRequest, NewJoinToken};
use aim_domain::agent_key::AgentKey;
use aim_domain::event::{Actor, AuditAction, Event};
use aim_domain::ids::IdentityId;
use aim_domain::lifecycle::LifecycleState;
use aim_store::JoinToken;
use aim_token::PublicJwk;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::{Json, Router};
use serde_json::json;

use crate::auth::HumanCaller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::RequestContext;
use crate::extract::{Body, OptionalBody, PathId};
use crate::registry::identities as reg;
use crate::state::AppState;

/// Every join-token secret starts with this, so scanners can spot a leaked one.
pub const JOIN_PREFIX: &str = "aimjoin_";

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/v1/identities/{id}/join-tokens",
        axum::routing::post(create),
    )
}

/// `POST /v1/join` needs no human credential.
pub fn public() -> Router<AppState> {
    Router::new().route("/v1/join", axum::routing::post(join))
}

#[utoipa::path(post, path = "/v1/identities/{id}/join-tokens", params(("id" = String, Path)), tag = "identities", request_body = NewJoinToken,
    responses((status = 201, body = IssuedJoinToken), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    p: HumanCaller,
    PathId(id): PathId<IdentityId>,
    OptionalBody(body): OptionalBody<NewJoinToken>,
) -> Result<(StatusCode, Json<IssuedJoinToken>), ApiError> {
    let identity = reg::get(&s, id).await?;
    p.require_admin_or_sponsor_of(&identity, "making a join token")?;
    if matches!(
        identity.state,
        LifecycleState::Decommissioned | LifecycleState::Rejected | LifecycleState::Expired
    ) {
        return Err(aim_domain::Refusal::StateForbids {
            state: identity.state,
            action: "make a join token for",
        }
        .into());
    }
    let ttl = body.ttl_seconds.unwrap_or(900);
    if !(60..=86_400).contains(&ttl) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "ttl_seconds must be between 60 and 86400",
        ));
    }
    let (secret, _) = crate::secrets::new_secret()?;
    let secret = format!(
        "{JOIN_PREFIX}{}",
        &secret[crate::secrets::CREDENTIAL_PREFIX.len()..]
    );
    let now = s.clock.now();
    let token = JoinToken {
        id: uuid::Uuid::now_v7(),
        identity_id: id,
        created_at: now,
        created_by: format!("human:{}", p.human.id),
        expires_at: now.plus_millis(ttl * 1000),
    };
    let event = p
        .event(now, AuditAction::JoinTokenCreated, "identity", id)
        .detail(json!({ "join_token": token.id, "expires_at": token.expires_at }));
    s.store
        .insert_join_token(&token, &crate::secrets::hash_secret(&secret), &event)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedJoinToken {
            id: token.id,
            identity_id: id,
            token: secret,
            expires_at: token.expires_at,
        }),
    ))
}

/// Registers the agent's key with a join token, once.
#[utoipa::path(post, path = "/v1/join", tag = "identities", request_body = JoinRequest,
    responses((status = 201, body = AgentKey), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn join(
    State(s): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    Body(body): Body<JoinRequest>,
) -> Result<(StatusCode, Json<AgentKey>), ApiError> {
    let now = s.clock.now();
    let refuse = |code: &'static str, message: String| {
        let s = s.clone();
        let ctx = ctx.clone();
        async move {
            let event = Event::new(
                now,
                Actor::anonymous(),
                AuditAction::JoinRefused,
                "request",
                "POST /v1/join",
            )
            .denied()
            .reason(code)
            .from_request(&ctx.id, &ctx.source);
            s.refusals.record(&s.store, &ctx.source, code, event).await;
            ApiError::new(StatusCode::UNAUTHORIZED, code, message)
        }
    };
    let jwk = match PublicJwk::from_json(&body.jwk) {
        Ok(k) => k,
        Err(e) => return Err(refuse("invalid_key", e.to_string()).await),
    };
    if let Err((code, message)) = proves_possession(&s, &headers, &jwk, now) {
        return Err(refuse(code, message).await);
    }
    let label =
        aim_domain::validate::optional_text("label", Some(body.label), 200)?.unwrap_or_default();
    let key = AgentKey {
        identity_id: IdentityId::from_uuid(uuid::Uuid::nil()),
        kid: jwk.thumbprint(),
        jwk: jwk.to_json(),
        alg: jwk.alg_name().to_owned(),
        label,
        created_at: now,
        created_by: String::new(),
        revoked_at: None,
        last_used_at: None,
    };
    let event = Event::new(
        now,
        Actor::anonymous(),
        AuditAction::AgentKeyAdded,
        "identity",
        "",
    )
    .detail(json!({ "kid": key.kid, "alg": key.alg, "label": key.label }))
    .from_request(&ctx.id, &ctx.source);
    let secret_ok = body.token.starts_with(JOIN_PREFIX) && body.token.len() <= 128;
    let redeemed = if secret_ok {
        match s
            .store
            .redeem_join_token(&crate::secrets::hash_secret(&body.token), now, &key, &event)
            .await
        {
            Ok(r) => r,
            Err(aim_store::StoreError::Conflict(r)) => {
                let e = ApiError::from(r);
                let refused = refuse(e.code, e.message.clone()).await;
                return Err(ApiError {
                    status: e.status,
                    ..refused
                });
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        None
    };
    match redeemed {
        Some(key) => Ok((StatusCode::CREATED, Json(key))),
        None => Err(refuse(
            "join_token_invalid",
            "the join token is unknown, expired or already used".into(),
        )
        .await),
    }
}

/// Possession: a DPoP proof for this request, signed by the key being registered.
fn proves_possession(
    s: &AppState,
    headers: &HeaderMap,
    jwk: &PublicJwk,
    now: aim_domain::time::Timestamp,
) -> Result<(), (&'static str, String)> {
    let proof = headers.get("dpop").and_then(|v| v.to_str().ok());
    let checked = match proof {
        Some(p) => aim_token::dpop::verify(
            p,
            &aim_token::dpop::Expect {
                method: "POST",
                url: &format!("{}/v1/join", s.tokens.issuer),
                access_token: None,
                nonce: None,
                now: now.as_millis() / 1000,
            },
        ),
        None => Err(aim_token::TokenError::ProofRequired),
    };
    match checked {
        Ok(p) if p.jkt == jwk.thumbprint() => Ok(()),
        Ok(_) => Err((
            "dpop_key_mismatch",
            "the proof is signed by another key than the one to register".into(),
        )),
        Err(e) => Err((e.code(), e.to_string())),
    }
}
