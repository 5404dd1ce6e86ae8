//! `POST /oauth/token`: `client_credentials` with a client assertion (RFC 7523
//! `private_key_jwt`) signed by a key registered on the identity, plus either a new task
//! (RFC 9396 `authorization_details` of type `aim_task`) or the `task_id` of an open one.
//!
//! Every refusal answers in RFC 6749's shape (`error`, `error_description`) plus aim's
//! specific `code`, and is recorded as a `token.refused` event; every issuance is a
//! `token.issued` event in the task's trail. The token itself never reaches a log or event.
//!
//! ```text
//! grant ─► who asks ─► proof of possession ─► task ─► claims ─► record ─► token
//! ```

use aim_api::oauth::{ASSERTION_TYPE, JWT_BEARER, TOKEN_EXCHANGE, TokenRequest, TokenResponse};
use aim_domain::event::{Actor, AuditAction, Event, Trail};
use aim_domain::identity::Identity;
use aim_domain::ids::{IdentityId, TaskId};
use aim_domain::live::TokenContext;
use aim_domain::single_use::Claim;
use aim_domain::task::{Task, TaskRequest, token_seconds};
use aim_domain::time::Timestamp;
use aim_token::TokenError;
use aim_token::claims::AccessClaims;
use aim_token::dpop::Proof;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::client_auth::{Client, assertion_claim, authenticate, may_get_tokens};
use super::keys::KeyRing;
use super::mint::{audience, mint, signing_ring};
use super::refused::{Refused, dpop_refused};
use crate::extract::RequestContext;
use crate::state::AppState;

/// Issues an access token (RFC 6749): `client_credentials` with a `private_key_jwt`
/// client assertion (RFC 7523) and a `DPoP` proof header (RFC 9449) opens a task (RFC 9396
/// `authorization_details`) or continues one (`task_id`); `jwt-bearer` takes a federated
/// workload token; `token-exchange` (RFC 8693) delegates to a sub-agent. No credential:
/// the assertion is the client's. Errors are RFC 6749 `{"error", "error_description"}`.
#[utoipa::path(post, path = "/oauth/token", tag = "oauth", security(()),
    request_body(content = aim_api::oauth::TokenRequest, content_type = "application/x-www-form-urlencoded"),
    params(("DPoP" = Option<String>, Header, description = "A DPoP proof (RFC 9449) for a token bound to the agent's key")),
    responses(
        (status = 200, body = aim_api::oauth::TokenResponse),
        (status = 400, description = "`invalid_request`, `invalid_grant`, `invalid_dpop_proof`, ...", body = Object),
        (status = 401, description = "`invalid_client`", body = Object),
        (status = 503, description = "`temporarily_unavailable`: nothing was issued", body = Object),
    ))]
pub async fn token(
    State(s): State<AppState>,
    ctx: RequestContext,
    headers: axum::http::HeaderMap,
    form: Result<axum::Form<TokenRequest>, axum::extract::rejection::FormRejection>,
) -> Response {
    let now = s.clock.now();
    let mut client = None;
    let outcome = match form {
        Ok(axum::Form(req)) => {
            let dpop = headers.get_all("dpop").iter().collect::<Vec<_>>();
            match dpop.as_slice() {
                [] => issue(&s, &ctx, req, None, now, &mut client).await,
                [one] => match one.to_str() {
                    Ok(proof) => issue(&s, &ctx, req, Some(proof), now, &mut client).await,
                    Err(_) => Err(dpop_refused(TokenError::InvalidProof("not ASCII".into()))),
                },
                _ => Err(dpop_refused(TokenError::InvalidProof(
                    "more than one DPoP header".into(),
                ))),
            }
        }
        // Too large is too large on every route, this one included.
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(Refused::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            "body_too_large",
            "the request body is larger than the server accepts",
        )),
        Err(e) => Err(Refused::request(
            "malformed_request",
            format!(
                "the body must be application/x-www-form-urlencoded: {}",
                e.body_text()
            ),
        )),
    };
    if outcome.is_ok() {
        s.metrics.token_issued();
    }
    let response = match outcome {
        Ok(body) => (
            StatusCode::OK,
            [
                (header::CACHE_CONTROL, "no-store"),
                (header::PRAGMA, "no-cache"),
            ],
            Json(body),
        )
            .into_response(),
        Err(refused) => {
            record_refusal(&s, &ctx, client, &refused, now).await;
            refused.into_response()
        }
    };
    with_nonce(&s, response, now)
}

