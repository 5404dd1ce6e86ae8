//! `POST /oauth/token`: `client_credentials` with a client assertion (RFC 7523
//! `private_key_jwt`) signed by a key registered on the identity, plus either a new task
//! (RFC 9396 `authorization_details` of type `aim_task`) or the `task_id` of an open one.
//!
//! Every refusal answers in RFC 6749's shape (`error`, `error_description`) plus aim's
//! specific `code`, and is recorded as a `token.refused` event; every issuance is a
//! `token.issued` event in the task's trail. The token itself never reaches a log or event.

use aim_domain::event::{Actor, AuditAction, Event, Trail};
use aim_domain::human::HumanState;
use aim_domain::identity::Identity;
use aim_domain::ids::{IdentityId, TaskId};
use aim_domain::lifecycle::LifecycleState;
use aim_domain::task::{Task, TaskRequest, token_seconds};
use aim_domain::time::Timestamp;
use aim_store::StoreError;
use aim_token::assertion::{self, ASSERTION_TYPS};
use aim_token::claims::AccessClaims;
use aim_token::jose::Unverified;
use aim_token::{PublicJwk, TokenError};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::mint::{audience, mint, signing_ring};
use crate::auth::RequestContext;
use crate::state::AppState;

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The form fields aim reads; others are ignored, as RFC 6749 asks.
#[derive(Debug, Default, Deserialize)]
pub struct TokenRequest {
    #[serde(default)]
    pub(crate) grant_type: String,
    pub(crate) subject_token: Option<String>,
    pub(crate) subject_token_type: Option<String>,
    pub(crate) actor_token: Option<String>,
    pub(crate) actor_token_type: Option<String>,
    /// For a token exchange: the scopes to hand down (space-separated).
    pub(crate) scope: Option<String>,
    /// For the `jwt-bearer` grant: the workload token.
    pub(crate) assertion: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
    client_id: Option<String>,
    authorization_details: Option<String>,
    task_id: Option<String>,
    /// RFC 8707: the resource (gateway, tool) the token is for.
    pub(crate) resource: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    pub scope: String,
    pub task_id: String,
    /// For a new task: the granted `aim_task`.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub authorization_details: serde_json::Value,
    /// For a token exchange (RFC 8693).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<String>,
}

/// A refused token request.
#[derive(Debug)]
pub struct Refused {
    status: StatusCode,
    /// RFC 6749 `error`.
    error: &'static str,
    /// aim's specific code.
    code: &'static str,
    message: String,
}

impl Refused {
    pub(crate) fn new(
        status: StatusCode,
        error: &'static str,
        code: &'static str,
        m: impl Into<String>,
    ) -> Self {
        Self {
            status,
            error,
            code,
            message: m.into(),
        }
    }

    pub(crate) fn request(code: &'static str, m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", code, m)
    }

    pub(crate) fn client(code: &'static str, m: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", code, m)
    }

    pub(crate) fn token(e: TokenError) -> Self {
        Self::client(e.code(), format!("client assertion refused: {e}"))
    }
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "token endpoint: store failed");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "store_unavailable",
            "the store is unavailable; no token was issued",
        )
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            [(header::CACHE_CONTROL, "no-store")],
            Json(json!({
                "error": self.error,
                "error_description": self.message,
                "code": self.code,
            })),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer error=\"invalid_client\""),
            );
        }
        r
    }
}

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
    // When nonces are on, every answer hands out the current one (RFC 9449 §8).
    let nonce = s
        .tokens
        .nonces(now.as_millis() / 1000)
        .map(|[current, _]| current);
    let with_nonce = |mut r: Response| {
        if let Some(n) = &nonce
            && let Ok(v) = header::HeaderValue::from_str(n)
        {
            r.headers_mut().insert("dpop-nonce", v);
        }
        r
    };
    match outcome {
        Ok(body) => with_nonce(
            (
                StatusCode::OK,
                [
                    (header::CACHE_CONTROL, "no-store"),
                    (header::PRAGMA, "no-cache"),
                ],
                Json(body),
            )
                .into_response(),
        ),
        Err(refused) => {
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
            with_nonce(refused.into_response())
        }
    }
}

/// RFC 9449's error for a missing or bad proof at the token endpoint.
pub(crate) fn dpop_refused(e: TokenError) -> Refused {
    // RFC 9449 §8: a missing or stale nonce has its own error, and the answer carries the
    // nonce to use.
    let error = if e == TokenError::NonceRequired {
        "use_dpop_nonce"
    } else {
        "invalid_dpop_proof"
    };
    Refused::new(StatusCode::BAD_REQUEST, error, e.code(), e.to_string())
}

