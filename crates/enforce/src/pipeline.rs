//! One decision, from question to record: the policy set decides, grants and leases have
//! their say ([`crate::amend`]), an agent's `approval_required` becomes (or spends) an
//! approval of that exact action, and the decision is written on the record, with the
//! agent's DPoP proof spent in the same durable write. Nothing is answered before its
//! record is durable; any error reading or writing fails closed.
//!
//! ```text
//! question ─► policies ─► grants ─► lease ─► baseline ─► approval ─► record ─► answer
//! ```
//!
//! The baseline ([`DecisionStore::watch`]) may step a call up or deny it for a lock (the
//! caller carries the lock out); its verdict is on the record ([`crate::amend`]).

use std::future::Future;

use aim_api::authorize::{Amended, AuthorizeBody, AuthorizeResponse};
use aim_domain::approval::{ActionApproval, ApprovalState, ApprovedAction, Spent};
use aim_domain::baseline::watch::{Seen, Verdict, Watched};

pub use crate::subject::{About, Subject};
use aim_domain::decision::{Decision, Effect};
use aim_domain::event::{AuditAction, Event, Outcome, Trail};
use aim_domain::human::Human;
use aim_domain::identity::Identity;
use aim_domain::ids::ApprovalId;
use aim_domain::lease::{Lease, Record};
use aim_domain::single_use::Claim;
use aim_domain::task::Task;
use aim_domain::time::Timestamp;
use aim_policy::{Engine, Principal, Query, QueryError};
use serde_json::json;

use crate::amend::{self, Grants};
use crate::token::UnspentProof;

/// What the pipeline reads and writes besides the policy set and the grants.
pub trait DecisionStore: Sync {
    type Error: std::error::Error + Send + Sync + 'static;

    /// A human by id: an identity's sponsor, when policies read its attributes.
    fn human(
        &self,
        id: aim_domain::ids::HumanId,
    ) -> impl Future<Output = Result<Option<Human>, Self::Error>> + Send;

    /// The unexpired lease on `record`, if any.
    fn held_lease(
        &self,
        record: &Record,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<Lease>, Self::Error>> + Send;
    fn approval(
        &self,
        id: ApprovalId,
    ) -> impl Future<Output = Result<Option<ActionApproval>, Self::Error>> + Send;
    /// The pending, unexpired approval for exactly this action, if there is one.
    fn open_approval_for(
        &self,
        action: &ApprovedAction,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<ActionApproval>, Self::Error>> + Send;
    /// Stores a new pending approval with `event`, unless its identity already has
    /// `max_open` waiting: false then, and nothing is written.
    fn insert_approval(
        &self,
        approval: &ActionApproval,
        max_open: u32,
        now: Timestamp,
        event: &Event,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;
    /// Marks an approved approval used, with the decision `event` and the `claims`, in one
    /// durable write.
    fn spend_approval(
        &self,
        approval: &ActionApproval,
        now: Timestamp,
        event: &Event,
        claims: Vec<Claim>,
    ) -> impl Future<Output = Result<Spent, Self::Error>> + Send;
    /// Appends `event` once every claim in `claims` is recorded as used, in one durable
    /// write; `None` (and no event) if one was used before.
    fn record(
        &self,
        event: &Event,
        claims: Vec<Claim>,
    ) -> impl Future<Output = Result<Option<i64>, Self::Error>> + Send;
    /// Holds `seen` against `identity`'s behavioural baseline and learns from it; `None`
    /// where no baseline is kept here (a gateway deciding on its own: aim holds those calls
    /// against the baseline when their records reach it).
    fn watch(
        &self,
        identity: &Identity,
        seen: &Seen,
    ) -> impl Future<Output = Result<Option<Verdict>, Self::Error>> + Send {
        let _ = (identity, seen);
        std::future::ready(Ok(None))
    }
}

/// Why no answer was given.
#[derive(Debug, thiserror::Error)]
pub enum Refused<E> {
    /// The question cannot be asked of this policy set (an unknown action, a bad target).
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The agent's DPoP proof had been used before; nothing was written.
    #[error("this DPoP proof was already used")]
    Replayed,
    /// The identity has as many approvals waiting as it may; the deny is on the record.
    #[error(
        "this identity already has {max} approvals waiting; wait for them to be decided or to expire"
    )]
    TooManyPending { max: u32 },
    /// The store could not answer or write; nothing was allowed.
    #[error("the store could not answer")]
    Store(#[source] E),
}

/// How approvals are asked for.
#[derive(Debug, Clone, Copy)]
pub struct ApprovalLimits {
    /// How long an approval may wait for a decision, and an approved one for its retry.
    pub ttl_seconds: i64,
    /// The most approvals one identity may have waiting at once.
    pub max_pending_per_identity: u32,
}

/// The request behind a decision, as the record names it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin<'a> {
    pub request_id: &'a str,
    pub source: &'a str,
}

/// A decision made and recorded, the approval it asked for (to announce), if new, and
/// what the identity's baseline made of the call (a lock is the caller's to carry out).
#[derive(Debug)]
pub struct Ruled {
    pub answer: AuthorizeResponse,
    pub requested: Option<ActionApproval>,
    pub watched: Option<Watched>,
    /// The decision record's sequence number.
    pub recorded: i64,
}

/// Everything one decision uses.
#[derive(Debug)]
pub struct Pipeline<'a, S> {
    pub store: &'a S,
    pub engine: &'a Engine,
    /// The version of `engine`'s policy set; `None` for a proposed set.
    pub version: Option<i64>,
    pub grants: &'a Grants,
    pub approvals: ApprovalLimits,
}

