//! `POST /v1/authorize`: may this agent take this action on this resource now? An agent
//! asks with its token (and DPoP proof); the decision sees its identity and the task the
//! token belongs to. An admin (or a gateway) may ask about an explicit principal.
//! `POST /v1/authorize/explain` answers the same question against a proposed policy set
//! without applying it. Every decision (not the what-if) is an audit event. The decision
//! itself is `aim-enforce`'s pipeline; this module turns HTTP into its question and its
//! answer back into HTTP.

use aim_api::authorize::{AuthorizeBody, AuthorizeResponse, PrincipalRef};
use aim_domain::event::Trail;
use aim_domain::human::Role;
use aim_enforce::pipeline::{About, ApprovalLimits, Origin, Pipeline, Refused, Subject};
use aim_policy::Engine;
use aim_store::StoreError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

use crate::auth::{Caller, Deciding, HumanCaller};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Body;
use crate::extract::RequestContext;
use crate::routes::policies::{PolicyError, Rejected, check_content};
use crate::state::AppState;
use crate::tokens::check::Source;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/authorize", post(authorize))
        .route("/v1/authorize/explain", post(explain))
}

/// Who the question is about: the agent itself, or the principal a human names.
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
            Ok(Subject::agent(a))
        }
        Caller::Human(p) => named(s, p, body).await,
    }
}

/// The principal an admin or a gateway names, and the task it names.
pub(crate) async fn named(
    s: &AppState,
    p: &HumanCaller,
    body: &AuthorizeBody,
) -> Result<Subject, ApiError> {
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
    let about = match who {
        PrincipalRef::Identity(id) => {
            About::Identity(crate::registry::identities::get(s, id).await?)
        }
        PrincipalRef::Human(id) => About::Human(crate::registry::humans::get(s, id).await?),
    };
    let task = match (body.task_id, &about) {
        (None, _) => None,
        (Some(t), About::Identity(i)) => Some(
            s.store
                .task(t)
                .await?
                .filter(|task| task.identity_id == i.id)
                .ok_or_else(|| ApiError::not_found("task of this identity"))?,
        ),
        (Some(_), About::Human(_)) => {
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
        about,
        task,
        actor: p.actor(),
        own_task: false,
        key: None,
    })
}

/// The pipeline over this server's store, grants and approvals config.
pub(crate) fn pipeline<'a>(
    s: &'a AppState,
    source: &'a Source<'a>,
    engine: &'a Engine,
    version: Option<i64>,
    grants: &'a aim_enforce::amend::Grants,
) -> Pipeline<'a, Source<'a>> {
    Pipeline {
        store: source,
        engine,
        version,
        grants,
        approvals: ApprovalLimits {
            ttl_seconds: s.decisions.approvals.ttl_seconds,
            max_pending_per_identity: s.decisions.approvals.max_pending_per_identity,
        },
    }
}

impl From<Refused<StoreError>> for ApiError {
    fn from(r: Refused<StoreError>) -> Self {
        match r {
            Refused::Query(e) => ApiError::bad_request(e.code(), e.to_string()),
            Refused::Replayed => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "dpop_replayed",
                "this DPoP proof was already used",
            ),
            e @ Refused::TooManyPending { .. } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_pending_approvals",
                e.to_string(),
            ),
            Refused::Store(e) => e.into(),
        }
    }
}

/// Decides with the policy set in force, grants, leases and approvals, and records the
/// decision.
#[utoipa::path(post, path = "/v1/authorize", tag = "policies", request_body = AuthorizeBody,
    responses((status = 200, body = AuthorizeResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn authorize(
    State(s): State<AppState>,
    ctx: RequestContext,
    Deciding { caller, proof }: Deciding,
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
    let grants = s.decisions.grants();
    let source = Source::of(&s);
    let pipeline = pipeline(&s, &source, &active.engine, Some(active.version), &grants);
    let origin = Origin {
        request_id: &ctx.id,
        source: &ctx.source,
    };
    // The decision counts only once it is on the record; an agent's DPoP proof is spent
    // in the same durable write.
    let started = std::time::Instant::now();
    let ruled = pipeline
        .rule(&who, &body, origin, proof, s.clock.now())
        .await?;
    s.metrics
        .decided("api", ruled.answer.decision.decision, started.elapsed());
    crate::behaviour::act::after(&s, &ruled, &who.trail, &ctx.id, &ctx.source).await?;
    announce(&s, ruled.requested);
    Ok(Json(ruled.answer))
}

/// Tells the approvers (the decisions webhook) of an approval a decision asked for.
pub(crate) fn announce(s: &AppState, requested: Option<aim_domain::approval::ActionApproval>) {
    if let Some(a) = requested {
        s.decisions.announce(
            &s.store,
            &s.clock,
            format!("msg_{}", a.id),
            aim_domain::event::AuditAction::ApprovalRequested,
            json!(a),
        );
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
    let active = s.policies.active();
    let proposed;
    let (engine, version) = match body.policies.take() {
        Some(content) => {
            check_content(&content)?;
            let compiled = s
                .policies
                .compile(&content)
                .map_err(|p| PolicyError::Rejected(Rejected(p)))?;
            proposed = Engine::new(s.policies.schema().clone(), compiled).map_err(|e| {
                tracing::error!(error = %e, "building the decision engine failed");
                ApiError::internal()
            })?;
            (&proposed, None)
        }
        None => (&active.engine, Some(active.version)),
    };
    let grants = s.decisions.grants();
    let source = Source::of(&s);
    // Grants and leases have their say as they would now; no approval is asked for.
    let (decision, amended) = pipeline(&s, &source, engine, version, &grants)
        .consider(&who, &body, s.clock.now())
        .await
        .map_err(ApiError::from)?;
    Ok(Json(AuthorizeResponse {
        decision,
        policy_version: version,
        amended,
    }))
}
