//! `POST /v1/authorize`: may this agent take this action on this resource now? An agent
//! asks with its token (and DPoP proof); the decision sees its identity and the task the
//! token belongs to. An admin may ask about an explicit principal to test policies.
//! `POST /v1/authorize/explain` answers the same question against a proposed policy set
//! without applying it. Every decision (not the what-if) is an audit event.

use aim_domain::event::{Actor, Event, Outcome, Trail};
use aim_domain::human::{Human, Role};
use aim_domain::identity::Identity;
use aim_domain::ids::{HumanId, IdentityId, TaskId};
use aim_domain::task::Task;
use aim_policy::{Call, Decision, Effect, Engine, Principal as Who, Query, QueryError, Target};
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::{Caller, RequestContext};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Body;
use crate::policy::Content;
use crate::routes::policies::{PolicyError, Rejected, check_content};
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
            let ctx = s
                .store
                .token_context(a.identity, "", Some(a.task))
                .await?
                .ok_or_else(|| ApiError::unauthenticated("the token's identity is gone"))?;
            let task = ctx
                .task
                .ok_or_else(|| ApiError::unauthenticated("the token's task is gone"))?;
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
                identity: Some(ctx.identity),
                human: None,
                task: Some(task),
                actor: Actor::identity(a.identity),
            })
        }
        Caller::Human(p) => {
            p.require_any(
                &[Role::Admin],
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

/// Decides with the policy set in force, and records the decision.
#[utoipa::path(post, path = "/v1/authorize", tag = "policies", request_body = AuthorizeBody,
    responses((status = 200, body = AuthorizeResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn authorize(
    State(s): State<AppState>,
    ctx: RequestContext,
    caller: Caller,
    Body(body): Body<AuthorizeBody>,
) -> Result<Json<AuthorizeResponse>, ApiError> {
    if body.policies.is_some() {
        return Err(ApiError::bad_request(
            "policies_not_allowed",
            "to try a proposed policy set, use POST /v1/authorize/explain",
        ));
    }
    let who = subject(&s, &caller, &body).await?;
    let active = s.policies.active();
    let now = s.clock.now();
    let decision = decide(&active.engine, &who, &body, now)?;
    let outcome = match decision.decision {
        Effect::Allow => Outcome::Allow,
        Effect::Deny => Outcome::Deny,
        Effect::ApprovalRequired => Outcome::ApprovalRequired,
    };
    let event = Event::new(
        now,
        who.actor.clone(),
        "decision",
        &body.resource.kind,
        &body.resource.id,
    )
    .outcome(outcome)
    .reason(decision.reasons.join("; "))
    .detail(json!({
        "action": body.action,
        "system": body.resource.system,
        "policy_version": active.version,
        "principal": body.principal,
        "errors": decision.errors,
        "args_hash": body.call.args_hash,
    }))
    .trail(Trail {
        policies: decision.policies.clone(),
        ..who.trail
    })
    .from_request(&ctx.id, &ctx.source);
    // The decision counts only once it is on the record; an agent's DPoP proof is spent
    // in the same durable write.
    let unspent = match &caller {
        Caller::Agent(a) => a.unspent_proof.clone(),
        Caller::Human(_) => None,
    };
    match unspent {
        Some(claim) => {
            if s.store.append_claimed(&event, vec![claim]).await?.is_none() {
                return Err(ApiError::new(
                    axum::http::StatusCode::UNAUTHORIZED,
                    "dpop_replayed",
                    "this DPoP proof was already used",
                ));
            }
        }
        None => {
            s.store.append_event(&event).await?;
        }
    }
    Ok(Json(AuthorizeResponse {
        decision,
        policy_version: Some(active.version),
    }))
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
    let (decision, version) = match body.policies.take() {
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
            (decide(&engine, &who, &body, now)?, None)
        }
        None => {
            let active = s.policies.active();
            (
                decide(&active.engine, &who, &body, now)?,
                Some(active.version),
            )
        }
    };
    Ok(Json(AuthorizeResponse {
        decision,
        policy_version: version,
    }))
}
