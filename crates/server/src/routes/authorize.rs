//! `POST /v1/authorize`: may this agent take this action on this resource now? An agent
//! asks with its token (and DPoP proof); the decision sees its identity and the task the
//! token belongs to. An admin may ask about an explicit principal to test policies.
//! `POST /v1/authorize/explain` answers the same question against a proposed policy set
//! without applying it. Every decision (not the what-if) is an audit event.

use aim_domain::event::{Actor, AuditAction, Event, Outcome, Trail};
use aim_domain::human::{Human, Role};
use aim_domain::identity::Identity;
use aim_domain::ids::{ApprovalId, HumanId, IdentityId, TaskId};
use aim_domain::step_up::ApprovalState;
use aim_domain::task::Task;
use aim_domain::time::Timestamp;
use aim_policy::{Call, Decision, Effect, Engine, Principal as Who, Query, QueryError, Target};
use aim_store::{Claim, Spent};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::{Caller, RequestContext};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Body;
use crate::policy::Content;
use crate::routes::policies::{PolicyError, Rejected, check_content};
use crate::runtime::amend::{self, Amended};
use crate::runtime::webhook;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/authorize", post(authorize))
        .route("/v1/authorize/explain", post(explain))
}

/// Who the question is about, for an admin testing policies.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PrincipalRef {
    Identity(IdentityId),
    Human(HumanId),
}

/// The question: `action` on `resource` (`{"type", "id", "system", "attrs", "tags"}`),
/// with what the caller says about the `call` (`method`, `path`, `ip`, `args_hash`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeBody {
    pub action: String,
    #[schema(value_type = Object)]
    pub resource: Target,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub call: Call,
    /// Admins only, and only without an agent token: `{"identity": id}` or
    /// `{"human": id}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub principal: Option<PrincipalRef>,
    /// With an explicit identity: the task to decide under.
    #[serde(default)]
    pub task_id: Option<TaskId>,
    /// Retrying an action that needed approval: the approval's id. It allows that exact
    /// action once.
    #[serde(default)]
    pub approval_id: Option<ApprovalId>,
    /// `explain` only: decide against these files instead of the set in force.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub policies: Option<Content>,
}

/// `decision` (`allow`, `deny`, `approval_required`), `policies`, `reasons`, `approvers`,
/// `errors`, and the `policy_version` that decided.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuthorizeResponse {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub decision: Decision,
    /// The policy version that decided; absent for a proposed set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<i64>,
    /// `code`, `holder`, `approval_id`, `approval_expires_at`, when grants, leases or
    /// approvals had a say.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub amended: Amended,
}

/// The principal, its task and the trail of the token it came with.
struct Subject {
    identity: Option<Identity>,
    human: Option<Human>,
    task: Option<Task>,
    actor: Actor,
    trail: Trail,
}

async fn subject(s: &AppState, caller: &Caller, body: &AuthorizeBody) -> Result<Subject, ApiError> {
    match caller {
        Caller::Agent(a) => {
            if body.principal.is_some() || body.task_id.is_some() {
                return Err(ApiError::bad_request(
                    "principal_not_allowed",
                    "an agent asks about itself, under its token's task; leave out principal and task_id",
                ));
            }
            // Read by the live-state check a moment ago, with the revocations.
            let (identity, task) = (*a.live).clone();
            Ok(Subject {
                trail: Trail {
                    act: a
                        .claims
                        .act
                        .as_ref()
                        .map(|act| act.chain())
                        .unwrap_or_default(),
                    task_id: task.id.to_string(),
                    session_id: a.claims.sid.clone(),
                    jti: a.claims.jti.clone(),
                    triggered_by: task.triggered_by.clone(),
                    ..Trail::default()
                },
                identity: Some(identity),
                human: None,
                task: Some(task),
                actor: Actor::identity(a.identity),
            })
        }
        Caller::Human(p) => {
            p.require_any(
                &[Role::Admin, Role::Gateway],
                "asking for a decision about another principal",
            )?;
            let Some(who) = body.principal else {
                return Err(ApiError::bad_request(
                    "principal_required",
                    "give the principal ({\"identity\": id} or {\"human\": id}) the question is about",
                ));
            };
            let (identity, human) = match who {
                PrincipalRef::Identity(id) => {
                    (Some(crate::registry::identities::get(s, id).await?), None)
                }
                PrincipalRef::Human(id) => (None, Some(crate::registry::humans::get(s, id).await?)),
            };
            let task = match (body.task_id, &identity) {
                (None, _) => None,
                (Some(t), Some(i)) => {
                    let task = s
                        .store
                        .task(t)
                        .await?
                        .filter(|task| task.identity_id == i.id)
                        .ok_or_else(|| ApiError::not_found("task of this identity"))?;
                    Some(task)
                }
                (Some(_), None) => {
                    return Err(ApiError::bad_request(
                        "task_needs_identity",
                        "a task belongs to an identity, not to a human",
                    ));
                }
            };
            Ok(Subject {
                trail: Trail {
                    task_id: task.as_ref().map(|t| t.id.to_string()).unwrap_or_default(),
                    triggered_by: task
                        .as_ref()
                        .map(|t| t.triggered_by.clone())
                        .unwrap_or_default(),
                    ..Trail::default()
                },
                identity,
                human,
                task,
                actor: p.actor(),
            })
        }
    }
}