async fn issue(
    s: &AppState,
    ctx: &RequestContext,
    req: TokenRequest,
    dpop: Option<&str>,
    now: Timestamp,
    client: &mut Option<IdentityId>,
) -> Result<TokenResponse, Refused> {
    if req.grant_type == super::exchange::GRANT {
        return super::exchange::exchange(s, ctx, req, dpop, now, client).await;
    }
    let grant = |code, m: &str| Refused::new(StatusCode::BAD_REQUEST, "invalid_grant", code, m);
    // The key to sign with, checked against the revocations of every replica in the read
    // that checks the client.
    let ring = s.tokens.keys.current();
    let task_id = match &req.task_id {
        Some(t) => {
            Some(TaskId::parse(t).map_err(|_| grant("invalid_task", "task_id is not a task id"))?)
        }
        None => None,
    };
    // Who is asking, and the single-use ids their request spends.
    let (context, key_kid, mut single_use, how) = match req.grant_type.as_str() {
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
                ring.signer.kid(),
                now,
                client,
            )
            .await?;
            // Single use, across replicas: recorded until the assertion expires, in the
            // same durable write as the token's event.
            let claim = super::assertion_claim(context.identity.id, &assertion);
            (context, kid, vec![claim], "client_credentials")
        }
        JWT_BEARER => {
            let raw = req
                .assertion
                .as_deref()
                .ok_or_else(|| Refused::request("assertion_required", "assertion is missing"))?;
            let (name, workload) = s
                .tokens
                .federation
                .authenticate(raw, now.as_millis() / 1000)
                .await?;
            let identity =
                s.store.identity_by_name(&name).await?.ok_or_else(|| {
                    grant("unknown_workload", "the mapped identity does not exist")
                })?;
            *client = Some(identity.id);
            let context = s
                .store
                .token_context(identity.id, "", task_id, ring.signer.kid())
                .await?
                .ok_or_else(|| grant("unknown_workload", "the mapped identity does not exist"))?;
            may_get_tokens(&context.identity, context.sponsor_state)?;
            // A workload token may be presented again until it expires, as its issuer
            // intends; the DPoP proof below is still single use.
            (
                context,
                format!("workload:{workload}"),
                Vec::new(),
                "jwt_bearer",
            )
        }
        _ => {
            return Err(Refused::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "unsupported_grant_type",
                "grant_type must be client_credentials, urn:ietf:params:oauth:grant-type:jwt-bearer or urn:ietf:params:oauth:grant-type:token-exchange",
            ));
        }
    };
    let identity = &context.identity;
    let id = identity.id;
    // Proof of possession: the token is bound to the key that signed the proof.
    let nonces = s.tokens.nonces(now.as_millis() / 1000);
    let pop = match dpop {
        Some(p) => Some(
            aim_token::dpop::verify(
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
        ),
        // INVARIANT: every token is bound to a key the agent holds, unless an admin opted
        // this identity into bearer tokens, with a reason, on the record.
        None if identity.bearer_reason.is_none() => {
            return Err(dpop_refused(TokenError::ProofRequired));
        }
        None => None,
    };
    // INVARIANT: a client's token is bound to one of its own registered, unrevoked keys,
    // so revoking that key kills the token. The proof's key is usually the assertion's.
    if how == "client_credentials"
        && let Some(p) = &pop
        && p.jkt != key_kid
        && s.store
            .agent_key(id, &p.jkt)
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
    let replayed = || {
        Refused::client(
            "replayed",
            "this client assertion (or DPoP proof) was already used",
        )
    };
    // The DPoP proof is single use too, per key, for as long as its `iat` is accepted.
    if let Some(p) = &pop {
        single_use.push(aim_enforce::token::proof_claim(p));
    }

    let (task, new_task) = match (&req.authorization_details, &req.task_id) {
        (Some(details), None) => (open_task(details, identity, now)?, true),
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
                (t, false)
            }
            Some(_) => return Err(grant("task_ended", "the task has ended")),
            None => return Err(grant("invalid_task", "no such task for this identity")),
        },
        _ => {
            return Err(Refused::request(
                "task_required",
                "give either authorization_details (type aim_task) to open a task, or the task_id of an open one",
            ));
        }
    };

    let lifetime = token_seconds(identity.autonomy)
        .min(s.tokens.max_token_seconds.unwrap_or(i64::MAX))
        .min((task.deadline.as_millis() - now.as_millis()) / 1000);
    if lifetime <= 0 {
        return Err(Refused::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "task_ended",
            "the task has reached its deadline",
        ));
    }
    let aud = audience(s, req.resource.as_deref())?;
    let iat = now.as_millis() / 1000;
    let jti = uuid::Uuid::now_v7().to_string();
    let ring = signing_ring(s, ring, context.signer_revoked, now).await?;
    let claims = AccessClaims {
        iss: s.tokens.issuer.clone(),
        sub: s.tokens.subject(identity),
        aud,
        exp: iat + lifetime,
        iat,
        nbf: iat,
        jti: jti.clone(),
        client_id: id.to_string(),
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

    let trail = Trail {
        task_id: task.id.to_string(),
        session_id: claims.sid.clone(),
        jti: jti.clone(),
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
    .reason(how)
    .detail(json!({
        "exp": claims.exp,
        "aud": claims.aud,
        "scope": claims.scope,
        "client_key": key_kid,
        "signing_key": ring.signer.kid(),
    }))
    .trail(trail.clone())
    .from_request(&ctx.id, &ctx.source);
    if new_task {
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
        for c in &single_use {
            if !s.store.use_once(&c.id, c.expires_at).await? {
                return Err(replayed());
            }
        }
        s.store.insert_task(&task, &[opened, issued]).await?;
    } else if s.store.append_claimed(&issued, single_use).await?.is_none() {
        return Err(replayed());
    }
    super::record_seen(s, identity, now).await;
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

/// An authenticated client: its identity (with sponsor, key and task), the key that signed
/// its assertion, and the assertion (whose `jti` the caller records as used).
#[derive(Debug)]
pub(crate) struct Client {
    pub context: aim_store::TokenContext,
    pub kid: String,
    pub assertion: aim_token::assertion::Assertion,
}

/// Checks a client assertion (RFC 7523): the identity it names exists, the key it was
/// signed with is registered on it and not revoked, the signature and claims hold, and the
/// identity may get tokens. Reads `task_id` of that identity along the way.
pub(crate) async fn authenticate(
    s: &AppState,
    raw: &str,
    client_id: Option<&str>,
    task_id: Option<TaskId>,
    signer: &str,
    now: Timestamp,
    client: &mut Option<IdentityId>,
) -> Result<Client, Refused> {
    let unverified = Unverified::parse(raw, ASSERTION_TYPS).map_err(Refused::token)?;
    // Who the assertion claims to be; proven only once its signature verifies.
    let claimed = unverified
        .claims
        .get("iss")
        .and_then(|v| v.as_str())
        .ok_or(Refused::token(TokenError::InvalidClaim("iss")))?
        .to_owned();
    let claimed = claimed.as_str();
    let id = IdentityId::parse(claimed).map_err(|_| {
        Refused::client(
            "unknown_client",
            "the assertion's `iss` is not an identity id",
        )
    })?;
    if client_id.is_some_and(|c| c != claimed) {
        return Err(Refused::client(
            "wrong_subject",
            "client_id differs from the assertion's issuer",
        ));
    }
    let kid = unverified.kid().map_err(Refused::token)?.to_owned();
    // The identity, its sponsor, the key and the task, in one read.
    let context = s
        .store
        .token_context(id, &kid, task_id, signer)
        .await?
        .ok_or_else(|| Refused::client("unknown_client", "no such identity"))?;
    let key = context.key.as_ref().ok_or_else(|| {
        Refused::client(
            "unknown_kid",
            "no key with this kid is registered on the identity",
        )
    })?;
    if key.revoked_at.is_some() {
        return Err(Refused::client(
            "key_revoked",
            "the key that signed the assertion is revoked",
        ));
    }
    let (jwk, verifier) = PublicJwk::with_verifier(&key.jwk).map_err(Refused::token)?;
    let claims = unverified
        .verify(&verifier, jwk.alg_name())
        .map_err(Refused::token)?;
    let audiences = [s.tokens.token_endpoint.as_str(), s.tokens.issuer.as_str()];
    let asserted = assertion::check(&claims, claimed, &audiences, now.as_millis() / 1000)
        .map_err(Refused::token)?;
    *client = Some(id);

    may_get_tokens(&context.identity, context.sponsor_state)?;
    let kid = key.kid.clone();
    Ok(Client {
        context,
        kid,
        assertion: asserted,
    })
}

/// Only an active identity whose sponsor is active gets tokens.
fn may_get_tokens(identity: &Identity, sponsor: HumanState) -> Result<(), Refused> {
    if identity.state != LifecycleState::Active {
        return Err(Refused::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "identity_not_active",
            format!("the identity is {}", identity.state),
        ));
    }
    if sponsor != HumanState::Active {
        return Err(Refused::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "sponsor_inactive",
            "the identity's sponsor is not active",
        ));
    }
    Ok(())
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
