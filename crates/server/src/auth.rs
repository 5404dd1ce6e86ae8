//! Who is calling. Humans authenticate with `Authorization: Bearer <credential>`; the
//! credential is looked up by its SHA-256 hash and is good only while its human is active.
//! The same layer records every refused write as an event, so an attacker probing the API
//! leaves a trail.

use std::sync::{Arc, Mutex};

use aim_domain::event::{Actor, AuditAction, Event};
use aim_domain::human::{Human, Role};
use aim_domain::identity::Identity;
use aim_domain::ids::CredentialId;
use aim_domain::time::Timestamp;
use aim_enforce::UnspentProof;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ErrorCode};
use crate::extract::RequestContext;
use crate::secrets::{CREDENTIAL_PREFIX, hash_secret};
use crate::state::AppState;
use crate::tokens::check::{Inactive, Source};

/// A human calling with an API credential: one of the two kinds of [`Caller`] (who asks).
#[derive(Debug, Clone)]
pub struct HumanCaller {
    pub human: Human,
    pub credential: CredentialId,
    pub request: RequestContext,
}

/// Who does something that is not a request's own: a person through the API, or one of
/// aim's background jobs (by its component name, the actor of its events).
#[derive(Debug, Clone, Copy)]
pub enum Asker<'a> {
    Human(&'a HumanCaller),
    Job(&'static str),
}

impl Asker<'_> {
    pub fn event(
        self,
        at: Timestamp,
        action: AuditAction,
        target_type: &str,
        target_id: impl ToString,
    ) -> Event {
        match self {
            Asker::Human(p) => p.event(at, action, target_type, target_id),
            Asker::Job(component) => {
                Event::new(at, Actor::system(component), action, target_type, target_id)
            }
        }
    }
}

impl HumanCaller {
    pub fn actor(&self) -> Actor {
        Actor::human(self.human.id)
    }

    /// An event done by this caller, carrying the request it came in.
    pub fn event(
        &self,
        at: Timestamp,
        action: AuditAction,
        target_type: &str,
        target_id: impl ToString,
    ) -> Event {
        Event::new(at, self.actor(), action, target_type, target_id)
            .from_request(&self.request.id, &self.request.source)
    }

    pub fn is(&self, role: Role) -> bool {
        self.human.has_role(role)
    }

    /// Refuses unless the caller has one of `roles`.
    pub fn require_any(&self, roles: &[Role], action: &str) -> Result<(), ApiError> {
        if roles.iter().any(|r| self.is(*r)) {
            return Ok(());
        }
        let names: Vec<_> = roles.iter().map(|r| r.as_str()).collect();
        Err(ApiError::forbidden(format!(
            "{action} requires the role {}",
            names.join(" or ")
        )))
    }

    /// Admins may act on any identity; a sponsor only on the identities they sponsor.
    pub fn require_admin_or_sponsor_of(
        &self,
        identity: &Identity,
        action: &str,
    ) -> Result<(), ApiError> {
        if self.is(Role::Admin) || (self.is(Role::Sponsor) && identity.sponsor_id == self.human.id)
        {
            return Ok(());
        }
        Err(ApiError::forbidden(format!(
            "{action} is allowed to admins and to the identity's own sponsor"
        )))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for HumanCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if parts.extensions.get::<aim_enforce::Agent>().is_some() {
            return Err(ApiError::forbidden(
                "this endpoint takes a human's credential, not an agent's token",
            ));
        }
        parts
            .extensions
            .get::<HumanCaller>()
            .cloned()
            .ok_or_else(|| ApiError::unauthenticated("send `Authorization: Bearer <credential>`"))
    }
}