fn decide(
    engine: &Engine,
    who: &Subject,
    body: &AuthorizeBody,
    now: aim_domain::time::Timestamp,
) -> Result<Decision, ApiError> {
    let principal = match (&who.identity, &who.human) {
        (Some(identity), _) => Who::Identity {
            identity,
            sponsor: None,
            groups: &[],
        },
        (None, Some(human)) => Who::Human { human, groups: &[] },
        (None, None) => return Err(ApiError::internal()),
    };
    let q = Query {
        principal,
        action: &body.action,
        target: &body.resource,
        task: who.task.as_ref(),
        now,
        call: &body.call,
    };
    engine
        .decide(&q)
        .map_err(|e: QueryError| ApiError::bad_request(e.code(), e.to_string()))
}

fn decision_event(
    now: Timestamp,
    who: &Subject,
    body: &AuthorizeBody,
    decision: &Decision,
    amended: &Amended,
    version: i64,
    ctx: &RequestContext,
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
        &body.resource.kind,
        &body.resource.id,
    )
    .outcome(outcome)
    .reason(decision.reasons.join("; "))
    .detail(json!({
        "action": body.action,
        "system": body.resource.system,
        "policy_version": version,
        "principal": body.principal,
        "errors": decision.errors,
        "args_hash": body.call.args_hash,
        "code": amended.code,
        "approval_id": amended.approval_id,
        "lease_holder": amended.holder.as_ref().map(|l| l.identity_id),
    }))
    .trail(Trail {
        policies: decision.policies.clone(),
        ..who.trail.clone()
    })
    .from_request(&ctx.id, &ctx.source)
}

fn replayed() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "dpop_replayed",
        "this DPoP proof was already used",
    )
}

/// Decides with the policy set in force, grants, leases and approvals, and records the
/// decision.
#[utoipa::path(post, path = "/v1/authorize", tag = "policies", request_body = AuthorizeBody,
    responses((status = 200, body = AuthorizeResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn authorize(
    State(s): State<AppState>,
    ctx: RequestContext,
    caller: Caller,
    Body(mut body): Body<AuthorizeBody>,
) -> Result<Json<AuthorizeResponse>, ApiError> {
    // INVARIANT: an agent's address is the one aim saw, whatever the body says.
    if let Caller::Agent(_) = &caller {
        body.call.ip = (!ctx.source.is_empty()).then(|| ctx.source.clone());
    }
    if body.policies.is_some() {
        return Err(ApiError::bad_request(
            "policies_not_allowed",
            "to try a proposed policy set, use POST /v1/authorize/explain",
        ));
    }
    let who = subject(&s, &caller, &body).await?;
    let active = s.policies.active();
    let now = s.clock.now();
    let mut decision = decide(&active.engine, &who, &body, now)?;
    let mut amended = Amended::default();
    if let Some(identity) = &who.identity {
        amended = amend::grants_and_leases(
            &s,
            &active.engine,
            identity,
            &body.action,
            &body.resource,
            now,
            &mut decision,
        )
        .await?;
    }
    // The decision counts only once it is on the record; an agent's DPoP proof is spent
    // in the same durable write.
    let unspent: Vec<Claim> = match &caller {
        Caller::Agent(a) => a.unspent_proof.iter().cloned().collect(),
        Caller::Human(_) => Vec::new(),
    };
    let mut flooded = false;
    if let (Effect::ApprovalRequired, Some(identity), Some(task), Caller::Agent(_)) =
        (decision.decision, &who.identity, &who.task, &caller)
    {
        let action = amend::approved_action(
            identity,
            task,
            &body.action,
            &body.resource,
            body.call.args_hash.as_deref(),
        );
        match body.approval_id {
            Some(id) => {
                amended.approval_id = Some(id);
                let approval = s
                    .store
                    .approval(id)
                    .await?
                    .filter(|a| a.action.identity_id == identity.id);
                let refusal = match &approval {
                    None => Some((
                        "approval_not_found",
                        "this identity has no approval with this id".to_owned(),
                    )),
                    Some(a) => a.refuses(&action, &decision.approvers, now),
                };
                match (refusal, approval) {
                    (None, Some(mut a)) => {
                        a.state = ApprovalState::Used;
                        a.used_at = Some(now);
                        let mut allowed = decision.clone();
                        allowed.decision = Effect::Allow;
                        allowed.policies.push(format!("approval/{}", a.id));
                        allowed.reasons.push(format!("approved: {}", a.reason));
                        let event = decision_event(
                            now,
                            &who,
                            &body,
                            &allowed,
                            &amended,
                            active.version,
                            &ctx,
                        );
                        match s
                            .store
                            .spend_approval(&a, now, &event, unspent.clone())
                            .await?
                        {
                            Spent::Yes(_) => {
                                return Ok(Json(AuthorizeResponse {
                                    decision: allowed,
                                    policy_version: Some(active.version),
                                    amended,
                                }));
                            }
                            Spent::Replayed => return Err(replayed()),
                            Spent::Gone => {
                                deny(&mut decision, "the approval was already used or expired");
                                amended.code = Some("approval_used".into());
                            }
                        }
                    }
                    (refusal, _) => {
                        let (code, why) = refusal.unwrap_or(("approval_not_found", String::new()));
                        deny(&mut decision, &why);
                        amended.code = Some(code.into());
                    }
                }
            }
            None => {
                // Reused only for the identical action, asked of the same approvers.
                let waiting = s
                    .store
                    .open_approval_for(&action, now)
                    .await?
                    .filter(|a| a.approvers == decision.approvers);
                let open = match waiting {
                    Some(a) => Some(a),
                    None => {
                        let a = amend::pending(
                            &s,
                            action,
                            identity,
                            task,
                            &decision,
                            active.version,
                            now,
                        );
                        let event = Event::new(
                            now,
                            who.actor.clone(),
                            AuditAction::ApprovalRequested,
                            "approval",
                            a.id,
                        )
                        .reason(decision.reasons.join("; "))
                        .detail(json!(a))
                        .trail(Trail {
                            policies: decision.policies.clone(),
                            ..who.trail.clone()
                        })
                        .from_request(&ctx.id, &ctx.source);
                        let max = s.runtime.approvals.max_pending_per_identity;
                        if s.store.insert_approval(&a, max, now, &event).await? {
                            webhook::announce(
                                &s,
                                format!("msg_{}", a.id),
                                AuditAction::ApprovalRequested,
                                json!(a),
                            );
                            Some(a)
                        } else {
                            flooded = true;
                            None
                        }
                    }
                };
                if let Some(a) = open {
                    amended.approval_id = Some(a.id);
                    amended.approval_expires_at = Some(a.expires_at);
                }
            }
        }
    }
    if flooded {
        amended.code = Some("too_many_pending_approvals".into());
    }
    let event = decision_event(now, &who, &body, &decision, &amended, active.version, &ctx);
    if unspent.is_empty() {
        s.store.append_event(&event).await?;
    } else if s.store.append_claimed(&event, unspent).await?.is_none() {
        return Err(replayed());
    }
    if flooded {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_pending_approvals",
            format!(
                "this identity already has {} approvals waiting; wait for them to be decided or to expire",
                s.runtime.approvals.max_pending_per_identity
            ),
        ));
    }
    Ok(Json(AuthorizeResponse {
        decision,
        policy_version: Some(active.version),
        amended,
    }))
}

