//! RFC 7662 introspection and RFC 7009 revocation, for people and services holding an aim
//! credential, and the revocation list gateways follow (`GET /v1/revocations`).

use aim_domain::agent_key::Revocation;
use aim_domain::event::Trail;
use aim_domain::human::Role;
use aim_domain::ids::IdentityId;
use aim_store::NewRevocation;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{FormBody, Query};
use crate::state::AppState;
use crate::tokens::check::{Inactive, check};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/oauth/introspect", post(introspect))
        .route("/oauth/revoke", post(revoke))
        .route("/v1/revocations", get(revocations))
}

#[derive(Debug, Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    token: String,
}

/// `{"active": true, ...claims}` for a live token, `{"active": false}` for anything else.
/// Admins and auditors.
pub async fn introspect(
    State(s): State<AppState>,
    p: Principal,
    FormBody(form): FormBody<TokenForm>,
) -> Result<impl IntoResponse, ApiError> {
    p.require_any(&[Role::Admin, Role::Auditor], "introspecting tokens")?;
    let body = match check(&s, &form.token, s.clock.now()).await {
        Ok(claims) => {
            let mut v = serde_json::to_value(&claims).unwrap_or(Value::Null);
            v["active"] = json!(true);
            v["token_type"] = json!("Bearer");
            v
        }
        Err(Inactive::Store(e)) => return Err(e.into()),
        Err(_) => json!({ "active": false }),
    };
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)))
}

/// Revokes one access token at once: an admin, or the sponsor of the token's identity.
/// As RFC 7009 asks, an unknown or already dead token is not an error.
pub async fn revoke(
    State(s): State<AppState>,
    p: Principal,
    FormBody(form): FormBody<TokenForm>,
) -> Result<Json<Value>, ApiError> {
    p.require_any(&[Role::Admin, Role::Sponsor], "revoking tokens")?;
    let now = s.clock.now();
    let ring = s.tokens.keys.current();
    // The signature must be ours; expiry does not matter for revoking.
    let Ok(claims) = ring
        .trusted
        .verify_jws(&form.token, &[aim_token::access::ACCESS_TYP])
    else {
        return Ok(Json(json!({})));
    };
    let (Ok(jti), Ok(client), Ok(exp)) = (
        claims.str("jti"),
        claims.str("client_id"),
        claims.time("exp"),
    ) else {
        return Ok(Json(json!({})));
    };
    let identity_id = IdentityId::parse(client)
        .map_err(|_| ApiError::bad_request("invalid_token", "the token names no identity"))?;
    if !p.is(Role::Admin) {
        let identity = crate::registry::identities::get(&s, identity_id).await?;
        p.require_admin_or_sponsor_of(&identity, "revoking this token")?;
    }
    let task = claims.str("aim_task").unwrap_or_default().to_owned();
    let revocation = NewRevocation {
        kind: "token",
        value: jti.to_owned(),
        reason: "revoked".to_owned(),
        expires_at: aim_domain::time::Timestamp::from_millis(exp * 1000),
    };
    let event = p
        .event(now, "token.revoked", "identity", identity_id)
        .trail(Trail {
            task_id: task,
            jti: jti.to_owned(),
            ..Trail::default()
        });
    s.store.revoke(&revocation, now, &event).await?;
    Ok(Json(json!({})))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RevocationQuery {
    /// The last epoch seen; entries after it are returned.
    #[serde(default)]
    since: i64,
    limit: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RevocationPage {
    pub items: Vec<Revocation>,
    /// The epoch to ask from next time.
    pub epoch: i64,
}

/// The revocation list after `since`, oldest first. An entry kills the matching tokens
/// issued at or before its `at`.
#[utoipa::path(get, path = "/v1/revocations", tag = "tasks", params(RevocationQuery),
    responses((status = 200, body = RevocationPage), (status = 403, body = ErrorBody)))]
pub async fn revocations(
    State(s): State<AppState>,
    p: Principal,
    Query(q): Query<RevocationQuery>,
) -> Result<Json<RevocationPage>, ApiError> {
    p.require_any(&[Role::Admin, Role::Auditor], "reading the revocation list")?;
    let limit = crate::paging::limit(q.limit)?;
    let items = s.store.revocations(q.since.max(0), limit).await?;
    let epoch = items.last().map_or(q.since.max(0), |r| r.epoch);
    Ok(Json(RevocationPage { items, epoch }))
}
