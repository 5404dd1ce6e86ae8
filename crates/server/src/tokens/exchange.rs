//! Delegation by token exchange (RFC 8693). The agent holding a token (the subject token,
//! with its own DPoP proof when bound) asks for a token for a sub-agent, which proves
//! itself with a client assertion signed by its own registered key (the actor token). The
//! new token is bound to that key, belongs to the same task, is narrower than the parent
//! (`aim_token::delegation`), and records the chain in `act`. Without an actor token the
//! request is refused: aim does not do impersonation.

use aim_domain::event::{Actor, AuditAction, Event, Trail};
use aim_domain::ids::{IdentityId, TaskId};
use aim_domain::task::token_seconds;
use aim_domain::time::Timestamp;
use aim_token::TokenError;
use aim_token::claims::{AccessClaims, Cnf};
use aim_token::delegation::delegate;
use axum::http::StatusCode;
use serde_json::json;

use super::check::{Inactive, check};
use super::client_auth::{Client, assertion_claim, authenticate};
use super::mint::{mint, signing_ring};
use super::refused::{Refused, dpop_refused};
use crate::extract::RequestContext;
use crate::state::AppState;
use aim_api::oauth::{TokenRequest, TokenResponse};

const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

fn invalid(code: &'static str, m: impl Into<String>) -> Refused {
    Refused::new(StatusCode::BAD_REQUEST, "invalid_request", code, m)
}

fn grant(code: &'static str, m: impl Into<String>) -> Refused {
    Refused::new(StatusCode::BAD_REQUEST, "invalid_grant", code, m)
}

pub async fn exchange(
    s: &AppState,
    ctx: &RequestContext,
    req: TokenRequest,
    dpop: Option<&str>,
    now: Timestamp,
    client: &mut Option<IdentityId>,
) -> Result<TokenResponse, Refused> {
    let (subject, actor) = presented(&req)?;
    let (parent, parent_proof) = parent(s, subject, &req, dpop, now).await?;
    let task_id = TaskId::parse(&parent.aim_task)
        .map_err(|_| grant("invalid_task", "the subject token names no task"))?;
    // The sub-agent, by its own assertion.
    let ring = s.tokens.keys.current();
    let Client {
        context,
        kid,
        assertion,
    } = authenticate(s, actor, None, None, ring.signer.kid(), now, client).await?;
    let ring = signing_ring(s, ring, context.signer_revoked, now).await?;
    // The parent's task (not the sub-agent's own): the delegated token works for it.
    let task = s
        .store
        .task(task_id)
        .await?
        .filter(|t| t.is_open_at(now))
        .ok_or_else(|| grant("task_ended", "the task has ended"))?;
    let identity = &context.identity;
    let claims = child_claims(s, &req, &parent, identity, &task, &kid, now)?;
    let token = mint(&ring, &claims)?;
    let single_use = vec![
        assertion_claim(identity.id, &assertion),
        aim_enforce::token::proof_claim(&parent_proof),
    ];
    let event = Event::new(
        now,
        Actor::identity(identity.id),
        AuditAction::TokenIssued,
        "identity",
        identity.id,
    )
    .reason("token_exchange")
    .detail(json!({
        "parent_jti": parent.jti,
        "exp": claims.exp,
        "aud": claims.aud,
        "scope": claims.scope,
        "client_key": kid,
        "signing_key": ring.signer.kid(),
    }))
    .trail(Trail {
        act: claims.act.as_ref().map(|a| a.chain()).unwrap_or_default(),
        task_id: task.id.to_string(),
        session_id: claims.sid.clone(),
        jti: claims.jti.clone(),
        triggered_by: task.triggered_by.clone(),
        ..Trail::default()
    })
    .from_request(&ctx.id, &ctx.source);
    if s.store.append_claimed(&event, single_use).await?.is_none() {
        return Err(Refused::client(
            "replayed",
            "the actor token (or DPoP proof) was already used",
        ));
    }
    super::record_seen(&s.store, identity, None, now).await;
    Ok(TokenResponse {
        access_token: token,
        token_type: "DPoP".to_owned(),
        expires_in: claims.exp - claims.iat,
        scope: claims.scope,
        task_id: task.id.to_string(),
        authorization_details: serde_json::Value::Null,
        issued_token_type: Some(ACCESS_TOKEN_TYPE.to_owned()),
    })
}

