//! A presented access token checked the way every enforcement point must: signature,
//! issuer, audience and lifetime; its DPoP proof for this very request; then the live
//! state behind it (nothing it hangs on revoked, its task open, its identity, sponsor and
//! every delegator active), read from a [`LiveSource`] through a [`LiveCache`].
//!
//! A proof's single-use id is not spent here: it comes back as an [`UnspentProof`], which
//! the caller spends in a durable write (alone, or with the record of what the request did).

use std::future::Future;
use std::sync::Arc;

use aim_domain::agent_key::RevocationKind;
use aim_domain::human::HumanState;
use aim_domain::identity::Identity;
use aim_domain::ids::{IdentityId, TaskId};
use aim_domain::lifecycle::LifecycleState;
use aim_domain::live::{Hangs, LiveContext};
use aim_domain::single_use::Claim;
use aim_domain::task::Task;
use aim_domain::time::Timestamp;
use aim_token::TokenError;
use aim_token::access::{self, Expect, TrustedKeys, Verifier};
use aim_token::claims::AccessClaims;

use crate::live::LiveCache;

/// Where the live state behind a token comes from.
pub trait LiveSource: Sync {
    type Error: std::error::Error + Send + Sync + 'static;

    /// Moves whenever something that may change live state has been committed (see
    /// [`crate::live`]); cached live state is used only while it has not moved.
    fn generation(&self) -> u64;

    /// Everything `hangs` names, the identity, its sponsor and the task, in one read;
    /// `None` if the identity is unknown.
    fn live_context(
        &self,
        identity: IdentityId,
        task: TaskId,
        hangs: &Hangs<'_>,
    ) -> impl Future<Output = Result<Option<LiveContext>, Self::Error>> + Send;
}

/// Why a token is not active. `E` is the live source's error: the check could not be made
/// and the caller fails closed.
#[derive(Debug, thiserror::Error)]
pub enum Inactive<E> {
    #[error(transparent)]
    Token(#[from] TokenError),
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
    #[error("the live state behind the token could not be read")]
    Source(#[source] E),
}

impl<E> Inactive<E> {
    /// The stable code a refusal carries.
    pub fn code(&self) -> &'static str {
        match self {
            Inactive::Token(e) => e.code(),
            Inactive::Revoked => "token_revoked",
            Inactive::TaskEnded => "task_ended",
            Inactive::IdentityInactive => "identity_not_active",
            Inactive::DelegatorInactive => "delegator_not_active",
            Inactive::ProofReplayed => "dpop_replayed",
            Inactive::Source(_) => "store_unavailable",
        }
    }
}

/// An agent with a checked token, for the rest of the request.
#[derive(Debug, Clone)]
pub struct Agent {
    pub identity: IdentityId,
    pub task: TaskId,
    pub claims: AccessClaims,
    /// The identity and task as the live-state check read them, the task narrowed to
    /// what this token may reach: the handler uses them rather than reading again.
    pub live: Arc<(Identity, Task)>,
}

/// A DPoP proof's single-use id, not yet spent. Whoever holds it must spend it in a
/// durable write before acting on the request; a second use of the same proof is then
/// refused wherever it is presented.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a proof must be spent before the request is acted on"]
pub struct UnspentProof(Claim);

impl UnspentProof {
    pub fn of(proof: &aim_token::dpop::Proof) -> Self {
        Self(proof_claim(proof))
    }

    /// The id to record as used.
    pub fn into_claim(self) -> Claim {
        self.0
    }
}

/// The single-use id a DPoP proof spends (per key), kept while its `iat` is accepted.
pub fn proof_claim(p: &aim_token::dpop::Proof) -> Claim {
    Claim {
        id: format!("dpop:{}:{}", p.jkt, p.jti),
        expires_at: Timestamp::from_millis((p.iat + aim_token::dpop::IAT_WINDOW) * 1000),
    }
}

/// What a token must be issued by and for, and the cache of what presented tokens hang on.
#[derive(Debug)]
pub struct TokenRules {
    /// The issuer every token must name.
    pub issuer: String,
    /// The audience of a token presented to this enforcement point.
    pub audience: String,
    /// The other audiences aim issues for, accepted when a token is introspected.
    pub resources: Vec<String>,
    pub cache: LiveCache,
}

impl TokenRules {
    pub fn new(issuer: &str, audience: &str, resources: &[String]) -> Self {
        Self {
            issuer: issuer.trim_end_matches('/').to_owned(),
            audience: audience.to_owned(),
            resources: resources.to_vec(),
            cache: LiveCache::default(),
        }
    }

    /// Verifies `token` for this audience or any resource aim issues for, then the state
    /// behind it, as introspection needs. Returns its claims and its task as the token
    /// may use it.
    pub async fn check<S: LiveSource>(
        &self,
        source: &S,
        trusted: &TrustedKeys,
        token: &str,
        now: Timestamp,
    ) -> Result<(AccessClaims, Task), Inactive<S::Error>> {
        let mut verified = Err(TokenError::WrongAudience);
        for audience in std::iter::once(&self.audience).chain(self.resources.iter()) {
            let expect = Expect {
                issuer: &self.issuer,
                audience,
                now: now.as_millis() / 1000,
            };
            verified = access::verify(token, trusted, &expect);
            if !matches!(verified, Err(TokenError::WrongAudience)) {
                break;
            }
        }
        let claims = verified?;
        let (_, task) = self.live(source, token, &claims, now).await?;
        Ok((claims, task))
    }