async fn resolve(
    state: &AppState,
    authorization: Option<&[u8]>,
) -> Result<Option<HumanCaller>, ApiError> {
    let Some(value) = authorization else {
        return Ok(None);
    };
    let value = std::str::from_utf8(value)
        .map_err(|_| ApiError::unauthenticated("malformed Authorization header"))?;
    // The scheme is case-insensitive (RFC 9110 §11.1).
    let scheme_ok = value.len() > 7 && value[..7].eq_ignore_ascii_case("bearer ");
    let Some(secret) = scheme_ok.then(|| value[7..].trim()) else {
        return Err(ApiError::unauthenticated(
            "use `Authorization: Bearer <credential>`",
        ));
    };
    if !secret.starts_with(CREDENTIAL_PREFIX) || secret.len() > 256 {
        return Err(ApiError::unauthenticated("invalid credential"));
    }
    // INVARIANT: the lookup is by SHA-256 of a 256-bit random secret, so an index probe
    // reveals nothing about any stored secret; no secret comparison happens in our code.
    match credential(state, &hash_secret(secret)).await? {
        Some((credential, human)) if human.is_active() => {
            record_used(state, &credential).await;
            Ok(Some(HumanCaller {
                human,
                credential: credential.id,
                request: RequestContext::default(),
            }))
        }
        Some(_) => Err(ApiError::unauthenticated(
            "the credential's owner has departed",
        )),
        None => Err(ApiError::unauthenticated("invalid or revoked credential")),
    }
}

/// The credential whose secret hashes to `hash`, and its human: from the cache while the
/// store's generation has not moved since it was read (a credential revoked or a human
/// departed is a write that moves it), else read. Only credentials found are kept.
async fn credential(
    state: &AppState,
    hash: &[u8],
) -> Result<Option<(aim_domain::human::Credential, aim_domain::human::Human)>, ApiError> {
    let key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD_NO_PAD, hash);
    // Taken before the read: an entry read before a change is never used after it.
    let generation = state.store.generation().current();
    if let Some(found) = state.callers.get(&key, generation) {
        return Ok(Some(found));
    }
    let found = state.store.credential_by_hash(hash).await?;
    if let Some(f) = &found {
        state.callers.put(&key, f.clone(), generation);
    }
    Ok(found)
}

/// When a credential was last used, to the hour: what shows a forgotten one. A failure is
/// logged, never refused.
async fn record_used(state: &AppState, credential: &aim_domain::human::Credential) {
    let now = state.clock.now();
    if credential
        .last_used_at
        .is_none_or(|t| t.plus_millis(3_600_000) < now)
        && let Err(e) = state.store.touch_credential(credential.id, now).await
    {
        tracing::warn!(error = %e, "could not record that a credential was used");
    }
}

/// Resolves the caller for every request under `/v1` and `/scim`, refuses unauthenticated
/// ones, and records refused writes (and every refused authentication) as events.
pub async fn layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let request = crate::extract::context_of(req.headers(), req.extensions());
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes().to_vec());
    if let Some(token) = agent_token(authorization.as_deref()) {
        return agent(&state, req, next, &token, request, &method, &path).await;
    }
    let principal = match resolve(&state, authorization.as_deref()).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            let e = ApiError::unauthenticated("send `Authorization: Bearer <credential>`");
            return refuse(&state, Actor::anonymous(), &request, &method, &path, e).await;
        }
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
            return refuse(&state, Actor::anonymous(), &request, &method, &path, e).await;
        }
        Err(e) => return e.into_response(),
    };
    let principal = HumanCaller {
        request: request.clone(),
        ..principal
    };
    if let Err(e) = machine_may(&principal.human, &method, &path) {
        return refuse(&state, principal.actor(), &request, &method, &path, e).await;
    }
    let actor = principal.actor();
    req.extensions_mut().insert(principal);
    let response = next.run(req).await;
    let status = response.status();
    let refused_write = method != Method::GET && method != Method::HEAD && status.is_client_error();
    if refused_write || status == StatusCode::FORBIDDEN {
        let code = response
            .extensions()
            .get::<ErrorCode>()
            .map_or("refused", |c| c.0);
        record_refusal(&state, actor, &request, &method, &path, status, code).await;
    }
    response
}

