//! RFC 7662 introspection and RFC 7009 revocation, for people and services holding an aim
//! credential, and the revocation list gateways follow (`GET /v1/revocations`).

use aim_api::tokens::RevocationPage;
use aim_domain::agent_key::Revocation;
use aim_domain::event::AuditAction;
use aim_domain::event::Trail;
use aim_domain::human::Role;
use aim_domain::ids::IdentityId;
use aim_store::NewRevocation;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::HumanCaller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{FormBody, Query};
use crate::state::AppState;
use crate::tokens::check::{Inactive, check};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/oauth/introspect", post(introspect))
        .route("/oauth/revoke", post(revoke))
        .route("/v1/revocations", get(revocations))
        .route("/v1/revocations/stream", get(stream))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TokenForm {
    #[serde(default)]
    token: String,
}

/// `{"active": true, ...claims}` for a live token, `{"active": false}` for anything else
/// (RFC 7662). Admins, auditors and gateways.
#[utoipa::path(post, path = "/oauth/introspect", tag = "oauth",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = aim_api::oauth::Introspection), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn introspect(
    State(s): State<AppState>,
    p: HumanCaller,
    FormBody(form): FormBody<TokenForm>,
) -> Result<impl IntoResponse, ApiError> {
    p.require_any(
        &[Role::Admin, Role::Auditor, Role::Gateway],
        "introspecting tokens",
    )?;
    let body = match check(&s, &form.token, s.clock.now()).await {
        Ok((mut claims, task)) => {
            // What the token may reach now, which may be narrower than when it was issued.
            claims.scope = task.systems.join(" ");
            let mut v = serde_json::to_value(&claims).unwrap_or(Value::Null);
            v["active"] = json!(true);
            v["token_type"] = json!("Bearer");
            v
        }
        Err(Inactive::Source(e)) => return Err(e.into()),
        Err(_) => json!({ "active": false }),
    };
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)))
}

/// Revokes one access token at once: an admin, or the sponsor of the token's identity.
/// As RFC 7009 asks, an unknown or already dead token is not an error.
#[utoipa::path(post, path = "/oauth/revoke", tag = "oauth",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn revoke(
    State(s): State<AppState>,
    p: HumanCaller,
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
        kind: aim_domain::agent_key::RevocationKind::Token,
        value: jti.to_owned(),
        reason: "revoked".to_owned(),
        expires_at: aim_domain::time::Timestamp::from_millis(exp * 1000),
    };
    let event = p
        .event(now, AuditAction::TokenRevoked, "identity", identity_id)
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

/// The revocation list after `since`, oldest first. An entry kills the matching tokens
/// issued at or before its `at`.
#[utoipa::path(get, path = "/v1/revocations", tag = "tasks", params(RevocationQuery),
    responses((status = 200, body = RevocationPage), (status = 403, body = ErrorBody)))]
pub async fn revocations(
    State(s): State<AppState>,
    p: HumanCaller,
    Query(q): Query<RevocationQuery>,
) -> Result<Json<RevocationPage>, ApiError> {
    p.require_any(
        &[Role::Admin, Role::Auditor, Role::Gateway],
        "reading the revocation list",
    )?;
    let limit = crate::paging::limit(q.limit)?;
    let items = s.store.revocations(q.since.max(0), limit).await?;
    let epoch = items.last().map_or(q.since.max(0), |r| r.epoch);
    Ok(Json(RevocationPage { items, epoch }))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// The last epoch seen (or send `Last-Event-ID`).
    #[serde(default)]
    since: Option<i64>,
}

/// How often the stream looks for new entries: a revocation reaches gateways well within
/// a second.
const STREAM_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// The revocation list as server-sent events: each entry an event `revocation` with its
/// epoch as the event id, so a gateway that reconnects with `Last-Event-ID` misses nothing.
/// Admins and auditors.
#[utoipa::path(get, path = "/v1/revocations/stream", tag = "tasks", params(StreamQuery),
    responses((status = 200, description = "text/event-stream of revocations"), (status = 403, body = ErrorBody)))]
pub async fn stream(
    State(s): State<AppState>,
    p: HumanCaller,
    headers: axum::http::HeaderMap,
    Query(q): Query<StreamQuery>,
) -> Result<impl IntoResponse, ApiError> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    p.require_any(
        &[Role::Admin, Role::Auditor, Role::Gateway],
        "following the revocation list",
    )?;
    let last_event = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    let start = last_event.or(q.since).unwrap_or(0).max(0);
    let store = s.store.clone();
    let events = futures_util::stream::unfold(
        (
            store,
            start,
            std::collections::VecDeque::<Revocation>::new(),
        ),
        |(store, mut epoch, mut pending)| async move {
            loop {
                if let Some(r) = pending.pop_front() {
                    epoch = r.epoch;
                    let event = Event::default()
                        .event("revocation")
                        .id(r.epoch.to_string())
                        .json_data(&r)
                        .unwrap_or_else(|_| Event::default().comment("unencodable entry"));
                    return Some((
                        Ok::<_, std::convert::Infallible>(event),
                        (store, epoch, pending),
                    ));
                }
                match store.revocations(epoch, 500).await {
                    Ok(batch) if !batch.is_empty() => pending.extend(batch),
                    Ok(_) => tokio::time::sleep(STREAM_POLL).await,
                    Err(e) => {
                        // The gateway reconnects with Last-Event-ID; it must not believe
                        // it is up to date meanwhile.
                        tracing::error!(error = %e, "revocation stream: store failed; closing");
                        return None;
                    }
                }
            }
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15))))
}
