//! The authoritative check of an access token, as introspection (RFC 7662) and revocation
//! (RFC 7009) need it: signature and claims, then the live state behind the token: not
//! revoked by jti, its task open, its identity active with an active sponsor, its signing
//! key not revoked.

use std::sync::Arc;

use aim_domain::human::HumanState;
use aim_domain::identity::Identity;
use aim_domain::ids::{IdentityId, TaskId};
use aim_domain::lifecycle::LifecycleState;
use aim_domain::task::Task;
use aim_domain::time::Timestamp;
use aim_store::StoreError;
use aim_token::access::{self, Expect};
use aim_token::claims::AccessClaims;

use crate::state::AppState;

/// Why a token is not active.
#[derive(Debug, thiserror::Error)]
pub enum Inactive {
    #[error(transparent)]
    Token(#[from] aim_token::TokenError),
    #[error("the token has been revoked")]
    Revoked,
    #[error("the token's task has ended")]
    TaskEnded,
    #[error("the token's identity is not active")]
    IdentityInactive,
    #[error("this DPoP proof was already used")]
    ProofReplayed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Inactive {
    pub fn code(&self) -> &'static str {
        match self {
            Inactive::Token(e) => e.code(),
            Inactive::Revoked => "token_revoked",
            Inactive::TaskEnded => "task_ended",
            Inactive::IdentityInactive => "identity_not_active",
            Inactive::ProofReplayed => "dpop_replayed",
            Inactive::Store(_) => "store_unavailable",
        }
    }
}

/// Verifies `token` against aim's keys and audience, then the state behind it.
pub async fn check(s: &AppState, token: &str, now: Timestamp) -> Result<AccessClaims, Inactive> {
    let ring = s.tokens.keys.current();
    let expect = Expect {
        issuer: &s.tokens.issuer,
        audience: &s.tokens.audience,
        now: now.as_millis() / 1000,
    };
    let claims = access::verify(token, &ring.trusted, &expect)?;
    live(s, token, &claims, now).await?;
    Ok(claims)
}

/// An agent calling aim with its access token (and DPoP proof).
#[derive(Debug, Clone)]
pub struct AgentCaller {
    pub identity: IdentityId,
    pub task: TaskId,
    pub claims: AccessClaims,
    /// The DPoP proof's single-use id, when the handler spends it in its own durable write
    /// (`POST /v1/authorize` writes it with the decision record): it must then refuse the
    /// request if the id was spent before. `None` when it is already spent.
    pub unspent_proof: Option<aim_store::Claim>,
    /// The identity and task as the live-state check read them, for the handler to use
    /// rather than read again.
    pub live: Arc<(Identity, Task)>,
}

/// The one route whose handler spends the DPoP proof's id itself, with its record.
pub fn defers_proof(method: &str, path: &str) -> bool {
    method == "POST" && path == "/v1/authorize"
}

/// Checks a token presented on a request to aim itself, with its DPoP proof for this very
/// request (`method`, `url`): the token, the proof (bound key, `htm`, `htu`, `ath`, `iat`),
/// the live state behind the token, and that the proof was not used before.
pub async fn check_request(
    s: &AppState,
    token: &str,
    proof: Option<&str>,
    method: &str,
    url: &str,
    now: Timestamp,
    defer_proof: bool,
) -> Result<AgentCaller, Inactive> {
    let ring = s.tokens.keys.current();
    let expect = Expect {
        issuer: &s.tokens.issuer,
        audience: &s.tokens.audience,
        now: now.as_millis() / 1000,
    };
    let presented = ring
        .verifier
        .verify_request(token, proof, method, url, &expect)?;
    let claims = presented.claims;
    let (identity, task) = live(s, token, &claims, now).await?;
    let mut unspent_proof = None;
    if let Some(p) = presented.proof {
        let once = super::proof_claim(&p);
        if defer_proof {
            unspent_proof = Some(once);
        } else if !s.store.use_once(&once.id, once.expires_at).await? {
            return Err(Inactive::ProofReplayed);
        }
    }
    Ok(AgentCaller {
        unspent_proof,
        identity: identity.id,
        task: task.id,
        claims,
        live: Arc::new((identity, task)),
    })
}

/// The state behind a verified token: nothing revoked it, its task is open, its identity
/// and sponsor are active, all in one read (or, for a token presented again, what that
/// read found while still current: see `live.rs`). Returns the identity and task.
async fn live(
    s: &AppState,
    token: &str,
    claims: &AccessClaims,
    now: Timestamp,
) -> Result<(Identity, Task), Inactive> {
    let issued = Timestamp::from_millis(claims.iat * 1000);
    let kid = aim_token::jose::Unverified::parse(token, &[access::ACCESS_TYP])?
        .kid()?
        .to_owned();
    let task_id = TaskId::parse(&claims.aim_task)
        .map_err(|_| aim_token::TokenError::InvalidClaim("aim_task"))?;
    let id = IdentityId::parse(&claims.client_id)
        .map_err(|_| aim_token::TokenError::InvalidClaim("client_id"))?;
    // Revoking a token revokes every token delegated from it, at any depth.
    let mut others: Vec<(&str, &str)> = claims
        .aim_parents
        .iter()
        .map(|p| ("token", p.as_str()))
        .collect();
    others.extend([
        ("token", claims.jti.as_str()),
        ("signing_key", kid.as_str()),
        ("identity", claims.client_id.as_str()),
    ]);
    let live = match s.tokens.live.get(&claims.jti) {
        Some(live) => live,
        None => {
            // Tagged with the generation from before the read: a change committed after
            // it makes the entry unusable.
            let generation = s.tokens.live.generation();
            let live = s
                .store
                .live_context(id, task_id, &others)
                .await?
                .ok_or(Inactive::IdentityInactive)?;
            s.tokens.live.put(&claims.jti, live.clone(), generation);
            live
        }
    };
    // A revocation kills the matching tokens issued at or before it.
    let revoked = |at: Option<Timestamp>| at.is_some_and(|at| issued <= at);
    if revoked(live.other_revoked_at) {
        return Err(Inactive::Revoked);
    }
    if revoked(live.task_revoked_at) {
        return Err(Inactive::TaskEnded);
    }
    let context = live.context;
    let task = context
        .task
        .filter(|t| t.is_open_at(now))
        .ok_or(Inactive::TaskEnded)?;
    if context.identity.state != LifecycleState::Active
        || context.sponsor_state != HumanState::Active
    {
        return Err(Inactive::IdentityInactive);
    }
    Ok((context.identity, task))
}