/// What a credential whose human holds only machine roles may reach: a gateway decides,
/// follows revocations and introspects tokens; a SCIM client provisions humans. Neither
/// reads or changes the registry.
// INVARIANT: a machine credential is least privilege by route, not by trust in each
// handler's role check, so an endpoint added later is closed to it until listed here.
fn machine_may(human: &Human, method: &Method, path: &str) -> Result<(), ApiError> {
    if human.roles.is_empty() || !human.roles.iter().all(|r| r.is_machine()) {
        return Ok(());
    }
    let gateway = human.roles.contains(&Role::Gateway)
        && matches!(
            (method.as_str(), path),
            ("POST", "/v1/authorize")
                | ("POST", "/v1/gateway/authorize")
                | ("POST", "/v1/gateway/refusals")
                | ("POST", "/v1/gateway/acks")
                | ("POST", "/v1/gateway/calls")
                | ("POST", "/v1/gateway/tools")
                | ("POST", "/v1/gateway/verify")
                | ("POST", "/v1/gateway/permitted")
                | ("GET", "/v1/gateway/feed")
                | ("GET", "/v1/gateway/state")
                | ("POST", "/v1/gateway/live")
                | ("POST", "/v1/gateway/decisions")
                | ("GET", "/v1/revocations")
                | ("GET", "/v1/revocations/stream")
                | ("POST", "/oauth/introspect")
        );
    let secret = human.roles.contains(&Role::Gateway)
        && method.as_str() == "GET"
        && (path.starts_with("/v1/gateway/upstream-secrets/")
            // A tool's pin, to decide its calls.
            || path.starts_with("/v1/tools/"));
    let scim = human.roles.contains(&Role::Scim) && path.starts_with("/scim/v2/");
    if gateway || secret || scim {
        return Ok(());
    }
    Err(ApiError::forbidden(
        "a gateway credential reaches only POST /v1/authorize, /v1/gateway/*, tools' pins, the revocation feed and introspection; a scim credential only /scim/v2",
    ))
}

/// An agent's access token: `Authorization: DPoP <jwt>`, or `Bearer <jwt>` (a JWT, not an
/// `aim_` credential).
fn agent_token(authorization: Option<&[u8]>) -> Option<String> {
    let value = std::str::from_utf8(authorization?).ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    let jwt = rest.starts_with("ey") && rest.matches('.').count() == 2;
    (scheme.eq_ignore_ascii_case("dpop") || (scheme.eq_ignore_ascii_case("bearer") && jwt))
        .then(|| rest.to_owned())
}

/// Authenticates an agent by its token and DPoP proof, then runs the request with an
/// [`aim_enforce::Agent`] and its proof, unspent: the handler's extractor spends it
/// ([`Caller`]) or hands it to the handler to spend with its own record ([`Deciding`]).
async fn agent(
    state: &AppState,
    mut req: Request,
    next: Next,
    token: &str,
    request: RequestContext,
    method: &Method,
    path: &str,
) -> Response {
    let proofs: Vec<_> = req.headers().get_all("dpop").iter().collect();
    let proof = match proofs.as_slice() {
        [] => None,
        [one] => one.to_str().ok().map(str::to_owned),
        _ => None,
    };
    let now = state.clock.now();
    // `htu` is checked against the URL agents are told to use: the issuer's.
    let url = format!("{}{path}", state.tokens.issuer);
    let checked = if proofs.len() > 1 {
        Err(Inactive::Token(aim_token::TokenError::InvalidProof(
            "more than one DPoP header".into(),
        )))
    } else {
        let ring = state.tokens.keys.current();
        let presented = aim_enforce::token::Presentation {
            token,
            proof: proof.as_deref(),
            method: method.as_str(),
            url: &url,
        };
        state
            .tokens
            .rules
            .check_request(&Source::of(state), &ring.verifier, presented, now)
            .await
    };
    match checked {
        Ok((agent, proof)) => {
            let actor = Actor::identity(agent.identity);
            let slot = ProofSlot::new(proof);
            req.extensions_mut().insert(agent);
            req.extensions_mut().insert(slot.clone());
            let response = next.run(req).await;
            // INVARIANT: a proof is single use on every route. A handler that took neither
            // extractor has it spent now, so it cannot be presented again.
            if let Some(left) = slot.take() {
                tracing::warn!(path, "a handler left an agent's DPoP proof unspent");
                if let Err(e) = spend(state, left).await {
                    tracing::error!(error = %e.message, "could not spend a DPoP proof");
                }
            }
            if response.status().is_client_error() {
                let code = response
                    .extensions()
                    .get::<ErrorCode>()
                    .map_or("refused", |c| c.0);
                record_refusal(
                    state,
                    actor,
                    &request,
                    method,
                    path,
                    response.status(),
                    code,
                )
                .await;
            }
            response
        }
        Err(Inactive::Source(e)) => ApiError::from(e).into_response(),
        Err(e) => {
            let error = ApiError::new(StatusCode::UNAUTHORIZED, e.code(), e.to_string());
            let mut response =
                refuse(state, Actor::anonymous(), &request, method, path, error).await;
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static(
                    "DPoP error=\"invalid_token\", algs=\"EdDSA ES256\"",
                ),
            );
            response
        }
    }
}

