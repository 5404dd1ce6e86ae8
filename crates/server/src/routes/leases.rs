//! `/v1/leases`: an agent takes exclusive write on one record for a short time, under its
//! task. While it holds the lease every other identity's write or delete on that record is
//! denied with `conflict_of_authority`. The lease expires by itself, is released when the
//! task ends or the identity is locked, and the holder (or an admin) may release it early.

use aim_api::authorize::AuthorizeBody;
use aim_api::leases::LeaseBody;
use aim_domain::Refusal;
use aim_domain::event::{Actor, AuditAction, Event, Trail};
use aim_domain::human::Role;
use aim_domain::identity::Identity;
use aim_domain::ids::LeaseId;
use aim_domain::lease::{self, Lease};
use aim_domain::task::Task;
use aim_enforce::pipeline::{About, Subject};
use aim_policy::{Effect, Target};
use aim_store::Acquired;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::RequestContext;
use crate::extract::{Body, OptionalBody, PathId};
use crate::state::AppState;
use crate::tokens::check::Source;
use aim_api::common::ReasonBody;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/leases", post(acquire))
        .route("/v1/leases/{id}", get(show))
        .route("/v1/leases/{id}/release", post(release))
}

/// The 409 body: who holds the record, and until when.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConflictBody {
    pub code: &'static str,
    pub message: String,
    pub holder: Lease,
}

/// Takes (or renews) the lease on a record.
#[utoipa::path(post, path = "/v1/leases", tag = "leases", request_body = LeaseBody,
    responses((status = 201, body = Lease), (status = 403, body = ErrorBody), (status = 409, body = ConflictBody)))]
pub async fn acquire(
    State(s): State<AppState>,
    ctx: RequestContext,
    caller: Caller,
    Body(body): Body<LeaseBody>,
) -> Result<Response, ApiError> {
    let Caller::Agent(agent) = caller else {
        return Err(ApiError::forbidden(
            "a lease is taken by an agent, with its token, under its task",
        ));
    };
    let record = body.record.validated()?;
    let seconds = lease::seconds(body.ttl_seconds)?;
    let now = s.clock.now();
    let (identity, task) = &*agent.live;
    if !task.systems.contains(&record.system) {
        return Err(ApiError::forbidden(format!(
            "system `{}` is outside the task's systems",
            record.system
        )));
    }
    // INVARIANT: only an identity that may write the record now may keep others from it.
    let target = Target {
        kind: record.kind.clone(),
        id: record.id.clone(),
        system: record.system.clone(),
        attrs: body.attrs,
        tags: body.tags,
    };
    may_write(&s, identity, task, &target, now).await?;
    let wanted = Lease {
        id: LeaseId::new(),
        record,
        identity_id: identity.id,
        identity_name: identity.name.clone(),
        task_id: task.id,
        acquired_at: now,
        expires_at: now.plus_seconds(seconds),
        released_at: None,
        release_reason: String::new(),
    };
    let event = Event::new(
        now,
        Actor::identity(identity.id),
        AuditAction::LeaseAcquired,
        "lease",
        wanted.id,
    )
    .detail(json!({ "record": wanted.record, "expires_at": wanted.expires_at }))
    .trail(Trail {
        task_id: task.id.to_string(),
        jti: agent.claims.jti.clone(),
        session_id: agent.claims.sid.clone(),
        triggered_by: task.triggered_by.clone(),
        ..Trail::default()
    })
    .from_request(&ctx.id, &ctx.source);
    match s
        .store
        .acquire_lease(&wanted, &s.decisions.leases, now, &event)
        .await?
    {
        Acquired::Held(l) => Ok((StatusCode::CREATED, Json(l)).into_response()),
        Acquired::TooMany { identity, task } => Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_leases",
            format!(
                "this identity holds {identity} leases and this task {task}; at most {} and {} at once: release one first",
                s.decisions.leases.max_per_identity, s.decisions.leases.max_per_task
            ),
        )),
        Acquired::HeldTooLong(held) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "lease_held_too_long",
            format!(
                "this lease was taken at {} and cannot be kept past {} seconds from then; release it and let others write",
                held.acquired_at, s.decisions.leases.max_hold_seconds
            ),
        )),
        Acquired::Conflict(holder) => {
            let refusal = holder.conflict();
            let mut r = (
                StatusCode::CONFLICT,
                Json(ConflictBody {
                    code: refusal.code(),
                    message: refusal.to_string(),
                    holder,
                }),
            )
                .into_response();
            r.extensions_mut()
                .insert(crate::error::ErrorCode(refusal.code()));
            Ok(r)
        }
    }
}