/// When nonces are on, every answer hands out the current one (RFC 9449 §8).
fn with_nonce(s: &AppState, mut r: Response, now: Timestamp) -> Response {
    if let Some([current, _]) = s.tokens.nonces(now.as_millis() / 1000)
        && let Ok(v) = header::HeaderValue::from_str(&current)
    {
        r.headers_mut().insert("dpop-nonce", v);
    }
    r
}

async fn record_refusal(
    s: &AppState,
    ctx: &RequestContext,
    client: Option<IdentityId>,
    refused: &Refused,
    now: Timestamp,
) {
    let actor = client.map_or_else(Actor::anonymous, Actor::identity);
    let target = client.map(|c| c.to_string()).unwrap_or_default();
    let event = Event::new(now, actor, AuditAction::TokenRefused, "identity", target)
        .denied()
        .reason(refused.code)
        .detail(json!({ "error": refused.error, "code": refused.code, "message": refused.message }))
        .from_request(&ctx.id, &ctx.source);
    s.refusals
        .record(&s.store, &ctx.source, refused.code, event)
        .await;
}

fn grant(code: &'static str, m: &str) -> Refused {
    Refused::new(StatusCode::BAD_REQUEST, "invalid_grant", code, m)
}

/// Who asks for a token: the identity (with its sponsor, key and task), the key that
/// authenticated it, the single-use ids its request spends, and how it authenticated.
struct Asking {
    context: TokenContext,
    key_kid: String,
    single_use: Vec<Claim>,
    how: &'static str,
}

async fn issue(
    s: &AppState,
    ctx: &RequestContext,
    req: TokenRequest,
    dpop: Option<&str>,
    now: Timestamp,
    client: &mut Option<IdentityId>,
) -> Result<TokenResponse, Refused> {
    if req.grant_type == TOKEN_EXCHANGE {
        return super::exchange::exchange(s, ctx, req, dpop, now, client).await;
    }
    // The key to sign with, checked against the revocations of every replica in the read
    // that checks the client.
    let ring = s.tokens.keys.current();
    let task_id = match &req.task_id {
        Some(t) => {
            Some(TaskId::parse(t).map_err(|_| grant("invalid_task", "task_id is not a task id"))?)
        }
        None => None,
    };
    let mut asking = who_asks(s, &req, task_id, ring.signer.kid(), now, client).await?;
    let pop = proof_of_possession(s, dpop, &asking, now).await?;
    // The DPoP proof is single use too, per key, for as long as its `iat` is accepted.
    if let Some(p) = &pop {
        asking.single_use.push(aim_enforce::token::proof_claim(p));
    }
    let identity = &asking.context.identity;
    let (task, new_task) = task_for(&req, &asking.context, now)?;
    let lifetime = token_seconds(identity.autonomy)
        .min(s.tokens.max_token_seconds.unwrap_or(i64::MAX))
        .min((task.deadline.as_millis() - now.as_millis()) / 1000);
    if lifetime <= 0 {
        return Err(grant("task_ended", "the task has reached its deadline"));
    }
    let ring = signing_ring(s, ring, asking.context.signer_revoked, now).await?;
    let claims = AccessClaims {
        iss: s.tokens.issuer.clone(),
        sub: s.tokens.subject(identity),
        aud: audience(s, req.resource.as_deref())?,
        exp: now.as_millis() / 1000 + lifetime,
        iat: now.as_millis() / 1000,
        nbf: now.as_millis() / 1000,
        jti: aim_token::claims::new_jti(now.as_millis()),
        client_id: identity.id.to_string(),
        scope: task.systems.join(" "),
        aim_task: task.id.to_string(),
        sid: task.id.to_string(),
        act: None,
        cnf: pop
            .as_ref()
            .map(|p| aim_token::claims::Cnf { jkt: p.jkt.clone() }),
        aim_parents: Vec::new(),
    };
    let access_token = mint(&ring, &claims)?;
    record_issue(s, ctx, &asking, &ring, &claims, &task, new_task, now).await?;
    let key = asking.context.key.as_ref();
    super::record_seen(&s.store, &asking.context.identity, key, now).await;
    Ok(TokenResponse {
        access_token,
        token_type: if pop.is_some() { "DPoP" } else { "Bearer" }.to_owned(),
        expires_in: lifetime,
        scope: claims.scope,
        task_id: task.id.to_string(),
        authorization_details: json!([{
            "type": aim_domain::task::TASK_DETAIL_TYPE,
            "task_id": task.id,
            "purpose": task.purpose,
            "systems": task.systems,
            "subject": task.subject,
            "triggered_by": task.triggered_by,
            "deadline": task.deadline,
        }]),
        issued_token_type: None,
    })
}