/// Turns `decision` into a deny for `why`, keeping what the policies said.
fn deny(decision: &mut Decision, why: &str) {
    decision.decision = Effect::Deny;
    if !why.is_empty() {
        decision.reasons.push(why.to_owned());
    }
}

/// What would be decided, with the set in force or a proposed one; nothing is recorded.
#[utoipa::path(post, path = "/v1/authorize/explain", tag = "policies", request_body = AuthorizeBody,
    responses((status = 200, body = AuthorizeResponse), (status = 400, body = ErrorBody), (status = 422, description = "invalid_policy"), (status = 403, body = ErrorBody)))]
pub async fn explain(
    State(s): State<AppState>,
    caller: Caller,
    Body(mut body): Body<AuthorizeBody>,
) -> Result<Json<AuthorizeResponse>, PolicyError> {
    if let Caller::Human(p) = &caller {
        p.require_any(&[Role::Admin], "testing policies")?;
    } else {
        return Err(ApiError::forbidden("testing policies takes an admin's credential").into());
    }
    let who = subject(&s, &caller, &body).await?;
    let now = s.clock.now();
    let active = s.policies.active();
    let proposed;
    let (engine, version) = match body.policies.take() {
        Some(content) => {
            check_content(&content)?;
            let compiled = s
                .policies
                .compile(&content)
                .map_err(|p| PolicyError::Rejected(Rejected(p)))?;
            let engine = Engine::new(s.policies.schema().clone(), compiled).map_err(|e| {
                tracing::error!(error = %e, "building the decision engine failed");
                ApiError::internal()
            })?;
            proposed = engine;
            (&proposed, None)
        }
        None => (&active.engine, Some(active.version)),
    };
    let mut decision = decide(engine, &who, &body, now)?;
    // Grants and leases have their say as they would now; no approval is asked for.
    let amended = match &who.identity {
        Some(identity) => {
            amend::grants_and_leases(
                &s,
                engine,
                identity,
                &body.action,
                &body.resource,
                now,
                &mut decision,
            )
            .await?
        }
        None => Amended::default(),
    };
    Ok(Json(AuthorizeResponse {
        decision,
        policy_version: version,
        amended,
    }))
}
