//! Who is asking at the token endpoint: a client assertion (RFC 7523 `private_key_jwt`)
//! checked against the identity's registered keys, and the rule that only an active
//! identity with an active sponsor gets tokens.

use aim_domain::human::HumanState;
use aim_domain::identity::Identity;
use aim_domain::ids::{IdentityId, TaskId};
use aim_domain::lifecycle::LifecycleState;
use aim_domain::single_use::Claim;
use aim_domain::time::Timestamp;
use aim_token::assertion::{self, ASSERTION_TYPS};
use aim_token::jose::Unverified;
use aim_token::{PublicJwk, TokenError};
use axum::http::StatusCode;

use super::refused::Refused;
use crate::state::AppState;

/// The single-use id a client assertion spends, kept until it expires.
pub(crate) fn assertion_claim(identity: IdentityId, a: &aim_token::assertion::Assertion) -> Claim {
    Claim {
        id: format!("assertion:{identity}:{}", a.jti),
        expires_at: Timestamp::from_millis(a.exp * 1000),
    }
}

/// An authenticated client: its identity (with sponsor, key and task), the key that signed
/// its assertion, and the assertion (whose `jti` the caller records as used).
#[derive(Debug)]
pub(crate) struct Client {
    pub context: aim_store::TokenContext,
    pub kid: String,
    pub assertion: aim_token::assertion::Assertion,
}

/// The identity, its sponsor, the key and the task, in one read, or from the cache while
/// no write has committed since that read (and for at most half a second, what a change
/// on another replica may take to be seen here). The generation is taken before the read:
/// an entry read before a change is never used after it.
async fn issuing_context(
    s: &AppState,
    id: IdentityId,
    kid: &str,
    task_id: Option<TaskId>,
    signer: &str,
) -> Result<aim_store::TokenContext, Refused> {
    // Fixed-width parts first and the caller's `kid` last, so no kid reads as another key.
    let key = format!(
        "{id} {} {} {signer} {kid}",
        task_id.map_or_else(|| "-".repeat(36), |t| t.to_string()),
        signer.len()
    );
    let generation = s.store.generation().current();
    if let Some(context) = s.tokens.issuing.get(&key, generation) {
        return Ok(context);
    }
    let context = s
        .store
        .token_context(id, kid, task_id, signer)
        .await?
        .ok_or_else(|| Refused::client("unknown_client", "no such identity"))?;
    // The read comes before the assertion's signature is checked: only what names a
    // registered key and an existing task is kept, so a caller varying kids or task ids at
    // will cannot fill the cache.
    if context.key.is_some() && (task_id.is_none() || context.task.is_some()) {
        s.tokens.issuing.put(&key, context.clone(), generation);
    }
    Ok(context)
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
    let context = issuing_context(s, id, &kid, task_id, signer).await?;
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
pub(crate) fn may_get_tokens(identity: &Identity, sponsor: HumanState) -> Result<(), Refused> {
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