/// Authenticates the client by its grant: a client assertion, or a federated workload
/// token.
async fn who_asks(
    s: &AppState,
    req: &TokenRequest,
    task_id: Option<TaskId>,
    signer: &str,
    now: Timestamp,
    client: &mut Option<IdentityId>,
) -> Result<Asking, Refused> {
    match req.grant_type.as_str() {
        "client_credentials" => {
            if req.client_assertion_type.as_deref() != Some(ASSERTION_TYPE) {
                return Err(Refused::client(
                    "assertion_required",
                    format!(
                        "authenticate with client_assertion_type={ASSERTION_TYPE} and a client_assertion"
                    ),
                ));
            }
            let raw = req.client_assertion.as_deref().ok_or_else(|| {
                Refused::client("assertion_required", "client_assertion is missing")
            })?;
            let Client {
                context,
                kid,
                assertion,
            } = authenticate(
                s,
                raw,
                req.client_id.as_deref(),
                task_id,
                signer,
                now,
                client,
            )
            .await?;
            // Single use, across replicas: recorded until the assertion expires, in the
            // same durable write as the token's event.
            let claim = assertion_claim(context.identity.id, &assertion);
            Ok(Asking {
                context,
                key_kid: kid,
                single_use: vec![claim],
                how: "client_credentials",
            })
        }
        JWT_BEARER => workload(s, req, task_id, signer, now, client).await,
        _ => Err(Refused::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "unsupported_grant_type",
            "grant_type must be client_credentials, urn:ietf:params:oauth:grant-type:jwt-bearer or urn:ietf:params:oauth:grant-type:token-exchange",
        )),
    }
}

/// A federated workload token (RFC 7523 `jwt-bearer`), mapped to the identity it names.
async fn workload(
    s: &AppState,
    req: &TokenRequest,
    task_id: Option<TaskId>,
    signer: &str,
    now: Timestamp,
    client: &mut Option<IdentityId>,
) -> Result<Asking, Refused> {
    let raw = req
        .assertion
        .as_deref()
        .ok_or_else(|| Refused::request("assertion_required", "assertion is missing"))?;
    let (name, workload) = s
        .tokens
        .federation
        .authenticate(raw, now.as_millis() / 1000)
        .await?;
    let unknown = || grant("unknown_workload", "the mapped identity does not exist");
    let identity = s.store.identity_by_name(&name).await?.ok_or_else(unknown)?;
    *client = Some(identity.id);
    let context = s
        .store
        .token_context(identity.id, "", task_id, signer)
        .await?
        .ok_or_else(unknown)?;
    may_get_tokens(&context.identity, context.sponsor_state)?;
    // A workload token may be presented again until it expires, as its issuer intends;
    // the DPoP proof is still single use.
    Ok(Asking {
        context,
        key_kid: format!("workload:{workload}"),
        single_use: Vec::new(),
        how: "jwt_bearer",
    })
}

/// The DPoP proof the token will be bound to, checked; `None` only for an identity an
/// admin opted into bearer tokens.
async fn proof_of_possession(
    s: &AppState,
    dpop: Option<&str>,
    asking: &Asking,
    now: Timestamp,
) -> Result<Option<Proof>, Refused> {
    let identity = &asking.context.identity;
    let nonces = s.tokens.nonces(now.as_millis() / 1000);
    let pop = match dpop {
        Some(p) => aim_token::dpop::verify(
            p,
            &aim_token::dpop::Expect {
                method: "POST",
                url: &s.tokens.token_endpoint,
                access_token: None,
                nonce: nonces.as_ref().map(|n| &n[..]),
                now: now.as_millis() / 1000,
            },
        )
        .map_err(dpop_refused)?,
        // INVARIANT: every token is bound to a key the agent holds, unless an admin opted
        // this identity into bearer tokens, with a reason, on the record.
        None if identity.bearer_reason.is_none() => {
            return Err(dpop_refused(TokenError::ProofRequired));
        }
        None => return Ok(None),
    };
    // INVARIANT: a client's token is bound to one of its own registered, unrevoked keys,
    // so revoking that key kills the token. The proof's key is usually the assertion's.
    if asking.how == "client_credentials"
        && pop.jkt != asking.key_kid
        && s.store
            .agent_key(identity.id, &pop.jkt)
            .await?
            .is_none_or(|k| k.revoked_at.is_some())
    {
        return Err(Refused::new(
            StatusCode::BAD_REQUEST,
            "invalid_dpop_proof",
            "dpop_key_not_registered",
            "the DPoP proof is signed by a key that is not a registered, unrevoked key of this identity",
        ));
    }
    Ok(Some(pop))
}