/// Refuses unless the policies in force (and the grants) allow `identity` to write `target`
/// under `task` now. Another identity's lease on it is left to the store to report.
async fn may_write(
    s: &AppState,
    identity: &Identity,
    task: &Task,
    target: &Target,
    now: aim_domain::time::Timestamp,
) -> Result<(), ApiError> {
    let active = s.policies.active();
    let grants = s.decisions.grants();
    let source = Source::of(s);
    let who = Subject {
        about: About::Identity(identity.clone()),
        task: Some(task.clone()),
        actor: Actor::identity(identity.id),
        trail: Trail::default(),
        own_task: false,
        key: None,
    };
    let question = AuthorizeBody {
        action: "write".to_owned(),
        resource: target.clone(),
        ..AuthorizeBody::default()
    };
    let (decision, amended) = crate::routes::authorize::pipeline(
        s,
        &source,
        &active.engine,
        Some(active.version),
        &grants,
    )
    .consider(&who, &question, now)
    .await?;
    if decision.decision == Effect::Allow
        || amended.code.as_deref() == Some("conflict_of_authority")
    {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "write_not_allowed",
        format!(
            "a lease needs the right to write the record now ({}): {}",
            if decision.decision == Effect::ApprovalRequired {
                "the write needs an approval"
            } else {
                "the write is denied"
            },
            decision.reasons.join("; ")
        ),
    ))
}

async fn get_lease(s: &AppState, id: LeaseId) -> Result<Lease, ApiError> {
    s.store
        .lease(id)
        .await?
        .ok_or_else(|| ApiError::not_found("lease"))
}

/// A lease: to its holder, admins and auditors (it names a record another agent works on).
#[utoipa::path(get, path = "/v1/leases/{id}", params(("id" = String, Path)), tag = "leases",
    responses((status = 200, body = Lease), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(s): State<AppState>,
    caller: Caller,
    PathId(id): PathId<LeaseId>,
) -> Result<Json<Lease>, ApiError> {
    let lease = get_lease(&s, id).await?;
    match &caller {
        Caller::Agent(a) if a.identity == lease.identity_id => {}
        Caller::Agent(_) => {
            return Err(ApiError::forbidden("only the holder reads its lease"));
        }
        Caller::Human(p) => p.require_any(&[Role::Admin, Role::Auditor], "reading a lease")?,
    }
    Ok(Json(lease))
}

/// Releases a lease before it expires: its holder, or an admin.
#[utoipa::path(post, path = "/v1/leases/{id}/release", params(("id" = String, Path)), tag = "leases", request_body = ReasonBody,
    responses((status = 200, body = Lease), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn release(
    State(s): State<AppState>,
    ctx: RequestContext,
    caller: Caller,
    PathId(id): PathId<LeaseId>,
    OptionalBody(body): OptionalBody<ReasonBody>,
) -> Result<Json<Lease>, ApiError> {
    let held = get_lease(&s, id).await?;
    let now = s.clock.now();
    let reason = body.checked()?;
    let event = match &caller {
        Caller::Agent(a) if a.identity == held.identity_id => Event::new(
            now,
            Actor::identity(a.identity),
            AuditAction::LeaseReleased,
            "lease",
            id,
        )
        .from_request(&ctx.id, &ctx.source),
        Caller::Agent(_) => {
            return Err(ApiError::forbidden("only the holder releases its lease"));
        }
        Caller::Human(p) => {
            p.require_any(&[Role::Admin], "releasing another identity's lease")?;
            p.event(now, AuditAction::LeaseReleased, "lease", id)
        }
    };
    let reason = if reason.is_empty() {
        "released".to_owned()
    } else {
        reason
    };
    let event = event
        .reason(reason.clone())
        .detail(json!({ "record": held.record, "holder": held.identity_id }));
    if !s.store.release_lease(id, now, &reason, &event).await? {
        return Err(Refusal::NotPending {
            what: "lease",
            state: "no longer held".into(),
        }
        .into());
    }
    Ok(Json(get_lease(&s, id).await?))
}
