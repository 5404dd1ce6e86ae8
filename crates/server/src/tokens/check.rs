//! The authoritative check of an access token, as introspection (RFC 7662) and revocation
//! (RFC 7009) need it: signature and claims, then the live state behind the token: not
//! revoked by jti, its task open, its identity active with an active sponsor, its signing
//! key not revoked.

use std::sync::Arc;

use aim_domain::agent_key::RevocationKind;
use aim_domain::human::HumanState;
use aim_domain::identity::Identity;
use aim_domain::ids::{IdentityId, TaskId};
use aim_domain::lifecycle::LifecycleState;
use aim_domain::task::Task;
use aim_domain::time::Timestamp;
use aim_store::{Hangs, StoreError};
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
    #[error("an identity that delegated this token is no longer active")]
    DelegatorInactive,
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
            Inactive::DelegatorInactive => "delegator_not_active",
            Inactive::ProofReplayed => "dpop_replayed",
            Inactive::Store(_) => "store_unavailable",
        }
    }
}

/// Verifies `token` against aim's keys and audience, then the state behind it. Returns its
/// claims and its task as the token may use it (the systems it may still reach).
pub async fn check(
    s: &AppState,
    token: &str,
    now: Timestamp,
) -> Result<(AccessClaims, Task), Inactive> {
    let ring = s.tokens.keys.current();
    // A token for aim's API or for any resource aim issues for (a gateway introspecting,
    // an agent handing a gateway token on).
    let audiences = std::iter::once(&s.tokens.audience).chain(s.tokens.resources.iter());
    let mut verified = Err(aim_token::TokenError::WrongAudience);
    for audience in audiences {
        let expect = Expect {
            issuer: &s.tokens.issuer,
            audience,
            now: now.as_millis() / 1000,
        };
        verified = access::verify(token, &ring.trusted, &expect);
        if !matches!(verified, Err(aim_token::TokenError::WrongAudience)) {
            break;
        }
    }
    let claims = verified?;
    let (_, task) = live(s, token, &claims, now).await?;
    Ok((claims, task))
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

/// The state behind a verified token: nothing revoked it, its task is open, its identity,
/// its sponsor and every identity that delegated it are active, all in one read (or, for a
/// token presented again, what that read found while still current: see `live.rs`).
/// Returns the identity and the task as this token may use it: only the systems in the
/// task, in the token's scope and still registered on the identity.
async fn live(
    s: &AppState,
    token: &str,
    claims: &AccessClaims,
    now: Timestamp,
) -> Result<(Identity, Task), Inactive> {
    let issued = Timestamp::from_millis(claims.iat * 1000);
    let task_id = TaskId::parse(&claims.aim_task)
        .map_err(|_| aim_token::TokenError::InvalidClaim("aim_task"))?;
    let id = IdentityId::parse(&claims.client_id)
        .map_err(|_| aim_token::TokenError::InvalidClaim("client_id"))?;
    // INVARIANT: a delegated token names every identity above it, so that it dies with
    // any of them; one that does not is refused rather than checked less.
    let delegators: Vec<IdentityId> = match &claims.act {
        None => Vec::new(),
        Some(act) => act
            .client_ids()
            .ok_or(aim_token::TokenError::InvalidClaim("act"))?
            .into_iter()
            .map(IdentityId::parse)
            .collect::<Result<_, _>>()
            .map_err(|_| aim_token::TokenError::InvalidClaim("act"))?,
    };
    let live = match s.tokens.live.get(&claims.jti) {
        Some(live) => live,
        None => {
            // Tagged with the generation from before the read: a change committed after
            // it makes the entry unusable.
            let generation = s.tokens.live.generation();
            let live = read_live(s, token, claims, id, task_id, &delegators).await?;
            s.tokens.live.put(&claims.jti, live.clone(), generation);
            live
        }
    };
    // A token, task, signing key or agent key once revoked stays revoked, whatever the
    // clocks say; an identity (and a delegator) kills what was issued up to its revocation.
    if live.always_revoked_at.is_some() || live.earlier_revoked_at.is_some_and(|at| issued <= at) {
        return Err(Inactive::Revoked);
    }
    if live.task_revoked_at.is_some() {
        return Err(Inactive::TaskEnded);
    }
    if live.delegators_active != delegators.len() {
        return Err(Inactive::DelegatorInactive);
    }
    let context = live.context;
    let mut task = context
        .task
        .filter(|t| t.is_open_at(now))
        .ok_or(Inactive::TaskEnded)?;
    if context.identity.state != LifecycleState::Active
        || context.sponsor_state != HumanState::Active
    {
        return Err(Inactive::IdentityInactive);
    }
    // INVARIANT: what a token may reach is task ∩ token scope ∩ identity, now. Everything
    // an agent does through aim (decisions, leases, elevations, exchange) reads the task
    // from here.
    task.systems.retain(|system| {
        claims.scopes().any(|s| s == system) && context.identity.systems.contains(system)
    });
    Ok((context.identity, task))
}

/// Reads the live state of a token not in the cache: one query for everything it hangs on
/// (built only here, so a token presented again costs none of it).
async fn read_live(
    s: &AppState,
    token: &str,
    claims: &AccessClaims,
    id: IdentityId,
    task_id: TaskId,
    delegators: &[IdentityId],
) -> Result<aim_store::LiveContext, Inactive> {
    let kid = aim_token::jose::Unverified::parse(token, &[access::ACCESS_TYP])?
        .kid()?
        .to_owned();
    // The agent keys this token and every token above it were bound to.
    let bound = |client_id: &str, cnf: Option<&aim_token::claims::Cnf>| {
        cnf.map(|c| format!("{client_id}:{}", c.jkt))
    };
    let mut bound_keys: Vec<String> = bound(&claims.client_id, claims.cnf.as_ref())
        .into_iter()
        .collect();
    if let Some(act) = &claims.act {
        bound_keys.extend(
            act.links()
                .filter_map(|a| bound(a.client_id.as_deref()?, a.cnf.as_ref())),
        );
    }
    // Revoking a token revokes every token delegated from it, at any depth.
    let mut always: Vec<(RevocationKind, &str)> = claims
        .aim_parents
        .iter()
        .map(|p| (RevocationKind::Token, p.as_str()))
        .collect();
    always.extend([
        (RevocationKind::Token, claims.jti.as_str()),
        (RevocationKind::SigningKey, kid.as_str()),
    ]);
    always.extend(
        bound_keys
            .iter()
            .map(|k| (RevocationKind::AgentKey, k.as_str())),
    );
    let delegator_ids: Vec<String> = delegators.iter().map(ToString::to_string).collect();
    let earlier: Vec<(RevocationKind, &str)> = std::iter::once(claims.client_id.as_str())
        .chain(delegator_ids.iter().map(String::as_str))
        .map(|v| (RevocationKind::Identity, v))
        .collect();
    let hangs = Hangs {
        always,
        earlier,
        delegators: delegators.to_vec(),
    };
    s.store
        .live_context(id, task_id, &hangs)
        .await?
        .ok_or(Inactive::IdentityInactive)
}