/// The task the token is for: a new one from `authorization_details`, or an open one by
/// id, narrowed to what the identity still has. Returns whether it is new.
fn task_for(
    req: &TokenRequest,
    context: &TokenContext,
    now: Timestamp,
) -> Result<(Task, bool), Refused> {
    let identity = &context.identity;
    match (&req.authorization_details, &req.task_id) {
        (Some(details), None) => Ok((open_task(details, identity, now)?, true)),
        (None, Some(_)) => match context.task.clone() {
            Some(mut t) if t.is_open_at(now) => {
                // INVARIANT: a continued task never gets back a system the identity has
                // lost since it was opened.
                t.systems.retain(|system| identity.systems.contains(system));
                if t.systems.is_empty() {
                    return Err(Refused::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_scope",
                        "empty_scope",
                        "the identity no longer has any of the task's systems",
                    ));
                }
                Ok((t, false))
            }
            Some(_) => Err(grant("task_ended", "the task has ended")),
            None => Err(grant("invalid_task", "no such task for this identity")),
        },
        _ => Err(Refused::request(
            "task_required",
            "give either authorization_details (type aim_task) to open a task, or the task_id of an open one",
        )),
    }
}

/// Writes the issuance (and a new task with it) on the record, spending the single-use
/// ids in the same durable write; refused if one was used before.
#[allow(clippy::too_many_arguments)]
async fn record_issue(
    s: &AppState,
    ctx: &RequestContext,
    asking: &Asking,
    ring: &KeyRing,
    claims: &AccessClaims,
    task: &Task,
    new_task: bool,
    now: Timestamp,
) -> Result<(), Refused> {
    let id = asking.context.identity.id;
    let replayed = || {
        Refused::client(
            "replayed",
            "this client assertion (or DPoP proof) was already used",
        )
    };
    let trail = Trail {
        task_id: task.id.to_string(),
        session_id: claims.sid.clone(),
        jti: claims.jti.clone(),
        triggered_by: task.triggered_by.clone(),
        ..Trail::default()
    };
    let issued = Event::new(
        now,
        Actor::identity(id),
        AuditAction::TokenIssued,
        "identity",
        id,
    )
    .reason(asking.how)
    .detail(json!({
        "exp": claims.exp,
        "aud": claims.aud,
        "scope": claims.scope,
        "client_key": asking.key_kid,
        "signing_key": ring.signer.kid(),
    }))
    .trail(trail.clone())
    .from_request(&ctx.id, &ctx.source);
    if !new_task {
        return match s
            .store
            .append_claimed(&issued, asking.single_use.clone())
            .await?
        {
            Some(_) => Ok(()),
            None => Err(replayed()),
        };
    }
    let opened = Event::new(
        now,
        Actor::identity(id),
        AuditAction::TaskOpened,
        "task",
        task.id,
    )
    .reason(task.purpose.clone())
    .detail(json!({
        "systems": task.systems,
        "subject": task.subject,
        "deadline": task.deadline,
    }))
    .trail(Trail {
        jti: String::new(),
        ..trail
    })
    .from_request(&ctx.id, &ctx.source);
    if s.store
        .insert_task(task, &[opened, issued], &asking.single_use)
        .await?
    {
        Ok(())
    } else {
        Err(replayed())
    }
}

fn invalid_details(m: impl Into<String>) -> Refused {
    Refused::new(
        StatusCode::BAD_REQUEST,
        "invalid_authorization_details",
        "invalid_authorization_details",
        m,
    )
}

fn open_task(details: &str, identity: &Identity, now: Timestamp) -> Result<Task, Refused> {
    if details.len() > 16 * 1024 {
        return Err(invalid_details("authorization_details is too large"));
    }
    let list: Vec<serde_json::Value> = serde_json::from_str(details)
        .map_err(|_| invalid_details("authorization_details must be a JSON array"))?;
    let [entry] = list.as_slice() else {
        return Err(invalid_details(
            "authorization_details must hold exactly one entry of type aim_task",
        ));
    };
    let request: TaskRequest = serde_json::from_value(entry.clone()).map_err(|e| {
        let shown: String = e
            .to_string()
            .chars()
            .take(200)
            .filter(|c| !c.is_control())
            .collect();
        invalid_details(format!("the aim_task entry is malformed: {shown}"))
    })?;
    request
        .open(identity, now)
        .map_err(|r| invalid_details(r.to_string()))
}