impl<S: DecisionStore> Pipeline<'_, S> {
    /// What the policy set, grants and leases say, without asking for approval or
    /// recording anything (the what-if).
    pub async fn consider(
        &self,
        who: &Subject,
        q: &AuthorizeBody,
        now: Timestamp,
    ) -> Result<(Decision, Amended), Refused<S::Error>> {
        // `principal.sponsor`'s attributes, read only when a policy reads them; a sponsor
        // that cannot be found leaves them out, and such a policy fails closed.
        let sponsor = match &who.about {
            About::Identity(i) if self.engine.reads_sponsor() => self
                .store
                .human(i.sponsor_id)
                .await
                .map_err(Refused::Store)?,
            _ => None,
        };
        let mut decision = self.policies(who, sponsor.as_ref(), q, now)?;
        let mut amended = Amended::default();
        let names = self.engine.action_names(&q.action);
        if let (Some(identity), Some(names)) = (who.identity(), names.as_deref()) {
            amend::apply_grants(
                self.grants,
                names,
                identity,
                &q.resource,
                now,
                &mut decision,
            );
            if decision.decision != Effect::Deny
                && let Some(record) = amend::leased_record(names, &q.resource)
            {
                let held = self
                    .store
                    .held_lease(&record, now)
                    .await
                    .map_err(Refused::Store)?;
                amend::apply_lease(held, identity, &mut decision, &mut amended);
            }
        }
        Ok((decision, amended))
    }

    /// Decides, asks for (or spends) an approval where one is needed, and records the
    /// decision with `proof` spent in the same write.
    pub async fn rule(
        &self,
        who: &Subject,
        q: &AuthorizeBody,
        origin: Origin<'_>,
        proof: Option<UnspentProof>,
        now: Timestamp,
    ) -> Result<Ruled, Refused<S::Error>> {
        let (mut decision, mut amended) = self.consider(who, q, now).await?;
        let watched = self.watch(who, q, &decision, now).await?;
        if let Some(w) = &watched {
            amend::out_of_character(&w.verdict, &mut decision, &mut amended);
        }
        let claims: Vec<Claim> = proof.into_iter().map(UnspentProof::into_claim).collect();
        let mut requested = None;
        let mut flooded = false;
        if let (Effect::ApprovalRequired, Some(identity), Some(task), true) =
            (decision.decision, who.identity(), &who.task, who.own_task)
        {
            let action = amend::approved_action(
                identity,
                task,
                &q.action,
                &q.resource,
                q.call.args_hash.as_deref(),
            );
            let step = Step {
                who,
                q,
                origin,
                now,
                watched: watched.as_ref().map(|w| &w.verdict),
            };
            match q.approval_id {
                Some(id) => {
                    let allowed = self
                        .retry(&step, id, &action, &mut decision, &mut amended, &claims)
                        .await?;
                    if let Some((answer, recorded)) = allowed {
                        return Ok(Ruled {
                            answer,
                            requested: None,
                            watched,
                            recorded,
                        });
                    }
                }
                None => {
                    (requested, flooded) = self
                        .ask(&step, action, identity, task, &decision, &mut amended)
                        .await?;
                }
            }
        }
        if flooded {
            amended.code = Some("too_many_pending_approvals".into());
        }
        let verdict = watched.as_ref().map(|w| &w.verdict);
        let event = self.event(who, q, &decision, &amended, origin, now, verdict);
        let Some(recorded) = self
            .store
            .record(&event, claims)
            .await
            .map_err(Refused::Store)?
        else {
            return Err(Refused::Replayed);
        };
        if flooded {
            return Err(Refused::TooManyPending {
                max: self.approvals.max_pending_per_identity,
            });
        }
        Ok(Ruled {
            answer: self.answer(decision, amended),
            requested,
            watched,
            recorded,
        })
    }

    /// What the identity's baseline makes of its own call (an admin asking about it
    /// teaches and locks nothing), under the set in force.
    async fn watch(
        &self,
        who: &Subject,
        q: &AuthorizeBody,
        decision: &Decision,
        now: Timestamp,
    ) -> Result<Option<Watched>, Refused<S::Error>> {
        let (Some(identity), Some(_), true) = (who.identity(), self.version, who.own_task) else {
            return Ok(None);
        };
        let seen = who.seen(q, decision.decision == Effect::Deny, now);
        let verdict = self
            .store
            .watch(identity, &seen)
            .await
            .map_err(Refused::Store)?;
        Ok(verdict.map(|verdict| Watched { seen, verdict }))
    }

    fn answer(&self, decision: Decision, amended: Amended) -> AuthorizeResponse {
        AuthorizeResponse {
            decision,
            policy_version: self.version,
            amended,
        }
    }

    /// The policy set's own answer.
    fn policies(
        &self,
        who: &Subject,
        sponsor: Option<&Human>,
        q: &AuthorizeBody,
        now: Timestamp,
    ) -> Result<Decision, QueryError> {
        let principal = match &who.about {
            About::Identity(identity) => Principal::Identity {
                identity,
                sponsor,
                groups: &[],
            },
            // A human is in the groups their record names (an IdP's, over SCIM).
            About::Human(human) => Principal::Human {
                human,
                groups: &human.groups,
            },
        };
        self.engine.decide(&Query {
            principal,
            action: &q.action,
            target: &q.resource,
            task: who.task.as_ref(),
            now,
            call: &q.call,
        })
    }

    /// A retry with an approval's id: an approved approval of this exact action allows it
    /// once (the answer, already recorded); anything else turns the decision into a deny
    /// with the reason, and `None`.
    async fn retry(
        &self,
        step: &Step<'_>,
        id: ApprovalId,
        action: &ApprovedAction,
        decision: &mut Decision,
        amended: &mut Amended,
        claims: &[Claim],
    ) -> Result<Option<(AuthorizeResponse, i64)>, Refused<S::Error>> {
        amended.approval_id = Some(id);
        let approval = self
            .store
            .approval(id)
            .await
            .map_err(Refused::Store)?
            .filter(|a| a.action.identity_id == action.identity_id);
        let Some(mut approval) = approval else {
            amend::deny(decision, "this identity has no approval with this id");
            amended.code = Some("approval_not_found".into());
            return Ok(None);
        };
        if let Some((code, why)) = approval.refuses(action, &decision.approvers, step.now) {
            amend::deny(decision, &why);
            amended.code = Some(code.into());
            return Ok(None);
        }
        approval.state = ApprovalState::Used;
        approval.used_at = Some(step.now);
        let mut allowed = decision.clone();
        allowed.decision = Effect::Allow;
        allowed.policies.push(format!("approval/{}", approval.id));
        allowed
            .reasons
            .push(format!("approved: {}", approval.reason));
        let event = self.event(
            step.who,
            step.q,
            &allowed,
            amended,
            step.origin,
            step.now,
            step.watched,
        );
        let spent = self
            .store
            .spend_approval(&approval, step.now, &event, claims.to_vec())
            .await
            .map_err(Refused::Store)?;
        match spent {
            Spent::Yes(seq) => Ok(Some((self.answer(allowed, amended.clone()), seq))),
            Spent::Replayed => Err(Refused::Replayed),
            Spent::Gone => {
                amend::deny(decision, "the approval was already used or expired");
                amended.code = Some("approval_used".into());
                Ok(None)
            }
        }
    }

    /// An `approval_required` without an approval: the one already waiting for this exact
    /// action from the same approvers, or a new one. Returns the new one (to announce), and
    /// whether the identity has too many waiting to ask for another.
    async fn ask(
        &self,
        step: &Step<'_>,
        action: ApprovedAction,
        identity: &Identity,
        task: &Task,
        decision: &Decision,
        amended: &mut Amended,
    ) -> Result<(Option<ActionApproval>, bool), Refused<S::Error>> {
        let waiting = self
            .store
            .open_approval_for(&action, step.now)
            .await
            .map_err(Refused::Store)?
            .filter(|a| a.approvers == decision.approvers);
        if let Some(a) = waiting {
            amended.approval_id = Some(a.id);
            amended.approval_expires_at = Some(a.expires_at);
            return Ok((None, false));
        }
        let a = self.pending(action, identity, task, decision, step.now);
        let event = Event::new(
            step.now,
            step.who.actor.clone(),
            AuditAction::ApprovalRequested,
            "approval",
            a.id,
        )
        .reason(decision.reasons.join("; "))
        .detail(json!(a))
        .trail(Trail {
            policies: decision.policies.clone(),
            ..step.who.trail.clone()
        })
        .from_request(step.origin.request_id, step.origin.source);
        let max = self.approvals.max_pending_per_identity;
        let stored = self
            .store
            .insert_approval(&a, max, step.now, &event)
            .await
            .map_err(Refused::Store)?;
        if !stored {
            return Ok((None, true));
        }
        amended.approval_id = Some(a.id);
        amended.approval_expires_at = Some(a.expires_at);
        Ok((Some(a), false))
    }

    /// A new pending approval for `action`.
    fn pending(
        &self,
        action: ApprovedAction,
        identity: &Identity,
        task: &Task,
        decision: &Decision,
        now: Timestamp,
    ) -> ActionApproval {
        ActionApproval {
            id: ApprovalId::new(),
            action,
            approvers: decision.approvers.clone(),
            policies: decision.policies.clone(),
            policy_version: self.version.unwrap_or_default(),
            triggered_by: task.triggered_by.clone(),
            sponsor_id: identity.sponsor_id,
            state: ApprovalState::Pending,
            requested_at: now,
            expires_at: now.plus_seconds(self.approvals.ttl_seconds),
            decided_by: None,
            decided_at: None,
            reason: String::new(),
            used_at: None,
        }
    }

    /// The decision record.
    #[allow(clippy::too_many_arguments)]
    fn event(
        &self,
        who: &Subject,
        q: &AuthorizeBody,
        decision: &Decision,
        amended: &Amended,
        origin: Origin<'_>,
        now: Timestamp,
        watched: Option<&Verdict>,
    ) -> Event {
        let outcome = match decision.decision {
            Effect::Allow => Outcome::Allow,
            Effect::Deny => Outcome::Deny,
            Effect::ApprovalRequired => Outcome::ApprovalRequired,
        };
        Event::new(
            now,
            who.actor.clone(),
            AuditAction::Decision,
            &q.resource.kind,
            &q.resource.id,
        )
        .outcome(outcome)
        .reason(decision.reasons.join("; "))
        .detail(json!({
            "action": q.action,
            "system": q.resource.system,
            "policy_version": self.version.unwrap_or_default(),
            "principal": q.principal,
            "errors": decision.errors,
            "args_hash": q.call.args_hash,
            "attrs": q.resource.attrs,
            "call": { "method": q.call.method, "path": q.call.path },
            "code": amended.code,
            "approval_id": amended.approval_id,
            "lease_holder": amended.holder.as_ref().map(|l| l.identity_id),
            "caller": { "key": who.key, "ip": q.call.ip },
            "behaviour": watched,
        }))
        .trail(Trail {
            policies: decision.policies.clone(),
            ..who.trail.clone()
        })
        .from_request(origin.request_id, origin.source)
    }
}

/// One approval step's context.
struct Step<'a> {
    who: &'a Subject,
    q: &'a AuthorizeBody,
    origin: Origin<'a>,
    now: Timestamp,
    watched: Option<&'a Verdict>,
}