    /// Checks a token presented on a request (`method`, `url`) with its DPoP proof: the
    /// token, the proof (bound key, `htm`, `htu`, `ath`, `iat`) and the live state behind
    /// the token. The proof comes back unspent.
    pub async fn check_request<S: LiveSource>(
        &self,
        source: &S,
        verifier: &Verifier,
        presented: Presentation<'_>,
        now: Timestamp,
    ) -> Result<(Agent, Option<UnspentProof>), Inactive<S::Error>> {
        self.check_request_for(&self.audience, source, verifier, presented, now)
            .await
    }

    /// As [`TokenRules::check_request`], for a request made to another enforcement point:
    /// the token's audience must be `audience` (that point's resource), its proof's `htu`
    /// that point's URL.
    pub async fn check_request_for<S: LiveSource>(
        &self,
        audience: &str,
        source: &S,
        verifier: &Verifier,
        presented: Presentation<'_>,
        now: Timestamp,
    ) -> Result<(Agent, Option<UnspentProof>), Inactive<S::Error>> {
        let expect = Expect {
            issuer: &self.issuer,
            audience,
            now: now.as_millis() / 1000,
        };
        let checked = verifier.verify_request(
            presented.token,
            presented.proof,
            presented.method,
            presented.url,
            &expect,
        )?;
        let claims = checked.claims;
        let (identity, task) = self.live(source, presented.token, &claims, now).await?;
        let agent = Agent {
            identity: identity.id,
            task: task.id,
            claims,
            live: Arc::new((identity, task)),
        };
        Ok((agent, checked.proof.as_ref().map(UnspentProof::of)))
    }

    /// The state behind a verified token: nothing revoked it, its task is open, its
    /// identity, its sponsor and every identity that delegated it are active. Returns the
    /// identity and the task as this token may use it: only the systems in the task, in
    /// the token's scope and still registered on the identity.
    async fn live<S: LiveSource>(
        &self,
        source: &S,
        token: &str,
        claims: &AccessClaims,
        now: Timestamp,
    ) -> Result<(Identity, Task), Inactive<S::Error>> {
        let issued = Timestamp::from_millis(claims.issued_ms());
        let task_id =
            TaskId::parse(&claims.aim_task).map_err(|_| TokenError::InvalidClaim("aim_task"))?;
        let id = IdentityId::parse(&claims.client_id)
            .map_err(|_| TokenError::InvalidClaim("client_id"))?;
        let delegators = delegators(claims)?;
        // Tagged with the generation from before the read: a change committed after it
        // makes the entry unusable.
        let generation = source.generation();
        let live = match self.cache.get(&claims.jti, generation) {
            Some(live) => live,
            None => {
                let live = read_live(source, token, claims, id, task_id, &delegators).await?;
                self.cache.put(&claims.jti, live.clone(), generation);
                live
            }
        };
        // A token, task, signing key or agent key once revoked stays revoked, whatever the
        // clocks say; an identity (and a delegator) kills what was issued up to its
        // revocation.
        if live.always_revoked_at.is_some()
            || live.earlier_revoked_at.is_some_and(|at| issued <= at)
        {
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
        // INVARIANT: what a token may reach is task ∩ token scope ∩ identity, now.
        // Everything an agent does through aim (decisions, leases, elevations, exchange)
        // reads the task from here.
        task.systems.retain(|system| {
            claims.scopes().any(|s| s == system) && context.identity.systems.contains(system)
        });
        Ok((context.identity, task))
    }
}

/// A token as presented on one request, with its proof for that request.
#[derive(Debug, Clone, Copy)]
pub struct Presentation<'a> {
    pub token: &'a str,
    pub proof: Option<&'a str>,
    pub method: &'a str,
    /// The URL the request was made to, as the proof's `htu` must name it.
    pub url: &'a str,
}

/// The identities that delegated a token, nearest first.
// INVARIANT: a delegated token names every identity above it, so that it dies with any of
// them; one that does not is refused rather than checked less.
fn delegators(claims: &AccessClaims) -> Result<Vec<IdentityId>, TokenError> {
    let Some(act) = &claims.act else {
        return Ok(Vec::new());
    };
    act.client_ids()
        .ok_or(TokenError::InvalidClaim("act"))?
        .into_iter()
        .map(IdentityId::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| TokenError::InvalidClaim("act"))
}

/// Reads the live state of a token not in the cache: one query for everything it hangs on
/// (built only here, so a token presented again costs none of it).
async fn read_live<S: LiveSource>(
    source: &S,
    token: &str,
    claims: &AccessClaims,
    id: IdentityId,
    task_id: TaskId,
    delegators: &[IdentityId],
) -> Result<LiveContext, Inactive<S::Error>> {
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
    source
        .live_context(id, task_id, &hangs)
        .await
        .map_err(Inactive::Source)?
        .ok_or(Inactive::IdentityInactive)
}