/// The subject token (the parent) and the actor token (the sub-agent's assertion).
fn presented(req: &TokenRequest) -> Result<(&str, &str), Refused> {
    let subject = req
        .subject_token
        .as_deref()
        .ok_or_else(|| invalid("subject_token_required", "subject_token is missing"))?;
    if req.subject_token_type.as_deref() != Some(ACCESS_TOKEN_TYPE) {
        return Err(invalid(
            "unsupported_token_type",
            format!("subject_token_type must be {ACCESS_TOKEN_TYPE}"),
        ));
    }
    let actor = req.actor_token.as_deref().ok_or_else(|| {
        invalid(
            "actor_token_required",
            "a sub-agent proves itself with actor_token (its own client assertion); impersonation is not offered",
        )
    })?;
    if req.actor_token_type.as_deref() != Some(JWT_TYPE) {
        return Err(invalid(
            "unsupported_token_type",
            format!("actor_token_type must be {JWT_TYPE}"),
        ));
    }
    Ok((subject, actor))
}

/// The parent: a live, DPoP-bound token, presented by its holder (with a proof signed by
/// its key), holding only what it may still reach.
async fn parent(
    s: &AppState,
    subject: &str,
    req: &TokenRequest,
    dpop: Option<&str>,
    now: Timestamp,
) -> Result<(AccessClaims, aim_token::dpop::Proof), Refused> {
    let (mut parent, reach) = check(s, subject, now).await.map_err(|e| match e {
        Inactive::Source(e) => Refused::from(e),
        e => grant(e.code(), format!("subject_token: {e}")),
    })?;
    // A bearer token is whatever anyone holding it says it is: it is not handed on.
    let Some(cnf) = &parent.cnf else {
        return Err(grant(
            "bound_subject_token_required",
            "subject_token is a bearer token; only a DPoP-bound token can be exchanged",
        ));
    };
    // The child is for the parent's audience; asking for another is refused.
    if let Some(r) = req.resource.as_deref()
        && r != parent.aud
    {
        return Err(Refused::new(
            StatusCode::BAD_REQUEST,
            "invalid_target",
            "invalid_target",
            "a delegated token is for its parent's audience",
        ));
    }
    let Some(p) = dpop else {
        return Err(dpop_refused(TokenError::ProofRequired));
    };
    let secs = now.as_millis() / 1000;
    let nonces = s.tokens.nonces(secs);
    let proof = aim_token::dpop::verify(
        p,
        &aim_token::dpop::Expect {
            method: "POST",
            url: &s.tokens.token_endpoint,
            access_token: Some(subject),
            nonce: nonces.as_ref().map(|n| &n[..]),
            now: secs,
        },
    )
    .map_err(dpop_refused)?;
    if proof.jkt != cnf.jkt {
        return Err(dpop_refused(TokenError::WrongProofKey));
    }
    // The parent holds only what it may still reach: task ∩ its scope ∩ its identity.
    parent.scope = reach.systems.join(" ");
    Ok((parent, proof))
}

/// The child's claims: narrower than the parent (`aim_token::delegation`), for the same
/// task and audience, bound to the sub-agent's own registered key `kid`.
fn child_claims(
    s: &AppState,
    req: &TokenRequest,
    parent: &AccessClaims,
    identity: &aim_domain::identity::Identity,
    task: &aim_domain::task::Task,
    kid: &str,
    now: Timestamp,
) -> Result<AccessClaims, Refused> {
    let secs = now.as_millis() / 1000;
    let actor_sub = s.tokens.subject(identity);
    let requested: Option<Vec<String>> = req.scope.as_deref().map(|s| {
        s.split(' ')
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect()
    });
    let lifetime = token_seconds(identity.autonomy)
        .min(s.tokens.max_token_seconds.unwrap_or(i64::MAX))
        .min((task.deadline.as_millis() - now.as_millis()) / 1000);
    let granted = delegate(
        parent,
        &actor_sub,
        &identity.systems,
        requested.as_deref(),
        secs,
        lifetime,
        s.tokens.max_delegation_depth,
    )
    .map_err(|e| {
        let error = if e.code() == "scope_not_held" || e.code() == "empty_scope" {
            "invalid_scope"
        } else {
            "invalid_grant"
        };
        Refused::new(StatusCode::BAD_REQUEST, error, e.code(), e.to_string())
    })?;
    Ok(AccessClaims {
        iss: s.tokens.issuer.clone(),
        sub: actor_sub,
        aud: parent.aud.clone(),
        exp: granted.exp,
        iat: secs,
        nbf: secs,
        jti: aim_token::claims::new_jti(now.as_millis()),
        client_id: identity.id.to_string(),
        scope: granted.scope.join(" "),
        aim_task: parent.aim_task.clone(),
        sid: parent.sid.clone(),
        act: Some(granted.act),
        // Bound to the sub-agent's own registered key.
        cnf: Some(Cnf {
            jkt: kid.to_owned(),
        }),
        aim_parents: granted.parents,
    })
}