/// An agent's DPoP proof between the check and the handler that spends it.
#[derive(Debug, Clone)]
struct ProofSlot(Arc<Mutex<Option<UnspentProof>>>);

impl ProofSlot {
    fn new(proof: Option<UnspentProof>) -> Self {
        Self(Arc::new(Mutex::new(proof)))
    }

    fn take(&self) -> Option<UnspentProof> {
        match self.0.lock() {
            Ok(mut p) => p.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        }
    }
}

/// Spends a proof on its own: refused if it was used before.
async fn spend(state: &AppState, proof: UnspentProof) -> Result<(), ApiError> {
    let once = proof.into_claim();
    if state.store.use_once(&once.id, once.expires_at).await? {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNAUTHORIZED,
        "dpop_replayed",
        "this DPoP proof was already used",
    ))
}

/// Who is calling: a human with a credential, or an agent with a token of one of its tasks.
/// Extracting it spends an agent's DPoP proof.
#[derive(Debug, Clone)]
pub enum Caller {
    Human(HumanCaller),
    Agent(aim_enforce::Agent),
}

impl Caller {
    /// The caller, and an agent's proof still unspent.
    fn of(parts: &Parts) -> Result<(Self, Option<UnspentProof>), ApiError> {
        if let Some(p) = parts.extensions.get::<HumanCaller>() {
            return Ok((Caller::Human(p.clone()), None));
        }
        if let Some(a) = parts.extensions.get::<aim_enforce::Agent>() {
            let proof = parts
                .extensions
                .get::<ProofSlot>()
                .and_then(ProofSlot::take);
            return Ok((Caller::Agent(a.clone()), proof));
        }
        Err(ApiError::unauthenticated(
            "send `Authorization: Bearer <credential>`, or an agent's `Authorization: DPoP <token>`",
        ))
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        let (caller, proof) = Caller::of(parts)?;
        if let Some(proof) = proof {
            spend(s, proof).await?;
        }
        Ok(caller)
    }
}

/// A caller whose handler spends an agent's DPoP proof itself, in the same durable write
/// as its record (`POST /v1/authorize`): the proof is handed over unspent.
#[derive(Debug)]
pub struct Deciding {
    pub caller: Caller,
    pub proof: Option<UnspentProof>,
}

impl<S: Send + Sync> FromRequestParts<S> for Deciding {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let (caller, proof) = Caller::of(parts)?;
        Ok(Deciding { caller, proof })
    }
}

/// Records the refusal `e` of a request before it reached a handler, and answers it.
async fn refuse(
    state: &AppState,
    actor: Actor,
    request: &RequestContext,
    method: &Method,
    path: &str,
    e: ApiError,
) -> Response {
    record_refusal(state, actor, request, method, path, e.status, e.code).await;
    e.into_response()
}

async fn record_refusal(
    state: &AppState,
    actor: Actor,
    request: &RequestContext,
    method: &Method,
    path: &str,
    status: StatusCode,
    code: &str,
) {
    let path: String = path.chars().take(256).filter(|c| !c.is_control()).collect();
    let event = Event::new(
        state.clock.now(),
        actor,
        AuditAction::RequestRefused,
        "request",
        format!("{method} {path}"),
    )
    .denied()
    .from_request(&request.id, &request.source)
    .reason(code.to_owned())
    .detail(serde_json::json!({ "status": status.as_u16(), "code": code }));
    state
        .refusals
        .record(&state.store, &request.source, code, event)
        .await;
}
